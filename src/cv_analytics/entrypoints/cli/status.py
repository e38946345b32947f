"""``status``: the queues, the store and the client spool's backlog."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ...client import spool_status
from ...ops.status import SystemStatus, collect_status
from . import environment
from .commands import FLAG, command

# soft_wrap: rows stay on one line whatever the terminal width (scripts grep them)
out = Console(soft_wrap=True)


def current_status() -> SystemStatus:
    """Read-only: a mistyped data directory is reported, never created."""
    queues, unavailable = environment.status_queues(read_only=True)
    store = environment.interaction_store(read_only=True)
    try:
        report = collect_status(queues, store, spool=spool_status(environment.spool_dir()))
    finally:
        store.close()
    report.extra["unavailableQueues"] = [{"name": name, "error": error} for name, error in unavailable]
    report.extra["alarms"] = [_alarm_json(row) for row in environment.alarm_rows()]
    report.extra["lastRuns"] = [
        {"component": r.component, "at": _iso(r.at), "ok": r.ok, "detail": r.detail} for r in environment.run_rows()
    ]
    return report


def _alarm_json(row: Any) -> dict[str, Any]:
    return {
        "alarm": row.alarm,
        "kind": row.kind.value,
        "state": row.state.value,
        "value": row.value,
        "reason": row.reason,
        "since": _iso(row.since),
        "checkedAt": _iso(row.checked_at),
    }


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat(timespec="seconds")


def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.", **FLAG)] = False) -> None:
    """Queues and DLQs (visible, in flight, age of oldest), interactions and pending events."""
    report = current_status()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    table = Table(title="queues")
    for column in ("queue", "visible", "in flight", "delayed", "oldest age (s)"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for q in report.queues:
        age = "-" if q.oldest_age_seconds is None else f"{q.oldest_age_seconds:.0f}"
        table.add_row(q.name, str(q.visible), str(q.in_flight), str(q.delayed), age)
    out.print(table)
    store = report.store
    out.print(
        f"interactions: {store.total_interactions} ("
        + ", ".join(f"{status.value} {n}" for status, n in store.interactions.items())
        + f"); pending: {store.pending_queries} queries, {store.pending_responses} responses"
    )
    for dead in report.dead_letters:
        if dead.depth:
            reasons = ", ".join(f"{reason} ({n})" for reason, n in dead.reasons)
            out.print(f"{dead.dead_letter_queue}: {dead.depth} dead letter(s); reasons: {reasons}", markup=False)
    if report.runs is not None:
        last_write = report.runs.last_worker_write_ms
        out.print(f"last worker write: {_when(last_write) if last_write else 'never'}")
        if report.runs.reports:
            last = report.runs.reports[0]
            out.print(f"last report sent: {last.week} to {last.recipient} via {last.channel} on {_when(last.sent_at)}")
    spool = report.spool
    if spool is not None and spool.events:
        out.print(
            f"spool: {spool.events} event(s), {spool.bytes} bytes in {spool.segments} segment(s) not sent yet "
            f"(oldest {spool.oldest or '-'}): `cv-analytics spool replay` sends them now"
        )
    if spool is not None and spool.dropped:
        out.print(
            f"spool: {spool.dropped} event(s) dropped by clients, the last at {spool.last_drop or '-'} "
            "(their buffer was full or the spool at its bound, CV_ANALYTICS_SPOOL_MAX_BYTES)",
            markup=False,
        )
    for run in report.extra["lastRuns"]:
        outcome = "ok" if run["ok"] else "FAILED"
        out.print(f"last {run['component']} run: {run['at']} {outcome}: {run['detail']}", markup=False)
    for unavailable in report.extra["unavailableQueues"]:
        out.print(f"{unavailable['name']}: not readable: {unavailable['error']}", markup=False)
    alarms = report.extra["alarms"]
    if not alarms:
        out.print("alarms: not checked yet (the worker and the scheduler check them every minute)")
        return
    states = Counter(alarm["state"] for alarm in alarms)
    out.print("alarms: " + ", ".join(f"{n} {state}" for state, n in sorted(states.items())))
    for alarm in alarms:
        if alarm["state"] != "OK":
            out.print(f"  {alarm['state']} {alarm['alarm']} since {alarm['since']}: {alarm['reason']}", markup=False)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def register(app: typer.Typer) -> None:
    command(app)(status)
