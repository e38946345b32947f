"""Every failure of every command as one line, ``error: <what happened>; <what to do>``, and an exit code.

``--debug`` (or ``CV_ANALYTICS_DEBUG=1``) adds the traceback. Exit codes: 2 for
a usage or configuration problem (a bad option, variable or week), 1 for
anything that went wrong while running, 0 when stdout's reader went away
(``export | head -1``).
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

import typer

try:  # typer 0.2x vendors click as typer._click (its exceptions are not re-exported); older typers use click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors  # type: ignore[no-redef]

from ...exceptions import ConfigurationError, CVAnalyticsError, DatabaseCorruptError

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1
INTERRUPTED_EXIT_CODE = 130


class CommandError(CVAnalyticsError):
    """A command's own refusal, with the exit code it means."""

    def __init__(self, message: str, exit_code: int = FAILURE_EXIT_CODE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str) -> str:
    """Messages from deeper down may span lines (pydantic, botocore): a script greps one."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def print_error(message: str) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)


def _os_error_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"{where}{reason}: free some space or write somewhere else, then rerun"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{reason}: check the permissions of the path, or choose another one"
    if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        return f"{where}{reason}: a file and a directory are in each other's way; choose another path"
    if exc.filename is None and exc.errno is not None:
        return f"cannot write the output ({reason}): check where stdout goes (a full disk, a closed pipe)"
    return f"{where}{reason}"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code for an exception escaping a command."""
    if isinstance(exc, CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, click_errors.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "cv-analytics"
        return f"{exc.format_message()} (see `{command} --help`)", USAGE_EXIT_CODE
    if isinstance(exc, click_errors.ClickException):
        return exc.format_message(), exc.exit_code
    if isinstance(exc, ConfigurationError):
        return str(exc), USAGE_EXIT_CODE
    if isinstance(exc, DatabaseCorruptError):
        return str(exc), FAILURE_EXIT_CODE
    if isinstance(exc, CVAnalyticsError):
        return str(exc), FAILURE_EXIT_CODE
    if isinstance(exc, OSError):
        return _os_error_message(exc), FAILURE_EXIT_CODE
    return (
        f"unexpected {type(exc).__name__}: {exc}; rerun with --debug for the traceback and report it",
        FAILURE_EXIT_CODE,
    )


def silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's capture): nothing to protect
        pass


def handle(exc: BaseException, *, debug: bool) -> int:
    """Report ``exc`` on stderr (one line, or the traceback too with ``debug``) and return the exit code."""
    if isinstance(exc, BrokenPipeError):
        silence_stdout()  # the reader has what it wanted (`export | head -1`)
        return 0
    if isinstance(exc, (KeyboardInterrupt, typer.Abort)):
        print_error("interrupted")
        return INTERRUPTED_EXIT_CODE
    message, code = describe(exc)
    if debug and not isinstance(exc, click_errors.UsageError):
        traceback.print_exception(exc, file=sys.stderr)
    print_error(message)
    if isinstance(exc, OSError):
        silence_stdout()
    return code
