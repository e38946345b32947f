"""EventBridge cron expressions against known fire dates, ISO weeks, and the scheduler loop on a manual clock."""

from __future__ import annotations

import datetime as dt

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.exceptions import ConfigurationError, ReportDeliveryError
from cv_analytics.wiring import insights_for
from cv_analytics.reporting.delivery import DeliveryStatus, FileDeliverer, send_weekly_report
from cv_analytics.reporting.schedule import DEFAULT_SCHEDULE, CronSchedule, ReportScheduler
from cv_analytics.reporting.weeks import IsoWeek, last_complete_week, parse_week, previous_week

from . import dataset
from .dataset import CATALOG

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # the default: Monday 07:00 UTC (18 Nov 2026 is a Wednesday)
        (DEFAULT_SCHEDULE, at(2026, 11, 18, 12), [at(2026, 11, 23, 7), at(2026, 11, 30, 7)]),
        # strictly after: at the fire time itself, the next one is a week on
        (DEFAULT_SCHEDULE, at(2026, 11, 23, 7), [at(2026, 11, 30, 7)]),
        # across a year end
        ("cron(0 7 ? * MON *)", at(2026, 12, 29), [at(2027, 1, 4, 7)]),
        # AWS's documented examples
        ("cron(0 10 * * ? *)", at(2026, 11, 18, 10, 0, 30), [at(2026, 11, 19, 10)]),
        ("cron(15 12 * * ? *)", at(2026, 11, 18, 12, 14), [at(2026, 11, 18, 12, 15)]),
        ("cron(0 18 ? * MON-FRI *)", at(2026, 11, 20, 18, 1), [at(2026, 11, 23, 18)]),
        ("cron(0 8 1 * ? *)", at(2026, 11, 18), [at(2026, 12, 1, 8), at(2027, 1, 1, 8)]),
        ("cron(0/15 9-17 ? * MON-FRI *)", at(2026, 11, 20, 17, 50), [at(2026, 11, 23, 9), at(2026, 11, 23, 9, 15)]),
        # day numbers: 1 is Sunday
        ("cron(30 6 ? * 1 *)", at(2026, 11, 18), [at(2026, 11, 22, 6, 30)]),
        # last Friday, first Monday, last day of the month (February, then a leap February)
        ("cron(0 18 ? * 6L *)", at(2026, 11, 1), [at(2026, 11, 27, 18), at(2026, 12, 25, 18)]),
        ("cron(0 9 ? * MON#1 *)", at(2026, 11, 3), [at(2026, 12, 7, 9)]),
        ("cron(15 10 L * ? *)", at(2028, 2, 1), [at(2028, 2, 29, 10, 15), at(2028, 3, 31, 10, 15)]),
        # the 30th: February has none, so March's
        ("cron(0 7 30 * ? *)", at(2026, 2, 1), [at(2026, 3, 30, 7), at(2026, 4, 30, 7)]),
        # lower-case names, extra spaces, no cron( ) wrapper
        ("  0  7 ? * mon *  ", at(2026, 11, 18), [at(2026, 11, 23, 7)]),
    ],
)
def test_cron_expressions_fire_at_known_dates(expression: str, after: dt.datetime, expected: list[dt.datetime]):
    assert CronSchedule(expression).upcoming(after, len(expected)) == expected


def test_a_schedule_limited_to_past_years_has_no_next_fire_time():
    schedule = CronSchedule("cron(0 7 1 1 ? 2027)")
    assert schedule.next_after(at(2026, 6, 1)) == at(2027, 1, 1, 7)
    assert schedule.next_after(at(2027, 6, 1)) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 7 ? * MON)", "has 5 field(s); an EventBridge cron expression has six"),
        ("0 7 * * 1", "has 5 field(s)"),  # a Unix crontab line
        ("cron(0 7 * * MON *)", "One must be a question mark (?)"),
        ("cron(0 7 ? * ? *)", "One must be a question mark (?)"),
        ("cron(0 7 ? * MOM *)", "Invalid day-of-week value 'MOM'. (use 1-7 or SUN, MON"),
        ("cron(0 7 ? * 8 *)", "Invalid day-of-week value '8'"),
        ("cron(60 7 ? * MON *)", "Invalid minute value '60'"),
        ("cron(0 24 ? * MON *)", "Invalid hour value '24'"),
        ("cron(0 7 ? JANUARY MON *)", "Invalid month value 'JANUARY'"),
        ("cron(0 7 ? * MON 1969)", "Invalid year value '1969'"),
        ("rate(7 days)", "is a rate expression"),
    ],
)
def test_invalid_cron_expressions_are_refused_with_a_clear_error(expression: str, message: str):
    with pytest.raises(ConfigurationError) as info:
        CronSchedule(expression)
    assert message in str(info.value)
    assert expression.strip() in str(info.value)


@pytest.mark.parametrize(
    ("now", "week"),
    [
        (at(2026, 11, 23, 7), "2026-W47"),  # Monday morning: the week just ended
        (at(2026, 11, 23, 0, 0), "2026-W47"),
        (at(2026, 11, 22, 23, 59, 59), "2026-W46"),  # Sunday night: this week is not over
        (at(2027, 1, 4, 7), "2026-W53"),  # 2026 has 53 ISO weeks
        (at(2026, 1, 1, 12), "2025-W52"),  # 1 Jan 2026 (a Thursday) is in 2026-W01
    ],
)
def test_last_complete_week_is_the_iso_week_before_now(now: dt.datetime, week: str):
    assert last_complete_week(now) == week
    assert last_complete_week(now.timestamp()) == week


def test_weeks_parse_and_step_across_years():
    assert previous_week("2027-W01") == "2026-W53"
    assert IsoWeek.parse("2026-W53").next() == IsoWeek(2027, 1)
    assert IsoWeek.parse("2026-W47").monday == dt.date(2026, 11, 16)
    assert parse_week(" 2026-W47 ") == "2026-W47"
    for bad, message in [("2026-47", "must look like 2026-W47"), ("2025-W53", "not a week of 2025"), ("2026-W00", "W01")]:
        with pytest.raises(ConfigurationError, match=message):
            parse_week(bad)


def test_weeks_outside_the_epoch_s_years_are_refused_and_every_week_prints_as_it_parses():
    # found by schemathesis on the dashboard: 0001-W01 printed as "1-W01", and its previous week is no date
    for bad in ("0001-W01", "1969-W52", "9999-W52", "\u0661\u0669\u0667\u0660-W01"):
        with pytest.raises(ConfigurationError):
            parse_week(bad)
    assert parse_week("1970-W02") == "1970-W02" and str(IsoWeek(999, 1)) == "0999-W01"


def _scheduler(clock: ManualClock, job, **kwargs) -> ReportScheduler:
    return ReportScheduler(CronSchedule(DEFAULT_SCHEDULE), job, clock, **kwargs)


def test_scheduler_sleeps_until_monday_and_reports_the_week_just_ended():
    clock = ManualClock(at(2026, 11, 18, 12).timestamp())
    calls: list[tuple[str, dt.datetime]] = []
    scheduler = _scheduler(clock, lambda week: calls.append((week, dt.datetime.fromtimestamp(clock.now(), UTC))), catch_up=False)
    history = scheduler.run(max_fires=2)
    assert calls == [("2026-W47", at(2026, 11, 23, 7)), ("2026-W48", at(2026, 11, 30, 7))]
    assert all(run.ok for run in history)


def test_a_failed_run_is_retried_until_it_succeeds():
    clock = ManualClock(at(2026, 11, 22, 12).timestamp())
    attempts: list[dt.datetime] = []

    def flaky(week: str) -> None:
        attempts.append(dt.datetime.fromtimestamp(clock.now(), UTC))
        if len(attempts) < 3:
            raise ReportDeliveryError("SMTP is down")

    scheduler = _scheduler(clock, flaky, catch_up=False, retry_seconds=900)
    history = scheduler.run(max_fires=2)
    assert attempts[:3] == [at(2026, 11, 23, 7), at(2026, 11, 23, 7, 15), at(2026, 11, 23, 7, 30)]
    assert [(r.week, r.ok) for r in history] == [
        ("2026-W47", False), ("2026-W47", False), ("2026-W47", True), ("2026-W48", True)
    ]  # fmt: skip
    assert history[0].error == "SMTP is down"


def test_a_run_still_failing_at_the_next_fire_time_is_tried_again_with_the_new_week():
    clock = ManualClock(at(2026, 11, 22, 12).timestamp())
    outcome = {"up": False}
    sent: list[str] = []

    def job(week: str) -> None:
        if not outcome["up"]:
            raise ReportDeliveryError("down")
        sent.append(week)

    scheduler = _scheduler(clock, job, catch_up=False, retry_seconds=24 * 3600)
    scheduler.run(max_fires=1)
    assert sent == [] and clock.now() == at(2026, 11, 23, 7).timestamp()
    outcome["up"] = True
    scheduler.run(max_fires=1)  # pending weeks live in one run() call: the second starts afresh
    assert sent == ["2026-W48"]


def test_restarting_the_scheduler_sends_a_missed_report_once(store, clock, tmp_path):
    """A scheduler down at Monday 07:00 catches up on start; restarted again, it sends nothing twice."""
    dataset.load(store, clock)
    clock.set(at(2026, 11, 24, 9).timestamp())  # Tuesday: Monday's run was missed
    outbox = FileDeliverer(tmp_path / "outbox", counts_as_sent=True)  # a drop directory: recorded as sent

    results = []

    def job(week: str) -> None:
        results.extend(
            send_weekly_report(
                store, week, outbox, insights=insights_for(store), catalog=CATALOG,
                sender="r@cv.example.dev", recipients=["o@cv.example.dev"],
            )
        )

    for _ in range(2):  # two starts; max_fires=0: the catch-up only
        _scheduler(clock, job).run(max_fires=0)
    assert [(r.week, r.status) for r in results] == [
        (dataset.WEEK, DeliveryStatus.SENT), (dataset.WEEK, DeliveryStatus.ALREADY_SENT)
    ]  # fmt: skip
    delivery = store.get_report_delivery(dataset.WEEK, "o@cv.example.dev")
    assert delivery is not None and delivery.sent_at == int(at(2026, 11, 24, 9).timestamp() * 1000)
    assert (tmp_path / "outbox" / f"cv-analytics-report-{dataset.WEEK}.html").is_file()


def test_stopping_the_scheduler_ends_its_wait():
    clock = ManualClock(at(2026, 11, 18, 12).timestamp())
    scheduler = _scheduler(clock, lambda week: None, catch_up=False)
    original_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        original_sleep(seconds)
        if clock.now() >= at(2026, 11, 20).timestamp():
            scheduler.stop.set()

    clock.sleep = sleep  # type: ignore[method-assign]
    assert scheduler.run() == []
    assert clock.now() < at(2026, 11, 23, 7).timestamp()


def test_tasks_run_at_their_interval_while_the_scheduler_waits_and_a_failing_one_does_not_stop_it():
    from cv_analytics.queues.consumer import PeriodicTask

    clock = ManualClock(dt.datetime(2025, 11, 20, 12, 0, tzinfo=dt.UTC).timestamp())  # a Thursday
    checks: list[float] = []

    def broken() -> None:
        raise RuntimeError("the alarms file went missing")

    tasks = [PeriodicTask("alarms", 600.0, lambda: checks.append(clock.now())), PeriodicTask("broken", 600.0, broken)]
    history = _scheduler(clock, lambda week: None, catch_up=False, tasks=tasks).run(max_fires=1)
    assert [run.week for run in history] == ["2025-W47"]
    # Thursday 12:00 to Monday 07:00 is 91 hours: a check every 10 minutes, from the start
    assert len(checks) == 91 * 6 + 1
    assert all(b - a == 600.0 for a, b in zip(checks, checks[1:]))
