"""Fixtures shared by every test module."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from cv_analytics.clock import ManualClock

#: The contract messages: the repository keeps its own copy (contract/), checked
#: against ../shared/contract by tests/test_contract_copy.py when that folder is present.
CONTRACT_DIR = pathlib.Path(__file__).resolve().parents[1] / "contract"
SHARED_CONTRACT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "contract"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def contract_dir() -> pathlib.Path:
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


@pytest.fixture(scope="session")
def shared_chromium():
    """One headless Debian chromium per test process, for every browser test: Playwright's sync API
    allows one instance per thread, so the web and dashboard suites share this one."""
    from tests.web.browser import CHROMIUM, CHROMIUM_MISSING, chromium

    if not CHROMIUM.exists():
        pytest.skip(CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, chromium(playwright) as browser:
        yield browser


#: The longest tests (each half a minute or more, mostly waiting on processes and clocks): run first,
#: so the two xdist workers end together instead of one finishing a long scenario alone at the end.
_LONGEST_FIRST = ("tests/reliability/test_", "tests/aws/test_terraform.py::test_terraform_apply")


def pytest_collection_modifyitems(config, items):
    def longest_first(item) -> bool:
        return not (item.nodeid.startswith(_LONGEST_FIRST) and "test_harness" not in item.nodeid)

    items.sort(key=longest_first)  # stable: every other test keeps its order
