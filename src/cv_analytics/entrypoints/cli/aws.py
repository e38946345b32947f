"""``cv-analytics aws ...``: stand up queues and tables, build the Lambda package.

``bootstrap`` prints its table of resources on stderr and only ``export`` lines
on stdout, so ``eval "$(cv-analytics aws bootstrap)"`` configures the current shell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ...deploy import resources
from ...exceptions import CVAnalyticsError
from . import environment
from .commands import FLAG, command, new_typer
from .errors import CommandError

aws_app = new_typer(
    name="aws",
    help="AWS: create the queues and tables (bootstrap), build the Lambda deployment package.",
)
_console = Console(stderr=True)

DEFAULT_PACKAGE_PATH = Path("dist") / "cv-analytics-lambda.zip"
CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), "
    "or AWS_PROFILE for a profile of ~/.aws/credentials"
)


@command(aws_app, "bootstrap")
def bootstrap_command(
    prefix: Annotated[
        str, typer.Option(help="Prefix of every queue and table name (as NamePrefix in the stack).")
    ] = resources.DEFAULT_PREFIX,
    region: Annotated[
        str | None,
        typer.Option(help="AWS region (default: AWS_REGION, then AWS_DEFAULT_REGION, then ~/.aws/config)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON instead.", **FLAG)] = False,
) -> None:
    """Create the FIFO queues (with dead-letter queues) and DynamoDB tables, unless they exist.

    Talks to AWS_ENDPOINT_URL when it is set (a local emulator). Prints
    `export` lines for the environment variables that point cv-analytics at them.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    from ...deploy.bootstrap import bootstrap, default_session, export_lines

    endpoint = environment.aws_endpoint()
    try:  # `aws` commands exit 1 on every failure, configuration included (scripts rely on it)
        session = default_session(region)
    except CVAnalyticsError as exc:
        raise CommandError(str(exc)) from exc
    _, source = environment.region_and_source(region)
    where = f"the endpoint {endpoint}" if endpoint else "AWS"
    region_text = f"region {session.region_name} (from {source})"
    try:
        report = bootstrap(session, prefix, endpoint_url=endpoint)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CommandError(f"no usable AWS credentials for {where} in {region_text} ({exc}): {CREDENTIALS_HINT}") from exc
    except CVAnalyticsError as exc:  # a conflicting resource: exit 1 like every `aws` failure
        raise CommandError(str(exc)) from exc
    except (BotoCoreError, ClientError) as exc:
        raise CommandError(
            f"{where} in {region_text} refused or failed the request: {exc}; check the credentials "
            f"({CREDENTIALS_HINT}) and the region (--region or AWS_REGION)"
        ) from exc

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


@command(aws_app, "package")
def package_command(
    out: Annotated[Path, typer.Option(help="Where to write the zip.")] = DEFAULT_PACKAGE_PATH,
    pin: Annotated[
        bool, typer.Option(help="Pin dependencies to the versions installed here (what the tests ran with).")
    ] = True,
) -> None:
    """Build the Lambda deployment zip (cv_analytics and its dependencies for Python 3.12 on x86_64)."""
    from ...deploy.package import build_package, suggested_key

    _console.print("installing dependencies for Lambda (python3.12, manylinux x86_64 wheels) with pip...")
    path = build_package(out, pin_installed=pin)
    key = suggested_key(path)
    _console.print(
        f"built {path} ({path.stat().st_size / 1e6:.1f} MB)\n"
        f"upload it:   aws s3 cp {path} s3://<CodeBucket>/{key}\n"
        f"then deploy with CodeKey={key}",
        highlight=False,
        soft_wrap=True,  # keep the command on one line, to copy and paste
    )
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Mount ``aws`` when boto3 is installed (the embedded install has no AWS SDK)."""
    try:
        import botocore  # noqa: F401
    except ImportError:
        return
    app.add_typer(aws_app, name="aws")
