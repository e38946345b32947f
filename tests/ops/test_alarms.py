"""Embedded alarms: each raised and cleared on an injected clock, each change notified once, by real e-mail."""

from __future__ import annotations

import json
import time

import pytest

from cv_analytics.client.drops import record_drops
from cv_analytics.clock import ManualClock
from cv_analytics.events import QueryEvent, to_json
from cv_analytics.exceptions import ConfigurationError
from cv_analytics.ops.alarm_state import SQLiteAlarmStates
from cv_analytics.ops.alarms import AlarmKind, AlarmMonitor, AlarmState, Observation, load_rules, rules_from_mapping
from cv_analytics.queues.base import OutgoingMessage
from cv_analytics.queues.presets import ANALYTICS
from cv_analytics.queues.sqlite import SQLiteQueueBackend
from cv_analytics.stores.models import ReportDelivery
from cv_analytics.stores.sqlite import SQLiteStore
from cv_analytics.wiring import Settings
from cv_analytics.wiring.alarms import observe, open_alarm_monitor

from ..reporting import smtp_server
from ..reporting.conftest import free_port

MONDAY_AFTERNOON = 1_763_989_200.0  # 2025-11-24 13:00 UTC, a Monday: last week (2025-W47) is an hour overdue


@pytest.fixture
def sink():
    sink = smtp_server.Sink()
    controller = smtp_server.start(sink, free_port())
    yield sink, controller.port
    controller.stop()


def _settings(tmp_path, port: int, **extra: str) -> Settings:
    env = {
        "CV_ANALYTICS_SMTP_HOST": "127.0.0.1",
        "CV_ANALYTICS_SMTP_PORT": str(port),
        "CV_ANALYTICS_SMTP_SECURITY": "none",
        "SENDER_EMAIL": "bot@example.com",
        "RECIPIENT_EMAIL": "owner@example.com",
        **extra,
    }
    return Settings.from_env(env, data_dir=tmp_path / "data")


def _subjects(sink) -> list[str]:
    return [str(r.message["Subject"]) for r in sink[0].received]


def test_every_alarm_is_raised_and_cleared_and_each_change_is_mailed_once(tmp_path, sink):
    clock = ManualClock(MONDAY_AFTERNOON)
    settings = _settings(tmp_path, sink[1])
    queue = SQLiteQueueBackend(tmp_path / "data" / "queues.db", clock=clock).queue("analytics", ANALYTICS.config)
    store = SQLiteStore(tmp_path / "data" / "store.db", clock=clock)
    monitor = open_alarm_monitor(settings, clock=clock)
    totals = [0, 0]

    def check() -> dict[str, AlarmState]:
        monitor.check(observe(settings, [queue], clock=clock, store=store, totals=lambda: tuple(totals)))
        return {row.alarm: row.state for row in SQLiteAlarmStates(tmp_path / "data" / "alarms.db").rows()}

    # quiet, except that last week's report was not sent by Monday noon
    states = check()
    assert states["dlq-depth:analytics-dlq"] is AlarmState.OK
    assert states["oldest-message-age:analytics"] is AlarmState.OK
    assert states["error-rate"] is AlarmState.INSUFFICIENT_DATA
    assert states["report-missing"] is AlarmState.ALARM
    assert _subjects(sink) == ["[cv-analytics] ALARM: report-missing"]

    # a message waits, one is dead-lettered, the worker fails a tenth of its messages
    event = QueryEvent(correlation_id="c1", timestamp=int(clock.now() * 1000), session_id="s", query="q")
    queue.send_batch([OutgoingMessage(to_json(event), event.group_id, event.dedup_id), OutgoingMessage("bad", "g", "d")])
    [first] = [m for m in queue.receive(10) if m.body == "bad"]
    queue.dead_letter(first, "not JSON")
    clock.advance(301)
    totals[:] = [200, 20]
    for _ in range(3):  # checked again and again: still one notice per change
        states = check()
        clock.advance(10)
    assert states["dlq-depth:analytics-dlq"] is AlarmState.ALARM
    assert states["oldest-message-age:analytics"] is AlarmState.ALARM
    assert states["error-rate"] is AlarmState.ALARM
    assert len(sink[0].received) == 2
    raised = sink[0].received[1].message
    assert str(raised["Subject"]).startswith("[cv-analytics] ALARM: ")
    body = raised.get_content()
    for alarm in ("dlq-depth:analytics-dlq", "oldest-message-age:analytics", "error-rate"):
        assert f"{alarm}: OK -> ALARM" in body or f"{alarm}: INSUFFICIENT_DATA -> ALARM" in body

    # everything put right: the queue drained, the DLQ purged, failures stop, the report sent
    while batch := queue.receive(10):
        queue.delete_batch([m.receipt_handle for m in batch])
    queue.dead_letter_queue.purge()
    clock.advance(1000)
    totals[:] = [400, 20]
    store.record_report_delivery(
        ReportDelivery(week="2025-W47", recipient="owner@example.com", sent_at=int(clock.now() * 1000), channel="smtp")
    )
    states = check()
    check()
    assert set(states.values()) == {AlarmState.OK}
    assert len(sink[0].received) == 3
    cleared = sink[0].received[2].message
    assert str(cleared["Subject"]).startswith("[cv-analytics] OK: ")
    assert "report-missing: ALARM -> OK" in cleared.get_content()


def test_a_notice_that_fails_is_sent_at_the_next_check_and_two_processes_send_it_once(tmp_path, sink):
    clock = ManualClock(MONDAY_AFTERNOON)
    port = free_port()  # nobody listens yet: the mail server is down
    settings = _settings(tmp_path, port, CV_ANALYTICS_SMTP_TIMEOUT="2")
    monitors = [open_alarm_monitor(settings, clock=clock) for _ in range(2)]
    down = Observation(at=clock.now(), queues=(), last_week_report_sent=False)
    monitors[0].check(down)
    states = SQLiteAlarmStates(tmp_path / "data" / "alarms.db")
    assert [r.state for r in states.rows()] == [AlarmState.ALARM]

    sink_ = smtp_server.Sink()
    controller = smtp_server.start(sink_, port)
    try:
        clock.advance(60)
        for monitor in monitors * 2:
            monitor.check(Observation(at=clock.now(), queues=(), last_week_report_sent=False))
        assert [str(r.message["Subject"]) for r in sink_.received] == ["[cv-analytics] ALARM: report-missing"]
    finally:
        controller.stop()


def test_the_alarms_file_overrides_defaults_and_names_what_is_wrong(tmp_path):
    path = tmp_path / "alarms.yaml"
    path.write_text("alarms:\n  queue-depth: {threshold: 50, queues: [analytics]}\n  error-rate: {enabled: false}\n")
    rules = {rule.kind: rule for rule in load_rules(path)}
    assert rules[AlarmKind.QUEUE_DEPTH].threshold == 50 and rules[AlarmKind.QUEUE_DEPTH].queues == ("analytics",)
    assert rules[AlarmKind.ERROR_RATE].enabled is False
    assert rules[AlarmKind.DLQ_DEPTH].threshold == 0  # untouched default
    for text, named in (
        ({"alarms": {"queue-dept": {}}}, "unknown alarm 'queue-dept'"),
        ({"alarms": {"queue-depth": {"treshold": 3}}}, "alarms.queue-depth.treshold is not a setting"),
        ({"alarms": {"queue-depth": {"threshold": -1}}}, "alarms.queue-depth.threshold must be a number >= 0"),
        ({"alarms": {"error-rate": {"enabled": "no"}}}, "alarms.error-rate.enabled must be true or false"),
        ([1, 2], "expected a mapping"),
    ):
        with pytest.raises(ConfigurationError, match=named):
            rules_from_mapping(text, where="alarms.yaml")
    path.write_text("alarms: [unclosed")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_rules(path)


def test_without_mail_settings_changes_go_to_the_log_only(tmp_path, caplog):
    clock = ManualClock(MONDAY_AFTERNOON)
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    monitor = open_alarm_monitor(settings, clock=clock)
    assert monitor.notifiers == []
    queue = SQLiteQueueBackend(tmp_path / "data" / "queues.db", clock=clock).queue("analytics", ANALYTICS.config)
    queue.send("x", group_id="g", dedup_id="x")
    queue.dead_letter(queue.receive(1)[0], "bad")
    with caplog.at_level("WARNING", logger="cv_analytics.ops.alarms"):
        changes = monitor.check(observe(settings, [queue], clock=clock))
    assert [c.alarm for c in changes if c.state is AlarmState.ALARM] == ["dlq-depth:analytics-dlq"]
    assert "alarm dlq-depth:analytics-dlq: new -> ALARM" in caplog.text


def test_events_dropped_by_a_client_raise_an_alarm_that_clears_a_window_after_the_last_drop(tmp_path, caplog):
    clock = ManualClock(MONDAY_AFTERNOON)
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    monitor = open_alarm_monitor(settings, clock=clock, notifiers=[])

    def dropped_alarm() -> tuple[AlarmState, float | None]:
        monitor.check(observe(settings, [], clock=clock))
        [row] = [r for r in SQLiteAlarmStates(tmp_path / "data" / "alarms.db").rows() if r.kind is AlarmKind.EVENTS_DROPPED]
        return row.state, row.value

    assert dropped_alarm() == (AlarmState.OK, 0)  # no spool directory yet: nothing dropped
    settings.spool_dir.mkdir(parents=True)
    record_drops(settings.spool_dir, 7, at_ms=int(clock.now() * 1000))  # what a client writes when its spool is full
    with caplog.at_level("WARNING", logger="cv_analytics.ops.alarms"):
        assert dropped_alarm() == (AlarmState.ALARM, 7)
    assert "7 event(s) dropped by clients, the last 0 s ago" in caplog.text
    clock.advance(899)
    assert dropped_alarm()[0] is AlarmState.ALARM
    clock.advance(2)  # the default window (900 s) after the last drop
    assert dropped_alarm() == (AlarmState.OK, 7)
    record_drops(settings.spool_dir, 1, at_ms=int(clock.now() * 1000))
    assert dropped_alarm() == (AlarmState.ALARM, 8)
