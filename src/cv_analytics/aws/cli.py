"""``cv-analytics aws ...``: stand up queues and tables, build the Lambda package.

Mounted by the main command line as ``aws``. ``bootstrap`` prints its table of
resources on stderr and only ``export`` lines on stdout, so
``eval "$(cv-analytics aws bootstrap)"`` configures the current shell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..exceptions import CVAnalyticsError
from ..deploy import resources

aws_app = typer.Typer(
    name="aws",
    help="AWS: create the queues and tables (bootstrap), build the Lambda deployment package.",
    no_args_is_help=True,
)
_console = Console(stderr=True)

DEFAULT_PACKAGE_PATH = Path("dist") / "cv-analytics-lambda.zip"


def _fail(message: str) -> typer.Exit:
    _console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


@aws_app.command("bootstrap")
def bootstrap_command(
    prefix: Annotated[
        str, typer.Option(help="Prefix of every queue and table name (as NamePrefix in the stack).")
    ] = resources.DEFAULT_PREFIX,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: AWS_REGION, then AWS_DEFAULT_REGION).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON instead.")] = False,
) -> None:
    """Create the FIFO queues (with dead-letter queues) and DynamoDB tables, unless they exist.

    Talks to AWS_ENDPOINT_URL when it is set (a local emulator). Prints
    `export` lines for the environment variables that point cv-analytics at them.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from ..deploy.bootstrap import bootstrap, default_session, export_lines

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    try:
        session = default_session(region)
        report = bootstrap(session, prefix, endpoint_url=endpoint)
    except CVAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    except (BotoCoreError, ClientError) as exc:
        where = f"the endpoint {endpoint}" if endpoint else f"AWS ({region or 'default region'})"
        raise _fail(f"{where} refused or failed the request: {exc}") from exc

    extra = {"AWS_REGION": session.region_name}
    if endpoint:
        extra["AWS_ENDPOINT_URL"] = endpoint
    if as_json:
        typer.echo(json.dumps({**report, "environment": {**report["environment"], **extra}}, indent=2))
        return
    table = Table(title=f"cv-analytics resources ({prefix}, {session.region_name})")
    for column in ("kind", "key", "name", "status"):
        table.add_column(column)
    for key, queue in report["queues"].items():
        table.add_row("queue", key, queue["name"], queue["status"])
    for key, item in report["tables"].items():
        table.add_row("table", key, item["name"], item["status"])
    _console.print(table)
    for line in export_lines(report, extra):
        typer.echo(line)


@aws_app.command("package")
def package_command(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = DEFAULT_PACKAGE_PATH,
    pin: Annotated[
        bool, typer.Option(help="Pin dependencies to the versions installed here (what the tests ran with).")
    ] = True,
) -> None:
    """Build the Lambda deployment zip (cv_analytics and its dependencies for Python 3.12 on x86_64)."""
    from ..deploy.package import build_package, suggested_key

    _console.print("installing dependencies for Lambda (python3.12, manylinux2014_x86_64) with pip...")
    try:
        path = build_package(out, pin_installed=pin)
    except CVAnalyticsError as exc:
        raise _fail(str(exc)) from exc
    key = suggested_key(path)
    _console.print(
        f"built {path} ({path.stat().st_size / 1e6:.1f} MB)\n"
        f"upload it:   aws s3 cp {path} s3://<CodeBucket>/{key}\n"
        f"then deploy with CodeKey={key}",
        highlight=False,
        soft_wrap=True,  # keep the command on one line, to copy and paste
    )
    typer.echo(str(path))
