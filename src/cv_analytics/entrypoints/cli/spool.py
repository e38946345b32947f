"""``spool status`` and ``spool replay``: the backlog a client left in its disk spool, shown and sent.

The work is :func:`cv_analytics.client.spool_status` and
:func:`cv_analytics.client.replay_spool`; this module only words it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ...client import replay_spool, spool_status
from . import environment
from .commands import FLAG, command, new_typer
from .errors import CommandError

spool_app = new_typer(help="Events a client left in its disk spool: show them, send them.")


@command(spool_app, "status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.", **FLAG)] = False) -> None:
    """Events waiting in the spool (read-only: never creates the directory)."""
    result = spool_status(environment.spool_dir())
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    if not result.exists:
        typer.echo(f"spool {result.directory}: does not exist (nothing spooled)")
        return
    typer.echo(
        f"spool {result.directory}: {result.events} event(s) in {result.segments} segment(s), "
        f"{result.bytes} bytes; oldest {result.oldest or '-'}; "
        f"{result.held_segments} segment(s) held by a running client"
        + (f"; {result.corrupt_lines} unreadable line(s)" if result.corrupt_lines else "")
        + (f"; {result.dropped} event(s) dropped by clients, the last at {result.last_drop}" if result.dropped else "")
    )


@command(spool_app, "replay")
def replay() -> None:
    """Send every spooled event no running client holds to the analytics queue, in order."""
    directory = environment.spool_dir()
    result = replay_spool(directory, environment.analytics_queue())
    typer.echo(
        f"replayed {result.sent} event(s) from {directory}: {result.failed} refused by the queue, "
        f"{result.invalid} invalid, {result.left} left in the spool"
    )
    if result.error:
        raise CommandError(f"stopped early: {result.error}; run `cv-analytics spool replay` again")


def register(app: typer.Typer) -> None:
    app.add_typer(spool_app, name="spool")
