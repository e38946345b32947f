"""Alarms on one machine: rules from one file, evaluated by the worker and the scheduler, notified once per change.

The embedded twin of the template's CloudWatch alarms. Each rule turns the
figures of a check (:class:`Observation`) into one alarm per thing it watches
(``dlq-depth:analytics-dlq``), in CloudWatch's three states. The states live
in a small SQLite file shared by every process on the data directory
(:mod:`.alarm_state`): whichever process sees a state change first records
it, and a change is notified once, not once per check or per process. A
notification that fails (the mail server is down) stays pending and is tried
again at the next check.
"""

from __future__ import annotations

import datetime as dt
import logging
import pathlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

import yaml

from ..clock import Clock
from ..exceptions import ConfigurationError

log = logging.getLogger(__name__)

#: A dead-letter queue's name ends so (``analytics-dlq``, ``ai-job-request-dlq``; see queues.presets).
DLQ_SUFFIX = "-dlq"


class AlarmState(str, Enum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class AlarmKind(str, Enum):
    DLQ_DEPTH = "dlq-depth"
    OLDEST_MESSAGE_AGE = "oldest-message-age"
    QUEUE_DEPTH = "queue-depth"
    ERROR_RATE = "error-rate"
    SPOOL_BACKLOG_AGE = "spool-backlog-age"
    REPORT_MISSING = "report-missing"
    EVENTS_DROPPED = "events-dropped"


@dataclass(frozen=True)
class AlarmRule:
    """One rule of the alarms file; ``threshold`` in the kind's unit (messages, seconds, a ratio)."""

    kind: AlarmKind
    threshold: float
    enabled: bool = True
    #: error-rate: the window the rate is taken over, and the fewest messages it needs to say anything;
    #: events-dropped: how long after the latest drop the alarm stays raised
    window_seconds: float = 900.0
    min_messages: int = 20
    #: only these queues (by name); every queue the rule applies to when empty
    queues: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return {
            AlarmKind.DLQ_DEPTH: f"dead letters > {self.threshold:g}",
            AlarmKind.OLDEST_MESSAGE_AGE: f"oldest message older than {self.threshold:g} s",
            AlarmKind.QUEUE_DEPTH: f"more than {self.threshold:g} messages waiting",
            AlarmKind.ERROR_RATE: f"more than {self.threshold:.0%} of messages failed over {self.window_seconds:g} s",
            AlarmKind.SPOOL_BACKLOG_AGE: f"client spool backlog older than {self.threshold:g} s",
            AlarmKind.REPORT_MISSING: f"last week's report not sent {self.threshold / 3600:g} h after the week ended",
            AlarmKind.EVENTS_DROPPED: (
                f"more than {self.threshold:g} event(s) dropped by clients, the last within {self.window_seconds:g} s"
            ),
        }[self.kind]


#: The defaults; the alarms file overrides them rule by rule.
DEFAULT_RULES: dict[AlarmKind, AlarmRule] = {
    AlarmKind.DLQ_DEPTH: AlarmRule(AlarmKind.DLQ_DEPTH, 0),
    AlarmKind.OLDEST_MESSAGE_AGE: AlarmRule(AlarmKind.OLDEST_MESSAGE_AGE, 300),
    AlarmKind.QUEUE_DEPTH: AlarmRule(AlarmKind.QUEUE_DEPTH, 10_000),
    AlarmKind.ERROR_RATE: AlarmRule(AlarmKind.ERROR_RATE, 0.05),
    AlarmKind.SPOOL_BACKLOG_AGE: AlarmRule(AlarmKind.SPOOL_BACKLOG_AGE, 3600),
    # the scheduler sends on Monday morning: by Monday noon, last week's report is late
    AlarmKind.REPORT_MISSING: AlarmRule(AlarmKind.REPORT_MISSING, 12 * 3600),
    # any drop is lost analytics: raised for the 15 minutes after the latest one
    AlarmKind.EVENTS_DROPPED: AlarmRule(AlarmKind.EVENTS_DROPPED, 0),
}

_FIELDS = {"threshold": float, "enabled": bool, "window_seconds": float, "min_messages": int, "queues": tuple}


def load_rules(path: str | pathlib.Path | None) -> list[AlarmRule]:
    """The rules: the defaults, overridden by the file at ``path`` when given (YAML, see docs/operations.md)."""
    if path is None:
        return list(DEFAULT_RULES.values())
    where = str(path)
    try:
        data = yaml.safe_load(pathlib.Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the alarms file {where}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"the alarms file {where} is not valid YAML: {exc}") from None
    return rules_from_mapping(data, where=where)


def rules_from_mapping(data: Any, *, where: str = "<alarms>") -> list[AlarmRule]:
    if data is None:
        data = {}
    if not isinstance(data, Mapping) or not isinstance(data.get("alarms", {}), Mapping):
        raise ConfigurationError(f"{where}: expected a mapping `alarms: {{<rule>: {{threshold: ...}}}}`")
    rules = dict(DEFAULT_RULES)
    for name, overrides in (data.get("alarms") or {}).items():
        try:
            kind = AlarmKind(name)
        except ValueError:
            raise ConfigurationError(
                f"{where}: unknown alarm {name!r}; known: {', '.join(k.value for k in AlarmKind)}"
            ) from None
        if not isinstance(overrides, Mapping):
            raise ConfigurationError(f"{where}: alarms.{name} must be a mapping of settings")
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            kind_of = _FIELDS.get(str(key))
            if kind_of is None:
                raise ConfigurationError(f"{where}: alarms.{name}.{key} is not a setting; known: {', '.join(_FIELDS)}")
            changes[str(key)] = _coerce(value, kind_of, f"{where}: alarms.{name}.{key}")
        rules[kind] = replace(rules[kind], **changes)
    return list(rules.values())


def _coerce(value: Any, kind: type, what: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{what} must be true or false, not {value!r}")
        return value
    if kind is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(f"{what} must be a list of queue names")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"{what} must be a number >= 0, not {value!r}")
    return kind(value)


# -- what a check sees ----------------------------------------------------------------


@dataclass(frozen=True)
class QueueFigures:
    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_seconds: float | None

    @property
    def depth(self) -> int:
        return self.visible + self.in_flight + self.delayed

    @property
    def is_dead_letter_queue(self) -> bool:
        return self.name.removesuffix(".fifo").endswith(DLQ_SUFFIX)


@dataclass(frozen=True)
class Observation:
    """The figures of one check. ``None`` where this process cannot see a figure (it then leaves that alarm alone)."""

    at: float
    queues: Sequence[QueueFigures] = ()
    #: age of the oldest event a client left in the spool, seconds (0 when the spool is empty)
    spool_oldest_age_seconds: float | None = None
    #: this process's running totals of messages handled and failed (the worker's), for the error rate
    processed_total: int | None = None
    failed_total: int | None = None
    #: whether last week's report was sent (None: not known here)
    last_week_report_sent: bool | None = None
    #: events clients on the data directory dropped, ever, and how long ago the latest drop was (None: none yet)
    events_dropped: int | None = None
    last_drop_age_seconds: float | None = None


@dataclass(frozen=True)
class Evaluation:
    alarm: str
    kind: AlarmKind
    state: AlarmState
    value: float | None
    reason: str


@dataclass(frozen=True)
class AlarmChange:
    alarm: str
    previous: AlarmState | None
    state: AlarmState
    value: float | None
    reason: str
    at: float


@dataclass
class _Samples:
    """(time, processed, failed) running totals within the error-rate window."""

    points: deque[tuple[float, int, int]] = field(default_factory=deque)


def evaluate(rules: Iterable[AlarmRule], observation: Observation, *, history: _Samples | None = None) -> list[Evaluation]:
    """Every alarm the rules define over ``observation`` (alarms whose figures are unknown here are left out)."""
    found: list[Evaluation] = []
    for rule in rules:
        if rule.enabled:
            found.extend(_evaluate_rule(rule, observation, history))
    return found


def _evaluate_rule(rule: AlarmRule, obs: Observation, history: _Samples | None) -> list[Evaluation]:
    name = rule.kind.value

    def judged(alarm: str, value: float | None, breached: bool, what: str) -> Evaluation:
        if value is None:
            return Evaluation(alarm, rule.kind, AlarmState.INSUFFICIENT_DATA, None, f"no data: {what}")
        state = AlarmState.ALARM if breached else AlarmState.OK
        return Evaluation(alarm, rule.kind, state, value, f"{what} (alarm when {rule.description})")

    def watched(dead_letter: bool) -> list[QueueFigures]:
        return [
            q for q in obs.queues if q.is_dead_letter_queue == dead_letter and (not rule.queues or q.name in rule.queues)
        ]

    if rule.kind is AlarmKind.DLQ_DEPTH:
        return [judged(f"{name}:{q.name}", q.depth, q.depth > rule.threshold, f"{q.depth} dead letter(s) in {q.name}") for q in watched(True)]
    if rule.kind is AlarmKind.OLDEST_MESSAGE_AGE:
        return [
            judged(
                f"{name}:{q.name}",
                q.oldest_age_seconds or 0.0,
                (q.oldest_age_seconds or 0.0) > rule.threshold,
                f"oldest message in {q.name} is {q.oldest_age_seconds or 0:.0f} s old",
            )
            for q in watched(False)
        ]
    if rule.kind is AlarmKind.QUEUE_DEPTH:
        return [judged(f"{name}:{q.name}", q.depth, q.depth > rule.threshold, f"{q.depth} message(s) in {q.name}") for q in watched(False)]
    if rule.kind is AlarmKind.SPOOL_BACKLOG_AGE:
        age = obs.spool_oldest_age_seconds
        if age is None:
            return []
        return [judged(name, age, age > rule.threshold, f"the oldest spooled event is {age:.0f} s old")]
    if rule.kind is AlarmKind.EVENTS_DROPPED:
        dropped, age = obs.events_dropped, obs.last_drop_age_seconds
        if dropped is None:
            return []
        recent = age is not None and age <= rule.window_seconds
        what = f"{dropped} event(s) dropped by clients" + (f", the last {age:.0f} s ago" if age is not None else "")
        return [judged(name, dropped, dropped > rule.threshold and recent, what)]
    if rule.kind is AlarmKind.REPORT_MISSING:
        sent = obs.last_week_report_sent
        if sent is None:
            return []
        late = _seconds_since_last_week_ended(obs.at)
        breached = not sent and late > rule.threshold
        what = "last week's report was sent" if sent else f"last week's report not sent, {late / 3600:.1f} h after the week ended"
        return [judged(name, 0.0 if sent else late, breached, what)]
    if rule.kind is AlarmKind.ERROR_RATE:
        if obs.processed_total is None or obs.failed_total is None or history is None:
            return []
        points = history.points
        points.append((obs.at, obs.processed_total, obs.failed_total))
        while len(points) > 1 and points[1][0] <= obs.at - rule.window_seconds:
            points.popleft()
        _, processed_then, failed_then = points[0]
        processed = obs.processed_total - processed_then
        failed = obs.failed_total - failed_then
        if processed < rule.min_messages:
            return [judged(name, None, False, f"{processed} message(s) in the window, fewer than {rule.min_messages}")]
        rate = failed / processed
        return [judged(name, rate, rate > rule.threshold, f"{failed} of {processed} message(s) failed ({rate:.1%})")]
    raise AssertionError(rule.kind)


def _seconds_since_last_week_ended(at: float) -> float:
    now = dt.datetime.fromtimestamp(at, tz=dt.UTC)
    this_monday = (now - dt.timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return (now - this_monday).total_seconds()


# -- states and notifications -----------------------------------------------------------


class AlarmStates(Protocol):
    """Where alarm states live between checks and processes (:class:`~.alarm_state.SQLiteAlarmStates`)."""

    def record(self, evaluations: Sequence[Evaluation], at: float) -> list[AlarmChange]:
        """Store the states; the changes among them, each returned to exactly one caller."""
        ...

    def claim_notifications(self, at: float, lease_seconds: float) -> list[AlarmChange]:
        """Changes not yet notified and not being notified by another process, leased to this caller."""
        ...

    def notified(self, changes: Sequence[AlarmChange]) -> None: ...

    def release(self, changes: Sequence[AlarmChange]) -> None: ...


class Notifier(Protocol):
    def notify(self, changes: Sequence[AlarmChange]) -> None:
        """Tell the owner; raises to have the changes tried again at the next check."""
        ...


def worth_notifying(change: AlarmChange) -> bool:
    """Into and out of ALARM is worth telling the owner; the comings and goings of data are not."""
    return change.previous != change.state and AlarmState.ALARM in (change.previous, change.state)


class AlarmMonitor:
    """Checks the rules against each observation, records the states, notifies each change once."""

    def __init__(
        self,
        rules: Sequence[AlarmRule],
        states: AlarmStates,
        notifiers: Sequence[Notifier],
        *,
        clock: Clock,
        lease_seconds: float = 120.0,
    ) -> None:
        self.rules = list(rules)
        self.states = states
        self.notifiers = list(notifiers)
        self.clock = clock
        self.lease_seconds = lease_seconds
        self._history = _Samples()

    def check(self, observation: Observation) -> list[AlarmChange]:
        """Evaluate, record, and notify what changed (here or in a process whose notice failed); the changes."""
        evaluations = evaluate(self.rules, observation, history=self._history)
        changes = self.states.record(evaluations, observation.at)
        for change in changes:
            level = logging.WARNING if change.state is AlarmState.ALARM else logging.INFO
            log.log(
                level,
                "alarm %s: %s -> %s: %s",
                change.alarm,
                change.previous.value if change.previous else "new",
                change.state.value,
                change.reason,
                extra={"fields": {"alarm": change.alarm, "state": change.state.value}},
            )
        self._notify(observation.at)
        return changes

    def _notify(self, at: float) -> None:
        pending = self.states.claim_notifications(at, self.lease_seconds)
        if not pending:
            return
        to_tell = [change for change in pending if worth_notifying(change)]
        try:
            for notifier in self.notifiers:
                if to_tell:
                    notifier.notify(to_tell)
        except Exception as exc:  # noqa: BLE001 - a failed notice is retried at the next check, never fatal
            log.error("could not notify %d alarm change(s), will retry at the next check: %s", len(to_tell), exc)
            self.states.release(pending)
            return
        self.states.notified(pending)


def notice_text(changes: Sequence[AlarmChange]) -> tuple[str, str]:
    """The subject and plain-text body of one notice about ``changes``."""
    raised = [c for c in changes if c.state is AlarmState.ALARM]
    subject = (
        f"[cv-analytics] ALARM: {', '.join(c.alarm for c in raised)}"
        if raised
        else f"[cv-analytics] OK: {', '.join(c.alarm for c in changes)}"
    )
    lines = []
    for change in changes:
        when = dt.datetime.fromtimestamp(change.at, tz=dt.UTC).isoformat(timespec="seconds")
        before = change.previous.value if change.previous else "new"
        lines.append(f"{change.alarm}: {before} -> {change.state.value} at {when}\n  {change.reason}")
    body = "\n\n".join(lines) + "\n\n`cv-analytics status` shows every alarm; `cv-analytics dlq list QUEUE` the dead letters.\n"
    return subject[:200], body
