"""Fixtures of the AWS infrastructure tests: the template as data, boto3 against moto."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "infra" / "template.yaml"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """infra/template.yaml decoded by cfn-lint's loader (it understands !Ref, !GetAtt, !Sub...)."""
    import cfnlint.decode

    decoded, problems = cfnlint.decode.decode(str(TEMPLATE_PATH))
    assert not problems, [str(p) for p in problems]
    assert decoded is not None
    return decoded


@pytest.fixture
def aws(moto_reset: str) -> Any:
    """A boto3 session against an empty moto (region and credentials come from the environment)."""
    import boto3

    return boto3.Session()
