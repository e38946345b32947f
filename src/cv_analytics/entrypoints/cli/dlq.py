"""``dlq show`` and ``dlq redrive``: the dead-letter queue."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ...wiring import ANALYTICS_QUEUE
from ...exceptions import ConfigurationError
from . import environment
from .commands import FLAG, command, new_typer

out = Console(soft_wrap=True)
dlq_app = new_typer(help="Inspect and redrive the dead-letter queue.")


def _int_or_none(value: object) -> int | None:
    """Receive counts come as text from some backends: numbers in our output."""
    if value is None or value == "":
        return None
    return int(str(value))


def letter_json(letter: Any) -> dict[str, Any]:
    """One dead letter in ``dlq show --json``'s shape: camelCase, numbers as numbers."""
    return {
        "messageId": letter.message_id,
        "groupId": letter.group_id,
        "receiveCount": _int_or_none(letter.receive_count),
        "reason": letter.reason,
        "body": letter.body,
    }


@command(dlq_app, "show")
def dlq_show(
    limit: Annotated[int, typer.Option(help="How many messages to show.", min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.", **FLAG)] = False,
) -> None:
    """Dead-lettered messages with the reason each failed (they stay in the DLQ)."""
    from ...ops.dlq import peek_dead_letters

    queue = environment.analytics_queue(read_only=True)
    if queue.dead_letter_queue is None:
        raise ConfigurationError(f"queue {queue.name!r} has no dead-letter queue: nothing to show")
    letters = [letter_json(letter) for letter in peek_dead_letters(queue, limit)]
    if as_json:
        typer.echo(json.dumps(letters, indent=2))
        return
    table = Table(title=f"dead letters ({len(letters)} shown)")
    for column in ("message id", "group", "receives", "reason", "body"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        body = letter["body"] if len(letter["body"]) <= 120 else letter["body"][:117] + "..."
        receives = "" if letter["receiveCount"] is None else str(letter["receiveCount"])
        table.add_row(letter["messageId"], letter["groupId"] or "", receives, letter["reason"] or "", body)
    out.print(table)


@command(dlq_app, "redrive")
def dlq_redrive(
    max_messages: Annotated[Optional[int], typer.Option("--max", help="Move at most this many.", min=1)] = None,
) -> None:
    """Move dead-lettered messages back to their queue, for the worker to try again."""
    moved = environment.analytics_queue(read_only=True).redrive(max_messages)
    typer.echo(f"moved {moved} message(s) back to {ANALYTICS_QUEUE!r}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
