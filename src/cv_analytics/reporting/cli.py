"""``cv-analytics report`` and ``cv-analytics scheduler``.

Plain functions with typer annotations, registered on the main app by
:func:`register` (``cv_analytics.cli`` calls it).
"""

from __future__ import annotations

import datetime as dt
import logging
import pathlib
import signal
from typing import Annotated, Any, Optional

import typer

from ..clock import SystemClock
from ..wiring import PREFIX, Settings, open_store
from ..exceptions import ConfigurationError, CVAnalyticsError, ReportDeliveryError
from .builder import build_report
from .delivery import (
    DeliveryResult,
    DeliveryStatus,
    addresses,
    normalise_formats,
    open_deliverer,
    send_weekly_report,
    write_report,
)
from .render import render
from .schedule import DEFAULT_RETRY_SECONDS, DEFAULT_SCHEDULE, ReportScheduler, parse_schedule
from .weeks import last_complete_week, parse_week

log = logging.getLogger(__name__)
SCHEDULE_VARIABLE = f"{PREFIX}REPORT_SCHEDULE"


def _settings() -> Settings:
    """The main CLI's settings (honouring its --data-dir) when it is loaded, else the environment's."""
    try:
        from ..cli import settings
    except ImportError:  # pragma: no cover - the main CLI is part of the package
        return Settings.from_env()
    return settings()


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _describe(result: DeliveryResult) -> str:
    when = dt.datetime.fromtimestamp(result.sent_at / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if result.status is DeliveryStatus.SENT:
        return f"sent the {result.week} report to {result.recipient} via {result.channel}"
    return (
        f"the {result.week} report was already sent to {result.recipient} on {when} via {result.channel}; "
        "use --force to send it again"
    )


def report_command(
    week: Annotated[
        Optional[str], typer.Option(help="ISO week to report, e.g. 2026-W47 (default: the last complete week).")
    ] = None,
    format: Annotated[  # noqa: A002 - the option is --format
        Optional[list[str]],
        typer.Option(
            "--format",
            "-f",
            help="html, text, json, eml or all; repeat for several (default: html with --out, else text).",
        ),
    ] = None,
    out: Annotated[
        Optional[pathlib.Path], typer.Option(help="Write the report into this directory and print the file paths.")
    ] = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Deliver it (SMTP by default, see CV_ANALYTICS_SMTP_*) to RECIPIENT_EMAIL, once per week and recipient.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --send: send again even if already sent.")] = False,
) -> None:
    """Build the weekly report: print it, write it to files, and/or send it."""
    try:
        settings = _settings()
        chosen_week = parse_week(week) if week else last_complete_week(SystemClock().now())
        formats = normalise_formats(format or (["html"] if out else ["text"]))
        if force and not send:
            raise ConfigurationError("--force only makes sense with --send")
        if not out and not send and len(formats) != 1:
            raise ConfigurationError("several formats need --out DIR (only one can be printed)")
        if not out and not send and formats == ("eml",):
            raise ConfigurationError("the eml format needs --out DIR")
        deliverer = open_deliverer(settings) if send else None
        sender, recipients = addresses(settings) if send else (None, ())
        store = open_store(settings)
        try:
            if out is not None:
                paths = write_report(store, chosen_week, out, formats, sender=sender, recipients=recipients)
                for path in paths.values():
                    typer.echo(str(path))
            elif not send:
                rendered = render(build_report(store, chosen_week))
                typer.echo({"html": rendered.html, "text": rendered.text, "json": rendered.json}[formats[0]], nl=False)
            if deliverer is not None and sender is not None:
                results = send_weekly_report(
                    store, chosen_week, deliverer, sender=sender, recipients=recipients, force=force
                )
                for result in results:
                    typer.echo(_describe(result), err=True)
        finally:
            store.close()
    except ConfigurationError as exc:
        raise _fail(str(exc), 2) from exc
    except ReportDeliveryError as exc:
        for result in getattr(exc, "results", []):
            typer.echo(_describe(result), err=True)
        raise _fail(f"{exc}. Nothing was marked sent for the failed recipient(s); rerun to retry.") from exc
    except CVAnalyticsError as exc:
        raise _fail(str(exc)) from exc


def scheduler_command(
    cron: Annotated[
        Optional[str],
        typer.Option(
            "--cron",
            help=f"EventBridge cron expression, UTC (env {SCHEDULE_VARIABLE}; default {DEFAULT_SCHEDULE}).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Wait for the next fire time, run once, exit (status 1 if it failed).")
    ] = False,
    next_count: Annotated[
        int, typer.Option("--next", metavar="N", help="Print the next N fire times and exit.", min=0)
    ] = 0,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up/--no-catch-up", help="On start, send the latest due report if it was not sent yet."
        ),
    ] = True,
    retry_minutes: Annotated[
        float, typer.Option(help="After a failure, retry this often until the next fire time.", min=0.1)
    ] = DEFAULT_RETRY_SECONDS / 60,
) -> None:
    """Send the weekly report on a schedule (EventBridge cron syntax, UTC) for the week just ended."""
    try:
        settings = _settings()
        expression = cron or settings.env.get(SCHEDULE_VARIABLE) or DEFAULT_SCHEDULE
        schedule = parse_schedule(expression)
        clock = SystemClock()
        if next_count:
            now = dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC)
            for fire in schedule.upcoming(now, next_count):
                typer.echo(f"{fire.isoformat()}  report for {last_complete_week(fire)}")
            return
        deliverer = open_deliverer(settings)
        sender, recipients = addresses(settings)
        store = open_store(settings)
    except ConfigurationError as exc:
        raise _fail(str(exc), 2) from exc
    except CVAnalyticsError as exc:
        raise _fail(str(exc)) from exc

    def job(week: str) -> None:
        for result in send_weekly_report(store, week, deliverer, sender=sender, recipients=recipients):
            typer.echo(_describe(result))

    scheduler = ReportScheduler(
        schedule, job, clock, retry_seconds=retry_minutes * 60, catch_up=catch_up and not once
    )

    def _stop(signum: int, _frame: Any) -> None:
        scheduler.stop.set()
        raise KeyboardInterrupt  # interrupt the sleep now rather than at the next wake-up

    previous = signal.signal(signal.SIGTERM, _stop)
    typer.echo(f"scheduler: {schedule.expression} (UTC), sending to {', '.join(recipients)}", err=True)
    try:
        history = scheduler.run(max_fires=1 if once else None)
    except KeyboardInterrupt:
        history = scheduler.history
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()
    for run in history:
        if run.error:
            typer.echo(f"error: {run.week}: {run.error}", err=True)
    if once and (not history or not history[-1].ok):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``report`` and ``scheduler`` to the main ``cv-analytics`` app."""
    app.command("report")(report_command)
    app.command("scheduler")(scheduler_command)
