"""The DynamoDB tables of the store, described once: names, keys, TTL attribute, the week index.

The DynamoDB store reads and writes by these keys; :mod:`cv_analytics.deploy`
(``aws bootstrap``) creates the tables from them and a test holds
``infra/template.yaml`` to them. No boto3 here: it is plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from ..exceptions import ConfigurationError

#: The default name prefix, used by the CLI and the template alike.
DEFAULT_PREFIX = "cv-analytics"

#: A prefix starts with a letter and keeps to characters that are valid in SQS
#: queue, DynamoDB table, Lambda function and EventBridge rule names alike.
#: 32 characters leave room for the longest suffix inside Lambda's 64-character
#: function-name limit and SQS's 80-character queue-name limit.
PREFIX_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,31}$"

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


def _key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


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

#: AI jobs and their idempotency keys, in one table keyed by ``pk``: a job is
#: ``job#<jobId>``, an idempotency key ``idempotency#<key>`` (it names its job and
#: expires with it through its own ``ttl``). A job item carries ``entity`` =
#: ``job``, ``status``, ``type`` and ``created`` (the creation time in zero-padded
#: epoch milliseconds, then ``#<jobId>``), so three sparse indexes list jobs newest
#: first: all of them, by status, by type (idempotency items carry none of these
#: and stay out). ``entity-created-index`` puts every job in one index partition:
#: fine at a chatbot's rate of jobs, well under an index partition's write limit.
JOBS_ENTITY_INDEX = IndexSpec("entity-created-index", KeyAttribute("entity", "S"), KeyAttribute("created", "S"))
JOBS_STATUS_INDEX = IndexSpec("status-created-index", KeyAttribute("status", "S"), KeyAttribute("created", "S"))
JOBS_TYPE_INDEX = IndexSpec("type-created-index", KeyAttribute("type", "S"), KeyAttribute("created", "S"))
JOBS_TABLE = TableSpec(
    key="jobs",
    base_name="jobs",
    logical_id="JobsTable",
    partition_key=KeyAttribute("pk", "S"),
    ttl_attribute="ttl",
    indexes=(JOBS_ENTITY_INDEX, JOBS_STATUS_INDEX, JOBS_TYPE_INDEX),
    env_var="CV_ANALYTICS_JOBS_TABLE",
    output_key="JobsTableName",
)

TABLES: tuple[TableSpec, ...] = (EVENTS_TABLE, INTERACTIONS_TABLE, REPORTS_TABLE, JOBS_TABLE)
