"""The command line's one view of the environment: settings, backends, and checks on them.

Every other module of this package asks here; none reads ``os.environ`` or
builds :class:`Settings` itself: settings and backends come from
:mod:`cv_analytics.wiring`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...wiring import ANALYTICS_QUEUE, PREFIX, Settings, Wiring, open_queue, open_queue_backend, open_store
from ...exceptions import ConfigurationError, CVAnalyticsError
from ...clock import Clock
from ...queues.base import Queue
from ...queues.batch import BatchResult
from ...queues.consumer import PeriodicTask
from ...stores.base import Store

DEBUG_VARIABLE = f"{PREFIX}DEBUG"
DATA_DIR_VARIABLE = f"{PREFIX}DATA_DIR"
SCHEDULE_VARIABLE = f"{PREFIX}REPORT_SCHEDULE"
#: Variables that point the package at configured (possibly AWS) backends: the demo ignores them.
_BACKEND_VARIABLES = (
    f"{PREFIX}QUEUE_URL",
    f"{PREFIX}STORE_URL",
    f"{PREFIX}EVENTS_TABLE",
    f"{PREFIX}INTERACTIONS_TABLE",
    f"{PREFIX}REPORTS_TABLE",
    f"{PREFIX}JOBS_TABLE",
    "AWS_SQS_URL",
    "AI_JOB_REQUEST_QUEUE_URL",
    "AI_JOB_RESPONSE_QUEUE_URL",
)


@dataclass
class GlobalOptions:
    """What the options before the command said (``cv-analytics --data-dir X --debug status``)."""

    data_dir: pathlib.Path | None = None
    debug: bool = False


OPTIONS = GlobalOptions()


def settings() -> Settings:
    """Settings from the environment, with the global ``--data-dir`` if one was given."""
    return Settings.from_env(data_dir=OPTIONS.data_dir)


def debug_enabled() -> bool:
    """``--debug`` or ``CV_ANALYTICS_DEBUG=1``: show tracebacks."""
    return OPTIONS.debug or os.environ.get(DEBUG_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def environment() -> Mapping[str, str]:
    """The raw environment, for the few values no setting covers yet (the report schedule, AWS)."""
    return os.environ


def sqlite_file(url: str) -> pathlib.Path | None:
    """The file of a ``sqlite:///`` URL, or None for another backend."""
    return pathlib.Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def check_sqlite_file(url: str, what: str, *, must_exist: bool, data_dir: pathlib.Path) -> None:
    """Refuse a data directory that is a file, and (for read-only commands) a database that does not exist.

    A read-only command must not leave an empty database behind in a mistyped directory.
    """
    path = sqlite_file(url)
    if path is None:
        return
    for parent in (path.parent, *path.parent.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigurationError(
                f"{parent} is a file, not a directory: point --data-dir or {DATA_DIR_VARIABLE} at a directory"
            )
    if must_exist and not path.exists():
        if not path.parent.exists():
            raise ConfigurationError(
                f"the data directory {path.parent} does not exist: check --data-dir or {DATA_DIR_VARIABLE} "
                f"(now {data_dir})"
            )
        raise ConfigurationError(f"the {what} {path} does not exist yet: nothing has been {_verb(what)} under {path.parent}")


def _verb(what: str) -> str:
    if what == "job store":
        return "submitted (run `cv-analytics jobs submit`)"
    return "sent" if what == "queue database" else "processed (run `cv-analytics worker`)"


def analytics_queue(*, read_only: bool = False) -> Queue:
    """The analytics queue; ``read_only`` refuses to create its database."""
    cfg = settings()
    check_sqlite_file(cfg.queue_url, "queue database", must_exist=read_only, data_dir=cfg.data_dir)
    return open_queue(cfg)


def named_queue(name: str, *, read_only: bool = False) -> Queue:
    """One of the queues the presets define (``analytics``, the jobs queues), by its logical name."""
    from ...queues.presets import PRESETS

    if name not in PRESETS:
        raise ConfigurationError(f"no queue called {name!r}: use one of {', '.join(PRESETS)}")
    cfg = settings()
    check_sqlite_file(cfg.queue_url, "queue database", must_exist=read_only, data_dir=cfg.data_dir)
    return open_queue(cfg, name)


def status_queues(*, read_only: bool = False) -> tuple[list[Queue], list[tuple[str, str]]]:
    """Every queue of the presets (analytics, the jobs queues) for ``status``, and those that cannot be
    read with why (on SQS, a jobs queue that was never created): one queue's trouble never hides the others."""
    from ...queues.presets import PRESETS

    cfg = settings()
    check_sqlite_file(cfg.queue_url, "queue database", must_exist=read_only, data_dir=cfg.data_dir)
    backend = open_queue_backend(cfg)
    queues: list[Queue] = []
    unavailable: list[tuple[str, str]] = []
    for name in PRESETS:
        try:
            queue = backend.queue(name)
            queue.attributes()
        except CVAnalyticsError as exc:
            if name == ANALYTICS_QUEUE:
                raise
            unavailable.append((name, str(exc)[:300]))
            continue
        queues.append(queue)
    return queues, unavailable


@contextlib.contextmanager
def _ops_states(*, must_exist: bool) -> Iterator[Any]:
    """The shared alarm-and-runs file of the data directory (None when ``must_exist`` and it is not there yet)."""
    from ...ops.alarm_state import SQLiteAlarmStates
    from ...wiring.alarms import alarm_state_path

    path = alarm_state_path(settings())
    if must_exist and not path.exists():
        yield None
        return
    states = SQLiteAlarmStates(path)
    try:
        yield states
    finally:
        states.close()


def record_run(component: str, *, ok: bool, detail: str) -> None:
    """Note a background process's last run and its outcome, for ``status`` (never fails the caller)."""
    import logging
    import time

    try:
        with _ops_states(must_exist=False) as states:
            states.record_run(component, time.time(), ok=ok, detail=detail)
    except Exception as exc:  # noqa: BLE001 - bookkeeping: the work itself went on
        logging.getLogger(__name__).warning("could not record the %s run: %s", component, exc)


def run_rows() -> list[Any]:
    """The background processes' last runs (none before the first)."""
    with _ops_states(must_exist=True) as states:
        return [] if states is None else states.runs()


def alarm_rows() -> list[Any]:
    """The alarms' states as the worker and the scheduler last recorded them (none before their first check)."""
    with _ops_states(must_exist=True) as states:
        return [] if states is None else states.rows()


def interaction_store(*, read_only: bool = False) -> Store:
    """The store of interactions; ``read_only`` refuses to create its database."""
    cfg = settings()
    check_sqlite_file(cfg.store_url, "store database", must_exist=read_only, data_dir=cfg.data_dir)
    return open_store(cfg)


def jobs_wiring(*, read_only: bool = False) -> Wiring:
    """A wiring for the jobs commands; ``read_only`` refuses to create the job store's database."""
    cfg = settings()
    check_sqlite_file(cfg.jobs_store_url, "job store", must_exist=read_only, data_dir=cfg.data_dir)
    check_sqlite_file(cfg.queue_url, "queue database", must_exist=False, data_dir=cfg.data_dir)
    return Wiring(cfg)
def batch_metrics(queue_name: str, clock: Clock) -> Callable[[BatchResult], None] | None:
    """What a queue worker calls per settled batch to count it for ``/metrics``: only when
    ``PROMETHEUS_MULTIPROC_DIR`` names a directory (``serve`` sets it for its children), else None."""
    if settings().metrics_dir is None:
        return None
    from ...ops.metrics import processing_metrics

    metrics = processing_metrics()
    return lambda result: metrics.record(queue_name, result, clock.now())


def orphan_timeout_seconds() -> float:
    return settings().orphan_timeout_seconds


def spool_dir() -> pathlib.Path:
    return settings().spool_dir


@dataclass(frozen=True)
class DemoBackends:
    """Where the demo writes: its data directory, a queue factory (for the client) and its store."""

    data_dir: pathlib.Path
    open_queue: Callable[[], Queue]
    store: Store
    orphan_timeout_seconds: float


def demo_backends(data_dir: pathlib.Path | None, *, use_configured_backends: bool) -> DemoBackends:
    """The demo's own data directory, and the embedded backends in it unless told otherwise.

    Without ``data_dir``, the demo lives in ``demo/`` under the configured data
    directory, beside (never inside) the owner's databases.
    """
    env = dict(os.environ)
    if not use_configured_backends:
        for name in _BACKEND_VARIABLES:
            env.pop(name, None)
    root = data_dir if data_dir is not None else settings().data_dir / "demo"
    cfg = Settings.from_env(env, data_dir=root)
    check_sqlite_file(cfg.queue_url, "queue database", must_exist=False, data_dir=cfg.data_dir)
    check_sqlite_file(cfg.store_url, "store database", must_exist=False, data_dir=cfg.data_dir)
    return DemoBackends(cfg.data_dir, lambda: open_queue(cfg), open_store(cfg), cfg.orphan_timeout_seconds)


def aws_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL") or None


def region_and_source(region_option: str | None) -> tuple[str | None, str]:
    """The region bootstrap will use and where it comes from, as boto3 and default_session decide it."""
    if region_option:
        return region_option, "--region"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return os.environ[name], name
    return None, "the AWS config file (~/.aws/config)"


#: Interactions whose report skills the worker resolves per round, and how often: 2,000 a second
#: in rounds of about 0.1 s (at ~23 µs each), short enough that the events arriving meanwhile
#: wait little (rounds of 20,000 every 10 s held them for half a second: the soak's p99).
REPORT_TERMS_BATCH = 4_000
REPORT_TERMS_INTERVAL_SECONDS = 2.0


def alarm_tasks(
    *, store: Store | None = None, totals: Callable[[], tuple[int, int]] | None = None
) -> list[PeriodicTask]:
    """The alarm check of a long-running command (the worker gives its totals, for the error rate)."""
    from ...queues.presets import PRESETS
    from ...wiring.alarms import alarm_task

    cfg = settings()
    opened: list[Queue] = []

    def queues() -> list[Queue]:
        # opened at the first check, all or none (a locked database fails the check, which runs again)
        if not opened:
            backend = open_queue_backend(cfg)
            opened[:] = [backend.queue(name) for name in PRESETS]
        return opened

    return [alarm_task(cfg, queues, store=store, totals=totals)]


def report_preparation_tasks(store: Store) -> list[PeriodicTask]:
    """The worker's share of the report's work, off the write path: on a SQLite store, resolve the
    skills of what it wrote lately, in bounded rounds, so the weekly report finds little left to do.
    The catalog is loaded in the task: a broken catalog file is logged there, never stops the worker."""
    from ...insights.sqlite import SQLiteInsights
    from ...wiring import insights_for, load_skills_catalog

    insights = insights_for(store)
    if not isinstance(insights, SQLiteInsights):
        return []
    cfg = settings()
    return [
        PeriodicTask(
            "report-terms",
            REPORT_TERMS_INTERVAL_SECONDS,
            lambda: insights.resolve_pending(load_skills_catalog(cfg), limit=REPORT_TERMS_BATCH),
        )
    ]
