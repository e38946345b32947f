"""The ``cv-analytics`` app: global options, one-line errors, and the command groups mounted on it.

Other tools script against the command names and options: keep them.
"""

from __future__ import annotations

import logging
import pathlib
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from . import environment
from .errors import click_errors, handle


def _as_flag(option: Any) -> Any:
    if option is not None:
        option.metavar = ""  # typer's help shows a flag without a value as `<bool>`: show none
    return option


class FlagHelpCommand(TyperCommand):
    """A command whose ``--help`` reads as the flag it is."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        return _as_flag(super().get_help_option(ctx))


class OneLineErrorGroup(TyperGroup):
    """A command group whose every failure is one ``error:`` line and an exit code (see :mod:`.errors`)."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        return _as_flag(super().get_help_option(ctx))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click_errors.ClickException):
            raise  # click's own: main() below words them
        except Exception as exc:  # BrokenPipeError and OSError included: typer would exit 1 on EPIPE
            raise typer.Exit(handle(exc, debug=environment.debug_enabled())) from exc

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()  # the help, as `--help` prints it
            code = exc.exit_code
        except (click_errors.ClickException, typer.Abort) as exc:
            code = handle(exc, debug=False)
        code = code if isinstance(code, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def new_typer(**kwargs: Any) -> typer.Typer:
    """A Typer app (or sub-app) with one-line errors and no shell-completion noise."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(cls=OneLineErrorGroup, add_completion=False, pretty_exceptions_enable=False, **kwargs)


def command(app: typer.Typer, name: str | None = None) -> Any:
    """``app.command(name)`` with :class:`FlagHelpCommand`."""
    return app.command(name, cls=FlagHelpCommand)


#: Flags take no value: an empty metavar keeps typer's help from showing them as ``<bool>``.
FLAG = {"metavar": ""}

app = new_typer(
    name="cv-analytics",
    help="Fire-and-forget analytics for a CV chatbot: queue, processor, store, weekly report.",
)


def package_version() -> str:
    try:
        return metadata.version("cv-analytics")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


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
    from . import aws, demo, dlq, pipeline, report, spool, status

    pipeline.register(app)
    status.register(app)
    dlq.register(app)
    report.register(app)
    demo.register(app)
    aws.register(app)
    spool.register(app)


_mount()
