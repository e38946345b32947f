"""Fixtures shared by every test module."""

from __future__ import annotations

import pathlib

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
