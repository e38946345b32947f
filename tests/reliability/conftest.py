from __future__ import annotations

import pathlib

import pytest

from .harness import child_env


@pytest.fixture
def data_dir(tmp_path) -> pathlib.Path:
    """A fresh data directory for everything embedded (queues, store, jobs, spool)."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def env(data_dir) -> dict[str, str]:
    """The environment of the processes a scenario starts (embedded, under ``data_dir``)."""
    return child_env(data_dir)


@pytest.fixture
def logs(tmp_path) -> pathlib.Path:
    """Where :class:`~.harness.CliProcess` keeps each process's output."""
    return tmp_path / "logs"
