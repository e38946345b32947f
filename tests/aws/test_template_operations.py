"""infra/template.yaml's operations parts, read as data: dashboard, alarms, budget,
tags, the weekly report's failure path and the producer policy.

moto's CloudFormation skips the dashboard, budget, managed policy, queue policy
and invoke config (test_template.py deploys the rest), so they are held here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cv_analytics.deploy import resources
from cv_analytics.deploy.resources import FUNCTIONS, QUEUES, STACK_QUEUES, TABLES

from .test_template import PREFIX, _get_att, _ref, _resources_of_type


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


# -- dashboard --------------------------------------------------------------------------

#: What a placeholder of the dashboard's Fn::Sub stands for in a deployed stack.
def _resolve(placeholder: str) -> str:
    if placeholder == "AWS::Region":
        return "eu-west-1"
    logical_id, _, attribute = placeholder.partition(".")
    for spec in STACK_QUEUES:
        if spec.logical_id == logical_id and attribute == "QueueName":
            return spec.name(PREFIX)
    for spec in FUNCTIONS:
        if spec.logical_id == logical_id and not attribute:
            return spec.name(PREFIX)
    for spec in TABLES:
        if spec.logical_id == logical_id and not attribute:
            return spec.name(PREFIX)
    raise AssertionError(f"the dashboard names ${{{placeholder}}}, no queue, function or table of the stack")


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The dashboard as deployed: widget title -> its metrics, placeholders substituted."""
    (dashboard_id,) = _resources_of_type(template, "AWS::CloudWatch::Dashboard")
    body = _props(template, dashboard_id)["DashboardBody"]["Fn::Sub"]
    body = re.sub(r"\$\{([^}]+)\}", lambda m: _resolve(m.group(1)), body)
    widgets = json.loads(body)["widgets"]
    assert all(w["properties"]["region"] == "eu-west-1" for w in widgets)
    return {w["properties"]["title"]: w["properties"]["metrics"] for w in widgets}


def _watched(metrics: list[list[str]], namespace: str, metric: str, dimension: str) -> list[str]:
    return [m[3] for m in metrics if m[:3] == [namespace, metric, dimension]]


def test_the_dashboard_has_the_seeds_widgets_on_the_stacks_own_resources(dashboard: dict[str, list[list[str]]]) -> None:
    queues = [q.name(PREFIX) for q in QUEUES if q.dead_letter is not None]
    dead_letter_queues = [q.name(PREFIX) for q in STACK_QUEUES if q.dead_letter is None]
    functions = [f.name(PREFIX) for f in FUNCTIONS]
    tables = [t.name(PREFIX) for t in TABLES]
    wanted = {
        "SQS messages sent": ("AWS/SQS", "NumberOfMessagesSent", "QueueName", queues),
        "SQS age of oldest message (s)": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queues),
        "Dead-letter queue depth": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dead_letter_queues),
        "Lambda invocations": ("AWS/Lambda", "Invocations", "FunctionName", functions),
        "Lambda errors": ("AWS/Lambda", "Errors", "FunctionName", functions),
        "Lambda throttles": ("AWS/Lambda", "Throttles", "FunctionName", functions),
        "Lambda duration (ms, maximum)": ("AWS/Lambda", "Duration", "FunctionName", functions),
        "DynamoDB consumed read units": ("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", tables),
        "DynamoDB consumed write units": ("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", tables),
    }
    assert set(dashboard) == set(wanted)
    for title, (namespace, metric, dimension, names) in wanted.items():
        assert len(dashboard[title]) == len(names), title
        assert sorted(_watched(dashboard[title], namespace, metric, dimension)) == sorted(names), title
    assert len(dead_letter_queues) == 4 and resources.REPORT_FAILURE_QUEUE.name(PREFIX) in dead_letter_queues


# -- alarms, budget, tags ---------------------------------------------------------------------


def test_every_alarm_notifies_the_one_topic_whose_email_subscription_is_optional(template: dict[str, Any]) -> None:
    (topic_id,) = _resources_of_type(template, "AWS::SNS::Topic")
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    assert alarms
    for alarm_id, alarm in alarms.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == properties["OKActions"] == [_ref(topic_id)], alarm_id
        assert properties["AlarmName"]["Fn::Sub"].startswith("${NamePrefix}-"), alarm_id  # `aws status` finds them so
        assert "Condition" not in alarm, alarm_id


def test_the_budget_alerts_the_alarm_email_at_80_percent_of_a_5_usd_month(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["MonthlyBudgetUsd"]
    assert parameter["Default"] == resources.DEFAULT_MONTHLY_BUDGET_USD == 5
    (budget_id,) = _resources_of_type(template, "AWS::Budgets::Budget")
    properties = _props(template, budget_id)
    assert properties["Budget"]["BudgetType"] == "COST"
    assert properties["Budget"]["TimeUnit"] == "MONTHLY"
    assert properties["Budget"]["BudgetLimit"] == {"Amount": _ref("MonthlyBudgetUsd"), "Unit": "USD"}
    condition, notifications, otherwise = properties["NotificationsWithSubscribers"]["Fn::If"]
    assert (condition, otherwise) == ("HasAlarmEmail", _ref("AWS::NoValue"))  # a budget alert needs an address
    assert notifications == [
        {
            "Notification": {
                "NotificationType": "ACTUAL",
                "ComparisonOperator": "GREATER_THAN",
                "Threshold": resources.BUDGET_ALERT_PERCENT,
                "ThresholdType": "PERCENTAGE",
            },
            "Subscribers": [{"SubscriptionType": "EMAIL", "Address": _ref("AlarmEmail")}],
        }
    ]
    assert resources.BUDGET_ALERT_PERCENT == 80


def _tag_property(resource_type: str) -> str | None:
    """The property that carries a resource type's tags, as cfn-lint's schemas know it (None: untaggable)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    properties = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema["properties"]
    return next((name for name in ("Tags", "ResourceTags") if name in properties), None)


def test_every_taggable_resource_carries_the_project_and_environment_tags(template: dict[str, Any]) -> None:
    tagged = 0
    for logical_id, resource in template["Resources"].items():
        tag_property = _tag_property(resource["Type"])
        if tag_property is None:
            continue
        tags = resource["Properties"].get(tag_property)
        assert tags is not None, f"{logical_id} ({resource['Type']}) has no {tag_property}"
        as_map = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
        project_key, project_value = resources.PROJECT_TAG
        assert as_map == {project_key: project_value, "Environment": _ref("Environment")}, logical_id
        tagged += 1
    assert tagged >= 50
    assert template["Parameters"]["Environment"]["AllowedValues"] == ["dev", "staging", "prod"]


# -- the weekly report's failures -----------------------------------------------------------------


def test_a_schedule_that_cannot_invoke_the_reporter_retries_then_dead_letters_to_a_standard_queue(
    template: dict[str, Any],
) -> None:
    ((rule_id, rule),) = _resources_of_type(template, "AWS::Events::Rule").items()
    (target,) = rule["Properties"]["Targets"]
    failures = resources.REPORT_FAILURE_QUEUE
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": resources.SCHEDULE_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": resources.SCHEDULE_MAX_EVENT_AGE_SECONDS,
    }
    assert target["DeadLetterConfig"] == {"Arn": _get_att(failures.logical_id, "Arn")}
    assert "FifoQueue" not in _props(template, failures.logical_id)  # EventBridge refuses FIFO targets
    assert not failures.config.fifo
    # EventBridge may send there, and only for this rule.
    (policy,) = _resources_of_type(template, "AWS::SQS::QueuePolicy").values()
    assert policy["Properties"]["Queues"] == [_ref(failures.logical_id)]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ScheduleDeadLetters",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": _get_att(failures.logical_id, "Arn"),
            "Condition": {"ArnEquals": {"aws:SourceArn": _get_att(rule_id, "Arn")}},
        }
    ]


def test_a_report_run_that_fails_after_lambdas_retries_lands_in_the_failure_queue(template: dict[str, Any]) -> None:
    (config,) = _resources_of_type(template, "AWS::Lambda::EventInvokeConfig").values()
    properties = config["Properties"]
    assert properties["FunctionName"] == _ref(resources.REPORTER_FUNCTION.logical_id)
    assert properties["Qualifier"] == "$LATEST"
    assert properties["MaximumRetryAttempts"] == 2
    assert properties["DestinationConfig"] == {
        "OnFailure": {"Destination": _get_att(resources.REPORT_FAILURE_QUEUE.logical_id, "Arn")}
    }
    # Lambda sends the record with the function's role.
    role = _props(template, "ReporterRole")
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert {"Sid": "ReportFailures", "Effect": "Allow", "Action": "sqs:SendMessage",
            "Resource": _get_att("ReportFailureQueue", "Arn")} in statements


# -- producers and secrets --------------------------------------------------------------------------


def test_the_producer_policy_sends_analytics_events_and_invokes_the_jobs_api_only(template: dict[str, Any]) -> None:
    (policy_id,) = _resources_of_type(template, "AWS::IAM::ManagedPolicy")
    statements = _props(template, policy_id)["PolicyDocument"]["Statement"]
    api = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/$default/"
    assert statements == [
        {
            "Sid": "SendAnalyticsEvents",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
            "Resource": _get_att(resources.ANALYTICS_QUEUE.logical_id, "Arn"),
        },
        {
            "Sid": "InvokeJobsApi",
            "Effect": "Allow",
            "Action": "execute-api:Invoke",
            "Resource": [{"Fn::Sub": api + route} for route in ("POST/jobs", "GET/jobs", "GET/jobs/*", "POST/jobs/*/cancel")],
        },
    ]
    # exactly the jobs routes of the API (path parameters become the one wildcard)
    jobs_routes = [r.replace(" /", "/").replace("{jobId}", "*") for r in resources.HTTP_API_ROUTES if "/jobs" in r]
    assert [r["Fn::Sub"].removeprefix(api) for r in statements[1]["Resource"]] == jobs_routes
    assert template["Outputs"]["ProducerPolicyArn"]["Value"] == _ref(policy_id)


def _references(value: Any) -> set[str]:
    """Every logical id or parameter an expression refers to (Ref, GetAtt, names inside Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] + "." + item[1])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found.update(re.findall(r"\$\{([^}!]+)\}", text))
            else:
                found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def test_the_stack_creates_no_user_or_access_key_and_outputs_no_secret(template: dict[str, Any]) -> None:
    types = {r["Type"] for r in template["Resources"].values()}
    assert not types & {"AWS::IAM::AccessKey", "AWS::IAM::User", "AWS::IAM::UserToGroupAddition"}
    secret_parameters = {name for name, p in template["Parameters"].items() if p.get("NoEcho")}
    assert secret_parameters == {"ApiKeys", "LlmApiKey"}
    for key, output in template["Outputs"].items():
        referenced = _references(output["Value"])
        assert not referenced & secret_parameters, key
        assert not [r for r in referenced if r.endswith(".SecretAccessKey")], key
