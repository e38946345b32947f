"""Fixtures shared by every test module."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from cv_analytics.clock import ManualClock

CONTRACT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "contract"
if not CONTRACT_DIR.is_dir():  # a checkout with shared/ beside the repo root, as CI has it
    CONTRACT_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "contract"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def contract_dir() -> pathlib.Path:
    if not CONTRACT_DIR.is_dir():
        pytest.fail(f"contract messages not found at {CONTRACT_DIR}: shared/ must sit beside the repository")
    return CONTRACT_DIR


# -- AWS through moto in server mode (see tests/moto_server.py) -----------------


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto server on loopback; AWS_ENDPOINT_URL, region and dummy credentials point at it."""
    from tests.moto_server import moto_server

    with moto_server(str(tmp_path_factory.mktemp("moto"))) as endpoint:
        yield endpoint


@pytest.fixture
def moto_reset(moto_endpoint: str) -> Iterator[str]:
    """The moto endpoint, emptied before the test and again after it."""
    from tests.moto_server import reset_moto

    reset_moto(moto_endpoint)
    yield moto_endpoint
    reset_moto(moto_endpoint)
