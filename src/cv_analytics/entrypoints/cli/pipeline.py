"""``send``, ``worker`` and ``export``: messages in, interactions out."""

from __future__ import annotations

import csv
import json
import pathlib
import signal
import sys
from typing import Annotated, Any, Optional

import typer

from ...wiring import ANALYTICS_QUEUE
from ...queues.base import UNAVAILABLE_ERROR_CODE, OutgoingMessage
from . import environment
from ..priority import lower_priority
from .commands import FLAG, command
from .bodies import Body, Refusal, read_bodies, routing
from .errors import USAGE_EXIT_CODE, CommandError


def _say(message: str) -> None:
    typer.echo(message, err=True)


def send(
    paths: Annotated[list[pathlib.Path], typer.Argument(help=".json files (one body) or .jsonl files (one per line)")],
    replay: Annotated[bool, typer.Option(help="Give each message a fresh deduplication id.", **FLAG)] = False,
) -> None:
    """Enqueue message bodies exactly as given, valid or not.

    Refused, each with its file and line: empty bodies, bodies over 256 KiB,
    text that is not UTF-8, directories and missing files; the rest is sent, and
    the exit code is 1 if anything was refused.
    """
    bodies, refused = read_bodies(paths)
    queue = environment.analytics_queue()
    messages: list[tuple[Body, OutgoingMessage]] = []
    for body in bodies:
        group, dedup = routing(body.text, replay=replay)
        messages.append((body, OutgoingMessage(body.text, group_id=group, dedup_id=dedup)))
    sent = duplicates = unavailable = 0
    for (body, _), outcome in zip(messages, queue.send_many([m for _, m in messages]), strict=True):
        if outcome.duplicate:
            duplicates += 1
        elif outcome.ok:
            sent += 1
        else:
            unavailable += outcome.error_code == UNAVAILABLE_ERROR_CODE
            refused.append(Refusal(body.where, f"{outcome.error}: not sent"))
    for refusal in refused:
        _say(f"refused {refusal}")
    summary = f"sent {sent} message(s) to {ANALYTICS_QUEUE!r}, refused {len(refused)}"
    if duplicates:
        summary += f", {duplicates} duplicate(s) the queue already had (same deduplication id; use --replay to resend)"
    _say(summary)
    if unavailable:
        raise CommandError(f"queue {ANALYTICS_QUEUE!r} was unavailable for {unavailable} message(s): rerun the same send later")
    if refused:
        raise typer.Exit(1)


def _record_worker_run(stats: Any) -> None:
    environment.record_run(
        "worker",
        ok=stats.outages == 0,
        detail=f"{stats.messages} message(s) handled, {stats.failed} retried, {stats.dead_lettered} dead-lettered, "
        f"{stats.outages} outage(s) since it started",
    )


def _totals(stats: Any) -> tuple[int, int]:
    """(messages handled, messages that failed) so far, for the error-rate alarm."""
    return stats.messages, stats.failed + stats.dead_lettered


def worker(
    drain: Annotated[bool, typer.Option(help="Return once no message is visible or in flight.", **FLAG)] = False,
    wait: Annotated[float, typer.Option(help="Long-poll wait in seconds.", min=0, max=20)] = 5.0,
) -> None:
    """Run the processor: correlate events into interactions. SIGTERM finishes the batch in hand.

    A damaged database stops it with the commands to check and recover the file.
    """
    from ...processor import Worker
    from ...queues.consumer import PeriodicTask
    from .retention import prune_task

    lower_priority(environment.settings().worker_nice)  # already so under serve: a no-op then

    store = environment.interaction_store()
    run = Worker(
        environment.analytics_queue(),
        store,
        wait_seconds=wait,
        orphan_timeout_seconds=environment.orphan_timeout_seconds(),
        tasks=[
            *environment.report_preparation_tasks(store),
            *environment.alarm_tasks(store=store, totals=lambda: _totals(run.stats)),
            prune_task(store),
            PeriodicTask("record-run", 60.0, lambda: _record_worker_run(run.stats)),
        ],
        redact_pii=environment.settings().redact_pii,
    )

    def _stop(signum: int, _frame: Any) -> None:
        _say(f"{signal.Signals(signum).name}: finishing the batch in hand")
        run.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stats = run.run(drain=drain, on_batch=environment.batch_metrics(ANALYTICS_QUEUE, run.clock))
    _say(
        f"processed {stats.messages} message(s) in {stats.batches} batch(es): "
        f"{stats.correlated} correlated, {stats.pending} pending, {stats.duplicates} duplicate, "
        f"{stats.failed} failed, {stats.dead_lettered} dead-lettered"
    )


def _csv_value(value: object) -> object:
    """CSV cells as JSON writes them: booleans ``true``/``false``, lists as JSON, None empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def export(
    week: Annotated[Optional[str], typer.Option(help="ISO week, e.g. 2026-W47 (default: all)")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",  # noqa: A002
    to: Annotated[
        Optional[str],
        typer.Option("--to", help="Write to this file, or to s3://bucket/key, instead of stdout (written whole or not at all)."),
    ] = None,
) -> None:
    """Interactions to stdout (or --to a file or S3): camelCase fields like the wire format, plus status and week."""
    from ...reporting.weeks import parse_week

    if format not in ("jsonl", "csv"):
        raise CommandError(f"--format must be jsonl or csv, not {format!r}", USAGE_EXIT_CODE)
    if week is not None:
        week = parse_week(week)  # a ConfigurationError: exit 2, as from `report`
    store = environment.interaction_store(read_only=True)
    try:
        if to is None:
            count = _write_export(store, week, format, sys.stdout)
        else:
            from ...wiring.archive import destination

            with destination(environment.settings(), to) as stream:
                count = _write_export(store, week, format, stream)
            _say(f"exported {count} interaction(s) to {to}")
    finally:
        store.close()


def _write_export(store: Any, week: str | None, format: str, stream: Any) -> int:  # noqa: A002
    """The interactions of ``week`` (all when None) as JSON lines or CSV on ``stream``; how many."""
    writer: csv.DictWriter[str] | None = None
    count = 0
    for interaction in store.iter_interactions(week):
        count += 1
        row = interaction.to_export()
        if format == "jsonl":
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            continue
        if writer is None:
            writer = csv.DictWriter(stream, fieldnames=list(row))
            writer.writeheader()
        writer.writerow({key: _csv_value(value) for key, value in row.items()})
    stream.flush()  # a full disk shows here, not at exit after the error handling is gone
    return count


def register(app: typer.Typer) -> None:
    command(app)(send)
    command(app)(worker)
    command(app)(export)
