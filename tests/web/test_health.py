"""``/healthz`` and ``/readyz``: the process answers; the queue and the store answer, each check said."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cv_analytics.entrypoints.web import create_app
from cv_analytics.wiring import Wiring

from .conftest import web_settings


def test_healthz_and_readyz_on_working_backends(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    reply = client.get("/readyz")
    assert reply.status_code == 200
    assert reply.json() == {"ready": True, "checks": [{"name": "queue", "ok": True}, {"name": "store", "ok": True}]}


def test_readyz_is_503_naming_the_store_when_it_is_unreachable(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    settings = web_settings(tmp_path / "data", CV_ANALYTICS_STORE_URL=f"sqlite:///{blocker}/store.db")
    with Wiring(settings) as wiring, TestClient(create_app(wiring)) as client:
        assert client.get("/healthz").status_code == 200  # the process is up all the same
        reply = client.get("/readyz")
    assert reply.status_code == 503
    body = reply.json()
    assert body["ready"] is False
    queue, store = body["checks"]
    assert queue == {"name": "queue", "ok": True}
    assert store["name"] == "store" and store["ok"] is False and store["error"]


def test_readyz_is_503_naming_the_queue_when_its_database_is_damaged(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "queues.db").write_bytes(b"garbage" * 1000)
    with Wiring(web_settings(data_dir)) as wiring, TestClient(create_app(wiring)) as client:
        reply = client.get("/readyz")
    assert reply.status_code == 503
    queue, store = reply.json()["checks"]
    assert queue["ok"] is False and "damaged" in queue["error"]
    assert store["ok"] is True
