"""Configuration from the environment, and the one place backends are chosen.

Backends are picked by URL: ``sqlite:///path/to/file.db`` for the embedded
queue or store, ``sqs://`` for Amazon SQS (queue URLs from ``AWS_SQS_URL`` and
the jobs variables), ``dynamodb://`` for DynamoDB (table names from
``CV_ANALYTICS_*_TABLE``). With nothing set, everything runs embedded under
``./cv-analytics-data/``. Backend modules are imported here and nowhere above
the seams, lazily, so the embedded install needs no AWS SDK.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .clock import Clock
from .exceptions import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from .queues.base import Queue, QueueBackend, QueueConfig
    from .stores.base import Store

PREFIX = "CV_ANALYTICS_"
DEFAULT_DATA_DIR = "cv-analytics-data"

#: Logical queue names, each with the environment variable the existing deployment uses for its URL on SQS.
ANALYTICS_QUEUE = "analytics"
JOBS_REQUEST_QUEUE = "jobs-request"
JOBS_RESPONSE_QUEUE = "jobs-response"
SQS_URL_VARIABLES = {
    ANALYTICS_QUEUE: "AWS_SQS_URL",
    JOBS_REQUEST_QUEUE: "AI_JOB_REQUEST_QUEUE_URL",
    JOBS_RESPONSE_QUEUE: "AI_JOB_RESPONSE_QUEUE_URL",
}


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once from the environment by :meth:`from_env`."""

    data_dir: pathlib.Path = field(default_factory=lambda: pathlib.Path(DEFAULT_DATA_DIR))
    queue_url: str = ""
    store_url: str = ""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    sqs_queue_urls: Mapping[str, str] = field(default_factory=dict)
    dynamodb_tables: Mapping[str, str] = field(default_factory=dict)
    recipient_email: str | None = None
    sender_email: str | None = None
    #: a query still unanswered after this long becomes an ``unanswered`` interaction
    orphan_timeout_seconds: float = 900.0
    pending_ttl_seconds: float = 7 * 24 * 3600.0
    #: embedded analytics queue: how long a received message stays hidden before redelivery
    visibility_timeout_seconds: float = 30.0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, data_dir: str | os.PathLike[str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        root = pathlib.Path(data_dir or env.get(f"{PREFIX}DATA_DIR") or DEFAULT_DATA_DIR)
        sqs_urls = {name: env[var] for name, var in SQS_URL_VARIABLES.items() if env.get(var)}
        queue_url = env.get(f"{PREFIX}QUEUE_URL") or (
            "sqs://" if ANALYTICS_QUEUE in sqs_urls else f"sqlite:///{root / 'queues.db'}"
        )
        tables = {
            key: env[f"{PREFIX}{key.upper()}_TABLE"]
            for key in ("events", "interactions", "reports", "jobs")
            if env.get(f"{PREFIX}{key.upper()}_TABLE")
        }
        store_url = env.get(f"{PREFIX}STORE_URL") or (
            "dynamodb://" if "interactions" in tables else f"sqlite:///{root / 'store.db'}"
        )
        return cls(
            data_dir=root,
            queue_url=queue_url,
            store_url=store_url,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL"),
            sqs_queue_urls=sqs_urls,
            dynamodb_tables=tables,
            recipient_email=env.get("RECIPIENT_EMAIL"),
            sender_email=env.get("SENDER_EMAIL"),
            orphan_timeout_seconds=_float(env, f"{PREFIX}ORPHAN_TIMEOUT", 900.0),
            pending_ttl_seconds=_float(env, f"{PREFIX}PENDING_TTL", 7 * 24 * 3600.0),
            visibility_timeout_seconds=_float(env, f"{PREFIX}VISIBILITY_TIMEOUT", 30.0),
            env=env,
        )

    @property
    def spool_dir(self) -> pathlib.Path:
        return self.data_dir / "spool"

    @property
    def reports_dir(self) -> pathlib.Path:
        return self.data_dir / "reports"


def _sqlite_path(url: str) -> pathlib.Path:
    parsed = urlparse(url)
    # sqlite:///relative/or/absolute — everything after the third slash is the path
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
    if not path:
        raise ConfigurationError(f"{url!r} names no file: use sqlite:///path/to/file.db")
    return pathlib.Path(path)


def open_queue_backend(settings: Settings, *, clock: Clock | None = None) -> QueueBackend:
    """The queue backend the settings name."""
    scheme = urlparse(settings.queue_url).scheme
    if scheme == "sqlite":
        from .queues.sqlite import SQLiteQueueBackend

        return SQLiteQueueBackend(_sqlite_path(settings.queue_url), **({"clock": clock} if clock else {}))
    if scheme == "sqs":
        try:
            from .queues.sqs import SQSQueueBackend
        except ImportError as exc:
            raise MissingDependencyError(
                f"the sqs backend needs boto3: pip install 'cv-analytics[aws]' ({exc})"
            ) from exc
        return SQSQueueBackend.from_settings(settings)
    raise ConfigurationError(
        f"unknown queue URL {settings.queue_url!r}: use sqlite:///path.db or sqs:// "
        f"(set {PREFIX}QUEUE_URL or AWS_SQS_URL)"
    )


def open_queue(
    settings: Settings, name: str = ANALYTICS_QUEUE, config: QueueConfig | None = None, *, clock: Clock | None = None
) -> Queue:
    """One named queue (``analytics``, ``jobs-request``, ``jobs-response``)."""
    if config is None:
        from .queues.base import JOBS_QUEUE_CONFIG, QueueConfig

        config = (
            QueueConfig(visibility_timeout=settings.visibility_timeout_seconds)
            if name == ANALYTICS_QUEUE
            else JOBS_QUEUE_CONFIG
        )
    return open_queue_backend(settings, clock=clock).queue(name, config)


def open_store(settings: Settings, *, clock: Clock | None = None) -> Store:
    """The store the settings name."""
    scheme = urlparse(settings.store_url).scheme
    if scheme == "sqlite":
        from .stores.sqlite import SQLiteStore

        return SQLiteStore(
            _sqlite_path(settings.store_url), clock=clock, pending_ttl_seconds=settings.pending_ttl_seconds
        )
    if scheme == "dynamodb":
        try:
            from .stores.dynamodb import DynamoDBStore
        except ImportError as exc:
            raise MissingDependencyError(
                f"the dynamodb backend needs boto3: pip install 'cv-analytics[aws]' ({exc})"
            ) from exc
        return DynamoDBStore(
            settings.dynamodb_tables,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            clock=clock,
            pending_ttl_seconds=settings.pending_ttl_seconds,
        )
    raise ConfigurationError(
        f"unknown store URL {settings.store_url!r}: use sqlite:///path.db or dynamodb:// (set {PREFIX}STORE_URL)"
    )
