"""What a deployment's queues, tables and alarms say right now, read from AWS.

The figures ``cv-analytics status`` shows embedded, for the stack (or a
bootstrap) named ``<prefix>-...``: each queue's visible, in-flight and delayed
messages (SQS attributes) and the age of its oldest message (CloudWatch's
``ApproximateAgeOfOldestMessage``: SQS has no attribute for it), each table's
item count and size (DynamoDB's, updated about every six hours), and the state
of every CloudWatch alarm whose name starts with ``<prefix>-``. A queue or
table that does not exist (a bootstrap has no report failure queue) is
reported missing, not as an error. :meth:`StackStatus.to_json` is the shape of
``aws status --json``: camelCase keys, numbers as numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import resources
from .resources import QueueSpec, TableSpec

if TYPE_CHECKING:
    import boto3

#: How far back the age-of-oldest datapoint may be (SQS publishes it every minute while a queue is active).
AGE_LOOKBACK = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class QueueFigures:
    key: str
    name: str
    exists: bool
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    #: seconds, CloudWatch's latest maximum; None when CloudWatch has no recent datapoint
    oldest_age_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "exists": self.exists,
            "visible": self.visible,
            "inFlight": self.in_flight,
            "delayed": self.delayed,
            "oldestAgeSeconds": self.oldest_age_seconds,
        }


@dataclass(frozen=True)
class TableFigures:
    key: str
    name: str
    exists: bool
    item_count: int = 0
    size_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "exists": self.exists,
            "itemCount": self.item_count,
            "sizeBytes": self.size_bytes,
        }


@dataclass(frozen=True)
class AlarmFigures:
    name: str
    #: OK, ALARM or INSUFFICIENT_DATA
    state: str
    reason: str
    #: when the state last changed, ISO 8601 UTC
    updated: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "reason": self.reason, "updated": self.updated}


@dataclass(frozen=True)
class StackStatus:
    prefix: str
    region: str
    queues: tuple[QueueFigures, ...]
    tables: tuple[TableFigures, ...]
    alarms: tuple[AlarmFigures, ...]

    @property
    def alarms_firing(self) -> tuple[AlarmFigures, ...]:
        return tuple(a for a in self.alarms if a.state == "ALARM")

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "region": self.region,
            "queues": [q.to_json() for q in self.queues],
            "tables": [t.to_json() for t in self.tables],
            "alarms": [a.to_json() for a in self.alarms],
            "alarmsFiring": len(self.alarms_firing),
        }


@dataclass(frozen=True)
class StatusClients:
    """The boto3 clients the status reads use (``sqs``, ``dynamodb``, ``cloudwatch``)."""

    sqs: Any
    dynamodb: Any
    cloudwatch: Any

    @classmethod
    def from_session(cls, session: boto3.Session, *, endpoint_url: str | None = None) -> StatusClients:
        from ..boto.clients import make_client

        return cls(*(make_client(s, session=session, endpoint_url=endpoint_url) for s in ("sqs", "dynamodb", "cloudwatch")))


def stack_status(
    clients: StatusClients,
    prefix: str = resources.DEFAULT_PREFIX,
    *,
    region: str,
    now: dt.datetime | None = None,
) -> StackStatus:
    """Read every queue, table and ``<prefix>-`` alarm. botocore's errors (no
    credentials, endpoint unreachable, access denied) propagate to the caller."""
    resources.validate_prefix(prefix)
    now = now or dt.datetime.now(dt.UTC)
    queues = tuple(_queue_figures(clients, spec, prefix, now) for spec in resources.STACK_QUEUES)
    tables = tuple(_table_figures(clients.dynamodb, spec, prefix) for spec in resources.TABLES)
    return StackStatus(prefix, region, queues, tables, _alarms(clients.cloudwatch, prefix))


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _queue_figures(clients: StatusClients, spec: QueueSpec, prefix: str, now: dt.datetime) -> QueueFigures:
    from ..boto.clients import ClientError

    name = spec.name(prefix)
    try:
        url = clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if _error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return QueueFigures(spec.key, name, exists=False)
        raise
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueFigures(
        spec.key,
        name,
        exists=True,
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        oldest_age_seconds=_oldest_age(clients.cloudwatch, name, now),
    )


def _oldest_age(cloudwatch: Any, queue_name: str, now: dt.datetime) -> float | None:
    datapoints = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - AGE_LOOKBACK,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not datapoints:
        return None
    latest = max(datapoints, key=lambda d: d["Timestamp"])
    return float(latest["Maximum"])


def _table_figures(dynamodb: Any, spec: TableSpec, prefix: str) -> TableFigures:
    from ..boto.clients import ClientError

    name = spec.name(prefix)
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return TableFigures(spec.key, name, exists=False)
        raise
    return TableFigures(spec.key, name, True, int(table.get("ItemCount", 0)), int(table.get("TableSizeBytes", 0)))


def _alarms(cloudwatch: Any, prefix: str) -> tuple[AlarmFigures, ...]:
    alarms = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{prefix}-"):
        for alarm in page["MetricAlarms"]:
            updated = alarm.get("StateUpdatedTimestamp")
            alarms.append(
                AlarmFigures(
                    alarm["AlarmName"],
                    alarm["StateValue"],
                    alarm.get("StateReason", ""),
                    updated.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if updated else None,
                )
            )
    return tuple(sorted(alarms, key=lambda a: a.name))
