"""The AWS resources of cv-analytics, described once.

Queue names and attributes, table names and key schemas, the Lambda functions'
settings and the environment variables that carry resource names to the code
live here. :mod:`cv_analytics.deploy.bootstrap` creates resources from these
descriptions, and a test checks that ``infra/template.yaml`` (the
CloudFormation stack) declares exactly the same ones, so the two ways of
standing up AWS cannot drift apart.

Every physical name is ``<prefix>-<base name>`` so that several deployments
(``cv-analytics``, ``cv-analytics-staging``) can share one account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# The tables are the DynamoDB store's own description, re-exported here beside the queues and functions.
from ..stores.dynamodb_tables import (  # noqa: F401
    DEFAULT_PREFIX,
    EVENTS_TABLE,
    INTERACTIONS_TABLE,
    JOBS_ENTITY_INDEX,
    JOBS_STATUS_INDEX,
    JOBS_TABLE,
    JOBS_TYPE_INDEX,
    PREFIX_PATTERN,
    REPORTS_TABLE,
    TABLES,
    WEEK_INDEX,
    IndexSpec,
    KeyAttribute,
    TableSpec,
    _key_schema,
    validate_prefix,
)
from ..queues.base import QueueConfig
from ..queues.presets import ANALYTICS, JOBS_REQUEST, JOBS_RESPONSE, QueuePreset, sqs_attributes

DAY = 24 * 3600


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue (FIFO or standard, as its preset says): its name, behaviour and the variable that carries its URL."""

    #: Short key used in bootstrap reports: ``analytics``, ``analytics-dlq``...
    key: str
    #: Name without prefix and without the ``.fifo`` suffix SQS requires of FIFO queues
    #: (the preset's name, or its dead-letter queue's).
    base_name: str
    #: Logical id of the queue in ``infra/template.yaml``.
    logical_id: str
    config: QueueConfig
    #: Environment variable that tells the code the queue's URL.
    env_var: str
    #: Key of the output in the CloudFormation stack that gives the queue's URL.
    output_key: str
    #: The dead-letter queue that messages move to after ``config.max_receive_count`` receives.
    dead_letter: QueueSpec | None = None

    def name(self, prefix: str = DEFAULT_PREFIX) -> str:
        """The physical queue name, e.g. ``cv-analytics-analytics.fifo``, ``cv-analytics-ai-job-request``."""
        suffix = ".fifo" if self.config.fifo else ""
        return f"{validate_prefix(prefix)}-{self.base_name}{suffix}"

    def attributes(self, dead_letter_arn: str | None = None) -> dict[str, str]:
        """The queue attributes as SQS ``CreateQueue`` takes and ``GetQueueAttributes`` returns them.

        ``dead_letter_arn`` is required for a queue with a dead-letter queue,
        since the redrive policy names it by ARN.
        """
        config = self.config
        attributes = sqs_attributes(config)
        if self.dead_letter is not None:
            if dead_letter_arn is None:
                raise ValueError(f"queue {self.key!r} has a dead-letter queue: pass its ARN")
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": config.max_receive_count}
            )
        return attributes


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function of the stack (deployed by CloudFormation only)."""

    key: str
    base_name: str
    logical_id: str
    handler: str
    timeout_seconds: int
    output_key: str
    memory_mb: int = 512
    runtime: str = "python3.12"
    #: The package is built for this architecture (see :mod:`cv_analytics.deploy.package`).
    architecture: str = "x86_64"
    environment: tuple[str, ...] = field(default=())
    #: The Lambda metrics the stack alarms on for this function (Duration: near its timeout).
    alarmed_metrics: tuple[str, ...] = ("Errors", "Throttles", "Duration")

    def name(self, prefix: str = DEFAULT_PREFIX) -> str:
        return f"{validate_prefix(prefix)}-{self.base_name}"

    def log_group_name(self, prefix: str = DEFAULT_PREFIX) -> str:
        """Lambda's default log group, which the stack creates itself to set its retention."""
        return f"/aws/lambda/{self.name(prefix)}"


# -- queues ---------------------------------------------------------------------

def _queue_specs(
    preset: QueuePreset, logical_id: str, env_var: str, dead_letter_env_var: str
) -> tuple[QueueSpec, QueueSpec]:
    """A preset's queue and its dead-letter queue, named and configured by the preset."""
    dead_letter = QueueSpec(
        key=preset.dead_letter_name,
        base_name=preset.dead_letter_name,
        logical_id=logical_id.removesuffix("Queue") + "DeadLetterQueue",
        config=preset.dead_letter_config,
        env_var=dead_letter_env_var,
        output_key=logical_id.removesuffix("Queue") + "DeadLetterQueueUrl",
    )
    queue = QueueSpec(
        key=preset.name,
        base_name=preset.name,
        logical_id=logical_id,
        config=preset.config,
        env_var=env_var,
        output_key=f"{logical_id}Url",
        dead_letter=dead_letter,
    )
    return queue, dead_letter


# AWS_SQS_URL: the existing deployment's name
ANALYTICS_QUEUE, ANALYTICS_DLQ = _queue_specs(ANALYTICS, "AnalyticsQueue", "AWS_SQS_URL", "CV_ANALYTICS_DLQ_URL")
JOB_REQUEST_QUEUE, JOB_REQUEST_DLQ = _queue_specs(
    JOBS_REQUEST, "JobRequestQueue", "AI_JOB_REQUEST_QUEUE_URL", "CV_ANALYTICS_JOB_REQUEST_DLQ_URL"
)
JOB_RESPONSE_QUEUE, JOB_RESPONSE_DLQ = _queue_specs(
    JOBS_RESPONSE, "JobResponseQueue", "AI_JOB_RESPONSE_QUEUE_URL", "CV_ANALYTICS_JOB_RESPONSE_DLQ_URL"
)

#: Every queue, each dead-letter queue before the queue that redrives into it
#: (the order they must be created in).
QUEUES: tuple[QueueSpec, ...] = (
    ANALYTICS_DLQ,
    ANALYTICS_QUEUE,
    JOB_REQUEST_DLQ,
    JOB_REQUEST_QUEUE,
    JOB_RESPONSE_DLQ,
    JOB_RESPONSE_QUEUE,
)

# -- tables ---------------------------------------------------------------------

# -- functions --------------------------------------------------------------------

RECIPIENT_EMAIL_ENV = "RECIPIENT_EMAIL"
SENDER_EMAIL_ENV = "SENDER_EMAIL"
#: The HTTP API's accepted keys (``x-api-key``), from the stack's NoEcho ``ApiKeys`` parameter.
API_KEYS_ENV = "CV_ANALYTICS_API_KEYS"
#: The OpenAI-compatible endpoint the job types and the assistant may call (optional stack parameters).
LLM_ENVIRONMENT: tuple[str, ...] = ("CV_ANALYTICS_LLM_URL", "CV_ANALYTICS_LLM_MODEL", "CV_ANALYTICS_LLM_API_KEY")

#: The environment every function gets: every queue URL, table name and the
#: report's addresses. All get all of it so that one settings loader sees one
#: consistent deployment; what each may *do* is limited by its IAM role.
FUNCTION_ENVIRONMENT: tuple[str, ...] = (
    *(q.env_var for q in QUEUES),
    *(t.env_var for t in TABLES),
    RECIPIENT_EMAIL_ENV,
    SENDER_EMAIL_ENV,
)

PROCESSOR_FUNCTION = FunctionSpec(
    key="processor",
    base_name="process-analytics",
    logical_id="ProcessorFunction",
    handler="cv_analytics.entrypoints.aws_lambda.process_analytics",
    timeout_seconds=30,
    output_key="ProcessorFunctionName",
    environment=FUNCTION_ENVIRONMENT,
)
REPORTER_FUNCTION = FunctionSpec(
    key="reporter",
    base_name="weekly-report",
    logical_id="ReporterFunction",
    handler="cv_analytics.entrypoints.aws_lambda.weekly_report",
    timeout_seconds=60,
    output_key="ReporterFunctionName",
    environment=FUNCTION_ENVIRONMENT,
)
#: Runs AI jobs from the request queue: up to 15 minutes (the request queue's
#: visibility timeout) and the seed's 3,008 MB, which also buys the CPU share
#: an embedding model needs.
JOB_WORKER_FUNCTION = FunctionSpec(
    key="job-worker",
    base_name="process-job-requests",
    logical_id="JobWorkerFunction",
    handler="cv_analytics.entrypoints.aws_lambda.process_job_requests",
    timeout_seconds=900,
    memory_mb=3008,
    output_key="JobWorkerFunctionName",
    environment=(*FUNCTION_ENVIRONMENT, *LLM_ENVIRONMENT),
    # Errors only, for the jobs functions: every alarm past CloudWatch's ten free
    # ones costs $0.10 a month, and the request queue's age and depth alarms and
    # the dead-letter queues' cover slow or failing jobs. The HTTP API function
    # has none: its errors are 5xx answers its callers see and retry.
    alarmed_metrics=("Errors",),
)
#: Applies job results from the response queue to the jobs table.
JOB_RESULTS_FUNCTION = FunctionSpec(
    key="job-results",
    base_name="process-job-results",
    logical_id="JobResultsFunction",
    handler="cv_analytics.entrypoints.aws_lambda.process_job_results",
    timeout_seconds=300,
    output_key="JobResultsFunctionName",
    environment=FUNCTION_ENVIRONMENT,
    alarmed_metrics=("Errors",),
)
#: The web app (the jobs API and the rest) behind the API Gateway HTTP API,
#: through mangum. 30 s: API Gateway's own limit for an HTTP API integration.
#: 1,024 MB: Lambda's CPU share grows with memory, and a cold FastAPI app is CPU-bound.
HTTP_API_FUNCTION = FunctionSpec(
    key="http-api",
    base_name="http-api",
    logical_id="HttpApiFunction",
    handler="cv_analytics.entrypoints.aws_lambda.http_api",
    timeout_seconds=30,
    memory_mb=1024,
    output_key="HttpApiFunctionName",
    environment=(*FUNCTION_ENVIRONMENT, API_KEYS_ENV, *LLM_ENVIRONMENT),
    alarmed_metrics=(),
)
FUNCTIONS: tuple[FunctionSpec, ...] = (
    PROCESSOR_FUNCTION,
    REPORTER_FUNCTION,
    JOB_WORKER_FUNCTION,
    JOB_RESULTS_FUNCTION,
    HTTP_API_FUNCTION,
)

#: SQS event source batch size: at most 10 messages, the SQS receive limit.
EVENT_SOURCE_BATCH_SIZE = 10
#: The job worker's event source waits up to this long to fill a batch (the seed's setting).
JOB_REQUEST_BATCHING_WINDOW_SECONDS = 5

#: The routes the HTTP API names (the jobs API); ``$default`` sends every other
#: path to the same function, so the whole web app answers behind one API.
HTTP_API_ROUTES: tuple[str, ...] = (
    "POST /jobs",
    "GET /jobs",
    "GET /jobs/{jobId}",
    "POST /jobs/{jobId}/cancel",
    "$default",
)

#: The weekly report's default schedule (EventBridge cron: Mondays 07:00 UTC).
DEFAULT_SCHEDULE = "cron(0 7 ? * MON *)"

#: A Duration alarm fires when an invocation takes this share of its timeout.
DURATION_ALARM_RATIO = 0.8

#: The analytics and job request queues' backlog alarm: the oldest message is older than this.
QUEUE_AGE_ALARM_SECONDS = 300
#: The job request queue's depth alarm fires above this many visible messages
#: unless the stack's ``JobRequestQueueDepthThreshold`` parameter says otherwise.
DEFAULT_JOB_REQUEST_DEPTH_THRESHOLD = 100

#: CloudWatch Logs retention of every function's log group.
LOG_RETENTION_DAYS = 14


def queue(key: str) -> QueueSpec:
    """The queue with ``key`` (``analytics``, ``analytics-dlq``, ``ai-job-request``...)."""
    for spec in QUEUES:
        if spec.key == key:
            return spec
    raise KeyError(f"no queue {key!r}; known: {', '.join(q.key for q in QUEUES)}")


def table(key: str) -> TableSpec:
    """The table with ``key`` (``events``, ``interactions``, ``reports``, ``jobs``)."""
    for spec in TABLES:
        if spec.key == key:
            return spec
    raise KeyError(f"no table {key!r}; known: {', '.join(t.key for t in TABLES)}")
