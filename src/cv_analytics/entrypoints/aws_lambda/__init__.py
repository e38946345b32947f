"""AWS Lambda entry points: the analytics processor and the weekly reporter.

Handler names (``infra/template.yaml``, :mod:`cv_analytics.deploy.resources`):
``cv_analytics.entrypoints.aws_lambda.process_analytics`` (see
:mod:`.analytics`) and ``cv_analytics.entrypoints.aws_lambda.weekly_report``
(see :mod:`.report`). Their warm state is :mod:`.warm`; their JSON log lines
:mod:`.logs`. Importing this package imports neither boto3 nor pydantic.
"""

from .analytics import process_analytics
from .logs import LOGGER_NAME
from .report import weekly_report
from .warm import configure, reset

__all__ = ["LOGGER_NAME", "configure", "process_analytics", "reset", "weekly_report"]
