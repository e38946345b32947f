"""Alarm states, and the last run of each background process, in a small SQLite file of the data
directory shared by every process that checks alarms.

One row per alarm: its state, since when, why, and the state the owner was
last told about. A change recorded by one process is not recorded again by
another (the row already holds the new state), and a notice is leased to the
process sending it, so each change is notified once.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

from .._sqlite import SQLiteConnections
from .alarms import AlarmChange, AlarmKind, AlarmState, Evaluation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_states (
    alarm TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    value REAL,
    reason TEXT NOT NULL,
    since REAL NOT NULL,
    checked_at REAL NOT NULL,
    notified_state TEXT NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    component TEXT PRIMARY KEY,
    at REAL NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class RunRow:
    """The last run of a background process (``worker``, ``scheduler``) and how it went."""

    component: str
    at: float
    ok: bool
    detail: str


@dataclass(frozen=True)
class AlarmRow:
    """One alarm as ``status`` shows it."""

    alarm: str
    kind: AlarmKind
    state: AlarmState
    value: float | None
    reason: str
    since: float
    checked_at: float


class SQLiteAlarmStates:
    def __init__(self, path: str | pathlib.Path) -> None:
        self._db = SQLiteConnections(path, on_connect=lambda conn: conn.executescript(_SCHEMA))

    def record(self, evaluations: Sequence[Evaluation], at: float) -> list[AlarmChange]:
        changes: list[AlarmChange] = []
        with self._db.transaction() as conn:
            for ev in evaluations:
                row = conn.execute("SELECT state FROM alarm_states WHERE alarm = ?", (ev.alarm,)).fetchone()
                if row is None:
                    # A new alarm that starts in ALARM is news; one that starts OK (or without data) is not.
                    told = AlarmState.OK if ev.state is AlarmState.ALARM else ev.state
                    conn.execute(
                        "INSERT INTO alarm_states (alarm, kind, state, value, reason, since, checked_at, notified_state) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (ev.alarm, ev.kind.value, ev.state.value, ev.value, ev.reason, at, at, told.value),
                    )
                    changes.append(AlarmChange(ev.alarm, None, ev.state, ev.value, ev.reason, at))
                elif row[0] != ev.state.value:
                    conn.execute(
                        "UPDATE alarm_states SET state = ?, value = ?, reason = ?, since = ?, checked_at = ? WHERE alarm = ?",
                        (ev.state.value, ev.value, ev.reason, at, at, ev.alarm),
                    )
                    changes.append(AlarmChange(ev.alarm, AlarmState(row[0]), ev.state, ev.value, ev.reason, at))
                else:
                    conn.execute(
                        "UPDATE alarm_states SET value = ?, reason = ?, checked_at = ? WHERE alarm = ?",
                        (ev.value, ev.reason, at, ev.alarm),
                    )
        return changes

    def claim_notifications(self, at: float, lease_seconds: float) -> list[AlarmChange]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT alarm, notified_state, state, value, reason, since FROM alarm_states "
                "WHERE state != notified_state AND lease_until <= ? ORDER BY alarm",
                (at,),
            ).fetchall()
            conn.executemany(
                "UPDATE alarm_states SET lease_until = ? WHERE alarm = ?", [(at + lease_seconds, r[0]) for r in rows]
            )
        return [AlarmChange(r[0], AlarmState(r[1]), AlarmState(r[2]), r[3], r[4], r[5]) for r in rows]

    def notified(self, changes: Sequence[AlarmChange]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "UPDATE alarm_states SET notified_state = ?, lease_until = 0 WHERE alarm = ?",
                [(c.state.value, c.alarm) for c in changes],
            )

    def release(self, changes: Sequence[AlarmChange]) -> None:
        with self._db.transaction() as conn:
            conn.executemany("UPDATE alarm_states SET lease_until = 0 WHERE alarm = ?", [(c.alarm,) for c in changes])

    def rows(self) -> list[AlarmRow]:
        conn = self._db.get()
        return [
            AlarmRow(r[0], AlarmKind(r[1]), AlarmState(r[2]), r[3], r[4], r[5], r[6])
            for r in conn.execute(
                "SELECT alarm, kind, state, value, reason, since, checked_at FROM alarm_states ORDER BY alarm"
            )
        ]

    def record_run(self, component: str, at: float, *, ok: bool, detail: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO runs (component, at, ok, detail) VALUES (?, ?, ?, ?)",
                (component, at, int(ok), detail[:500]),
            )

    def runs(self) -> list[RunRow]:
        return [
            RunRow(r[0], r[1], bool(r[2]), r[3])
            for r in self._db.get().execute("SELECT component, at, ok, detail FROM runs ORDER BY component")
        ]

    def close(self) -> None:
        self._db.close()
