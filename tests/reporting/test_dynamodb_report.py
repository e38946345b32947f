"""The report on the DynamoDB store (moto over HTTP): the generic aggregations give the SQLite store's figures."""

from __future__ import annotations

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.reporting import build_report
from cv_analytics.reporting.delivery import DeliveryStatus, FileDeliverer, send_weekly_report
from cv_analytics.wiring import insights_for

from . import dataset
from .dataset import CATALOG, WEEK

pytest.importorskip("boto3")


@pytest.mark.slow
def test_dynamodb_store_reports_the_same_week_as_sqlite_and_sends_once(moto_reset, loaded_store, tmp_path):
    from tests.aws_backends.moto_envs import make_dynamodb_store

    clock = ManualClock()
    dynamo = make_dynamodb_store(moto_reset, clock, pending_ttl_seconds=7 * 24 * 3600)
    try:
        dataset.load(dynamo, clock)
        on_dynamo = build_report(insights_for(dynamo), WEEK, catalog=CATALOG)
        on_sqlite = build_report(insights_for(loaded_store), WEEK, catalog=CATALOG)
        assert on_dynamo.model_dump(exclude={"generated_at"}) == on_sqlite.model_dump(exclude={"generated_at"})
        outbox = FileDeliverer(tmp_path / "outbox", counts_as_sent=True)  # a drop directory: recorded as sent
        send = lambda: send_weekly_report(  # noqa: E731
            dynamo, WEEK, outbox, insights=insights_for(dynamo), catalog=CATALOG,
            sender="r@cv.example.dev", recipients=["o@cv.example.dev"],
        )
        assert [r.status for r in send()] == [DeliveryStatus.SENT]
        assert [r.status for r in send()] == [DeliveryStatus.ALREADY_SENT]
    finally:
        dynamo.close()
