"""`cv-analytics report` and `cv-analytics scheduler` as the owner types them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from typer.testing import CliRunner

from cv_analytics.entrypoints.cli import app
from cv_analytics.clock import ManualClock
from cv_analytics.wiring import Settings, open_store
from cv_analytics.reporting.weeks import last_complete_week

from . import dataset, smtp_server
from .conftest import free_port
from .dataset import WEEK


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """An embedded data directory holding the fixed data set, and the test catalog as the owner's file."""
    catalog = tmp_path / "skills.yaml"
    catalog.write_text(yaml.safe_dump(dataset.CATALOG_DATA))
    for name in ("SENDER_EMAIL", "RECIPIENT_EMAIL", "CV_ANALYTICS_REPORT_CHANNEL", "CV_ANALYTICS_REPORT_SCHEDULE"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("CV_ANALYTICS_SMTP_")]:
        monkeypatch.delenv(name)
    values = {"CV_ANALYTICS_DATA_DIR": str(tmp_path / "data"), "CV_ANALYTICS_SKILLS_FILE": str(catalog)}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    store = open_store(Settings.from_env(), clock=ManualClock())
    dataset.load(store, store.clock)  # type: ignore[arg-type]
    store.close()
    return values


def run(*args: str, **extra_env: str):
    return CliRunner().invoke(app, list(args), env=extra_env or None, catch_exceptions=False)


def test_report_prints_json_for_a_week(env):
    result = run("report", "--week", WEEK, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["week"], data["volume"]["queries"], data["topSkills"][0]["skill"]) == (WEEK, 11, "Kubernetes")


def test_report_defaults_to_the_last_complete_week_as_text(env):
    result = run("report")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"CV analytics {last_complete_week(time.time())} (")


def test_report_writes_every_format_and_prints_the_paths(env, tmp_path):
    result = run("report", "--week", WEEK, "--out", str(tmp_path / "out"), "-f", "all")
    assert result.exit_code == 0, result.output
    paths = result.stdout.split()
    assert [p.rsplit(".", 1)[1] for p in paths] == ["html", "txt", "json", "eml"]
    assert all((tmp_path / "out" / p.rsplit("/", 1)[1]).is_file() for p in paths)


@pytest.mark.slow
def test_report_send_goes_once_and_again_with_force(env):
    sink = smtp_server.Sink()
    port = free_port()
    mail = {
        "SENDER_EMAIL": "reports@cv.example.dev",
        "RECIPIENT_EMAIL": "owner@cv.example.dev",
        "CV_ANALYTICS_SMTP_HOST": "127.0.0.1",
        "CV_ANALYTICS_SMTP_PORT": str(port),
        "CV_ANALYTICS_SMTP_SECURITY": "none",
    }
    down = run("report", "--week", WEEK, "--send", **mail)
    assert down.exit_code == 1
    assert f"could not reach smtp://127.0.0.1:{port}" in down.stderr and "rerun to retry" in down.stderr
    controller = smtp_server.start(sink, port)
    try:
        first = run("report", "--week", WEEK, "--send", **mail)
        assert first.exit_code == 0, first.output
        assert f"sent the {WEEK} report to owner@cv.example.dev via smtp" in first.stderr
        again = run("report", "--week", WEEK, "--send", **mail)
        assert again.exit_code == 0
        assert "already sent to owner@cv.example.dev" in again.stderr and "use --force" in again.stderr
        forced = run("report", "--week", WEEK, "--send", "--force", **mail)
        assert forced.exit_code == 0 and "sent the" in forced.stderr
    finally:
        controller.stop()
    assert len(sink.received) == 2
    assert sink.received[0].message["Subject"].startswith(f"CV analytics {WEEK}")


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["report", "--week", "2026-47"], {}, "a week must look like 2026-W47"),
        (["report", "--send"], {}, "set CV_ANALYTICS_SMTP_HOST"),
        (["report", "--force"], {}, "--force only makes sense with --send"),
        (["report", "-f", "html", "-f", "json"], {}, "several formats need --out DIR"),
        (["report", "-f", "pdf"], {}, "unknown report format 'pdf'"),
        (["report", "--send"], {"CV_ANALYTICS_REPORT_CHANNEL": "file"}, "set SENDER_EMAIL"),
        (["scheduler", "--cron", "cron(0 7 * * MON *)"], {}, "One must be a question mark (?)"),
        (["scheduler"], {"CV_ANALYTICS_REPORT_SCHEDULE": "cron(0 7 ? * MOM *)"}, "Invalid day-of-week value 'MOM'"),
        (["scheduler"], {}, "set CV_ANALYTICS_SMTP_HOST"),
    ],
)
def test_misconfiguration_exits_2_with_a_message_saying_what_to_set(env, args, extra, message):
    result = run(*args, **extra)
    assert result.exit_code == 2
    assert message in result.stderr


def test_scheduler_lists_its_next_fire_times(env):
    result = run("scheduler", "--cron", "cron(0 7 ? * MON *)", "--next", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        when = dt.datetime.fromisoformat(line.split()[0])
        assert (when.weekday(), when.hour, when.minute) == (0, 7, 0)
        assert line.endswith(f"report for {last_complete_week(when)}")


class _SlowSink(smtp_server.Sink):
    """Takes a second over each message, so that a signal can land while the report is being sent."""

    def __init__(self) -> None:
        super().__init__()
        self.receiving = threading.Event()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.receiving.set()
        await asyncio.sleep(1.0)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.slow
def test_sigterm_while_the_scheduler_sends_finishes_the_send_and_a_restart_does_not_send_again(env):
    # It used to raise KeyboardInterrupt from the handler: smtplib's QUIT then read the server's
    # late "250 accepted", the delivery counted as failed though the owner had it, and the restart
    # (catching up) sent it again.
    sink, port = _SlowSink(), free_port()
    child_env = {
        **os.environ,
        "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[2] / "src"),
        "SENDER_EMAIL": "reports@cv.example.dev",
        "RECIPIENT_EMAIL": "owner@cv.example.dev",
        "CV_ANALYTICS_SMTP_HOST": "127.0.0.1",
        "CV_ANALYTICS_SMTP_PORT": str(port),
        "CV_ANALYTICS_SMTP_SECURITY": "none",
    }
    command = [sys.executable, "-m", "cv_analytics", "scheduler", "--cron", "cron(0 7 ? * MON *)"]
    controller = smtp_server.start(sink, port)
    try:
        first = subprocess.Popen(command, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert sink.receiving.wait(60)  # the catch-up send of the week just ended is under way
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert "SIGTERM: finishing the report in hand" in err and "error:" not in err
        assert "sent the" in out and len(sink.received) == 1
        second = subprocess.Popen(command, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = second.stdout.readline()  # the catch-up's result
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=60)
        assert "already sent to owner@cv.example.dev" in line and second.returncode == 0
    finally:
        controller.stop()
    assert len(sink.received) == 1
