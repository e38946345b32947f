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
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import ConfigurationError
from ..queues.base import QueueConfig
from ..queues.presets import ANALYTICS, JOBS_REQUEST, JOBS_RESPONSE, QueuePreset, sqs_attributes

#: The default name prefix, used by the CLI and the template alike.
DEFAULT_PREFIX = "cv-analytics"

#: A prefix starts with a letter and keeps to characters that are valid in SQS
#: queue, DynamoDB table, Lambda function and EventBridge rule names alike.
#: 32 characters leave room for the longest suffix inside Lambda's 64-character
#: function-name limit and SQS's 80-character queue-name limit.
PREFIX_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,31}$"

DAY = 24 * 3600

ScalarType = Literal["S", "N", "B"]


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can name every resource, else raise :class:`ConfigurationError`."""
    if not re.fullmatch(PREFIX_PATTERN, prefix):
        raise ConfigurationError(
            f"name prefix {prefix!r} is not usable for AWS resource names: start with a letter and use "
            "at most 32 letters, digits and hyphens (e.g. 'cv-analytics' or 'cv-analytics-staging')"
        )
    return prefix


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
        """The physical queue name, e.g. ``cv-analytics-analytics.fifo``, ``cv-analytics-jobs-request``."""
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
class KeyAttribute:
    """An attribute used in a key schema, with its DynamoDB scalar type."""

    name: str
    type: ScalarType


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (on-demand, so no throughput of its own)."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table with on-demand billing."""

    key: str
    base_name: str
    logical_id: str
    partition_key: KeyAttribute
    env_var: str
    output_key: str
    sort_key: KeyAttribute | None = None
    #: Attribute holding an expiry in epoch seconds; DynamoDB deletes expired
    #: items lazily (up to days later), so readers filter on it as well.
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = ()

    def name(self, prefix: str = DEFAULT_PREFIX) -> str:
        """The physical table name, e.g. ``cv-analytics-query-events``."""
        return f"{validate_prefix(prefix)}-{self.base_name}"

    def key_schema(self) -> list[dict[str, str]]:
        return _key_schema(self.partition_key, self.sort_key)

    def attribute_definitions(self) -> list[dict[str, str]]:
        """Every attribute named by the table's or an index's key, once, sorted by name."""
        keys = [self.partition_key, self.sort_key]
        for index in self.indexes:
            keys += [index.partition_key, index.sort_key]
        unique = {k.name: k for k in keys if k is not None}
        return [{"AttributeName": name, "AttributeType": unique[name].type} for name in sorted(unique)]

    def global_secondary_indexes(self) -> list[dict[str, Any]]:
        return [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.partition_key, index.sort_key),
                "Projection": {"ProjectionType": index.projection},
            }
            for index in self.indexes
        ]

    def create_table_request(self, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
        """Keyword arguments for boto3's ``create_table``."""
        request: dict[str, Any] = {
            "TableName": self.name(prefix),
            "KeySchema": self.key_schema(),
            "AttributeDefinitions": self.attribute_definitions(),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = self.global_secondary_indexes()
        return request


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

    def name(self, prefix: str = DEFAULT_PREFIX) -> str:
        return f"{validate_prefix(prefix)}-{self.base_name}"

    def log_group_name(self, prefix: str = DEFAULT_PREFIX) -> str:
        """Lambda's default log group, which the stack creates itself to set its retention."""
        return f"/aws/lambda/{self.name(prefix)}"


def _key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


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

#: Query and response events waiting for their counterpart, keyed by the
#: request (correlation) id; they expire through ``ttl`` when none arrives.
EVENTS_TABLE = TableSpec(
    key="events",
    base_name="query-events",
    logical_id="EventsTable",
    partition_key=KeyAttribute("requestId", "S"),
    ttl_attribute="ttl",
    env_var="CV_ANALYTICS_EVENTS_TABLE",
    output_key="EventsTableName",
)

#: One interaction per request id; ``week-index`` serves the weekly report a
#: week's interactions in time order without a scan.
WEEK_INDEX = IndexSpec("week-index", KeyAttribute("week", "S"), KeyAttribute("timestamp", "N"))
INTERACTIONS_TABLE = TableSpec(
    key="interactions",
    base_name="analytics",
    logical_id="InteractionsTable",
    partition_key=KeyAttribute("requestId", "S"),
    indexes=(WEEK_INDEX,),
    env_var="CV_ANALYTICS_INTERACTIONS_TABLE",
    output_key="InteractionsTableName",
)

#: Send-once records of weekly reports, one per ISO week and recipient (the
#: store's ``ReportDelivery``). EventBridge delivers a schedule at least once
#: and Lambda retries a failed asynchronous invocation twice, so the reporter
#: looks for the week's record before sending and writes it after: a repeated
#: invocation for the same week sends nothing.
REPORTS_TABLE = TableSpec(
    key="reports",
    base_name="reports",
    logical_id="ReportsTable",
    partition_key=KeyAttribute("week", "S"),
    sort_key=KeyAttribute("recipient", "S"),
    env_var="CV_ANALYTICS_REPORTS_TABLE",
    output_key="ReportsTableName",
)

TABLES: tuple[TableSpec, ...] = (EVENTS_TABLE, INTERACTIONS_TABLE, REPORTS_TABLE)

# -- functions --------------------------------------------------------------------

RECIPIENT_EMAIL_ENV = "RECIPIENT_EMAIL"
SENDER_EMAIL_ENV = "SENDER_EMAIL"

#: The environment both functions get: every queue URL, table name and the
#: report's addresses. Both get all of it so that one settings loader sees one
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
FUNCTIONS: tuple[FunctionSpec, ...] = (PROCESSOR_FUNCTION, REPORTER_FUNCTION)

#: SQS event source batch size: at most 10 messages, the SQS receive limit.
EVENT_SOURCE_BATCH_SIZE = 10

#: The weekly report's default schedule (EventBridge cron: Mondays 07:00 UTC).
DEFAULT_SCHEDULE = "cron(0 7 ? * MON *)"

#: A Duration alarm fires when an invocation takes this share of its timeout.
DURATION_ALARM_RATIO = 0.8

#: The analytics queue's backlog alarm: the oldest message is older than this.
QUEUE_AGE_ALARM_SECONDS = 300

#: CloudWatch Logs retention of both functions' log groups.
LOG_RETENTION_DAYS = 14


def queue(key: str) -> QueueSpec:
    """The queue with ``key`` (``analytics``, ``analytics-dlq``, ``jobs-request``...)."""
    for spec in QUEUES:
        if spec.key == key:
            return spec
    raise KeyError(f"no queue {key!r}; known: {', '.join(q.key for q in QUEUES)}")


def table(key: str) -> TableSpec:
    """The table with ``key`` (``events``, ``interactions``, ``reports``)."""
    for spec in TABLES:
        if spec.key == key:
            return spec
    raise KeyError(f"no table {key!r}; known: {', '.join(t.key for t in TABLES)}")
