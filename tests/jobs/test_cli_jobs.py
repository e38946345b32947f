"""``cv-analytics jobs ...`` as a user runs it, in subprocesses, on the embedded backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CV_ANALYTICS_", "AWS_", "AI_JOB_"))}
    env["CV_ANALYTICS_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.fixture
def cli(cli_env):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cv_analytics", "jobs", *args], env=cli_env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"jobs {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    return run


def test_submit_worker_results_status_list(cli):
    job_id = cli("submit", "analytics.report", "--input", '{"week": "2026-W47"}').stdout.strip()
    assert " queued" in cli("status", job_id).stdout
    worker = cli("worker", "--drain", "--wait", "0")
    assert "1 succeeded" in worker.stderr
    assert "applied 1 result" in cli("results", "--drain", "--wait", "0").stderr
    job = json.loads(cli("status", job_id, "--json").stdout)
    assert job["status"] == "succeeded" and job["result"]["week"] == "2026-W47" and "<html" in job["result"]["html"].lower()
    listed = cli("list", "--status", "succeeded").stdout.splitlines()
    assert len(listed) == 1 and listed[0].startswith(job_id)
    assert cli("list", "--status", "queued").stdout == ""


def test_submit_wait_prints_the_finished_job(cli, cli_env):
    background = [
        subprocess.Popen([sys.executable, "-m", "cv_analytics", "jobs", command, "--wait", "1"], env=cli_env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for command in ("worker", "results")
    ]  # fmt: skip
    try:
        done = cli("submit", "analytics.report", "--input", '{"week": "2026-W01"}', "--wait", "--timeout", "60")
        job = json.loads(done.stdout)
        assert job["status"] == "succeeded" and job["result"]["week"] == "2026-W01"
    finally:
        for process in background:
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0, process.stderr.read()


def test_idempotency_key_on_the_command_line(cli):
    first = cli("submit", "analytics.report", "--input", '{"week": "2026-W47"}', "--idempotency-key", "k1")
    again = cli("submit", "analytics.report", "--input", '{"week": "2026-W47"}', "--idempotency-key", "k1")
    assert first.stdout == again.stdout and "already submitted" in again.stderr
    other = cli("submit", "analytics.report", "--input", '{"week": "2026-W48"}', "--idempotency-key", "k1", check=False)
    assert other.returncode == 1 and other.stderr.startswith("error: Idempotency-Key 'k1'")


def test_cancel_a_queued_job_then_a_finished_one(cli):
    job_id = cli("submit", "analytics.report", "--input", '{"week": "2026-W47"}').stdout.strip()
    assert "is cancelled" in cli("cancel", job_id).stderr
    assert " cancelled" in cli("status", job_id).stdout
    assert "1 cancelled" in cli("worker", "--drain", "--wait", "0").stderr
    refused = cli("cancel", "no-such-job", check=False)
    assert refused.returncode == 1 and refused.stderr.strip() == "error: no job no-such-job (unknown, or expired after 14 days)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("submit", "no.such.type"), "unknown job type 'no.such.type'"),
        (("submit", "analytics.report", "--input", '{"week": "2026-W99"}'), "input.week"),
        (("submit", "analytics.report", "--input", "{week"), "--input is not JSON"),
        (("submit", "analytics.report", "--input", "[1]"), "--input must be a JSON object"),
        (("list", "--status", "sleeping"), "--status must be one of"),
    ],
)
def test_bad_arguments_are_one_error_line_and_exit_2(cli, args, message):
    cli("submit", "analytics.report", "--input", '{"week": "2026-W47"}')  # the job store exists
    result = cli(*args, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_reading_before_anything_was_submitted_says_so_and_creates_nothing(cli, cli_env):
    os.makedirs(cli_env["CV_ANALYTICS_DATA_DIR"])
    result = cli("status", "some-id", check=False)
    assert result.returncode == 2 and "nothing has been submitted" in result.stderr
    assert not os.path.exists(os.path.join(cli_env["CV_ANALYTICS_DATA_DIR"], "jobs.db"))
