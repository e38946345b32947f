"""``cv-analytics spool``: the backlog a client left in its spool, shown and sent.

An entry point (it reads the settings); the work is :func:`cv_analytics.client.spool_status`
and :func:`cv_analytics.client.replay_spool`.
"""

from __future__ import annotations

import json
import pathlib
from typing import Annotated, Optional

import typer

from cv_analytics.client import replay_spool, spool_status
from cv_analytics.wiring import Settings, open_queue
from cv_analytics.exceptions import CVAnalyticsError

spool_app = typer.Typer(help="Events a client left in its disk spool: show them, send them.", no_args_is_help=True)


def _settings(ctx: typer.Context) -> Settings:
    data_dir: Optional[pathlib.Path] = ctx.find_root().params.get("data_dir")
    return Settings.from_env(data_dir=data_dir)


@spool_app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Events waiting in the spool (read-only: never creates the directory)."""
    result = spool_status(_settings(ctx).spool_dir)
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
    )


@spool_app.command("replay")
def replay(ctx: typer.Context) -> None:
    """Send every spooled event no running client holds to the analytics queue, in order."""
    settings = _settings(ctx)
    try:
        result = replay_spool(settings.spool_dir, open_queue(settings))
    except CVAnalyticsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"replayed {result.sent} event(s) from {settings.spool_dir}: {result.failed} refused by the queue, "
        f"{result.invalid} invalid, {result.left} left in the spool"
    )
    if result.error:
        typer.echo(f"error: stopped early: {result.error}; run `cv-analytics spool replay` again", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount ``spool status`` and ``spool replay`` on the ``cv-analytics`` app."""
    app.add_typer(spool_app, name="spool")
