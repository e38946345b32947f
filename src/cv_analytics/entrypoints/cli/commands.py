"""What every command module shares: typer apps whose failures are one ``error:`` line, and flag options.

Kept apart from :mod:`.app` (which mounts the command modules) so that no command module imports the app.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

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
