"""Scenario 5: the mail service is down on report day; the report is reported failing, retried, and sent once.

The real scheduler path: ``cv-analytics scheduler`` (what ``serve`` runs as
a child), catching up on start with last week's report, retrying a failed run
every ``--retry-minutes``. The mail service is an aiosmtpd server, or SES on
moto in server mode (its own process), on a loopback port where nothing
listens at first. While it is down the failure must show: the ``error:`` line,
the last-runs record and the ``report-missing`` alarm in ``status``. Once it
listens, the retry sends the report, and it goes out exactly once per week and
recipient however often the scheduler runs again afterwards (restarts that
catch up: two on SMTP, one on SES) and when the owner reruns ``report --send``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import pathlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from cv_analytics.events import parse_event
from cv_analytics.ops.alarm_state import SQLiteAlarmStates
from cv_analytics.reporting.schedule import parse_schedule
from cv_analytics.reporting.weeks import IsoWeek, last_complete_week
from cv_analytics.wiring import Settings, Wiring
from cv_analytics.wiring.alarms import alarm_state_path
from tests.reporting.smtp_server import Sink, start

from .harness import (
    CliProcess,
    Survived,
    Tally,
    assert_exactly_once,
    child_env,
    contract_traffic,
    free_loopback_port,
    record_survived,
    tally_sends,
    wait_until,
)

pytestmark = pytest.mark.slow

SENDER = "reports@cv.example.dev"
RECIPIENTS = ("owner@cv.example.dev", "cofounder@cv.example.dev")
WEEK_HEADER = "X-CV-Analytics-Week"
#: the scheduler's shortest retry interval (its --retry-minutes floor), 6 s
RETRY_MINUTES = "0.1"
#: Report day is Monday at midnight here (the default is 07:00), and the report-missing alarm fires as soon as
#: last week's report is late (by default at noon): whatever day the suite runs, the scheduler's catch-up is
#: last week's report and the alarm is about that same report.
SCHEDULE = "cron(0 0 ? * MON *)"
ALARMS_FILE = "alarms:\n  report-missing: {threshold: 0}\n"
PAIRS = 200


def _report_week() -> str:
    """The week the scheduler catches up on now: the one before its last fire time."""
    last_fire = parse_schedule(SCHEDULE).previous_before(dt.datetime.now(dt.UTC))
    assert last_fire is not None
    return last_complete_week(last_fire)


def _seed(data_dir, week: str) -> None:
    """A week of interactions for the report to be about, and the alarms file."""
    (data_dir / "alarms.yaml").write_text(ALARMS_FILE, encoding="utf-8")
    start_ms = int(IsoWeek.parse(week).start.timestamp() * 1000) + 86_400_000
    traffic = contract_traffic(PAIRS, seed=5, start_ms=start_ms)
    store = Wiring(Settings.from_env({}, data_dir=data_dir)).store
    store.record_events([parse_event(json.dumps(event)) for event in traffic.events])
    store.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cv_analytics", *args], env=env, capture_output=True, text=True, timeout=120)


def _status(env: dict[str, str]) -> dict:
    shown = _cli(env, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def _parsed(raw_messages: list[bytes] | list[str]) -> list[email.message.EmailMessage]:
    parse = email.message_from_bytes if raw_messages and isinstance(raw_messages[0], bytes) else email.message_from_string
    return [parse(raw, policy=email.policy.default) for raw in raw_messages]  # type: ignore[arg-type]


def _reports_in(raw_messages: list[bytes] | list[str]) -> list[tuple[str, str]]:
    """(week, recipient) of each weekly report among the messages a mail service accepted (alarm notices aside)."""
    return [(str(m[WEEK_HEADER]), str(m["To"])) for m in _parsed(raw_messages) if m[WEEK_HEADER]]


@dataclass
class Outcome:
    failures_while_down: int
    status_down: dict
    first_run: CliProcess
    reruns: list[CliProcess]
    manual: subprocess.CompletedProcess[str]
    sent: list[tuple[str, str]]
    down_seconds: float


def _last_run_and_alarm(env: dict[str, str]) -> tuple[bool | None, str | None]:
    """What `status` shows of the scheduler: its last run's outcome and the report-missing alarm's state
    (read from the shared alarm-and-runs file, as `status` reads it, without a process per poll)."""
    path = alarm_state_path(Settings.from_env(env))
    if not path.exists():
        return None, None
    states = SQLiteAlarmStates(path)
    try:
        run = next((r for r in states.runs() if r.component == "scheduler"), None)
        alarm = next((a for a in states.rows() if a.alarm == "report-missing"), None)
    finally:
        states.close()
    return (None if run is None else run.ok), (None if alarm is None else alarm.state.value)


def _outage_then_recovery(
    env: dict[str, str],
    logs: pathlib.Path,
    *,
    bring_up: Callable[[], None],
    reports: Callable[[], list[tuple[str, str]]],
    week: str,
    restarts: int,
) -> Outcome:
    def failures(process: CliProcess) -> int:
        return process.stderr().count("failed, will retry")

    with CliProcess(env, "scheduler", "--cron", SCHEDULE, "--retry-minutes", RETRY_MINUTES, log_dir=logs, name="scheduler-down") as scheduler:
        down_at = time.monotonic()
        # the catch-up run fails while nothing listens, and shows in `status`; then a retry fails too
        wait_until(lambda: _last_run_and_alarm(env) == (False, "ALARM"), 60, what="the failure recorded and alarmed")
        status_down = _status(env)
        wait_until(lambda: failures(scheduler) >= 2, 60, what="a failed retry")
        bring_up()
        down_seconds = time.monotonic() - down_at
        wait_until(lambda: len(reports()) >= len(RECIPIENTS), 60, what="the report sent after recovery")
        wait_until(lambda: _last_run_and_alarm(env) == (True, "OK"), 60, what="the run and the alarm back to ok")
        failures_while_down = failures(scheduler)
        scheduler.terminate()
    reruns = []
    for attempt in range(restarts):  # the scheduler's catch-up after a restart: nothing goes a second time
        with CliProcess(env, "scheduler", "--cron", SCHEDULE, "--retry-minutes", RETRY_MINUTES, log_dir=logs, name=f"scheduler-again-{attempt}") as again:
            wait_until(lambda: again.stdout().count("already sent") >= len(RECIPIENTS), 60, what="the catch-up after a restart")
            again.terminate()
            reruns.append(again)
    manual = _cli(env, "report", "--send", "--week", week)  # the owner reruns the send, as the error line says
    return Outcome(failures_while_down, status_down, scheduler, reruns, manual, reports(), down_seconds)


def _record(outcome: Outcome, week: str, backend: str, service: str) -> Tally:
    """The row of the README table, written as soon as the flow ends (before anything is asserted)."""
    tally = tally_sends(outcome.sent, {(week, recipient) for recipient in RECIPIENTS})
    record_survived(
        Survived(
            "5. email down on report day",
            f"{service} not listening for {outcome.down_seconds:.0f} s on report day "
            f"({outcome.failures_while_down} failed runs, retried every 6 s), then up; after recovery the scheduler "
            f"restarted {len(outcome.reruns)}× (catching up) and `report --send` rerun",
            f"the {week} report ({PAIRS} interactions) to {len(RECIPIENTS)} recipients",
            lost=tally.lost,
            duplicated=tally.duplicated,
            notes=f"{len(outcome.sent)} report message(s) received for {len(RECIPIENTS)} (week, recipient) pairs",
            backend=backend,
        )
    )
    return tally


def _check(outcome: Outcome, tally: Tally, week: str, service: str) -> None:
    runs = {r["component"]: r for r in outcome.status_down["lastRuns"]}
    assert not runs["scheduler"]["ok"] and f"report for {week} failed, retrying" in runs["scheduler"]["detail"], runs
    alarms = {a["alarm"]: a for a in outcome.status_down["alarms"]}
    assert alarms["report-missing"]["state"] == "ALARM", alarms
    errors = [line for line in outcome.first_run.stderr().splitlines() if line.startswith("error: ")]
    assert errors and all(line.startswith(f"error: {week}: the {week} report was not delivered") for line in errors), errors
    assert outcome.failures_while_down >= 2 and len(errors) == outcome.failures_while_down
    assert f"sent the {week} report to {RECIPIENTS[0]}" in outcome.first_run.stdout()
    for rerun in outcome.reruns:
        assert "sent the" not in rerun.stdout() and rerun.stdout().count("already sent") == len(RECIPIENTS), rerun.stdout()
    assert outcome.manual.returncode == 0 and outcome.manual.stderr.count("already sent") == len(RECIPIENTS), outcome.manual.stderr
    assert outcome.first_run.process.returncode == 0
    assert_exactly_once(tally, f"the {week} report over {service}")


def _smtp_outage(root: pathlib.Path, week: str) -> tuple[Outcome, Tally]:
    """The SMTP server (aiosmtpd) not listening, then listening."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    _seed(data_dir, week)
    port = free_loopback_port()
    env = child_env(
        data_dir,
        CV_ANALYTICS_SMTP_HOST="127.0.0.1",
        CV_ANALYTICS_SMTP_PORT=str(port),
        CV_ANALYTICS_SMTP_SECURITY="none",
        CV_ANALYTICS_SMTP_TIMEOUT="5",
        CV_ANALYTICS_ALARM_INTERVAL="1",
        SENDER_EMAIL=SENDER,
        RECIPIENT_EMAIL=",".join(RECIPIENTS),
    )
    sink = Sink()
    servers = []

    def received() -> list[bytes]:
        with sink.lock:
            return [r.data for r in sink.received]

    try:
        outcome = _outage_then_recovery(
            env,
            root / "logs",
            bring_up=lambda: servers.append(start(sink, port)),
            reports=lambda: _reports_in(received()),
            week=week,
            restarts=2,
        )
    finally:
        for server in servers:
            server.stop()
    return outcome, _record(outcome, week, "embedded", "the SMTP server")


def _ses_outage(root: pathlib.Path, week: str) -> tuple[Outcome, Tally]:
    """SES on moto (server mode, its own process) not listening, then listening."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    _seed(data_dir, week)
    port = free_loopback_port()
    endpoint = f"http://127.0.0.1:{port}"
    empty = root / "aws-config"
    empty.write_text("")
    env = child_env(
        data_dir,
        CV_ANALYTICS_REPORT_CHANNEL="ses",
        CV_ANALYTICS_ALARM_INTERVAL="1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
        SENDER_EMAIL=SENDER,
        RECIPIENT_EMAIL=",".join(RECIPIENTS),
    )
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    moto: list[subprocess.Popen[bytes]] = []

    def bring_up() -> None:
        moto.append(
            subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_until(_answers(endpoint), 30, what="moto listening")
        _verify_sender(endpoint)

    def raw_emails() -> list[dict]:
        """Every raw email moto's SES accepted, from moto's model dump."""
        if not moto:
            return []
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as response:
            return list(json.loads(response.read()).get("ses", {}).get("RawMessage", []))

    try:
        outcome = _outage_then_recovery(
            env,
            root / "logs",
            bring_up=bring_up,
            reports=lambda: _reports_in([m["raw_data"] for m in raw_emails()]),
            week=week,
            restarts=1,  # SES's client is the slowest to start: one restart and the manual rerun
        )
    finally:
        for process in moto:
            process.terminate()
            process.wait(30)
    return outcome, _record(outcome, week, "embedded, SES on moto", "SES (moto)")


def test_mail_down_on_report_day_the_report_is_retried_and_sent_once_over_smtp_and_ses(tmp_path):
    """Both services side by side (each on its own data directory): the waits are the scheduler's retry interval."""
    week = _report_week()
    with ThreadPoolExecutor(2) as pool:
        flows = {
            "the SMTP server": pool.submit(_smtp_outage, tmp_path / "smtp", week),
            "SES (moto)": pool.submit(_ses_outage, tmp_path / "ses", week),
        }
        results = {service: flow.result() for service, flow in flows.items()}
    for service, (outcome, tally) in results.items():
        _check(outcome, tally, week, service)


def _answers(endpoint: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5):
                return True
        except OSError:
            return False

    return check


def _verify_sender(endpoint: str) -> None:
    """The sender's identity, verified as it is on the real account (SES refuses an unverified sender)."""
    import boto3

    client = boto3.client(
        "ses", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    client.verify_email_identity(EmailAddress=SENDER)
