"""The wiring: settings from the environment, and the backends they name.

The only layer that imports backend modules (queue and store backends, the
boto3 clients) and the only one that reads the environment. Entry points (the
CLI, the Lambda handlers, the web app) build a :class:`Wiring` and hand plain
objects down to the parts.
"""

from .backends import (
    Wiring,
    insights_for,
    load_skills_catalog,
    open_job_store,
    open_llm_client,
    open_queue,
    open_queue_backend,
    open_retriever_for,
    open_sqs_backend,
    open_store,
    queue_config,
)
from .jobs import job_worker, result_processor
from .settings import (
    ANALYTICS_QUEUE,
    DEFAULT_DATA_DIR,
    JOBS_REQUEST_QUEUE,
    JOBS_RESPONSE_QUEUE,
    PREFIX,
    RETRIEVAL_METHODS,
    RETRIEVAL_VARIABLE,
    SQS_URL_VARIABLES,
    Settings,
)

__all__ = [
    "ANALYTICS_QUEUE",
    "DEFAULT_DATA_DIR",
    "JOBS_REQUEST_QUEUE",
    "JOBS_RESPONSE_QUEUE",
    "PREFIX",
    "RETRIEVAL_METHODS",
    "RETRIEVAL_VARIABLE",
    "SQS_URL_VARIABLES",
    "Settings",
    "Wiring",
    "insights_for",
    "job_worker",
    "load_skills_catalog",
    "open_job_store",
    "open_llm_client",
    "open_queue",
    "open_queue_backend",
    "open_retriever_for",
    "open_sqs_backend",
    "open_store",
    "queue_config",
    "result_processor",
]
