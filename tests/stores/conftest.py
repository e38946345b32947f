"""One behavioural suite for every store backend: SQLite, and DynamoDB on moto."""

from __future__ import annotations

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.stores.base import Store
from cv_analytics.stores.sqlite import SQLiteStore
from tests.aws_backends.moto_envs import make_dynamodb_store


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path, clock: ManualClock) -> Store:
    s: Store
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "store.db", clock=clock, pending_ttl_seconds=3600)
    elif request.param == "dynamodb":
        # moto: DynamoDB over HTTP on loopback, fresh tables (tests/aws_backends/moto_envs.py)
        gap = request.node.get_closest_marker("moto_gap")
        if gap is not None:
            pytest.skip(f"moto falls short of DynamoDB here: {gap.args[0]}")
        s = make_dynamodb_store(request.getfixturevalue("moto_reset"), clock, pending_ttl_seconds=3600)
    else:  # pragma: no cover - other backends register here
        raise NotImplementedError(request.param)
    yield s
    s.close()
