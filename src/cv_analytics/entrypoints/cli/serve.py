"""``serve``: the web app under uvicorn and, unless ``--no-workers``, the workers beside it in one process tree."""

from __future__ import annotations

import dataclasses
import errno
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ...exceptions import ConfigurationError
from ...wiring import METRICS_DIR_VARIABLE, PREFIX, Settings, Wiring
from . import environment
from .commands import FLAG, command
from .errors import USAGE_EXIT_CODE, CommandError
from .supervisor import ChildSpec, Supervisor

#: How long children get to finish their batch after SIGTERM before they are killed.
CHILD_STOP_TIMEOUT_SECONDS = 10.0
#: The queue workers' long-poll wait: a worker notices SIGTERM when its receive returns, so well within
#: the stop timeout (a message that arrives meanwhile is received at once; idle receives are cheap).
CHILD_WAIT_SECONDS = "2"


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it), or a :class:`CommandError` saying what to change."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise CommandError(f"cannot listen on host {host!r} ({exc}): use an address such as 127.0.0.1", USAGE_EXIT_CODE) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is in use: stop what holds it, or choose another with --port") from exc
        if exc.errno == errno.EACCES:
            raise CommandError(f"not allowed to listen on port {port}: choose a port above 1023 with --port") from exc
        raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host") from exc
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _children(ctx: typer.Context, settings: Settings) -> list[ChildSpec]:
    """The analytics worker, the jobs workers (once the ``jobs`` commands exist) and, when the report's
    delivery is configured, the report scheduler."""
    poll = ("--wait", CHILD_WAIT_SECONDS)
    children = [ChildSpec("analytics worker", ("worker", *poll), nice=settings.worker_nice)]
    root = ctx.find_root().command
    if "jobs" in getattr(root, "commands", {}):
        children += [
            ChildSpec("job worker", ("jobs", "worker", *poll)),
            ChildSpec("job results", ("jobs", "results", *poll)),
        ]
    from ...wiring.reporting import addresses, open_deliverer

    try:
        open_deliverer(settings)
        addresses(settings)
    except ConfigurationError as exc:
        _say(f"report scheduler not started: {exc}")
    else:
        children.append(ChildSpec("report scheduler", ("scheduler",)))
    return children


def _global_arguments() -> list[str]:
    """The options given before ``serve``, for the children's command lines."""
    args: list[str] = []
    if environment.OPTIONS.data_dir is not None:
        args += ["--data-dir", str(environment.OPTIONS.data_dir)]
    if environment.OPTIONS.debug:
        args.append("--debug")
    return args


def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).", min=0, max=65535)] = 8000,
    workers: Annotated[
        bool,
        typer.Option(
            "--workers/--no-workers",
            help="Also run the analytics worker, the job workers and the report scheduler as child processes.",
            **FLAG,
        ),
    ] = True,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.", **FLAG)] = True,
) -> None:
    """Serve the web app (the chat page, /api/search, /v1/events, /metrics, /healthz) on the embedded backends
    by default, and run the workers beside it; SIGTERM or Ctrl-C stops everything.

    Without CV_ANALYTICS_API_KEYS, an API key is generated for this session and printed once
    (send it as x-api-key to /v1/events).
    """
    import uvicorn

    from ..web import create_app

    settings = environment.settings()
    generated_key = None
    if not settings.api_keys:
        generated_key = secrets.token_urlsafe(24)
        settings = dataclasses.replace(settings, api_keys=(generated_key,))
    sock = _bind(host, port)
    metrics_dir = Path(tempfile.mkdtemp(prefix="cv-analytics-metrics-")) if workers else None
    supervisor = None
    if workers:
        child_env = dict(environment.environment())
        child_env[METRICS_DIR_VARIABLE] = str(metrics_dir)
        child_env[f"{PREFIX}API_KEYS"] = ",".join(settings.api_keys)
        supervisor = Supervisor(
            [dataclasses.replace(c, args=(*_global_arguments(), *c.args)) for c in _children(ctx, settings)],
            env=child_env,
            stop_timeout=CHILD_STOP_TIMEOUT_SECONDS,
            say=_say,
        )
    app = create_app(Wiring(settings), close_wiring=True, worker_metrics_dir=metrics_dir)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=access_log, lifespan="on"))
    stop_signals: list[int] = []

    def _remember(signum: int, _frame: Any) -> None:
        # uvicorn handles the signal while it runs and raises it again once it has shut down: it lands here
        stop_signals.append(signum)
        server.should_exit = True

    previous = {sig: signal.signal(sig, _remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    announcer = threading.Thread(
        target=_announce, args=(server, sock, generated_key, supervisor), name="cv-analytics-serve-start", daemon=True
    )
    announcer.start()
    try:
        server.run(sockets=[sock])
    finally:
        if supervisor is not None:
            _say("stopping the workers")
            supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if not server.started:
        raise CommandError("the web app did not start: see the log above")
    _say("stopped")


def _announce(server: Any, sock: socket.socket, generated_key: str | None, supervisor: Supervisor | None) -> None:
    """Once the server is up: the URL, the session's API key, then the workers (after the bind, as promised)."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    url = _url(sock)
    typer.echo(f"cv-analytics serving on {url} (chat page; OpenAPI spec at {url}openapi.json, metrics at {url}metrics)")
    if generated_key is not None:
        typer.echo(f"API key for this session (x-api-key; set {PREFIX}API_KEYS to choose your own): {generated_key}")
    if supervisor is not None:
        supervisor.start()


def register(app: typer.Typer) -> None:
    command(app, "serve")(serve_command)
