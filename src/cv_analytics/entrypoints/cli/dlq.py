"""``dlq list|show|redrive|purge [QUEUE]``: a queue's dead letters, why each failed, and what to do with them.

QUEUE is a logical queue name (``analytics`` by default, or a jobs queue);
the command acts on that queue's dead-letter queue. Redriving never
duplicates an interaction or a job: the processor and the jobs store are
idempotent, so a letter that had in fact been handled counts once.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ...exceptions import ConfigurationError
from ...wiring import ANALYTICS_QUEUE
from . import environment
from .commands import FLAG, command, new_typer

out = Console(soft_wrap=True)
dlq_app = new_typer(help="A queue's dead-letter queue: list, show, redrive, purge.")

#: how many letters ``show ID`` looks through for the one asked for
SEARCH_LIMIT = 10_000

QueueArgument = Annotated[
    str, typer.Argument(help="The queue whose dead letters to act on (analytics, or a jobs queue).", show_default=True)
]


def _int_or_none(value: object) -> int | None:
    """Receive counts come as text from some backends: numbers in our output."""
    if value is None or value == "":
        return None
    return int(str(value))


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat(timespec="seconds")


def letter_json(letter: Any, *, body: bool = True) -> dict[str, Any]:
    """One dead letter in ``dlq show --json``'s shape: camelCase, numbers as numbers."""
    shown = {
        "messageId": letter.message_id,
        "groupId": letter.group_id,
        "receiveCount": _int_or_none(letter.receive_count),
        "reason": letter.reason,
        "sourceQueue": letter.source_queue,
        "deadLetteredAt": _iso(letter.dead_lettered_at),
    }
    if body:
        shown["body"] = letter.body
    return shown


def _queue_with_dlq(name: str) -> Any:
    queue = environment.named_queue(name, read_only=True)
    if queue.dead_letter_queue is None:
        raise ConfigurationError(f"queue {queue.name!r} has no dead-letter queue: nothing to show")
    return queue


def _letters(name: str, limit: int) -> list[Any]:
    from ...ops.dlq import peek_dead_letters

    return peek_dead_letters(_queue_with_dlq(name), limit)


def _print_table(letters: list[dict[str, Any]], title: str, *, body: bool) -> None:
    table = Table(title=title)
    columns = ["message id", "group", "receives", "reason", "dead-lettered at"] + (["body"] if body else [])
    for column in columns:
        table.add_column(column, overflow="fold")
    for letter in letters:
        row = [
            letter["messageId"],
            letter["groupId"] or "",
            "" if letter["receiveCount"] is None else str(letter["receiveCount"]),
            letter["reason"] or "",
            letter["deadLetteredAt"] or "",
        ]
        if body:
            row.append(letter["body"] if len(letter["body"]) <= 120 else letter["body"][:117] + "...")
        table.add_row(*row)
    out.print(table)


@command(dlq_app, "list")
def dlq_list(
    queue: QueueArgument = ANALYTICS_QUEUE,
    limit: Annotated[int, typer.Option(help="How many messages to list.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.", **FLAG)] = False,
) -> None:
    """The dead letters of QUEUE, oldest first: id, receive count and failure reason (they stay in the DLQ)."""
    letters = [letter_json(letter, body=False) for letter in _letters(queue, limit)]
    if as_json:
        typer.echo(json.dumps(letters, indent=2))
        return
    _print_table(letters, f"dead letters of {queue} ({len(letters)} listed)", body=False)


@command(dlq_app, "show")
def dlq_show(
    queue: QueueArgument = ANALYTICS_QUEUE,
    message_id: Annotated[Optional[str], typer.Argument(help="One message, whole (else the first --limit, bodies cut).")] = None,
    limit: Annotated[int, typer.Option(help="How many messages to show.", min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.", **FLAG)] = False,
) -> None:
    """Dead-lettered messages of QUEUE with the reason each failed and their bodies (they stay in the DLQ)."""
    if message_id is None:
        letters = [letter_json(letter) for letter in _letters(queue, limit)]
        if as_json:
            typer.echo(json.dumps(letters, indent=2))
        else:
            _print_table(letters, f"dead letters of {queue} ({len(letters)} shown)", body=True)
        return
    found = next((letter for letter in _letters(queue, SEARCH_LIMIT) if letter.message_id == message_id), None)
    if found is None:
        raise ConfigurationError(f"no dead letter {message_id!r} in {queue!r}: `cv-analytics dlq list {queue}` lists them")
    shown = letter_json(found)
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        if key != "body":
            typer.echo(f"{key}: {'' if value is None else value}")
    typer.echo("body:")
    typer.echo(found.body)


@command(dlq_app, "redrive")
def dlq_redrive(
    queue: QueueArgument = ANALYTICS_QUEUE,
    message_ids: Annotated[
        Optional[list[str]], typer.Option("--id", help="Only this message (repeat for several); all when omitted.")
    ] = None,
    max_messages: Annotated[Optional[int], typer.Option("--max", help="Move at most this many.", min=1)] = None,
    bodies: Annotated[
        Optional[pathlib.Path],
        typer.Option(
            "--bodies",
            help="Move back only the letters in this file, each with its body as edited there "
            "(the JSON `dlq show --json` prints: messageId and body per letter).",
        ),
    ] = None,
) -> None:
    """Move dead letters of QUEUE back to it (all, by id, or with corrected bodies), for its worker to try again."""
    if bodies is not None and (message_ids or max_messages is not None):
        raise ConfigurationError("--bodies names the letters itself: give it without --id or --max")
    edited = None if bodies is None else _read_edited_bodies(bodies)
    source = _queue_with_dlq(queue)
    if edited is not None:
        asked, moved = len(edited), source.redrive_edited(edited)
    else:
        asked = len(set(message_ids or ()))
        moved = source.redrive(max_messages, message_ids=message_ids or None)
    if asked and moved < asked:
        typer.echo(f"moved {moved} of the {asked} message(s) asked for back to {queue!r}", err=True)
        raise ConfigurationError(
            f"{asked - moved} of the letters asked for are not (visible) in the dead-letter queue of {queue!r}"
            f"{', or the queue refused their new body' if bodies is not None else ''}: "
            f"`cv-analytics dlq list {queue}` lists them"
        )
    typer.echo(f"moved {moved} message(s) back to {queue!r}{' with their edited bodies' if bodies is not None else ''}", err=True)


def _read_edited_bodies(path: pathlib.Path) -> dict[str, str]:
    """Message id → body from a ``dlq show --json`` file (one letter or a list); an error names the bad entry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"--bodies {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigurationError(f"--bodies {path}: not a JSON file of letters ({exc})") from exc
    letters = data if isinstance(data, list) else [data]
    edited: dict[str, str] = {}
    for index, letter in enumerate(letters):
        if not (isinstance(letter, dict) and isinstance(letter.get("messageId"), str) and isinstance(letter.get("body"), str)):
            raise ConfigurationError(
                f"--bodies {path}: entry {index} needs a string messageId and a string body, as `dlq show --json` prints"
            )
        edited[letter["messageId"]] = letter["body"]
    if not edited:
        raise ConfigurationError(f"--bodies {path}: no letters in it")
    return edited


@command(dlq_app, "purge")
def dlq_purge(
    queue: QueueArgument = ANALYTICS_QUEUE,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.", **FLAG)] = False,
) -> None:
    """Delete every dead letter of QUEUE, for good (asks first unless --yes)."""
    dlq = _queue_with_dlq(queue).dead_letter_queue
    waiting = dlq.attributes()
    count = waiting.visible + waiting.in_flight + waiting.delayed
    if not yes and not _confirmed(f"delete {count} dead letter(s) of {queue!r} for good?"):
        raise ConfigurationError(f"not confirmed: nothing purged from {queue!r} (answer y, or pass --yes)")
    dlq.purge()
    typer.echo(f"purged {count} dead letter(s) of {queue!r}", err=True)


def _confirmed(question: str) -> bool:
    try:
        answer = typer.confirm(question, default=False, err=True)
    except (typer.Abort, EOFError):  # no answer (stdin closed)
        answer = False
    if not sys.stdin.isatty():
        typer.echo("", err=True)  # a piped answer is not echoed: end the question's line
    return answer


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
