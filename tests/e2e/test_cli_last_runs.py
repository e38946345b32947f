"""``status`` shows the worker's and the scheduler's last run and its outcome (a failed Monday run is visible)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ..reporting import smtp_server
from ..reporting.conftest import free_port


def _last_runs(cli) -> dict[str, dict]:
    return {run["component"]: run for run in json.loads(cli("status", "--json").stdout)["lastRuns"]}


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.3)


@pytest.mark.slow
def test_the_scheduler_run_failing_then_succeeding_shows_in_status(cli, cli_env, tmp_path):
    port = free_port()  # no mail server there yet
    cli_env.update(
        CV_ANALYTICS_SMTP_HOST="127.0.0.1", CV_ANALYTICS_SMTP_PORT=str(port), CV_ANALYTICS_SMTP_SECURITY="none",
        CV_ANALYTICS_SMTP_TIMEOUT="2", SENDER_EMAIL="bot@example.com", RECIPIENT_EMAIL="owner@example.com",
    )  # fmt: skip
    cli("worker", "--drain")  # creates the store; the worker records its run
    assert _last_runs(cli)["worker"]["ok"] is True

    def scheduler() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "cv_analytics", "scheduler"], env=cli_env, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    first = scheduler()  # catches up on last week's report at once: the mail server is down
    try:
        _wait_for(lambda: "scheduler" in _last_runs(cli))
    finally:
        first.terminate()
        first.wait(30)
    failed = _last_runs(cli)["scheduler"]
    assert failed["ok"] is False and "failed, retrying" in failed["detail"]
    assert "last scheduler run" in cli("status").stdout and "FAILED" in cli("status").stdout

    sink = smtp_server.Sink()
    controller = smtp_server.start(sink, port)
    second = scheduler()
    try:
        _wait_for(lambda: _last_runs(cli)["scheduler"]["ok"])
    finally:
        second.terminate()
        second.wait(30)
        controller.stop()
    assert len(sink.received) == 1
