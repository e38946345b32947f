"""The report schedule: EventBridge cron expressions, and a loop that follows one.

Expressions use EventBridge's six-field syntax, in UTC
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html)::

    cron(minutes hours day-of-month month day-of-week year)
    cron(0 7 ? * MON *)        every Monday at 07:00 UTC (the default)

Exactly one of day-of-month and day-of-week must be ``?``; day-of-week runs
1-7 = SUN-SAT. Validation is aws-cron-expression-validator's; next fire times
come from pyawscron. The same expression can be pasted into an EventBridge rule
that runs the report on AWS.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aws_cron_expression_validator.validator import AWSCronExpressionError, AWSCronExpressionValidator
from pyawscron.awscron import AWSCron

from ..clock import Clock
from ..exceptions import CVAnalyticsError, ConfigurationError
from ..queues.consumer import PeriodicTask
from .weeks import last_complete_week

log = logging.getLogger(__name__)

DEFAULT_SCHEDULE = "cron(0 7 ? * MON *)"
#: Wake at least this often while waiting, so a wall clock that jumps (suspend, NTP) is noticed.
MAX_SLEEP_SECONDS = 60.0
#: After a failed run, try again this often until it succeeds or the next fire time comes.
DEFAULT_RETRY_SECONDS = 15 * 60.0
# pyawscron can raise on a day-of-month missing from a month (30 in February):
# no month in this many can be skipped looking for the next fire time.
_MAX_MONTH_SKIPS = 60


class CronSchedule:
    """A validated EventBridge cron expression that tells its next fire time."""

    def __init__(self, expression: str) -> None:
        text = " ".join(expression.split())
        inner = text[5:-1].strip() if text.startswith("cron(") and text.endswith(")") else text
        if text.startswith("rate("):
            raise ConfigurationError(
                f"{expression!r} is a rate expression; the report schedule takes a cron expression "
                f"such as {DEFAULT_SCHEDULE}"
            )
        fields = inner.split(" ")
        if len(fields) != 6:
            raise ConfigurationError(
                f"{expression!r} has {len(fields)} field(s); an EventBridge cron expression has six: "
                f"cron(minutes hours day-of-month month day-of-week year), e.g. {DEFAULT_SCHEDULE}"
            )
        try:
            AWSCronExpressionValidator.validate(inner)
        except AWSCronExpressionError as exc:
            raise ConfigurationError(f"invalid schedule {expression!r}: {_explain(str(exc))}") from exc
        self.expression = f"cron({inner})"
        try:
            self._cron = AWSCron(inner)
        except (ValueError, IndexError) as exc:  # a form the validator allows but the parser cannot follow
            raise ConfigurationError(f"unsupported schedule {expression!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r})"

    def next_after(self, when: dt.datetime) -> dt.datetime | None:
        """The first fire time strictly after ``when`` (UTC); None when the years listed are over."""
        current = _utc(when)
        for _ in range(_MAX_MONTH_SKIPS):
            try:
                return self._cron.occurrence(current).next()  # type: ignore[no-any-return]
            except ValueError:
                # pyawscron picked a day the month lacks (e.g. the 30th of February): no fire
                # time exists in that month, so resume from the first minute of the next one.
                current = _next_month_start(current) - dt.timedelta(minutes=1)
        raise ConfigurationError(f"{self.expression} never fires in the {_MAX_MONTH_SKIPS} months after {when}")

    def previous_before(self, when: dt.datetime) -> dt.datetime | None:
        """The last fire time strictly before ``when`` (UTC), or None."""
        try:
            return self._cron.occurrence(_utc(when)).prev()  # type: ignore[no-any-return]
        except ValueError:
            return None

    def upcoming(self, when: dt.datetime, count: int) -> list[dt.datetime]:
        """The next ``count`` fire times after ``when``."""
        times: list[dt.datetime] = []
        current = _utc(when)
        while len(times) < count:
            nxt = self.next_after(current)
            if nxt is None:
                break
            times.append(nxt)
            current = nxt
        return times


def _utc(when: dt.datetime) -> dt.datetime:
    # pyawscron insists on tzinfo == datetime.timezone.utc exactly.
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _next_month_start(when: dt.datetime) -> dt.datetime:
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def _explain(message: str) -> str:
    if "question mark" in message:
        return (
            message.replace("'.One", "'. One")
            + " (EventBridge needs '?' in exactly one of day-of-month and day-of-week, e.g. cron(0 7 ? * MON *))"
        )
    if "day-of-week" in message:
        return message + " (use 1-7 or SUN, MON, TUE, WED, THU, FRI, SAT; ranges like MON-FRI; L and # forms)"
    if "month value" in message:
        return message + " (use 1-12 or JAN-DEC)"
    return message


def parse_schedule(expression: str) -> CronSchedule:
    """Validate an EventBridge cron expression; :class:`ConfigurationError` says what is wrong."""
    return CronSchedule(expression)


@dataclass
class ScheduledRun:
    """One attempt of the job: for which week, when, and how it went."""

    week: str
    at: dt.datetime
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ReportScheduler:
    """Runs ``job(week)`` at each fire time for the week just ended.

    * Time comes from the injected clock; waiting is in slices of at most a
      minute, so a wall clock that jumps is noticed, and ends as soon as ``stop``
      is set. A run in progress is finished first: a stop never cuts a send short.
    * A failed run (any :class:`CVAnalyticsError`, a delivery error included) is
      retried every ``retry_seconds`` until it succeeds or the next fire time,
      where the week just ended is tried again together with the new one.
    * ``catch_up``: on start, the week of the last fire time before now is run
      at once. With a send-once job this makes a restart safe: a report missed
      while the scheduler was down goes out, one already sent does not go twice.
    """

    schedule: CronSchedule
    job: Callable[[str], object]
    clock: Clock
    retry_seconds: float = DEFAULT_RETRY_SECONDS
    catch_up: bool = True
    stop: threading.Event = field(default_factory=threading.Event)
    history: list[ScheduledRun] = field(default_factory=list)
    #: work done while waiting (the alarm checks), each at its interval; a failing one is logged, never stops the schedule
    tasks: Sequence[PeriodicTask] = ()
    _due: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC)

    def _sleep_until(self, target: dt.datetime) -> bool:
        """False if stopped before ``target``."""
        while not self.stop.is_set():
            next_task = self._run_due_tasks()
            remaining = (target - self._now()).total_seconds()
            if remaining <= 0:
                return True
            # a wait on ``stop`` rather than a sleep: a stop ends it at once, so no signal handler need
            # interrupt the process, which could land in a report's send
            self.clock.wait(min(remaining, MAX_SLEEP_SECONDS, max(0.0, next_task - self.clock.monotonic())), self.stop)
        return False

    def _run_due_tasks(self) -> float:
        """Run the tasks that are due; when the next one is due (monotonic seconds)."""
        now = self.clock.monotonic()
        for task in self.tasks:
            due = self._due.setdefault(task.name, now)
            if now >= due:
                self._due[task.name] = now + task.interval_seconds
                try:
                    task.run()
                except Exception:  # noqa: BLE001 - logged; the next run retries
                    log.exception("task %s failed; it runs again in %.0fs", task.name, task.interval_seconds)
        return min(self._due.values(), default=float("inf"))

    def _attempt(self, weeks: list[str]) -> list[str]:
        """Run the job for each week; returns the weeks that failed."""
        failed: list[str] = []
        for week in weeks:
            run = ScheduledRun(week=week, at=self._now())
            try:
                self.job(week)
            except CVAnalyticsError as exc:
                run.error = str(exc)
                failed.append(week)
                log.error("report for %s failed, will retry: %s", week, exc)
            else:
                log.info("report for %s done", week)
            self.history.append(run)
        return failed

    def run(self, *, max_fires: int | None = None) -> list[ScheduledRun]:
        """Loop until ``stop`` is set, or after ``max_fires`` fire times (retries included in each)."""
        pending: list[str] = []
        if self.catch_up:
            last = self.schedule.previous_before(self._now())
            if last is not None:
                pending = self._attempt([last_complete_week(last)])
        fires = 0
        while not self.stop.is_set() and (max_fires is None or fires < max_fires):
            fire = self.schedule.next_after(self._now())
            if fire is None:
                log.warning("%s has no fire time left; the scheduler stops", self.schedule.expression)
                break
            while pending and not self.stop.is_set():
                retry_at = self._now() + dt.timedelta(seconds=self.retry_seconds)
                if retry_at >= fire:
                    break
                if not self._sleep_until(retry_at):
                    return self.history
                pending = self._attempt(pending)
            log.info("next report run at %s", fire.isoformat())
            if not self._sleep_until(fire):
                break
            week = last_complete_week(fire)
            pending = self._attempt(list(dict.fromkeys([*pending, week])))
            fires += 1
        return self.history
