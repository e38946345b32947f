"""Create the queues and tables directly through boto3, without CloudFormation.

For a local AWS emulator (moto, LocalStack) or a quick start in a real account.
It creates exactly what :mod:`cv_analytics.deploy.resources` describes (and so
what ``infra/template.yaml`` deploys), minus the Lambda functions, schedule and
alarms, which only the stack provides.

Idempotent: a second run creates nothing and reports every resource as
``exists``. A run that was interrupted completes the rest (a missing queue, a
table whose TTL was never switched on). A resource that exists with different
settings is never changed: bootstrap stops with a :class:`ConfigurationError`
listing the differences, since changing a live queue or table is a decision
for its owner.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ..exceptions import ConfigurationError, MissingDependencyError
from . import resources
from .resources import QueueSpec, TableSpec

if TYPE_CHECKING:
    import boto3

Status = Literal["created", "exists"]

#: How the status of a resource is worded in reports.
CREATED: Status = "created"
EXISTS: Status = "exists"


class QueueReport(TypedDict):
    name: str
    url: str
    arn: str
    status: Status


class TableReport(TypedDict):
    name: str
    arn: str
    status: Status
    #: The TTL attribute, when the table has one (it is enabled).
    ttl_attribute: str | None


class BootstrapReport(TypedDict):
    """What :func:`bootstrap` returns, keyed by the resources' ``key``."""

    queues: dict[str, QueueReport]
    tables: dict[str, TableReport]
    #: The environment variables that point cv-analytics at these resources.
    environment: dict[str, str]


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients bootstrap uses (``sqs`` and ``dynamodb``)."""

    sqs: Any
    dynamodb: Any

    @classmethod
    def from_session(cls, session: boto3.Session, *, endpoint_url: str | None = None) -> AwsClients:
        """Clients from ``session``, configured as the backends' are (timeouts, retries);
        ``endpoint_url`` overrides ``AWS_ENDPOINT_URL`` (which boto3 reads itself)."""
        from ..boto.clients import make_client

        return cls(
            sqs=make_client("sqs", session=session, endpoint_url=endpoint_url),
            dynamodb=make_client("dynamodb", session=session, endpoint_url=endpoint_url),
        )


def bootstrap(
    session_or_clients: boto3.Session | AwsClients,
    prefix: str = resources.DEFAULT_PREFIX,
    *,
    endpoint_url: str | None = None,
) -> BootstrapReport:
    """Create the queues (dead-letter queues first, then the queues that
    redrive into them) and the tables (TTL enabled, global secondary indexes)
    named ``<prefix>-...``, unless they exist.

    Returns their URLs, ARNs and names, whether each was ``created`` or
    ``exists``, and the environment variables to export. Raises
    :class:`ConfigurationError` when a resource exists with other settings.
    """
    resources.validate_prefix(prefix)
    clients = _clients(session_or_clients, endpoint_url)
    queues: dict[str, QueueReport] = {}
    for spec in resources.QUEUES:  # dead-letter queues come first
        dead_letter_arn = queues[spec.dead_letter.key]["arn"] if spec.dead_letter else None
        queues[spec.key] = _ensure_queue(clients.sqs, spec, prefix, dead_letter_arn)
    tables = {spec.key: _ensure_table(clients.dynamodb, spec, prefix) for spec in resources.TABLES}
    environment = {spec.env_var: queues[spec.key]["url"] for spec in resources.QUEUES if spec.env_var}
    environment.update({spec.env_var: tables[spec.key]["name"] for spec in resources.TABLES})
    return {"queues": queues, "tables": tables, "environment": environment}


def export_lines(report: BootstrapReport, extra: Mapping[str, str] | None = None) -> list[str]:
    """``export NAME=value`` lines (shell-quoted) for the report's environment and ``extra``."""
    variables = {**report["environment"], **(extra or {})}
    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


# -- queues -----------------------------------------------------------------------


def _ensure_queue(sqs: Any, spec: QueueSpec, prefix: str, dead_letter_arn: str | None) -> QueueReport:
    name = spec.name(prefix)
    wanted = spec.attributes(dead_letter_arn)
    status: Status = EXISTS
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
        status = CREATED
    actual = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    if status == EXISTS:
        differences = _queue_differences(wanted, actual)
        if differences:
            raise ConfigurationError(
                f"queue {name} exists with other settings than cv-analytics needs: {'; '.join(differences)}. "
                f"Change them with `aws sqs set-queue-attributes --queue-url {url} ...`, or delete the queue "
                "(SQS then needs 60 seconds before the name can be used again) and run bootstrap again"
            )
    return {"name": name, "url": url, "arn": actual["QueueArn"], "status": status}


def _queue_differences(wanted: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    differences = []
    for attribute, value in wanted.items():
        have = actual.get(attribute)
        # SQS returns maxReceiveCount as a number or a string depending on the API version.
        redrive_differs = attribute == "RedrivePolicy" and (have is None or _redrive(have) != _redrive(value))
        if redrive_differs or (attribute != "RedrivePolicy" and have != value):
            differences.append(f"{attribute} is {have!r}, expected {value!r}")
    return differences


def _redrive(policy: str) -> tuple[str, int]:
    parsed = json.loads(policy)
    return parsed["deadLetterTargetArn"], int(parsed["maxReceiveCount"])


# -- tables -----------------------------------------------------------------------


def _ensure_table(dynamodb: Any, spec: TableSpec, prefix: str) -> TableReport:
    name = spec.name(prefix)
    status: Status = EXISTS
    try:
        description = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        dynamodb.create_table(**spec.create_table_request(prefix))
        status = CREATED
        # TTL can be switched on only once the table is ACTIVE; the waiter
        # returns at once where creation is synchronous (emulators).
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
        description = dynamodb.describe_table(TableName=name)["Table"]
    else:
        differences = _table_differences(spec, description)
        if differences:
            raise ConfigurationError(
                f"table {name} exists with other settings than cv-analytics needs: {'; '.join(differences)}. "
                "A key schema cannot be changed in place: use another --prefix, or back up and delete the table "
                "and run bootstrap again"
            )
    if spec.ttl_attribute is not None:
        _ensure_ttl(dynamodb, name, spec.ttl_attribute)
    return {"name": name, "arn": description["TableArn"], "status": status, "ttl_attribute": spec.ttl_attribute}


def _table_differences(spec: TableSpec, description: Mapping[str, Any]) -> list[str]:
    differences = []
    if _key_names(description["KeySchema"]) != _key_names(spec.key_schema()):
        differences.append(f"key schema is {description['KeySchema']}, expected {spec.key_schema()}")
    types = {a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])}
    for attribute in spec.attribute_definitions():
        if types.get(attribute["AttributeName"]) != attribute["AttributeType"]:
            differences.append(
                f"attribute {attribute['AttributeName']} has type {types.get(attribute['AttributeName'])!r}, "
                f"expected {attribute['AttributeType']!r}"
            )
    indexes = {i["IndexName"]: i for i in description.get("GlobalSecondaryIndexes", [])}
    for wanted in spec.global_secondary_indexes():
        have = indexes.get(wanted["IndexName"])
        if have is None:
            differences.append(f"global secondary index {wanted['IndexName']} is missing")
        elif _key_names(have["KeySchema"]) != _key_names(wanted["KeySchema"]):
            differences.append(
                f"index {wanted['IndexName']} has key schema {have['KeySchema']}, expected {wanted['KeySchema']}"
            )
        elif have["Projection"]["ProjectionType"] != wanted["Projection"]["ProjectionType"]:
            differences.append(
                f"index {wanted['IndexName']} projects {have['Projection']['ProjectionType']}, "
                f"expected {wanted['Projection']['ProjectionType']}"
            )
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    if billing != "PAY_PER_REQUEST":
        # Not fatal to correctness, but provisioned capacity throttles a burst
        # of events that on-demand absorbs: say so rather than run differently.
        differences.append(f"billing mode is {billing}, expected PAY_PER_REQUEST (on-demand)")
    return differences


def _key_names(schema: Any) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


def _ensure_ttl(dynamodb: Any, table_name: str, attribute: str) -> None:
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    status = ttl.get("TimeToLiveStatus")
    if status in ("ENABLED", "ENABLING"):
        if ttl.get("AttributeName") != attribute:
            raise ConfigurationError(
                f"table {table_name} expires items by attribute {ttl.get('AttributeName')!r}, but cv-analytics writes "
                f"the expiry to {attribute!r}; disable TTL on the table (DynamoDB then needs up to an hour before it "
                "can be enabled again) and run bootstrap again"
            )
        return
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
    )


# -- clients ----------------------------------------------------------------------


def _clients(session_or_clients: boto3.Session | AwsClients, endpoint_url: str | None) -> AwsClients:
    if isinstance(session_or_clients, AwsClients):
        return session_or_clients
    return AwsClients.from_session(session_or_clients, endpoint_url=endpoint_url)


def default_session(region: str | None = None) -> boto3.Session:
    """A boto3 session with credentials from the environment and ``region``.

    The region defaults to ``AWS_REGION`` (the name the existing deployment and
    Lambda use, which boto3 itself ignores), then to boto3's own sources
    (``AWS_DEFAULT_REGION``, the config file).
    """
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - boto3 is installed wherever the tests run
        raise MissingDependencyError(
            "the AWS backend needs boto3: pip install 'cv-analytics[aws]'"
        ) from exc
    session = boto3.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if session.region_name is None:
        raise ConfigurationError("no AWS region is set: export AWS_REGION (e.g. us-east-1) or pass --region")
    return session
