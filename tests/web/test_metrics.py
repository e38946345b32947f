"""``/metrics``: parsed with prometheus-client's own parser after traffic and a worker's run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from cv_analytics.entrypoints.web import create_app

from .conftest import API_KEY


def scrape(client: TestClient) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """family name -> {(sample name, sorted labels): value}."""
    reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        family.name: {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        for family in text_string_to_metric_families(reply.text)
    }


def value(families, family: str, sample: str | None = None, **labels: str) -> float:
    wanted = tuple(sorted(labels.items()))
    return families[family][(sample or family, wanted)]


def run_worker(settings, metrics_dir) -> None:
    """``cv-analytics worker --drain`` in its own process, writing its metrics where serve would point it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CV_ANALYTICS_") and k != "AWS_SQS_URL"}
    env.update({"CV_ANALYTICS_DATA_DIR": str(settings.data_dir), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    subprocess.run(
        [sys.executable, "-m", "cv_analytics", "worker", "--drain"], env=env, check=True, capture_output=True, timeout=120
    )


@pytest.mark.slow
def test_metrics_after_traffic_and_a_worker_run(tmp_path, wiring, settings, contract_dir):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    events = [json.loads((contract_dir / name).read_text()) for name in sorted(os.listdir(contract_dir)) if name.endswith(".json")]
    with TestClient(create_app(wiring, worker_metrics_dir=metrics_dir)) as client:
        assert client.post("/v1/events", json=events, headers={"x-api-key": API_KEY}).status_code == 202
        assert client.post("/v1/events", json=events[0]).status_code == 401
        assert client.get("/no/such/page").status_code == 404
        wiring.queue().send("not an event", group_id="g", dedup_id="poison")  # a poison message

        before = scrape(client)
        assert value(before, "cv_analytics_queue_messages", queue="analytics", state="visible") == 5
        assert value(before, "cv_analytics_queue_oldest_message_age_seconds", queue="analytics") >= 0
        assert value(before, "cv_analytics_queue_up", queue="ai-job-request") == 1

        run_worker(settings, metrics_dir)
        families = scrape(client)

    assert value(families, "cv_analytics_messages_processed", "cv_analytics_messages_processed_total", queue="analytics") == 4
    assert (
        value(families, "cv_analytics_messages_failed", "cv_analytics_messages_failed_total", queue="analytics", outcome="dead_lettered")
        == 1
    )
    assert value(families, "cv_analytics_processing_latency_seconds", "cv_analytics_processing_latency_seconds_count", queue="analytics") == 4
    assert value(families, "cv_analytics_queue_messages", queue="analytics", state="visible") == 0
    assert value(families, "cv_analytics_queue_messages", queue="analytics-dlq", state="visible") == 1
    assert value(families, "cv_analytics_dlq_messages", queue="analytics") == 1
    assert value(families, "cv_analytics_dlq_messages", queue="ai-job-request") == 0
    for queue in ("analytics", "analytics-dlq", "ai-job-request", "ai-job-request-dlq", "ai-job-response", "ai-job-response-dlq"):
        assert value(families, "cv_analytics_queue_up", queue=queue) == 1

    http = "cv_analytics_http_request_duration_seconds"
    count = f"{http}_count"
    assert value(families, http, count, method="POST", route="/v1/events", status="202") == 1
    assert value(families, http, count, method="POST", route="/v1/events", status="401") == 1
    assert value(families, http, count, method="GET", route="unmatched", status="404") == 1
    assert value(families, http, count, method="GET", route="/metrics", status="200") == 1
    assert value(families, http, f"{http}_bucket", method="GET", route="/metrics", status="200", le="+Inf") == 1
    # the client's counters are there from the start (no search yet: nothing logged)
    for name in ("events_sent", "events_spooled", "events_dropped"):
        assert value(families, f"cv_analytics_{name}", f"cv_analytics_{name}_total") == 0


def test_a_queue_that_fails_costs_its_own_figures_not_the_scrape(tmp_path, contract_dir):
    from .conftest import web_settings
    from cv_analytics.wiring import Wiring

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "queues.db").write_bytes(b"this is not a database" * 100)
    with Wiring(web_settings(data_dir)) as wiring, TestClient(create_app(wiring)) as client:
        families = scrape(client)
    for queue in ("analytics", "ai-job-request", "ai-job-response"):  # all on the damaged file
        assert value(families, "cv_analytics_queue_up", queue=queue) == 0
    assert families["cv_analytics_queue_messages"] == {}
    assert value(families, "cv_analytics_events_sent", "cv_analytics_events_sent_total") == 0  # the others answered
