"""The dashboard's fixtures: a demo run's data with hostile recruiter questions, the app served on loopback, Chromium.

The data goes in as a user's would: ``cv-analytics demo`` (fixed seed), then hostile
events through ``cv-analytics send`` and ``worker --drain``; the figures the pages
must show come from ``cv-analytics report --format json`` over the same directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pathlib
import tempfile
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cv_analytics.entrypoints.web import create_app
from cv_analytics.reporting.weeks import IsoWeek, last_complete_week
from cv_analytics.wiring import Settings, Wiring

#: The README's screenshots are refreshed only when asked (CV_ANALYTICS_UPDATE_SCREENSHOT=1): a test run leaves the tree clean.
SCREENSHOTS = (
    pathlib.Path(__file__).resolve().parents[2] / "docs" / "images"
    if os.environ.get("CV_ANALYTICS_UPDATE_SCREENSHOT") == "1"
    else pathlib.Path(tempfile.mkdtemp(prefix="cv-analytics-dashboard-screenshots-"))
)
API_KEY = "dashboard-test-key"
PASSWORD = "correct horse battery staple"
SECRET = "dashboard-test-session-secret"
#: What a recruiter may type; every page must show it as text, never run it.
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE_SOURCE = "<script>alert(2)</script>"
OWNER = "owner@example.com"
_AWS_VARIABLES = ("AWS_SQS_URL", "AI_JOB_REQUEST_QUEUE_URL", "AI_JOB_RESPONSE_QUEUE_URL", "AWS_ENDPOINT_URL")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CV_ANALYTICS_") and k not in _AWS_VARIABLES}


def run_cli(data_dir: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cv_analytics", "--data-dir", str(data_dir), *args],
        env={**clean_env(), **(env or {})}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"cv-analytics {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def report_json(data_dir: pathlib.Path, week: str) -> dict[str, Any]:
    return json.loads(run_cli(data_dir, "report", "--week", week, "--format", "json").stdout)


def hostile_bodies(week: str) -> list[dict[str, Any]]:
    """Questions with markup in them, answered badly (so they are the gaps' latest examples), and a bad event."""
    sunday_late = int((IsoWeek.parse(week).end - dt.timedelta(minutes=2)).timestamp() * 1000)
    bodies: list[dict[str, Any]] = []
    for n, (text, sources) in enumerate(
        [(f"{SCRIPT} Do you know Rust?", []), (f"{IMG} Have you used Terraform?", []), ("Tell me more", [HOSTILE_SOURCE])]
    ):
        cid, session, ts = str(uuid.uuid4()), f"hostile-{n}", sunday_late + n * 1000
        bodies.append({"eventType": "query", "correlationId": cid, "timestamp": ts, "sessionId": session, "query": text})
        bodies.append(
            {
                "eventType": "response", "correlationId": cid, "timestamp": ts + 300, "sessionId": session,
                "response": f"No. {SCRIPT}", "performance": {"totalTime": 300, "llmTime": 250, "retrievalTime": 50},
                "metadata": {"matchQuality": 0.1, "sourcesUsed": sources},
            }
        )  # fmt: skip
    # not an event type: dead-lettered with its reason, which the health page shows
    bodies.append({"eventType": SCRIPT, "correlationId": str(uuid.uuid4()), "timestamp": sunday_late, "query": IMG})
    return bodies


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A data directory after ``cv-analytics demo --seed 7``, plus the hostile questions through the pipeline,
    and the last complete week's report sent (by SMTP, to aiosmtpd on loopback)."""
    from tests.reporting.smtp_server import Sink, start

    data = tmp_path_factory.mktemp("dashboard-demo")
    week = last_complete_week(time.time())
    run_cli(data, "demo", "--interactions", "600", "--seed", "7", "--data-dir", str(data))
    hostile = data / "hostile.jsonl"
    hostile.write_text("".join(json.dumps(b) + "\n" for b in hostile_bodies(week)))
    run_cli(data, "send", str(hostile))
    run_cli(data, "worker", "--drain")
    sink, port = Sink(), _free_port()
    smtp = start(sink, port)
    try:
        mail = {
            "CV_ANALYTICS_SMTP_HOST": "127.0.0.1", "CV_ANALYTICS_SMTP_PORT": str(port),
            "CV_ANALYTICS_SMTP_SECURITY": "none", "RECIPIENT_EMAIL": OWNER, "SENDER_EMAIL": "cv-analytics@example.com",
        }  # fmt: skip
        run_cli(data, "report", "--week", week, "--send", env=mail)
    finally:
        smtp.stop()
    assert len(sink.received) == 1
    return data


@pytest.fixture(scope="session")
def demo_weeks() -> tuple[str, str]:
    """The demo's two weeks: the one before last, and the last complete one."""
    last = last_complete_week(time.time())
    return str(IsoWeek.parse(last).previous()), last


def settings_for(data_dir: pathlib.Path, **overrides: str) -> Settings:
    env = {"CV_ANALYTICS_API_KEYS": API_KEY, "CV_ANALYTICS_SESSION_SECRET": SECRET, **overrides}
    return Settings.from_env(env, data_dir=data_dir)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    wiring = Wiring(settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(wiring), host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="dashboard-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        wiring.close()


@pytest.fixture(scope="session")
def browser(shared_chromium: Any) -> Any:
    """Debian's Chromium driven by Playwright (no browser download), shared with the web suite (tests/conftest.py)."""
    return shared_chromium


@pytest.fixture
def page_of(browser: Any) -> Iterator[Callable[..., Any]]:
    """New pages in a fresh browser context, each failing the test should a script dialog ever open."""
    contexts: list[Any] = []
    dialogs: list[str] = []

    def open_page(**options: Any) -> Any:
        context = browser.new_context(viewport={"width": 1360, "height": 900}, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert dialogs == [], f"a script ran in the page: dialogs {dialogs}"
