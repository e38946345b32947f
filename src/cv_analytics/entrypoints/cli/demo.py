"""``demo``: simulated recruiter traffic through the real pipeline, in a data directory of its own."""

from __future__ import annotations

import pathlib
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import environment
from .commands import FLAG, command

out = Console(soft_wrap=True)


def demo(
    interactions: Annotated[int, typer.Option(help="How many recruiter questions to simulate.", min=1)] = 2000,
    data_dir: Annotated[
        Optional[pathlib.Path],
        typer.Option(help="Where to keep the demo's data (default: demo/ under the data directory)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed, for a repeatable run.")] = 7,
    use_configured_backends: Annotated[
        bool,
        typer.Option(
            "--use-configured-backends",
            help="Write into the configured queue and store (AWS too) instead of the demo's own embedded ones.",
            **FLAG,
        ),
    ] = False,
) -> None:
    """Simulate two ISO weeks of recruiter traffic through the real client, queue and processor.

    Its data never mixes with the owner's: it lives in its own directory and
    embedded databases unless --use-configured-backends says otherwise.
    """
    from ..demo import run_demo

    backends = environment.demo_backends(data_dir, use_configured_backends=use_configured_backends)
    which = "the configured queue and store" if use_configured_backends else "its own embedded queue and store"
    out.print(f"demo data: {backends.data_dir} ({which}); see it with `cv-analytics --data-dir {backends.data_dir} status`")
    try:
        run_demo(
            backends.open_queue,
            backends.store,
            data_dir=backends.data_dir,
            orphan_timeout_seconds=backends.orphan_timeout_seconds,
            interactions=interactions,
            seed=seed,
            console=out,
        )
    finally:
        backends.store.close()
    out.print(
        f"next: `cv-analytics --data-dir {backends.data_dir} serve` opens the chat page, the dashboard on this "
        "data and the jobs API at http://127.0.0.1:8000 (it prints an API key)",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    command(app)(demo)
