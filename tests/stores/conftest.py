"""One behavioural suite for every store backend (the DynamoDB one joins later)."""

from __future__ import annotations

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.stores.base import Store
from cv_analytics.stores.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path, clock: ManualClock) -> Store:
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "store.db", clock=clock, pending_ttl_seconds=3600)
    else:  # pragma: no cover - other backends register here
        raise NotImplementedError(request.param)
    yield s
    s.close()
