"""The embedded install has no boto3: choosing an AWS backend then says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.parametrize(
    ("variable", "opener"),
    [("CV_ANALYTICS_QUEUE_URL", "open_queue_backend"), ("CV_ANALYTICS_STORE_URL", "open_store")],
)
def test_an_aws_backend_without_boto3_raises_missing_dependency_with_the_install_hint(variable, opener):
    url = "sqs://" if opener == "open_queue_backend" else "dynamodb://"
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["boto3"] = None  # as if not installed: importing it raises ImportError
        from cv_analytics.wiring import Settings, {opener}
        from cv_analytics.exceptions import MissingDependencyError
        import cv_analytics.boto.metering  # the request counter needs no boto3
        try:
            {opener}(Settings.from_env({{"{variable}": "{url}"}}))
        except MissingDependencyError as exc:
            print(exc)
        else:
            print("no error")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert "pip install 'cv-analytics[aws]'" in result.stdout
