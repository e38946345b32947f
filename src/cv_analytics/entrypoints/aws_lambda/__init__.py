"""AWS Lambda entry points: the analytics processor, the weekly reporter, the jobs worker and results, the HTTP API.

Handler names (``infra/template.yaml``, :mod:`cv_analytics.deploy.resources`):
``cv_analytics.entrypoints.aws_lambda.process_analytics`` (see
:mod:`.analytics`), ``...weekly_report`` (see :mod:`.report`),
``...process_job_requests`` and ``...process_job_results`` (see :mod:`.jobs`)
and ``...http_api`` (see :mod:`.http`). Their warm state is :mod:`.warm`;
their JSON log lines :mod:`.logs`. Importing this package imports neither
boto3 nor pydantic.
"""

from .analytics import process_analytics
from .http import http_api
from .jobs import process_job_requests, process_job_results
from .logs import LOGGER_NAME
from .report import weekly_report
from .warm import configure, reset

__all__ = [
    "LOGGER_NAME",
    "configure",
    "http_api",
    "process_analytics",
    "process_job_requests",
    "process_job_results",
    "reset",
    "weekly_report",
]
