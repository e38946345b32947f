from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

_AWS_VARIABLES = ("AWS_SQS_URL", "AI_JOB_REQUEST_QUEUE_URL", "AI_JOB_RESPONSE_QUEUE_URL", "AWS_ENDPOINT_URL")


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """An environment that runs everything embedded under a fresh data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CV_ANALYTICS_") and k not in _AWS_VARIABLES}
    env["CV_ANALYTICS_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.fixture
def cli(cli_env) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``cv-analytics ARGS…`` as a user would, in a subprocess."""

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cv_analytics", *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"cv-analytics {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    return run


def exported(cli, *args: str) -> list[dict]:
    return [json.loads(line) for line in cli("export", *args).stdout.splitlines() if line.strip()]
