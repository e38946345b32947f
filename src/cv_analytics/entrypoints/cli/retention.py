"""``prune``: remove what is past its time (expired pending events, interactions past the retention), then compact."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Optional

import typer

from ...clock import SystemClock
from ...queues.consumer import PeriodicTask
from ...stores.base import Store
from . import environment
from .commands import FLAG, command

#: the worker prunes once a day (its first run a day after it starts)
PRUNE_INTERVAL_SECONDS = 24 * 3600.0


def prune_task(store: Store) -> PeriodicTask:
    """The worker's daily prune."""
    from ...ops.retention import prune_store

    days = environment.settings().retention_days
    return PeriodicTask(
        "prune", PRUNE_INTERVAL_SECONDS, lambda: prune_store(store, clock=SystemClock(), retention_days=days), run_on_drain=False
    )


def prune(
    retention_days: Annotated[
        Optional[float],
        typer.Option("--retention-days", help="Keep interactions this many days (env CV_ANALYTICS_RETENTION_DAYS; default 400).", min=0.001),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.", **FLAG)] = False,
) -> None:
    """Delete expired pending events and interactions older than the retention, then compact the store."""
    from ...ops.retention import prune_store

    days = retention_days or environment.settings().retention_days
    store = environment.interaction_store(read_only=True)
    try:
        result = prune_store(store, clock=SystemClock(), retention_days=days)
    finally:
        store.close()
    jobs = _prune_jobs()
    if as_json:
        typer.echo(json.dumps({**result.to_json(), "expiredJobs": jobs}, indent=2))
        return
    cutoff = dt.datetime.fromtimestamp(result.interactions_before_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    typer.echo(
        f"removed {result.expired_pending_events} expired pending event(s) and "
        f"{result.interactions} interaction(s) from before {cutoff} ({days:g} days kept); "
        f"{jobs} finished job(s) past their TTL",
        err=True,
    )


def _prune_jobs() -> int:
    """Finished jobs past their 14 days (and expired idempotency keys), where there is a job store."""
    path = environment.sqlite_file(environment.settings().jobs_store_url)
    if path is not None and not path.exists():
        return 0  # no job was ever submitted here
    with environment.jobs_wiring(read_only=True) as wiring:
        return int(wiring.job_store.purge_expired())


def register(app: typer.Typer) -> None:
    command(app)(prune)
