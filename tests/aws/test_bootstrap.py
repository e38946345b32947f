"""bootstrap(): queues and tables created through boto3 against moto, idempotently."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from typer.testing import CliRunner

from cv_analytics.deploy import resources
from cv_analytics.deploy.bootstrap import AwsClients, bootstrap
from cv_analytics.entrypoints.cli.aws import aws_app
from cv_analytics.deploy.resources import QUEUES, TABLES
from cv_analytics.wiring import Settings
from cv_analytics.exceptions import ConfigurationError

#: API calls that change something: none may happen on a second run.
_MUTATING = ("Create", "Update", "Set", "Put", "Delete", "Tag", "Untag")


class CallLog:
    """Names of the API operations boto3 clients made, recorded by botocore's event hooks."""

    def __init__(self, clients: AwsClients) -> None:
        self.operations: list[str] = []
        for client in (clients.sqs, clients.dynamodb):
            client.meta.events.register("before-call.*.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    @property
    def mutating(self) -> list[str]:
        return [name for name in self.operations if name.startswith(_MUTATING)]


@pytest.fixture
def clients(aws: Any) -> AwsClients:
    return AwsClients.from_session(aws)


def _queue_attributes(clients: AwsClients, url: str) -> dict[str, str]:
    return clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_bootstrap_creates_every_queue_with_the_attributes_of_resources_py(clients: AwsClients) -> None:
    report = bootstrap(clients)

    assert {key: q["status"] for key, q in report["queues"].items()} == {q.key: "created" for q in QUEUES}
    for spec in QUEUES:
        queue = report["queues"][spec.key]
        assert queue["name"] == spec.name() and queue["url"].endswith("/" + spec.name())
        actual = _queue_attributes(clients, queue["url"])
        dead_letter_arn = report["queues"][spec.dead_letter.key]["arn"] if spec.dead_letter else None
        for attribute, wanted in spec.attributes(dead_letter_arn).items():
            if attribute == "RedrivePolicy":
                assert spec.dead_letter is not None
                redrive = json.loads(actual["RedrivePolicy"])
                dead_letter = _queue_attributes(clients, report["queues"][spec.dead_letter.key]["url"])
                assert redrive["deadLetterTargetArn"] == dead_letter["QueueArn"]
                assert int(redrive["maxReceiveCount"]) == 3
            else:
                assert actual[attribute] == wanted, f"{spec.key}: {attribute}"
    analytics = _queue_attributes(clients, report["queues"]["analytics"]["url"])
    assert (analytics["FifoQueue"], analytics["ContentBasedDeduplication"]) == ("true", "true")
    assert (analytics["MessageRetentionPeriod"], analytics["VisibilityTimeout"]) == ("345600", "300")


def test_bootstrap_creates_every_table_with_its_keys_index_and_ttl(clients: AwsClients) -> None:
    report = bootstrap(clients)

    assert {key: t["status"] for key, t in report["tables"].items()} == {t.key: "created" for t in TABLES}
    for spec in TABLES:
        table = clients.dynamodb.describe_table(TableName=spec.name())["Table"]
        assert report["tables"][spec.key]["arn"] == table["TableArn"]
        assert table["KeySchema"] == spec.key_schema()
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = [
            {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
            for index in table.get("GlobalSecondaryIndexes", [])
        ]
        assert indexes == spec.global_secondary_indexes()
        ttl = clients.dynamodb.describe_time_to_live(TableName=spec.name())["TimeToLiveDescription"]
        if spec.ttl_attribute is None:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
        else:
            assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", spec.ttl_attribute)
    events = clients.dynamodb.describe_time_to_live(TableName="cv-analytics-query-events")
    assert events["TimeToLiveDescription"]["AttributeName"] == "ttl"
    (week_index,) = clients.dynamodb.describe_table(TableName="cv-analytics-analytics")["Table"][
        "GlobalSecondaryIndexes"
    ]
    assert week_index["IndexName"] == "week-index"


def test_bootstrap_creates_the_jobs_queues_with_the_seeds_settings_and_the_jobs_table(clients: AwsClients) -> None:
    report = bootstrap(clients)

    expected = {
        # (visibility timeout, retention, long polling) of the seed's queues
        "ai-job-request": ("900", "1209600", "20"),
        "ai-job-response": ("300", "1209600", "0"),
    }
    for key, (visibility, retention, wait) in expected.items():
        queue = report["queues"][key]
        assert queue["name"] == f"cv-analytics-{key}"
        attributes = _queue_attributes(clients, queue["url"])
        assert "FifoQueue" not in attributes or attributes["FifoQueue"] == "false"
        assert (
            attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"], attributes["ReceiveMessageWaitTimeSeconds"]
        ) == (visibility, retention, wait)
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == report["queues"][f"{key}-dlq"]["arn"]
        assert int(redrive["maxReceiveCount"]) == 3
        dead_letter = _queue_attributes(clients, report["queues"][f"{key}-dlq"]["url"])
        assert dead_letter["MessageRetentionPeriod"] == "1209600"
    table = clients.dynamodb.describe_table(TableName="cv-analytics-jobs")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == [
        "entity-created-index", "status-created-index", "type-created-index"
    ]
    ttl = clients.dynamodb.describe_time_to_live(TableName="cv-analytics-jobs")["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
    assert report["environment"]["CV_ANALYTICS_JOBS_TABLE"] == "cv-analytics-jobs"
    assert Settings.from_env(report["environment"]).dynamodb_tables["jobs"] == "cv-analytics-jobs"


def test_a_second_bootstrap_changes_nothing_and_reports_what_exists(clients: AwsClients) -> None:
    first = bootstrap(clients)
    attributes_before = {k: _queue_attributes(clients, q["url"]) for k, q in first["queues"].items()}
    calls = CallLog(clients)

    second = bootstrap(clients)

    assert calls.operations, "the second run must look before it concludes"
    assert calls.mutating == []
    assert {q["status"] for q in second["queues"].values()} == {"exists"}
    assert {t["status"] for t in second["tables"].values()} == {"exists"}
    assert [(q["url"], q["arn"]) for q in second["queues"].values()] == [
        (q["url"], q["arn"]) for q in first["queues"].values()
    ]
    assert second["environment"] == first["environment"]
    assert {k: _queue_attributes(clients, q["url"]) for k, q in second["queues"].items()} == attributes_before


def test_bootstrap_finishes_what_an_interrupted_run_left_undone(clients: AwsClients) -> None:
    # As if a first run stopped after the analytics DLQ and the events table, before TTL.
    clients.sqs.create_queue(
        QueueName=resources.ANALYTICS_DLQ.name(), Attributes=resources.ANALYTICS_DLQ.attributes()
    )
    clients.dynamodb.create_table(**resources.EVENTS_TABLE.create_table_request())

    report = bootstrap(clients)

    assert report["queues"]["analytics-dlq"]["status"] == "exists"
    assert report["queues"]["analytics"]["status"] == "created"
    assert report["tables"]["events"]["status"] == "exists"
    assert report["tables"]["interactions"]["status"] == "created"
    ttl = clients.dynamodb.describe_time_to_live(TableName=resources.EVENTS_TABLE.name())
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    redrive = json.loads(_queue_attributes(clients, report["queues"]["analytics"]["url"])["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == report["queues"]["analytics-dlq"]["arn"]


def test_bootstrap_refuses_to_adopt_a_queue_with_other_settings_and_leaves_it_alone(clients: AwsClients) -> None:
    url = clients.sqs.create_queue(
        QueueName=resources.ANALYTICS_DLQ.name(),
        Attributes={**resources.ANALYTICS_DLQ.attributes(), "MessageRetentionPeriod": "86400"},
    )["QueueUrl"]

    with pytest.raises(ConfigurationError, match=r"MessageRetentionPeriod is '86400', expected '1209600'") as caught:
        bootstrap(clients)

    assert "set-queue-attributes" in str(caught.value)
    assert _queue_attributes(clients, url)["MessageRetentionPeriod"] == "86400"
    with pytest.raises(clients.sqs.exceptions.QueueDoesNotExist):
        clients.sqs.get_queue_url(QueueName=resources.ANALYTICS_QUEUE.name())


def test_bootstrap_refuses_a_queue_that_redrives_elsewhere(clients: AwsClients) -> None:
    dlq_arn = clients.sqs.get_queue_attributes(
        QueueUrl=clients.sqs.create_queue(QueueName="elsewhere.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"],
        AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    clients.sqs.create_queue(QueueName=resources.ANALYTICS_DLQ.name(), Attributes=resources.ANALYTICS_DLQ.attributes())
    clients.sqs.create_queue(
        QueueName=resources.ANALYTICS_QUEUE.name(), Attributes=resources.ANALYTICS_QUEUE.attributes(dlq_arn)
    )

    with pytest.raises(ConfigurationError, match="RedrivePolicy"):
        bootstrap(clients)


def test_bootstrap_refuses_a_table_with_another_key_schema(clients: AwsClients) -> None:
    clients.dynamodb.create_table(
        TableName=resources.INTERACTIONS_TABLE.name(),
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(ConfigurationError, match="cv-analytics-analytics exists") as caught:
        bootstrap(clients)

    message = str(caught.value)
    assert "key schema" in message and "global secondary index week-index is missing" in message


def test_bootstrap_refuses_a_ttl_on_another_attribute(clients: AwsClients) -> None:
    clients.dynamodb.create_table(**resources.EVENTS_TABLE.create_table_request())
    clients.dynamodb.update_time_to_live(
        TableName=resources.EVENTS_TABLE.name(),
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"},
    )

    with pytest.raises(ConfigurationError, match="'expiresAt'.*'ttl'"):
        bootstrap(clients)


def test_prefixes_keep_two_deployments_apart_in_one_account(clients: AwsClients) -> None:
    production = bootstrap(clients)
    staging = bootstrap(clients, prefix="cv-analytics-staging")

    assert {q["status"] for q in staging["queues"].values()} == {"created"}
    assert staging["queues"]["analytics"]["name"] == "cv-analytics-staging-analytics.fifo"
    assert staging["tables"]["reports"]["name"] == "cv-analytics-staging-reports"
    assert set(production["environment"].values()).isdisjoint(staging["environment"].values())
    assert len(clients.sqs.list_queues()["QueueUrls"]) == 2 * len(QUEUES)


@pytest.mark.parametrize("prefix", ["", "9lives", "cv analytics", "cv_analytics", "x" * 33])
def test_a_prefix_unusable_in_resource_names_is_refused_before_any_call(clients: AwsClients, prefix: str) -> None:
    calls = CallLog(clients)

    with pytest.raises(ConfigurationError, match="start with a letter"):
        bootstrap(clients, prefix=prefix)

    assert calls.operations == []


def test_the_exported_environment_configures_cv_analytics_for_these_resources(clients: AwsClients) -> None:
    report = bootstrap(clients)

    environment = report["environment"]
    assert set(environment) == {*(q.env_var for q in QUEUES), *(t.env_var for t in TABLES)}
    assert environment["AWS_SQS_URL"] == report["queues"]["analytics"]["url"]
    assert environment["AI_JOB_REQUEST_QUEUE_URL"] == report["queues"]["ai-job-request"]["url"]
    assert environment["AI_JOB_RESPONSE_QUEUE_URL"] == report["queues"]["ai-job-response"]["url"]
    assert environment["CV_ANALYTICS_DLQ_URL"] == report["queues"]["analytics-dlq"]["url"]
    # The settings loader reads these names back into the AWS backends' configuration.
    settings = Settings.from_env(environment)
    assert (settings.queue_url, settings.store_url) == ("sqs://", "dynamodb://")
    assert dict(settings.sqs_queue_urls) == {
        "analytics": report["queues"]["analytics"]["url"],
        "ai-job-request": report["queues"]["ai-job-request"]["url"],
        "ai-job-response": report["queues"]["ai-job-response"]["url"],
    }
    assert dict(settings.dynamodb_tables) == {key: t["name"] for key, t in report["tables"].items()}


# -- the command line ----------------------------------------------------------------


def test_cli_bootstrap_prints_exports_a_shell_can_eval(aws: Any, moto_reset: str) -> None:
    result = CliRunner().invoke(aws_app, ["bootstrap", "--prefix", "cli-test"])

    assert result.exit_code == 0, result.output
    exported = {}
    for line in result.stdout.splitlines():
        keyword, assignment = shlex.split(line)
        assert keyword == "export"
        name, _, value = assignment.partition("=")
        exported[name] = value
    assert exported["AWS_ENDPOINT_URL"] == moto_reset
    assert exported["AWS_REGION"] == "us-east-1"
    assert exported["AWS_SQS_URL"].endswith("/cli-test-analytics.fifo")
    assert exported["CV_ANALYTICS_INTERACTIONS_TABLE"] == "cli-test-analytics"
    assert "cli-test-ai-job-response-dlq " in result.stderr and "created" in result.stderr


def test_cli_bootstrap_through_the_main_command_reports_json_the_second_time(aws: Any, moto_reset: str) -> None:
    from cv_analytics.entrypoints.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["aws", "bootstrap"]).exit_code == 0
    result = runner.invoke(app, ["aws", "bootstrap", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {q["status"] for q in report["queues"].values()} == {"exists"}
    assert report["environment"]["CV_ANALYTICS_EVENTS_TABLE"] == "cv-analytics-query-events"
    assert report["environment"]["AWS_ENDPOINT_URL"] == moto_reset


def test_cli_bootstrap_explains_a_conflict_instead_of_a_traceback(aws: Any, moto_reset: str) -> None:
    aws.client("dynamodb").create_table(
        TableName="cv-analytics-reports",
        KeySchema=[{"AttributeName": "reportId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "reportId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    result = CliRunner().invoke(aws_app, ["bootstrap"])

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error:" in result.stderr and "cv-analytics-reports" in result.stderr
    assert result.stdout == ""


def test_cli_bootstrap_without_a_region_says_how_to_set_one(
    aws: Any, moto_reset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    result = CliRunner().invoke(aws_app, ["bootstrap"])

    assert result.exit_code == 1
    assert "export AWS_REGION" in result.stderr and "--region" in result.stderr
    assert CliRunner().invoke(aws_app, ["bootstrap", "--region", "us-east-1"]).exit_code == 0
