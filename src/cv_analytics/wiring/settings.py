"""Settings: everything configurable, read from the environment in this one place.

Nothing below the wiring reads the environment: parts and backends take plain
arguments, and :mod:`cv_analytics.wiring.backends` turns these settings into
queues, stores and deliverers. With nothing set, everything runs embedded
under ``./cv-analytics-data/``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..exceptions import ConfigurationError
from ..queues import presets

PREFIX = "CV_ANALYTICS_"
DEFAULT_DATA_DIR = "cv-analytics-data"

#: Logical queue names, each with the environment variable the existing deployment uses for its URL on SQS.
ANALYTICS_QUEUE = presets.ANALYTICS.name
JOBS_REQUEST_QUEUE = presets.JOBS_REQUEST.name
JOBS_RESPONSE_QUEUE = presets.JOBS_RESPONSE.name
#: prometheus-client's multiprocess directory (the library reads it too, in the processes that write there)
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: ``CV_ANALYTICS_RETRIEVAL``: how the assistant finds skills (the methods of ``assistant.open_retriever``;
#: not imported from there, so reading settings does not load numpy and httpx).
RETRIEVAL_VARIABLE = f"{PREFIX}RETRIEVAL"
RETRIEVAL_METHODS = ("auto", "embedding", "bm25")
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
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def _nice(env: Mapping[str, str], name: str) -> int:
    value = _float(env, name, 10)
    if value != int(value) or not 0 <= value <= 19:
        raise ConfigurationError(f"{name} must be a whole number from 0 to 19, got {env.get(name)!r}")
    return int(value)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigurationError(f"{name} must be a positive number, got {value:g}")
    return value


def _optional_bytes(env: Mapping[str, str], name: str) -> int | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    value = _float(env, name, 0.0)
    if value != int(value) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number of bytes, at least 1, got {raw!r}")
    return int(value)


def _alarms_file(env: Mapping[str, str], data_dir: pathlib.Path) -> pathlib.Path | None:
    named = env.get(f"{PREFIX}ALARMS_FILE")
    if named:
        return pathlib.Path(named)
    default = data_dir / "alarms.yaml"
    return default if default.is_file() else None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def _retrieval_method(env: Mapping[str, str]) -> str:
    method = (env.get(RETRIEVAL_VARIABLE) or "auto").strip().lower()
    if method not in RETRIEVAL_METHODS:
        raise ConfigurationError(
            f"{RETRIEVAL_VARIABLE} must be one of {', '.join(RETRIEVAL_METHODS)}, got {env[RETRIEVAL_VARIABLE]!r}"
        )
    return method


def _optional_float(env: Mapping[str, str], name: str) -> float | None:
    raw = (env.get(name) or "").strip()
    return None if not raw else _float(env, name, 0.0)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read once from the environment by :meth:`from_env`."""

    data_dir: pathlib.Path = field(default_factory=lambda: pathlib.Path(DEFAULT_DATA_DIR))
    queue_url: str = ""
    store_url: str = ""
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    #: SES's own endpoint (boto3's ``AWS_ENDPOINT_URL_SES``), before ``aws_endpoint_url``: passing that one to boto3
    #: explicitly would otherwise override the service's own
    ses_endpoint_url: str | None = None
    sqs_queue_urls: Mapping[str, str] = field(default_factory=dict)
    dynamodb_tables: Mapping[str, str] = field(default_factory=dict)
    recipient_email: str | None = None
    sender_email: str | None = None
    #: a query still unanswered after this long becomes an ``unanswered`` interaction
    orphan_timeout_seconds: float = 900.0
    pending_ttl_seconds: float = 7 * 24 * 3600.0
    #: embedded analytics queue: how long a received message stays hidden before redelivery
    visibility_timeout_seconds: float = presets.EMBEDDED_ANALYTICS_VISIBILITY_TIMEOUT
    #: seconds between orphan sweeps (the embedded worker, and each Lambda container)
    sweep_interval_seconds: float | None = None
    #: the owner's skills catalog (``CV_ANALYTICS_SKILLS_FILE``); the packaged one when None
    skills_file: pathlib.Path | None = None
    #: interactions older than this many days are pruned (``CV_ANALYTICS_RETENTION_DAYS``)
    retention_days: float = 400.0
    #: the alarms file (``CV_ANALYTICS_ALARMS_FILE``; else ``alarms.yaml`` in the data directory when there is one)
    alarms_file: pathlib.Path | None = None
    #: seconds between alarm checks in the worker and the scheduler (``CV_ANALYTICS_ALARM_INTERVAL``)
    alarm_interval_seconds: float | None = None
    #: ``json``, ``text`` or ``auto`` (JSON lines unless stderr is a terminal): ``CV_ANALYTICS_LOG_FORMAT``
    log_format: str = "auto"
    #: the analytics worker lowers its CPU priority by this much (``CV_ANALYTICS_WORKER_NICE``, 0-19): on a
    #: machine it shares with the chatbot, correlating events never takes CPU from answering requests
    worker_nice: int = 10
    #: redact e-mail addresses and phone numbers from query text before it is stored (``CV_ANALYTICS_REDACT_PII``)
    redact_pii: bool = False
    #: API keys accepted by the HTTP API (``x-api-key``), from ``CV_ANALYTICS_API_KEYS`` (comma-separated)
    api_keys: tuple[str, ...] = ()
    #: the dashboard's login password (``CV_ANALYTICS_DASHBOARD_PASSWORD``); without one it answers on loopback only
    dashboard_password: str | None = None
    #: signs the dashboard's session cookie (``CV_ANALYTICS_SESSION_SECRET``); a random one per process when unset
    session_secret: str | None = None
    #: an OpenAI-compatible chat-completions endpoint (``CV_ANALYTICS_LLM_URL``, ``_MODEL``, ``_API_KEY``)
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    #: the job store (``CV_ANALYTICS_JOBS_STORE_URL``): ``jobs.db`` in the data directory, or DynamoDB
    #: when ``CV_ANALYTICS_JOBS_TABLE`` is set
    jobs_store_url: str = ""
    #: the jobs request queue's visibility timeout, when not the preset's 900 s
    #: (``CV_ANALYTICS_JOBS_VISIBILITY_TIMEOUT``): how soon a killed worker's job comes back
    jobs_visibility_timeout_seconds: float | None = None
    #: the jobs response queue's visibility timeout, when not the preset's 300 s
    #: (``CV_ANALYTICS_JOBS_RESULTS_VISIBILITY_TIMEOUT``): how soon the results a killed result processor held come back
    jobs_results_visibility_timeout_seconds: float | None = None
    #: the first retry of a failed job waits about this long, doubling per receive (``CV_ANALYTICS_JOBS_RETRY_BASE``)
    jobs_retry_base_seconds: float = 5.0
    #: whether the web app logs its own searches through the analytics client
    #: (``CV_ANALYTICS_ANALYTICS_ENABLED=0`` switches it off: no client, no events; for the benchmark's baseline)
    analytics_enabled: bool = True
    #: where worker processes write their Prometheus metrics for ``/metrics`` to read
    #: (``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's own variable; ``serve`` sets it for its children)
    metrics_dir: pathlib.Path | None = None
    #: how the assistant finds skills (``CV_ANALYTICS_RETRIEVAL``): auto (embeddings when the ``[ai]``
    #: extra is installed, else BM25), embedding, bm25
    retrieval_method: str = "auto"
    #: the analytics client's disk spool holds at most this many bytes; beyond it events are dropped, counted
    #: and shown by ``status`` (``CV_ANALYTICS_SPOOL_MAX_BYTES``; the client's default, 256 MiB, when None)
    spool_max_bytes: int | None = None
    #: the raw environment, for the settings modules of the parts (reporting); nothing below the wiring reads it
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
        jobs_store_url = env.get(f"{PREFIX}JOBS_STORE_URL") or (
            "dynamodb://" if "jobs" in tables else f"sqlite:///{root / 'jobs.db'}"
        )
        return cls(
            data_dir=root,
            queue_url=queue_url,
            store_url=store_url,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL"),
            ses_endpoint_url=env.get("AWS_ENDPOINT_URL_SES"),
            sqs_queue_urls=sqs_urls,
            dynamodb_tables=tables,
            recipient_email=env.get("RECIPIENT_EMAIL"),
            sender_email=env.get("SENDER_EMAIL"),
            orphan_timeout_seconds=_float(env, f"{PREFIX}ORPHAN_TIMEOUT", 900.0),
            pending_ttl_seconds=_float(env, f"{PREFIX}PENDING_TTL", 7 * 24 * 3600.0),
            visibility_timeout_seconds=_float(env, f"{PREFIX}VISIBILITY_TIMEOUT", presets.EMBEDDED_ANALYTICS_VISIBILITY_TIMEOUT),
            sweep_interval_seconds=_optional_float(env, f"{PREFIX}SWEEP_INTERVAL"),
            skills_file=pathlib.Path(env[f"{PREFIX}SKILLS_FILE"]) if env.get(f"{PREFIX}SKILLS_FILE") else None,
            retention_days=_positive(env, f"{PREFIX}RETENTION_DAYS", 400.0),
            alarms_file=_alarms_file(env, root),
            alarm_interval_seconds=_optional_float(env, f"{PREFIX}ALARM_INTERVAL"),
            log_format=_choice(env, f"{PREFIX}LOG_FORMAT", ("auto", "json", "text")),
            worker_nice=_nice(env, f"{PREFIX}WORKER_NICE"),
            redact_pii=_flag(env, f"{PREFIX}REDACT_PII", False),
            api_keys=tuple(key.strip() for key in env.get(f"{PREFIX}API_KEYS", "").split(",") if key.strip()),
            dashboard_password=env.get(f"{PREFIX}DASHBOARD_PASSWORD") or None,
            session_secret=env.get(f"{PREFIX}SESSION_SECRET") or None,
            llm_url=env.get(f"{PREFIX}LLM_URL") or None,
            llm_model=env.get(f"{PREFIX}LLM_MODEL") or None,
            llm_api_key=env.get(f"{PREFIX}LLM_API_KEY") or None,
            jobs_store_url=jobs_store_url,
            jobs_visibility_timeout_seconds=_optional_float(env, f"{PREFIX}JOBS_VISIBILITY_TIMEOUT"),
            jobs_results_visibility_timeout_seconds=_optional_float(env, f"{PREFIX}JOBS_RESULTS_VISIBILITY_TIMEOUT"),
            jobs_retry_base_seconds=_float(env, f"{PREFIX}JOBS_RETRY_BASE", 5.0),
            analytics_enabled=_flag(env, f"{PREFIX}ANALYTICS_ENABLED", True),
            metrics_dir=pathlib.Path(env[METRICS_DIR_VARIABLE]) if env.get(METRICS_DIR_VARIABLE) else None,
            retrieval_method=_retrieval_method(env),
            spool_max_bytes=_optional_bytes(env, f"{PREFIX}SPOOL_MAX_BYTES"),
            env=env,
        )

    @property
    def spool_dir(self) -> pathlib.Path:
        return self.data_dir / "spool"

    @property
    def reports_dir(self) -> pathlib.Path:
        return self.data_dir / "reports"
