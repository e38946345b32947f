"""``cv-analytics serve`` as a user runs it: a subprocess on a free port, its workers, its signals."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow

_URL = re.compile(r"serving on (http://\S+/)")
_KEY = re.compile(r"API key for this session .*: (\S+)$")


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    api_key: str | None
    lines: list[str] = field(default_factory=list)

    def children(self) -> list[psutil.Process]:
        try:
            return [c for c in psutil.Process(self.process.pid).children() if c.status() != psutil.STATUS_ZOMBIE]
        except psutil.NoSuchProcess:
            return []

    def child_running(self, *command: str) -> psutil.Process | None:
        """The child running ``cv-analytics COMMAND`` (``python -m ...supervised PID NICE COMMAND``)."""
        for child in self.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.cmdline()[5:] == list(command):
                    return child
        return None


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CV_ANALYTICS_", "AWS_", "AI_JOB_", "PROMETHEUS_"))}
    env.update(CV_ANALYTICS_DATA_DIR=str(tmp_path / "data"), CV_ANALYTICS_RETRIEVAL="bm25", **extra)
    return env


@contextlib.contextmanager
def serve(tmp_path, *args: str, **env: str) -> Iterator[Served]:
    """``cv-analytics serve --port 0 ARGS`` until its URL is printed; stopped (SIGKILL) after the test if still up."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cv_analytics", "serve", "--port", "0", "--no-access-log", *args],
        env=_env(tmp_path, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if match := _URL.search(line):
                found["url"] = match.group(1)
            if match := _KEY.search(line.strip()):
                found["key"] = match.group(1)
                ready.set()
            if "url" in found and ("key" in found or env.get("CV_ANALYTICS_API_KEYS")):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), "serve printed no URL:\n" + "\n".join(lines)
        assert "url" in found, "serve exited:\n" + "\n".join(lines)
        yield Served(process, found["url"], found.get("key"), lines)
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            process.kill()
        process.wait(30)


def _has_jobs_commands() -> bool:
    import typer

    from cv_analytics.entrypoints.cli import app

    return "jobs" in typer.main.get_command(app).commands  # type: ignore[attr-defined]


def wait_for(condition, timeout: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_answers_runs_its_workers_and_sigterm_stops_everything(tmp_path, contract_dir):
    with serve(tmp_path) as served:
        assert httpx.get(served.url + "healthz").json() == {"status": "ok"}
        assert httpx.get(served.url).status_code == 200  # the chat page
        worker = wait_for(lambda: served.child_running("worker", "--wait", "2"), what="the analytics worker")
        assert worker.cmdline()[4] == "10"  # niced before its imports (CV_ANALYTICS_WORKER_NICE), once the interpreter is up
        wait_for(lambda: worker.nice() == 10, what="the analytics worker at nice 10")
        if _has_jobs_commands():  # the job workers run beside it once the jobs commands exist
            wait_for(lambda: served.child_running("jobs", "worker", "--wait", "2"), what="the job worker")
            wait_for(lambda: served.child_running("jobs", "results", "--wait", "2"), what="the job result processor")
        children = served.children()

        # events in through the session's generated API key, processed by the worker child
        events = [json.loads((contract_dir / name).read_text()) for name in sorted(os.listdir(contract_dir)) if name.endswith(".json")]
        reply = httpx.post(served.url + "v1/events", json=events, headers={"x-api-key": served.api_key})
        assert reply.status_code == 202, reply.text
        assert httpx.post(served.url + "v1/events", json=events).status_code == 401

        def processed() -> float:
            text = httpx.get(served.url + "metrics").text
            for family in text_string_to_metric_families(text):
                if family.name == "cv_analytics_messages_processed":
                    return sum(s.value for s in family.samples if s.labels.get("queue") == "analytics")
            return 0.0

        assert wait_for(lambda: processed() == 4, what="the worker's metrics on /metrics")

        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0
        output = "\n".join(served.lines)
    assert "stopping the workers" in output and "stopped" in output
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    for child in children:
        assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
    assert "report scheduler not started" in output  # no delivery configured: said, not crash-looped


def test_a_dead_worker_is_restarted_and_a_misconfigured_one_is_not(tmp_path):
    bad_schedule = {
        "CV_ANALYTICS_REPORT_CHANNEL": "file",
        "SENDER_EMAIL": "cv@example.com",
        "RECIPIENT_EMAIL": "me@example.com",
        "CV_ANALYTICS_REPORT_SCHEDULE": "every monday",  # the scheduler exits 2: restarting cannot help
    }
    with serve(tmp_path, **bad_schedule) as served:
        first = wait_for(lambda: served.child_running("worker", "--wait", "2"), what="the analytics worker")
        first.kill()
        second = wait_for(
            lambda: (c := served.child_running("worker", "--wait", "2")) is not None and c.pid != first.pid and c,
            what="a new analytics worker",
        )
        assert second.is_running()
        assert any("analytics worker: exited with status -9; restarting" in line for line in served.lines)
        wait_for(
            lambda: any("report scheduler: exited with status 2" in line and "not restarted" in line for line in served.lines),
            what="the scheduler given up",
        )
        assert served.child_running("scheduler") is None


def test_kill_9_of_serve_takes_its_children_with_it(tmp_path):
    with serve(tmp_path, CV_ANALYTICS_REPORT_CHANNEL="file", SENDER_EMAIL="cv@example.com", RECIPIENT_EMAIL="me@example.com") as served:
        wait_for(lambda: served.child_running("worker", "--wait", "2") and served.child_running("scheduler"), what="worker and scheduler")
        children = served.children()
        served.process.kill()
        served.process.wait(10)
        wait_for(lambda: not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children), what="the children to die")


def test_no_workers_serves_alone_with_the_configured_key(tmp_path):
    with serve(tmp_path, "--no-workers", CV_ANALYTICS_API_KEYS="my-key") as served:
        assert httpx.get(served.url + "readyz").status_code == 200
        time.sleep(1.0)
        assert served.children() == []
        assert served.api_key is None  # a configured key is never printed
        assert not any("my-key" in line for line in served.lines)
        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(30) == 0


def test_a_port_in_use_or_a_bad_host_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "cv_analytics", "serve", "--port", str(port), "--no-workers"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines() == [f"error: port {port} on 127.0.0.1 is in use: stop what holds it, or choose another with --port"]

    bad = subprocess.run(
        [sys.executable, "-m", "cv_analytics", "serve", "--host", "no-such-host.invalid", "--no-workers"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    [line] = bad.stderr.strip().splitlines()
    assert line.startswith("error: cannot listen on host 'no-such-host.invalid'")


def test_a_supervised_child_lowers_its_priority_once_and_never_back_up():
    script = (
        "import os; from cv_analytics.entrypoints.priority import lower_priority; "
        "lower_priority(5); lower_priority(3); lower_priority(5); print(os.getpriority(os.PRIO_PROCESS, 0))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "5", out.stderr
