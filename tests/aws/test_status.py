"""``cv-analytics aws status``: queues, tables and alarm states read from moto."""

from __future__ import annotations

import datetime as dt
import json
import socket
from typing import Any

import pytest
from typer.testing import CliRunner

from cv_analytics.deploy import resources
from cv_analytics.deploy.bootstrap import bootstrap
from cv_analytics.entrypoints.cli.aws import aws_app

PREFIX = "status-test"


def _alarm(cloudwatch: Any, name: str, queue: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": queue}],
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


@pytest.fixture
def deployment(aws: Any) -> dict[str, Any]:
    """A bootstrapped deployment with messages in three states, an item, and alarms in two states."""
    report = bootstrap(aws, PREFIX)
    sqs = aws.client("sqs")
    requests = report["queues"]["ai-job-request"]["url"]
    for n in range(3):
        sqs.send_message(QueueUrl=requests, MessageBody=f"job {n}")
    sqs.send_message(QueueUrl=requests, MessageBody="later", DelaySeconds=900)
    received = sqs.receive_message(QueueUrl=requests, MaxNumberOfMessages=1, VisibilityTimeout=600)
    assert len(received["Messages"]) == 1
    dead_letters = report["queues"]["analytics-dlq"]["url"]
    sqs.send_message(QueueUrl=dead_letters, MessageBody="{}", MessageGroupId="s1", MessageDeduplicationId="d1")
    aws.client("dynamodb").put_item(
        TableName=resources.JOBS_TABLE.name(PREFIX), Item={"pk": {"S": "job#1"}}
    )
    cloudwatch = aws.client("cloudwatch")
    _alarm(cloudwatch, f"{PREFIX}-analytics-dlq-not-empty", resources.ANALYTICS_DLQ.name(PREFIX))
    _alarm(cloudwatch, f"{PREFIX}-ai-job-request-dlq-not-empty", resources.JOB_REQUEST_DLQ.name(PREFIX))
    _alarm(cloudwatch, "another-stack-analytics-dlq-not-empty", "another-stack-analytics-dlq.fifo")
    cloudwatch.set_alarm_state(
        AlarmName=f"{PREFIX}-analytics-dlq-not-empty", StateValue="ALARM", StateReason="1 message dead-lettered"
    )
    # What SQS publishes every minute for an active queue.
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": resources.JOB_REQUEST_QUEUE.name(PREFIX)}],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
                "Value": 42.0,
            }
        ],
    )
    return dict(report)


def test_status_json_reports_every_queue_table_and_this_stacks_alarms(deployment: dict[str, Any]) -> None:
    result = CliRunner().invoke(aws_app, ["status", "--prefix", PREFIX, "--json"])

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert (status["prefix"], status["region"]) == (PREFIX, "us-east-1")
    queues = {q["key"]: q for q in status["queues"]}
    assert list(queues) == [q.key for q in resources.STACK_QUEUES]
    assert queues["ai-job-request"] == {
        "key": "ai-job-request",
        "name": f"{PREFIX}-ai-job-request",
        "exists": True,
        "visible": 2,
        "inFlight": 1,
        "delayed": 1,
        "oldestAgeSeconds": 42.0,
    }
    assert (queues["analytics-dlq"]["visible"], queues["analytics-dlq"]["oldestAgeSeconds"]) == (1, None)
    assert queues["analytics"]["visible"] == 0
    # bootstrap creates no schedule and so no report failure queue: missing, not an error
    assert queues["weekly-report-failures"]["exists"] is False
    tables = {t["key"]: t for t in status["tables"]}
    assert list(tables) == [t.key for t in resources.TABLES]
    assert all(t["exists"] for t in tables.values())
    assert isinstance(tables["jobs"]["itemCount"], int) and isinstance(tables["jobs"]["sizeBytes"], int)
    alarms = {a["name"]: a for a in status["alarms"]}
    assert set(alarms) == {f"{PREFIX}-analytics-dlq-not-empty", f"{PREFIX}-ai-job-request-dlq-not-empty"}
    firing = alarms[f"{PREFIX}-analytics-dlq-not-empty"]
    assert (firing["state"], firing["reason"]) == ("ALARM", "1 message dead-lettered")
    assert firing["updated"].endswith("Z")
    assert status["alarmsFiring"] == 1


def test_status_table_shows_the_same_figures(deployment: dict[str, Any]) -> None:
    result = CliRunner().invoke(aws_app, ["status", "--prefix", PREFIX], env={"COLUMNS": "160"})

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    (request_row,) = [line for line in lines if f"{PREFIX}-ai-job-request " in line]
    assert [cell.strip() for cell in request_row.split("│")[2:6]] == ["2", "1", "1", "42"]
    assert any(f"{PREFIX}-weekly-report-failures" in line and "missing" in line for line in lines)
    assert "alarms (1 firing)" in result.stdout
    assert any(f"{PREFIX}-analytics-dlq-not-empty" in line and "ALARM" in line for line in lines)


def test_status_of_a_prefix_with_nothing_deployed_reports_everything_missing(aws: Any) -> None:
    result = CliRunner().invoke(aws_app, ["status", "--prefix", "nothing-here", "--json"])

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert not any(q["exists"] for q in status["queues"]) and not any(t["exists"] for t in status["tables"])
    assert status["alarms"] == [] and status["alarmsFiring"] == 0


def _closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_status_with_aws_unreachable_prints_one_error_line(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_loopback_port()}")

    result = CliRunner().invoke(aws_app, ["status", "--json"])

    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "127.0.0.1" in line and "Traceback" not in result.stderr


def test_status_without_credentials_says_how_to_give_them(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    result = CliRunner().invoke(aws_app, ["status"])

    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: no usable AWS credentials") and "AWS_ACCESS_KEY_ID" in line


def test_status_refuses_a_bad_prefix_with_one_error_line(aws: Any) -> None:
    result = CliRunner().invoke(aws_app, ["status", "--prefix", "9 bad"])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
