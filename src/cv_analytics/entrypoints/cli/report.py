"""``report`` and ``scheduler``: the weekly report, now or on a schedule."""

from __future__ import annotations

import datetime as dt
import pathlib
import signal
from typing import Annotated, Any, Optional

import typer

from ...clock import SystemClock
from ...exceptions import ConfigurationError, ReportDeliveryError
from ...reporting.builder import build_report
from ...reporting.delivery import (
    DeliveryResult,
    DeliveryStatus,
    normalise_formats,
    send_weekly_report,
    write_report,
)
from ...wiring import insights_for, load_skills_catalog
from ...wiring.reporting import addresses, open_deliverer
from ...reporting.render import render
from ...reporting.schedule import DEFAULT_RETRY_SECONDS, DEFAULT_SCHEDULE, ReportScheduler, parse_schedule
from ...reporting.weeks import last_complete_week, parse_week
from . import environment
from .commands import FLAG, command
from .errors import CommandError

SCHEDULE_VARIABLE = environment.SCHEDULE_VARIABLE


def _describe(result: DeliveryResult) -> str:
    when = dt.datetime.fromtimestamp(result.sent_at / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if result.status is DeliveryStatus.SENT:
        return f"sent the {result.week} report to {result.recipient} via {result.channel}"
    return (
        f"the {result.week} report was already sent to {result.recipient} on {when} via {result.channel}; "
        "use --force to send it again"
    )


def _check_out_dir(out: pathlib.Path) -> None:
    """``--out`` names a directory (made if missing): refuse a file there before building anything."""
    for path in (out, *out.parents):
        if path.exists() and not path.is_dir():
            raise ConfigurationError(f"--out {out}: {path} is a file, not a directory; give a directory for the report files")


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
            **FLAG,
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --send: send again even if already sent.", **FLAG)] = False,
) -> None:
    """Build the weekly report: print it, write it to files, and/or send it."""
    chosen_week = parse_week(week) if week else last_complete_week(SystemClock().now())
    formats = normalise_formats(format or (["html"] if out else ["text"]))
    if force and not send:
        raise ConfigurationError("--force only makes sense with --send")
    if not out and not send and len(formats) != 1:
        raise ConfigurationError("several formats need --out DIR (only one can be printed)")
    if not out and not send and formats == ("eml",):
        raise ConfigurationError("the eml format needs --out DIR")
    if out is not None:
        _check_out_dir(out)
    settings = environment.settings()
    deliverer = open_deliverer(settings) if send else None
    sender, recipients = addresses(settings) if send else (None, ())
    # only --send records anything (the send-once marks): otherwise a mistyped directory is reported, not created
    store = environment.interaction_store(read_only=not send)
    insights, catalog = insights_for(store), load_skills_catalog(settings)
    try:
        # queries that waited past the orphan timeout count as unanswered in the week they were asked,
        # even when no worker ran since (issue 7, item 8)
        store.sweep_orphans(settings.orphan_timeout_seconds)
        if out is not None:
            paths = write_report(
                insights, chosen_week, out, formats, catalog=catalog, sender=sender, recipients=recipients
            )
            for path in paths.values():
                typer.echo(str(path))
        elif not send:
            rendered = render(build_report(insights, chosen_week, catalog=catalog))
            typer.echo({"html": rendered.html, "text": rendered.text, "json": rendered.json}[formats[0]], nl=False)
        if deliverer is not None and sender is not None:
            try:
                results = send_weekly_report(
                    store, chosen_week, deliverer, insights=insights, catalog=catalog,
                    sender=sender, recipients=recipients, force=force,
                )  # fmt: skip
            except ReportDeliveryError as exc:
                for result in getattr(exc, "results", []):
                    typer.echo(_describe(result), err=True)
                raise CommandError(f"{exc}. Nothing was marked sent for the failed recipient(s); rerun to retry.") from exc
            for result in results:
                typer.echo(_describe(result), err=True)
    finally:
        store.close()


def _schedule(cron: str | None) -> Any:
    """The schedule from --cron, else the variable, else the default; an error names where the bad one came from."""
    if cron:
        expression, source = cron, "--cron"
    elif environment.environment().get(SCHEDULE_VARIABLE):
        expression, source = environment.environment()[SCHEDULE_VARIABLE], SCHEDULE_VARIABLE
    else:
        expression, source = DEFAULT_SCHEDULE, "the default schedule"
    try:
        return parse_schedule(expression)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}={expression!r}: {exc}") from exc


def scheduler_command(
    cron: Annotated[
        Optional[str],
        typer.Option(
            "--cron",
            help=f"EventBridge cron expression, UTC (env {SCHEDULE_VARIABLE}; default {DEFAULT_SCHEDULE}).",
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Wait for the next fire time, run once, exit (status 1 if it failed).", **FLAG),
    ] = False,
    next_count: Annotated[
        int, typer.Option("--next", metavar="N", help="Print the next N fire times and exit.", min=0)
    ] = 0,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up/--no-catch-up", help="On start, send the latest due report if it was not sent yet.", **FLAG
        ),
    ] = True,
    retry_minutes: Annotated[
        float, typer.Option(help="After a failure, retry this often until the next fire time.", min=0.1)
    ] = DEFAULT_RETRY_SECONDS / 60,
) -> None:
    """Send the weekly report on a schedule (EventBridge cron syntax, UTC) for the week just ended."""
    schedule = _schedule(cron)
    clock = SystemClock()
    now = dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC)
    if next_count:
        for fire in schedule.upcoming(now, next_count):
            typer.echo(f"{fire.isoformat()}  report for {last_complete_week(fire)}")
        return
    settings = environment.settings()
    deliverer = open_deliverer(settings)
    sender, recipients = addresses(settings)
    store = environment.interaction_store()
    insights, catalog = insights_for(store), load_skills_catalog(settings)

    def job(week: str) -> None:
        try:
            store.sweep_orphans(settings.orphan_timeout_seconds)
            results = send_weekly_report(
                store, week, deliverer, insights=insights, catalog=catalog, sender=sender, recipients=recipients
            )
        except Exception as exc:
            environment.record_run("scheduler", ok=False, detail=f"report for {week} failed, retrying: {exc}")
            raise
        environment.record_run("scheduler", ok=True, detail=f"report for {week}: " + "; ".join(_describe(r) for r in results))
        for result in results:
            typer.echo(_describe(result))

    scheduler = ReportScheduler(
        schedule,
        job,
        clock,
        retry_seconds=retry_minutes * 60,
        catch_up=catch_up and not once,
        tasks=environment.alarm_tasks(store=store),
    )

    def _stop(signum: int, _frame: Any) -> None:
        # only the flag: an exception raised here could land in a report's send, after the server
        # took the message and before it is recorded as sent, and the restart would send it again
        typer.echo(f"{signal.Signals(signum).name}: finishing the report in hand", err=True)
        scheduler.stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    upcoming = schedule.upcoming(now, 1)
    fires = (
        f"next at {upcoming[0].isoformat()} (report for {last_complete_week(upcoming[0])})" if upcoming else "no fire time ahead"
    )
    typer.echo(f"scheduler: {schedule.expression} (UTC), sending to {', '.join(recipients)}; {fires}", err=True)
    try:
        history = scheduler.run(max_fires=1 if once else None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    for run in history:
        if run.error:
            typer.echo(f"error: {run.week}: {run.error}", err=True)
    if once and (not history or not history[-1].ok):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``report`` and ``scheduler`` to the main ``cv-analytics`` app."""
    command(app, "report")(report_command)
    command(app, "scheduler")(scheduler_command)
