"""The ``cv-analytics`` app: global options, one-line errors, and the command groups mounted on it.

Other tools script against the command names and options: keep them.
"""

from __future__ import annotations

import logging
import pathlib
import sys
from typing import Annotated, Optional

import typer

from . import aws, demo, dlq, environment, jobs, pipeline, report, serve, spool, status
from ..version import package_version
from .commands import FLAG, new_typer

app = new_typer(
    name="cv-analytics",
    help="Fire-and-forget analytics for a CV chatbot: queue, processor, store, weekly report.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"cv-analytics {package_version()}")
        raise typer.Exit(0)


@app.callback()
def main(
    data_dir: Annotated[
        Optional[pathlib.Path],
        typer.Option(help=f"Where embedded data lives (env {environment.DATA_DIR_VARIABLE}; default ./cv-analytics-data)."),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More logging (-vv for debug).", **FLAG)
    ] = 0,
    debug: Annotated[
        bool,
        typer.Option("--debug", help=f"Show the traceback of an error (or set {environment.DEBUG_VARIABLE}=1).", **FLAG),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True, **FLAG),
    ] = False,
) -> None:
    environment.OPTIONS.data_dir = data_dir
    environment.OPTIONS.debug = debug
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _mount() -> None:
    pipeline.register(app)
    status.register(app)
    dlq.register(app)
    report.register(app)
    demo.register(app)
    aws.register(app)
    spool.register(app)
    jobs.register(app)
    serve.register(app)


_mount()
