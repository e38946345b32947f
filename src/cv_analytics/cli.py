"""The ``cv-analytics`` command line. Other tools script against these names: keep them."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import pathlib
import signal
import sys
import uuid
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .wiring import ANALYTICS_QUEUE, Settings, open_queue, open_store
from .events import MAX_EVENT_BYTES
from .exceptions import CVAnalyticsError
from .queues.base import MAX_BATCH_SIZE, OutgoingMessage

app = typer.Typer(
    name="cv-analytics",
    help="Fire-and-forget analytics for a CV chatbot: queue, processor, store, weekly report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# soft_wrap: paths and messages stay on one line, whatever the terminal width (scripts grep them)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class _State:
    data_dir: pathlib.Path | None = None


def settings() -> Settings:
    return Settings.from_env(data_dir=_State.data_dir)


@app.callback()
def main(
    data_dir: Annotated[
        Optional[pathlib.Path],
        typer.Option(help="Where embedded data lives [env CV_ANALYTICS_DATA_DIR; default ./cv-analytics-data]"),
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).")] = 0,
) -> None:
    _State.data_dir = data_dir
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


# -- send -----------------------------------------------------------------------


def _read_bodies(paths: list[pathlib.Path]) -> list[tuple[str, str]]:
    """(where, body) for each message: a .json file holds one, a .jsonl file one per line."""
    bodies: list[tuple[str, str]] = []
    for path in paths:
        if not path.is_file():
            raise _fail(f"{path}: no such file")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            bodies.extend((f"{path}:{n}", line) for n, line in enumerate(text.splitlines(), 1) if line.strip())
        else:
            bodies.append((str(path), text))
    return bodies


def _routing(body: str, replay: bool) -> tuple[str, str]:
    """Group and deduplication ids for a raw body, as a producer would set them.

    Valid-looking events get ``<correlationId>:<eventType>`` and their session
    (else correlation id) as group; anything else is routed by content hash so it
    still reaches the processor, which dead-letters it with a reason.
    """
    group = dedup = None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        cid = data.get("correlationId") or data.get("requestId")
        kind = data.get("eventType")
        if isinstance(cid, str) and cid and isinstance(kind, str) and kind:
            dedup = f"{cid}:{kind}"[:128]
            session = data.get("sessionId")
            group = session if isinstance(session, str) and session else cid
    digest = hashlib.sha256(body.encode()).hexdigest()
    group = (group or f"raw-{digest[:16]}")[:128]
    dedup = dedup or digest
    if replay:  # a fresh id, as replaying an archive or a retry after the window would have
        dedup = f"{dedup[:80]}:replay:{uuid.uuid4().hex}"
    return group, dedup


@app.command()
def send(
    paths: Annotated[list[pathlib.Path], typer.Argument(help=".json files (one body) or .jsonl files (one per line)")],
    replay: Annotated[bool, typer.Option(help="Give each message a fresh deduplication id.")] = False,
) -> None:
    """Enqueue message bodies exactly as given, valid or not."""
    bodies = _read_bodies(paths)
    queue = open_queue(settings())
    refused: list[str] = []
    accepted: list[tuple[str, OutgoingMessage]] = []
    for where, body in bodies:
        size = len(body.encode())
        if size > MAX_EVENT_BYTES:
            refused.append(f"{where}: body is {size} bytes, over the {MAX_EVENT_BYTES}-byte queue limit; not sent")
            continue
        group, dedup = _routing(body, replay)
        accepted.append((where, OutgoingMessage(body, group_id=group, dedup_id=dedup)))
    sent = 0
    try:
        for start in range(0, len(accepted), MAX_BATCH_SIZE):
            chunk = accepted[start : start + MAX_BATCH_SIZE]
            for (where, _), outcome in zip(chunk, queue.send_batch([m for _, m in chunk]), strict=True):
                if outcome.ok:
                    sent += 1
                else:
                    refused.append(f"{where}: {outcome.error}")
    except CVAnalyticsError as exc:
        raise _fail(f"queue {ANALYTICS_QUEUE!r} unavailable after {sent} sent: {exc}") from exc
    for problem in refused:
        console.print(f"[red]refused[/red] {problem}")
    console.print(f"sent {sent} message(s) to {ANALYTICS_QUEUE!r}, refused {len(refused)}")
    if refused:
        raise typer.Exit(1)


# -- worker ---------------------------------------------------------------------


@app.command()
def worker(
    drain: Annotated[bool, typer.Option(help="Return once no message is visible or in flight.")] = False,
    wait: Annotated[float, typer.Option(help="Long-poll wait in seconds (0–20).")] = 5.0,
) -> None:
    """Run the processor: correlate events into interactions. SIGTERM finishes the batch in hand."""
    from .processor import Worker

    cfg = settings()
    run = Worker(
        open_queue(cfg), open_store(cfg), wait_seconds=wait, orphan_timeout_seconds=cfg.orphan_timeout_seconds
    )

    def _stop(signum: int, _frame: Any) -> None:
        console.print(f"{signal.Signals(signum).name}: finishing the batch in hand")
        run.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stats = run.run(drain=drain)
    console.print(
        f"processed {stats.messages} message(s) in {stats.batches} batch(es): "
        f"{stats.correlated} correlated, {stats.pending} pending, {stats.duplicates} duplicate, "
        f"{stats.failed} failed, {stats.dead_lettered} dead-lettered"
    )


# -- export ---------------------------------------------------------------------


@app.command()
def export(
    week: Annotated[Optional[str], typer.Option(help="ISO week, e.g. 2026-W47 (default: all)")] = None,
    format: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
) -> None:
    """Interactions to stdout: camelCase fields like the wire format, plus status and week."""
    if format not in ("jsonl", "csv"):
        raise _fail(f"--format must be jsonl or csv, not {format!r}")
    if week is not None:
        from .reporting.weeks import parse_week

        try:
            week = parse_week(week)
        except CVAnalyticsError as exc:
            raise _fail(f"--week: {exc}") from exc
    store = open_store(settings())
    stream = sys.stdout
    writer: csv.DictWriter[str] | None = None
    for interaction in store.iter_interactions(week):
        row = interaction.to_export()
        if format == "jsonl":
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            continue
        if writer is None:
            writer = csv.DictWriter(stream, fieldnames=list(row))
            writer.writeheader()
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for k, v in row.items()})


# -- status ---------------------------------------------------------------------


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Queues and DLQs (visible, in flight, age of oldest), interactions and pending events."""
    from .ops.status import collect_status

    report = collect_status(settings())
    if as_json:
        out.print_json(json.dumps(report))
        return
    table = Table(title="queues")
    for column in ("queue", "visible", "in flight", "delayed", "oldest age (s)"):
        table.add_column(column, justify="left" if column == "queue" else "right")
    for q in report["queues"]:
        age = q["oldestAgeSeconds"]
        table.add_row(q["name"], str(q["visible"]), str(q["inFlight"]), str(q["delayed"]), "-" if age is None else f"{age:.0f}")
    out.print(table)
    store = report["store"]
    inter = store["interactions"]
    out.print(
        f"interactions: {store['totalInteractions']} ("
        + ", ".join(f"{k} {v}" for k, v in inter.items())
        + f"); pending: {store['pendingQueries']} queries, {store['pendingResponses']} responses"
    )


# -- demo -----------------------------------------------------------------------


@app.command()
def demo(
    interactions: Annotated[int, typer.Option(help="How many recruiter questions to simulate.")] = 2000,
    data_dir: Annotated[Optional[pathlib.Path], typer.Option(help="Where to keep the demo's data.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed, for a repeatable run.")] = 7,
) -> None:
    """Simulate two ISO weeks of recruiter traffic through the real client, queue and processor."""
    from .demo import run_demo

    if data_dir is not None:
        _State.data_dir = data_dir
        os.environ["CV_ANALYTICS_DATA_DIR"] = str(data_dir)
    run_demo(settings(), interactions=interactions, seed=seed, console=out)


# -- dlq ------------------------------------------------------------------------

dlq_app = typer.Typer(help="Inspect and redrive the dead-letter queue.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("show")
def dlq_show(
    limit: Annotated[int, typer.Option(help="How many messages to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Dead-lettered messages with the reason each failed (they stay in the DLQ)."""
    from .ops.dlq import peek_dead_letters

    letters = peek_dead_letters(open_queue(settings()), limit)
    if as_json:
        out.print_json(json.dumps([letter.__dict__ for letter in letters]))
        return
    table = Table(title=f"dead letters ({len(letters)} shown)")
    for column in ("message id", "group", "receives", "reason", "body"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        body = letter.body if len(letter.body) <= 120 else letter.body[:117] + "..."
        receives = "" if letter.receive_count is None else str(letter.receive_count)
        table.add_row(letter.message_id, letter.group_id or "", receives, letter.reason or "", body)
    out.print(table)


@dlq_app.command("redrive")
def dlq_redrive(
    max_messages: Annotated[Optional[int], typer.Option("--max", help="Move at most this many.")] = None,
) -> None:
    """Move dead-lettered messages back to their queue, for the worker to try again."""
    moved = open_queue(settings()).redrive(max_messages)
    console.print(f"moved {moved} message(s) back to {ANALYTICS_QUEUE!r}")


def _mount_optional() -> None:
    """Sub-apps of other parts, mounted when present."""
    from .reporting.cli import register as register_reporting

    register_reporting(app)  # `cv-analytics report` and `cv-analytics scheduler`
    __import__("cv_analytics.spool_cli", fromlist=["register"]).register(app)  # `cv-analytics spool`
    try:
        from .aws.cli import aws_app
    except ImportError:
        return
    app.add_typer(aws_app, name="aws")


_mount_optional()

if __name__ == "__main__":  # pragma: no cover
    app()
