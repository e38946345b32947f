"""Settings -> the embedded alarms: the rules file, the shared state file, and who is told.

The owner is told by e-mail through the report's delivery settings when they
send mail (SMTP or SES, with SENDER_EMAIL and RECIPIENT_EMAIL); every change
is also in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
import pathlib
from collections.abc import Callable, Sequence

from ..clock import Clock, SystemClock
from ..client.spool_tools import spool_status
from ..exceptions import CVAnalyticsError
from ..ops.alarm_state import SQLiteAlarmStates
from ..ops.alarms import AlarmChange, AlarmMonitor, Notifier, Observation, QueueFigures, load_rules, notice_text
from ..queues.base import Queue
from ..queues.consumer import PeriodicTask
from ..reporting.delivery import Deliverer, OutgoingNotice
from ..reporting.weeks import last_complete_week
from ..stores.base import Store
from .reporting import addresses, open_deliverer
from .settings import Settings

log = logging.getLogger(__name__)

#: seconds between alarm checks in the worker and the scheduler (``CV_ANALYTICS_ALARM_INTERVAL``)
DEFAULT_ALARM_INTERVAL_SECONDS = 60.0


class EmailNotifier:
    """One e-mail per check that changed something, through the report's deliverer."""

    def __init__(self, deliverer: Deliverer, sender: str, recipients: Sequence[str], clock: Clock) -> None:
        self.deliverer = deliverer
        self.sender = sender
        self.recipients = tuple(recipients)
        self.clock = clock

    def notify(self, changes: Sequence[AlarmChange]) -> None:
        subject, text = notice_text(changes)
        when = dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC)
        self.deliverer.deliver(OutgoingNotice.build(subject, text, sender=self.sender, recipients=self.recipients, when=when))


def alarm_state_path(settings: Settings) -> pathlib.Path:
    return settings.data_dir / "alarms.db"


def email_notifiers(settings: Settings, clock: Clock) -> list[Notifier]:
    """An e-mail notifier when the report goes out by mail; none (the log only) otherwise."""
    try:
        deliverer = open_deliverer(settings)
        if not deliverer.counts_as_sent:
            return []
        sender, recipients = addresses(settings)
    except CVAnalyticsError as exc:
        log.info("alarm changes go to the log only: %s", exc)
        return []
    return [EmailNotifier(deliverer, sender, recipients, clock)]


def open_alarm_monitor(settings: Settings, *, clock: Clock | None = None, notifiers: Sequence[Notifier] | None = None) -> AlarmMonitor:
    clock = clock or SystemClock()
    return AlarmMonitor(
        load_rules(settings.alarms_file),
        SQLiteAlarmStates(alarm_state_path(settings)),
        email_notifiers(settings, clock) if notifiers is None else notifiers,
        clock=clock,
    )


def observe(
    settings: Settings,
    queues: Sequence[Queue],
    *,
    clock: Clock,
    store: Store | None = None,
    totals: Callable[[], tuple[int, int]] | None = None,
) -> Observation:
    """The figures of one check: every queue and its DLQ, the spool and the clients' drops, the worker's totals, last week's report."""
    figures: list[QueueFigures] = []
    for queue in queues:
        for q in (queue, queue.dead_letter_queue):
            if q is not None:
                a = q.attributes()
                figures.append(QueueFigures(a.name, a.visible, a.in_flight, a.delayed, a.oldest_age_seconds))
    now = clock.now()
    spool = spool_status(settings.spool_dir)
    spool_age = 0.0 if spool.events == 0 or spool.oldest_timestamp_ms is None else max(0.0, now - spool.oldest_timestamp_ms / 1000)
    processed, failed = totals() if totals is not None else (None, None)
    return Observation(
        at=now,
        queues=figures,
        spool_oldest_age_seconds=spool_age,
        processed_total=processed,
        failed_total=failed,
        last_week_report_sent=_last_week_sent(settings, store, now),
        events_dropped=spool.dropped,
        last_drop_age_seconds=None if spool.last_drop_ms is None else max(0.0, now - spool.last_drop_ms / 1000),
    )


def _last_week_sent(settings: Settings, store: Store | None, now: float) -> bool | None:
    if store is None:
        return None
    try:
        _, recipients = addresses(settings)
    except CVAnalyticsError:
        return None  # no recipients: no report is mailed, so none can be missing
    week = last_complete_week(now)
    return all(store.get_report_delivery(week, recipient) is not None for recipient in recipients)


def alarm_task(
    settings: Settings,
    open_queues: Callable[[], Sequence[Queue]],
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    totals: Callable[[], tuple[int, int]] | None = None,
    monitor: AlarmMonitor | None = None,
) -> PeriodicTask:
    """The alarm check as a periodic task of a consumer loop (the worker) or the scheduler.

    ``open_queues`` is called at each check, not before: a queue it must create (a jobs queue nobody
    used yet) needs the database's write lock, and a database locked at start-up must delay a check,
    never stop the process it runs in.
    """
    clock = clock or SystemClock()
    monitor = monitor or open_alarm_monitor(settings, clock=clock)
    interval = settings.alarm_interval_seconds or DEFAULT_ALARM_INTERVAL_SECONDS
    return PeriodicTask("alarms", interval, lambda: monitor.check(observe(settings, open_queues(), clock=clock, store=store, totals=totals)))
