"""infra/template.yaml: valid CloudFormation, in step with resources.py, deployable.

Three views of one stack: cfn-lint's verdict, the template read as data
(alarms and IAM, which moto's CloudFormation does not create or evaluate,
are checked here), and a real CreateStack into moto through boto3.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from cv_analytics.deploy import resources
from cv_analytics.deploy.resources import FUNCTIONS, QUEUES, TABLES, FunctionSpec, QueueSpec, TableSpec

from .conftest import TEMPLATE_PATH


def _resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _get_att(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


# -- validity ----------------------------------------------------------------------


def test_cfn_lint_finds_nothing_wrong_with_the_template() -> None:
    from cfnlint.api import lint_file

    problems = lint_file(TEMPLATE_PATH)
    assert problems == [], "\n".join(str(p) for p in problems)


def test_template_is_plain_cloudformation_without_the_sam_transform(template: dict[str, Any]) -> None:
    # moto accepts a SAM template but silently creates none of its AWS::Serverless resources.
    assert "Transform" not in template
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]


# -- agreement with resources.py -----------------------------------------------------


def test_the_template_declares_exactly_the_queues_and_tables_of_resources_py(template: dict[str, Any]) -> None:
    assert set(_resources_of_type(template, "AWS::SQS::Queue")) == {q.logical_id for q in QUEUES}
    assert set(_resources_of_type(template, "AWS::DynamoDB::Table")) == {t.logical_id for t in TABLES}
    assert set(_resources_of_type(template, "AWS::Lambda::Function")) == {f.logical_id for f in FUNCTIONS}


def _as_sqs_attributes(properties: dict[str, Any]) -> dict[str, str]:
    """Template queue properties in the string form SQS attributes take."""
    attributes = {}
    for name, value in properties.items():
        if name in ("QueueName", "RedrivePolicy"):
            continue
        attributes[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return attributes


@pytest.mark.parametrize("spec", QUEUES, ids=lambda q: q.key)
def test_each_queue_in_the_template_has_the_attributes_resources_py_gives_it(
    template: dict[str, Any], spec: QueueSpec
) -> None:
    properties = _props(template, spec.logical_id)
    suffix = ".fifo" if spec.config.fifo else ""
    assert properties["QueueName"] == _sub(f"${{NamePrefix}}-{spec.base_name}{suffix}")
    wanted = spec.attributes(dead_letter_arn="<dead-letter-arn>")
    redrive = wanted.pop("RedrivePolicy", None)
    assert _as_sqs_attributes(properties) == wanted
    if spec.dead_letter is None:
        assert "RedrivePolicy" not in properties
    else:
        assert redrive is not None
        assert properties["RedrivePolicy"] == {
            "deadLetterTargetArn": _get_att(spec.dead_letter.logical_id, "Arn"),
            "maxReceiveCount": json.loads(redrive)["maxReceiveCount"],
        }


@pytest.mark.parametrize("spec", TABLES, ids=lambda t: t.key)
def test_each_table_in_the_template_has_the_keys_resources_py_gives_it(
    template: dict[str, Any], spec: TableSpec
) -> None:
    properties = _props(template, spec.logical_id)
    assert properties["TableName"] == _sub(f"${{NamePrefix}}-{spec.base_name}")
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == spec.key_schema()
    by_name = lambda items: sorted(items, key=lambda a: a["AttributeName"])  # noqa: E731
    assert by_name(properties["AttributeDefinitions"]) == spec.attribute_definitions()
    assert properties.get("GlobalSecondaryIndexes", []) == spec.global_secondary_indexes()
    if spec.ttl_attribute is None:
        assert "TimeToLiveSpecification" not in properties
    else:
        assert properties["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}


#: What each environment variable of the functions must refer to in the stack.
def _expected_environment() -> dict[str, Any]:
    expected: dict[str, Any] = {q.env_var: _ref(q.logical_id) for q in QUEUES}
    expected.update({t.env_var: _ref(t.logical_id) for t in TABLES})
    expected[resources.RECIPIENT_EMAIL_ENV] = _ref("RecipientEmail")
    expected[resources.SENDER_EMAIL_ENV] = _ref("SenderEmail")
    expected[resources.API_KEYS_ENV] = _ref("ApiKeys")
    expected.update(zip(resources.LLM_ENVIRONMENT, (_ref("LlmUrl"), _ref("LlmModel"), _ref("LlmApiKey")), strict=True))
    return expected


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.key)
def test_each_function_runs_as_resources_py_describes_with_every_resource_in_its_environment(
    template: dict[str, Any], spec: FunctionSpec
) -> None:
    properties = _props(template, spec.logical_id)
    assert properties["FunctionName"] == _sub(f"${{NamePrefix}}-{spec.base_name}")
    assert properties["Handler"] == spec.handler
    assert properties["Runtime"] == spec.runtime == "python3.12"
    assert properties["MemorySize"] == spec.memory_mb
    assert properties["Timeout"] == spec.timeout_seconds
    assert properties["Architectures"] == [spec.architecture]
    assert properties["Code"] == {"S3Bucket": _ref("CodeBucket"), "S3Key": _ref("CodeKey")}
    variables = properties["Environment"]["Variables"]
    assert set(variables) == set(spec.environment)
    assert variables == {name: _expected_environment()[name] for name in spec.environment}


def test_the_handlers_and_timeouts_are_the_ones_the_design_names() -> None:
    assert resources.PROCESSOR_FUNCTION.handler == "cv_analytics.entrypoints.aws_lambda.process_analytics"
    assert resources.PROCESSOR_FUNCTION.timeout_seconds == 30
    assert resources.REPORTER_FUNCTION.handler == "cv_analytics.entrypoints.aws_lambda.weekly_report"
    assert resources.REPORTER_FUNCTION.timeout_seconds == 60
    worker, results, http = resources.JOB_WORKER_FUNCTION, resources.JOB_RESULTS_FUNCTION, resources.HTTP_API_FUNCTION
    assert worker.handler == "cv_analytics.entrypoints.aws_lambda.process_job_requests"
    assert (worker.timeout_seconds, worker.memory_mb) == (900, 3008)  # the seed's
    assert results.handler == "cv_analytics.entrypoints.aws_lambda.process_job_results"
    assert results.timeout_seconds == 300
    assert http.handler == "cv_analytics.entrypoints.aws_lambda.http_api"
    # Lambda refuses an SQS event source whose visibility timeout is shorter than the function's timeout.
    assert resources.JOB_REQUEST_QUEUE.config.visibility_timeout >= worker.timeout_seconds
    assert resources.JOB_RESPONSE_QUEUE.config.visibility_timeout >= results.timeout_seconds
    # Only the HTTP API checks API keys.
    assert [f.key for f in FUNCTIONS if resources.API_KEYS_ENV in f.environment] == ["http-api"]


def test_queue_attributes_are_the_ones_the_design_names() -> None:
    analytics = resources.ANALYTICS_QUEUE.attributes(dead_letter_arn="arn:dlq")
    assert analytics["ContentBasedDeduplication"] == "true"
    assert analytics["MessageRetentionPeriod"] == str(4 * 24 * 3600)
    assert analytics["VisibilityTimeout"] == "300"
    assert json.loads(analytics["RedrivePolicy"]) == {"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 3}
    fourteen_days = 14 * 24 * 3600
    # the seed's queue names
    assert (resources.JOB_REQUEST_QUEUE.name(), resources.JOB_REQUEST_DLQ.name()) == (
        "cv-analytics-ai-job-request", "cv-analytics-ai-job-request-dlq"
    )
    assert (resources.JOB_RESPONSE_QUEUE.name(), resources.JOB_RESPONSE_DLQ.name()) == (
        "cv-analytics-ai-job-response", "cv-analytics-ai-job-response-dlq"
    )
    for spec in (resources.JOB_REQUEST_QUEUE, resources.JOB_RESPONSE_QUEUE):
        assert spec.config.retention_seconds == fourteen_days, spec.key
        assert spec.config.max_receive_count == 3, spec.key
    for spec in (resources.ANALYTICS_DLQ, resources.JOB_REQUEST_DLQ, resources.JOB_RESPONSE_DLQ):
        assert spec.config.retention_seconds == fourteen_days, spec.key
    for spec in (resources.ANALYTICS_QUEUE, resources.ANALYTICS_DLQ):
        assert spec.attributes("arn:dlq")["FifoQueue"] == "true", spec.key
    # the jobs queues are standard queues: SQS refuses FifoQueue on those
    for spec in (resources.JOB_REQUEST_QUEUE, resources.JOB_REQUEST_DLQ, resources.JOB_RESPONSE_QUEUE, resources.JOB_RESPONSE_DLQ):
        assert "FifoQueue" not in spec.attributes("arn:dlq"), spec.key
        assert not spec.name().endswith(".fifo"), spec.key
    assert resources.JOB_REQUEST_QUEUE.attributes("arn:dlq")["VisibilityTimeout"] == "900"
    assert resources.JOB_REQUEST_QUEUE.attributes("arn:dlq")["ReceiveMessageWaitTimeSeconds"] == "20"
    assert resources.JOB_RESPONSE_QUEUE.attributes("arn:dlq")["VisibilityTimeout"] == "300"
    assert resources.EVENTS_TABLE.ttl_attribute == "ttl"
    assert resources.JOBS_TABLE.ttl_attribute == "ttl"
    assert [i.name for i in resources.JOBS_TABLE.indexes] == [
        "entity-created-index", "status-created-index", "type-created-index"
    ]
    assert resources.INTERACTIONS_TABLE.global_secondary_indexes() == [
        {
            "IndexName": "week-index",
            "KeySchema": [
                {"AttributeName": "week", "KeyType": "HASH"},
                {"AttributeName": "timestamp", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]


def test_parameters_share_the_prefix_rule_and_the_default_schedule_with_resources_py(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    assert parameters["NamePrefix"]["AllowedPattern"] == resources.PREFIX_PATTERN
    assert parameters["NamePrefix"]["Default"] == resources.DEFAULT_PREFIX
    assert parameters["ScheduleExpression"]["Default"] == resources.DEFAULT_SCHEDULE == "cron(0 7 ? * MON *)"
    for name in ("RecipientEmail", "SenderEmail", "CodeBucket", "CodeKey"):
        assert "Default" not in parameters[name], f"{name} must be given at deploy time"
    assert parameters["AlarmEmail"]["Default"] == ""
    assert "Default" not in parameters["ApiKeys"], "the HTTP API refuses every request without keys"
    assert parameters["ApiKeys"]["NoEcho"] is True and parameters["LlmApiKey"]["NoEcho"] is True
    assert parameters["JobRequestQueueDepthThreshold"]["Default"] == resources.DEFAULT_JOB_REQUEST_DEPTH_THRESHOLD


def test_outputs_name_every_queue_table_function_and_the_alarm_topic(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for spec in (*QUEUES, *TABLES, *FUNCTIONS):
        assert outputs[spec.output_key]["Value"] == _ref(spec.logical_id), spec.output_key
    assert outputs["AlarmTopicArn"]["Value"] == _ref("AlarmTopic")
    assert outputs["HttpApiUrl"]["Value"] == _sub("https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}")


# -- wiring -------------------------------------------------------------------------------


#: (queue, the function it feeds, the batching window in seconds or None for none).
EVENT_SOURCES = [
    (resources.ANALYTICS_QUEUE, resources.PROCESSOR_FUNCTION, None),
    (resources.JOB_REQUEST_QUEUE, resources.JOB_WORKER_FUNCTION, resources.JOB_REQUEST_BATCHING_WINDOW_SECONDS),
    (resources.JOB_RESPONSE_QUEUE, resources.JOB_RESULTS_FUNCTION, None),
]


def test_each_queue_feeds_its_function_in_batches_of_ten_with_partial_failures(template: dict[str, Any]) -> None:
    mappings = [m["Properties"] for m in _resources_of_type(template, "AWS::Lambda::EventSourceMapping").values()]
    assert len(mappings) == len(EVENT_SOURCES)
    for queue, function, window in EVENT_SOURCES:
        (properties,) = [m for m in mappings if m["EventSourceArn"] == _get_att(queue.logical_id, "Arn")]
        assert properties["FunctionName"] == _ref(function.logical_id), queue.key
        assert properties["BatchSize"] == resources.EVENT_SOURCE_BATCH_SIZE == 10
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert properties.get("MaximumBatchingWindowInSeconds") == window, queue.key
    assert resources.JOB_REQUEST_BATCHING_WINDOW_SECONDS == 5  # the seed's


def test_the_http_api_sends_the_jobs_routes_and_every_other_path_to_the_web_app(template: dict[str, Any]) -> None:
    (api_id,) = _resources_of_type(template, "AWS::ApiGatewayV2::Api")
    assert _props(template, api_id)["ProtocolType"] == "HTTP"
    ((integration_id, integration),) = _resources_of_type(template, "AWS::ApiGatewayV2::Integration").items()
    assert integration["Properties"] == {
        "ApiId": _ref(api_id),
        "IntegrationType": "AWS_PROXY",
        "IntegrationUri": _get_att(resources.HTTP_API_FUNCTION.logical_id, "Arn"),
        "PayloadFormatVersion": "2.0",  # the event shape mangum reads
        "TimeoutInMillis": resources.HTTP_API_FUNCTION.timeout_seconds * 1000,
    }
    routes = [r["Properties"] for r in _resources_of_type(template, "AWS::ApiGatewayV2::Route").values()]
    assert sorted(r["RouteKey"] for r in routes) == sorted(resources.HTTP_API_ROUTES)
    for route in routes:
        assert route["ApiId"] == _ref(api_id)
        assert route["Target"] == _sub(f"integrations/${{{integration_id}}}")
    (stage,) = [s["Properties"] for s in _resources_of_type(template, "AWS::ApiGatewayV2::Stage").values()]
    assert (stage["ApiId"], stage["StageName"], stage["AutoDeploy"]) == (_ref(api_id), "$default", True)
    (permission,) = [
        p["Properties"]
        for p in _resources_of_type(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert permission["FunctionName"] == _ref(resources.HTTP_API_FUNCTION.logical_id)
    assert permission["SourceArn"] == _sub(
        f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api_id}}}/*"
    )


def test_the_schedule_invokes_the_reporter_and_may_do_so(template: dict[str, Any]) -> None:
    rules = _resources_of_type(template, "AWS::Events::Rule")
    ((rule_id, rule),) = rules.items()
    assert rule["Properties"]["ScheduleExpression"] == _ref("ScheduleExpression")
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [
        _get_att(resources.REPORTER_FUNCTION.logical_id, "Arn")
    ]
    (permission,) = [
        p
        for p in _resources_of_type(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": _ref(resources.REPORTER_FUNCTION.logical_id),
        "Principal": "events.amazonaws.com",
        "SourceArn": _get_att(rule_id, "Arn"),
    }


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda f: f.key)
def test_each_function_logs_to_its_own_group_kept_fourteen_days(
    template: dict[str, Any], spec: FunctionSpec
) -> None:
    function = _props(template, spec.logical_id)
    group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    group = _props(template, group_id)
    assert group["LogGroupName"] == _sub(f"/aws/lambda/${{NamePrefix}}-{spec.base_name}")
    assert spec.log_group_name("cv-analytics") == f"/aws/lambda/cv-analytics-{spec.base_name}"
    assert group["RetentionInDays"] == resources.LOG_RETENTION_DAYS == 14


# -- alarms ---------------------------------------------------------------------------------


def _required_alarms() -> Iterator[tuple[str, str, dict[str, Any], str, Any, str]]:
    """(namespace, metric, dimension, statistic, threshold, comparison) the design asks for."""
    at_least = "GreaterThanOrEqualToThreshold"
    for spec in FUNCTIONS:
        dimension = {"Name": "FunctionName", "Value": _ref(spec.logical_id)}
        if "Errors" in spec.alarmed_metrics:
            yield "AWS/Lambda", "Errors", dimension, "Sum", 1, at_least
        if "Throttles" in spec.alarmed_metrics:
            yield "AWS/Lambda", "Throttles", dimension, "Sum", 1, at_least
        if "Duration" in spec.alarmed_metrics:
            near_timeout_ms = spec.timeout_seconds * 1000 * resources.DURATION_ALARM_RATIO
            yield "AWS/Lambda", "Duration", dimension, "Maximum", near_timeout_ms, at_least
    for spec in QUEUES:
        if spec.dead_letter is not None:
            dimension = {"Name": "QueueName", "Value": _get_att(spec.dead_letter.logical_id, "QueueName")}
            yield "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimension, "Maximum", 0, "GreaterThanThreshold"
    for spec in (resources.ANALYTICS_QUEUE, resources.JOB_REQUEST_QUEUE):
        dimension = {"Name": "QueueName", "Value": _get_att(spec.logical_id, "QueueName")}
        yield "AWS/SQS", "ApproximateAgeOfOldestMessage", dimension, "Maximum", 300, "GreaterThanThreshold"
    dimension = {"Name": "QueueName", "Value": _get_att(resources.JOB_REQUEST_QUEUE.logical_id, "QueueName")}
    depth = _ref("JobRequestQueueDepthThreshold")
    yield "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimension, "Maximum", depth, "GreaterThanThreshold"


def _alarm_id(alarm: tuple[str, str, dict[str, Any], str, Any, str]) -> str:
    _, metric, dimension, *_ = alarm
    value = dimension["Value"]
    return f"{value.get('Ref') or value['Fn::GetAtt'][0]}-{metric}"


@pytest.mark.parametrize(
    "namespace, metric, dimension, statistic, threshold, comparison",
    list(_required_alarms()),
    ids=[_alarm_id(alarm) for alarm in _required_alarms()],
)
def test_each_required_alarm_watches_its_metric_and_notifies_the_topic(
    template: dict[str, Any],
    namespace: str,
    metric: str,
    dimension: dict[str, Any],
    statistic: str,
    threshold: float | dict[str, str],
    comparison: str,
) -> None:
    matching = [
        alarm["Properties"]
        for alarm in _resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == metric and alarm["Properties"]["Dimensions"] == [dimension]
    ]
    assert len(matching) == 1, f"expected one {metric} alarm on {dimension}, found {len(matching)}"
    (alarm,) = matching
    assert alarm["Namespace"] == namespace
    assert alarm["Statistic"] == statistic
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == comparison
    assert alarm["AlarmActions"] == [_ref("AlarmTopic")]
    # No data means nothing ran or the queue is idle, not that something is wrong.
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_jobs_functions_alarm_on_their_errors_and_the_stack_stays_near_the_free_alarms() -> None:
    assert {f.key: f.alarmed_metrics for f in FUNCTIONS} == {
        "processor": ("Errors", "Throttles", "Duration"),
        "reporter": ("Errors", "Throttles", "Duration"),
        "job-worker": ("Errors",),
        "job-results": ("Errors",),
        "http-api": (),
    }
    # ten alarms are free; each one more costs $0.10 a month
    assert len(list(_required_alarms())) == 14


def test_every_alarm_in_the_template_is_a_required_one(template: dict[str, Any]) -> None:
    required = {(metric, json.dumps(dimension, sort_keys=True)) for _, metric, dimension, *_ in _required_alarms()}
    declared = {
        (a["Properties"]["MetricName"], json.dumps(a["Properties"]["Dimensions"][0], sort_keys=True))
        for a in _resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    assert declared == required


def test_the_alarm_email_subscription_exists_only_when_an_address_is_given(template: dict[str, Any]) -> None:
    (subscription,) = _resources_of_type(template, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == _ref("AlarmTopic")
    assert subscription["Properties"]["Endpoint"] == _ref("AlarmEmail")
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [_ref("AlarmEmail"), ""]}]}


# -- least privilege -------------------------------------------------------------------------


def _statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _props(template, role_id)["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strings_in(value: Any) -> Iterator[str]:
    """Every string inside a resource expression (Sub templates, If branches, plain ARNs)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)


def test_no_iam_statement_grants_a_wildcard_action_or_resource(template: dict[str, Any]) -> None:
    roles = _resources_of_type(template, "AWS::IAM::Role")
    assert set(roles) == {"ProcessorRole", "ReporterRole", "JobWorkerRole", "JobResultsRole", "HttpApiRole"}
    for role_id in roles:
        for statement in _statements(template, role_id):
            assert statement["Effect"] == "Allow"
            for action in _listed(statement["Action"]):
                assert "*" not in action, f"{role_id}/{statement.get('Sid')}: wildcard action {action}"
            for resource in _listed(statement["Resource"]):
                for text in _strings_in(resource):
                    assert "*" not in text, f"{role_id}/{statement.get('Sid')}: wildcard resource {text}"
            assert "NotAction" not in statement and "NotResource" not in statement


def _grants(template: dict[str, Any], role_id: str) -> dict[str, list[Any]]:
    """action -> the resources it is granted on."""
    grants: dict[str, list[Any]] = {}
    for statement in _statements(template, role_id):
        for action in _listed(statement["Action"]):
            grants.setdefault(action, []).extend(_listed(statement["Resource"]))
    return grants


def test_the_processor_role_reaches_only_its_queue_dead_letter_queue_tables_and_logs(
    template: dict[str, Any],
) -> None:
    grants = _grants(template, "ProcessorRole")
    queue = _get_att("AnalyticsQueue", "Arn")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"):
        assert queue in grants[action], action
    assert grants["sqs:SendMessage"] == [_get_att("AnalyticsDeadLetterQueue", "Arn")]
    for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert _get_att("EventsTable", "Arn") in grants[action], action
        assert _get_att("InteractionsTable", "Arn") in grants[action], action
    assert grants["logs:PutLogEvents"] == [_get_att("ProcessorLogGroup", "Arn")]
    assert not [a for a in grants if a.startswith("ses:")], "the processor sends no email"
    granted_on = [resource for on in grants.values() for resource in on]
    assert _get_att("ReportsTable", "Arn") not in granted_on


def test_the_reporter_role_reads_the_week_index_and_sends_only_as_the_sender(template: dict[str, Any]) -> None:
    grants = _grants(template, "ReporterRole")
    assert _get_att("InteractionsTable", "Arn") in grants["dynamodb:Query"]
    assert _sub("${InteractionsTable.Arn}/index/week-index") in grants["dynamodb:Query"]
    assert _get_att("ReportsTable", "Arn") in grants["dynamodb:PutItem"]
    assert not [a for a in grants if a.startswith("sqs:")], "the reporter touches no queue"
    identities = list(_strings_in(grants["ses:SendRawEmail"]))
    identity_arn = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
    assert identity_arn + "${SenderEmail}" in identities
    assert identity_arn + "${SenderIdentity}" in identities  # when the domain is the verified identity
    assert all(text.startswith(identity_arn) for text in identities if text.startswith("arn:"))
    assert grants["logs:PutLogEvents"] == [_get_att("ReporterLogGroup", "Arn")]


def _granted_on(grants: dict[str, list[Any]]) -> list[Any]:
    return [resource for on in grants.values() for resource in on]


def _jobs_table_and_indexes() -> list[Any]:
    table = resources.JOBS_TABLE
    return [_get_att(table.logical_id, "Arn"), *(_sub(f"${{{table.logical_id}.Arn}}/index/{i.name}") for i in table.indexes)]


def test_the_job_worker_consumes_requests_sends_results_and_updates_jobs_only(template: dict[str, Any]) -> None:
    grants = _grants(template, "JobWorkerRole")
    requests, responses = _get_att("JobRequestQueue", "Arn"), _get_att("JobResponseQueue", "Arn")
    assert grants["sqs:DeleteMessage"] == [requests]
    for action in ("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"):  # and the sweep peeks at the DLQ
        assert grants[action] == [requests, _get_att("JobRequestDeadLetterQueue", "Arn")], action
    assert sorted(map(json.dumps, grants["sqs:SendMessage"])) == sorted(
        map(json.dumps, [_get_att("JobRequestDeadLetterQueue", "Arn"), responses])
    )
    jobs_table = _get_att("JobsTable", "Arn")
    assert [a for a, on in grants.items() if jobs_table in on] == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert grants["logs:PutLogEvents"] == [_get_att("JobWorkerLogGroup", "Arn")]
    # the analytics.report job type sweeps the pending events and reads the week's interactions
    assert _get_att("EventsTable", "Arn") in grants["dynamodb:Scan"]
    assert _sub("${InteractionsTable.Arn}/index/week-index") in grants["dynamodb:Query"]
    granted_on = _granted_on(grants)
    for other in ("AnalyticsQueue", "AnalyticsDeadLetterQueue", "ReportsTable"):
        assert _get_att(other, "Arn") not in granted_on, other
    assert not [a for a in grants if a.startswith("ses:")]


def test_the_job_results_processor_consumes_results_and_updates_jobs_only(template: dict[str, Any]) -> None:
    grants = _grants(template, "JobResultsRole")
    responses = _get_att("JobResponseQueue", "Arn")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
        assert grants[action] == [responses], action
    assert grants["sqs:SendMessage"] == [_get_att("JobResponseDeadLetterQueue", "Arn")]
    assert set(a for a in grants if a.startswith("dynamodb:")) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert grants["dynamodb:PutItem"] == [_get_att("JobsTable", "Arn")]
    assert grants["logs:PutLogEvents"] == [_get_att("JobResultsLogGroup", "Arn")]
    assert _get_att("JobRequestQueue", "Arn") not in _granted_on(grants)


def test_the_http_api_submits_reads_and_lists_jobs_but_consumes_no_queue(template: dict[str, Any]) -> None:
    grants = _grants(template, "HttpApiRole")
    assert grants["dynamodb:Query"][: len(_jobs_table_and_indexes())] == _jobs_table_and_indexes()
    for action in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"):
        assert _get_att("JobsTable", "Arn") in grants[action], action
    assert _get_att("JobRequestQueue", "Arn") in grants["sqs:SendMessage"]
    assert _get_att("JobResponseQueue", "Arn") not in _granted_on(grants)
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "dynamodb:Scan", "dynamodb:UpdateItem"):
        assert action not in grants, action
    assert not [a for a in grants if a.startswith("ses:")]
    # readiness and the dashboard read interactions; nothing writes them from here
    assert "dynamodb:PutItem" not in [a for a, on in grants.items() if _get_att("InteractionsTable", "Arn") in on]
    assert grants["logs:PutLogEvents"] == [_get_att("HttpApiLogGroup", "Arn")]


# -- a real CreateStack in moto ---------------------------------------------------------------

PREFIX = "cvstack"


def _deploy_stack() -> dict[str, str]:
    """Upload a stand-in code zip, create the stack through CloudFormation, return its outputs."""
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cv-analytics-code")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("cv_analytics/__init__.py", "")
    s3.put_object(Bucket="cv-analytics-code", Key="lambda/test.zip", Body=code.getvalue())
    cloudformation = boto3.client("cloudformation")
    with warnings.catch_warnings():
        # Alarms are checked in the template: moto's CloudFormation skips them, and says so.
        warnings.filterwarnings("ignore", "Tried to parse AWS::CloudWatch::Alarm", UserWarning)
        # moto's CloudFormation does not create API Gateway v2 resources: they are checked in the template.
        warnings.filterwarnings("ignore", "Tried to parse AWS::ApiGatewayV2::", UserWarning)
        cloudformation.create_stack(
            StackName="cv-analytics-test",
            TemplateBody=TEMPLATE_PATH.read_text(),
            Parameters=[
                {"ParameterKey": "NamePrefix", "ParameterValue": PREFIX},
                {"ParameterKey": "CodeBucket", "ParameterValue": "cv-analytics-code"},
                {"ParameterKey": "CodeKey", "ParameterValue": "lambda/test.zip"},
                {"ParameterKey": "RecipientEmail", "ParameterValue": "owner@example.com"},
                {"ParameterKey": "SenderEmail", "ParameterValue": "reports@example.com"},
                {"ParameterKey": "ApiKeys", "ParameterValue": "test-key-1,test-key-2"},
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName="cv-analytics-test", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        (description,) = cloudformation.describe_stacks(StackName="cv-analytics-test")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in description["Outputs"]}


@pytest.fixture(scope="module")
def stack(moto_endpoint: str) -> Iterator[dict[str, str]]:
    """The template deployed into an empty moto; yields the stack's outputs.

    moto is reset afterwards: with the stack's event source mapping in place,
    a message sent to the analytics queue would make moto invoke the function.
    """
    from tests.moto_server import reset_moto

    reset_moto(moto_endpoint)
    try:
        yield _deploy_stack()
    finally:
        reset_moto(moto_endpoint)


@pytest.mark.parametrize("spec", QUEUES, ids=lambda q: q.key)
def test_the_deployed_stack_has_each_queue_with_its_attributes(stack: dict[str, str], spec: QueueSpec) -> None:
    import boto3

    sqs = boto3.client("sqs")
    url = stack[spec.output_key]
    assert url.endswith("/" + spec.name(PREFIX))
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    if spec.config.fifo:
        assert attributes["FifoQueue"] == "true"
        assert attributes["ContentBasedDeduplication"] == ("true" if spec.config.content_based_dedup else "false")
    else:
        assert attributes.get("FifoQueue", "false") == "false"
    assert attributes["MessageRetentionPeriod"] == str(int(spec.config.retention_seconds))
    assert attributes["VisibilityTimeout"] == str(int(spec.config.visibility_timeout))
    if spec.dead_letter is None:
        assert "RedrivePolicy" not in attributes
    else:
        dead_letter_url = stack[spec.dead_letter.output_key]
        dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dead_letter_arn
        assert int(redrive["maxReceiveCount"]) == 3


def test_the_deployed_analytics_queue_has_the_designed_numbers(stack: dict[str, str]) -> None:
    import boto3

    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack["AnalyticsQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert (attributes["MessageRetentionPeriod"], attributes["VisibilityTimeout"]) == ("345600", "300")
    assert attributes["ContentBasedDeduplication"] == "true"
    dead_letter = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack["AnalyticsDeadLetterQueueUrl"], AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]
    assert dead_letter["MessageRetentionPeriod"] == "1209600"


@pytest.mark.parametrize("spec", TABLES, ids=lambda t: t.key)
def test_the_deployed_stack_has_each_table_with_its_keys_and_on_demand_billing(
    stack: dict[str, str], spec: TableSpec
) -> None:
    import boto3

    # (moto's CloudFormation ignores TimeToLiveSpecification: TTL is checked
    # in the template above and, enabled for real, in test_bootstrap.py.)
    name = stack[spec.output_key]
    assert name == spec.name(PREFIX)
    table = boto3.client("dynamodb").describe_table(TableName=name)["Table"]
    assert table["KeySchema"] == spec.key_schema()
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == spec.attribute_definitions()
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = [
        {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
        for index in table.get("GlobalSecondaryIndexes", [])
    ]
    assert indexes == spec.global_secondary_indexes()


def test_the_deployed_schedule_runs_the_reporter_on_monday_mornings(stack: dict[str, str]) -> None:
    import boto3

    events = boto3.client("events")
    rule = events.describe_rule(Name=f"{PREFIX}-weekly-report")
    assert rule["ScheduleExpression"] == "cron(0 7 ? * MON *)"
    assert rule["State"] == "ENABLED"
    reporter = boto3.client("lambda").get_function(FunctionName=stack["ReporterFunctionName"])
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert [t["Arn"] for t in targets] == [reporter["Configuration"]["FunctionArn"]]


def test_the_deployed_processor_is_fed_by_the_analytics_queue_and_configured_by_outputs(
    stack: dict[str, str],
) -> None:
    import boto3

    lambda_ = boto3.client("lambda")
    sqs = boto3.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=stack["AnalyticsQueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    (mapping,) = lambda_.list_event_source_mappings(FunctionName=stack["ProcessorFunctionName"])[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for spec in FUNCTIONS:
        configuration = lambda_.get_function_configuration(FunctionName=stack[spec.output_key])
        assert (configuration["Handler"], configuration["Runtime"]) == (spec.handler, "python3.12")
        assert (configuration["Timeout"], configuration["MemorySize"]) == (spec.timeout_seconds, spec.memory_mb)
        variables = configuration["Environment"]["Variables"]
        # The variables resolve to the very resources the stack outputs.
        for queue_spec in QUEUES:
            assert variables[queue_spec.env_var] == stack[queue_spec.output_key]
        for table_spec in TABLES:
            assert variables[table_spec.env_var] == stack[table_spec.output_key]
        assert variables["RECIPIENT_EMAIL"] == "owner@example.com"
        assert variables["SENDER_EMAIL"] == "reports@example.com"


def test_the_deployed_job_functions_are_fed_by_their_queues(stack: dict[str, str]) -> None:
    import boto3

    lambda_ = boto3.client("lambda")
    sqs = boto3.client("sqs")
    for queue, function, window in EVENT_SOURCES[1:]:
        arn = sqs.get_queue_attributes(QueueUrl=stack[queue.output_key], AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        (mapping,) = lambda_.list_event_source_mappings(FunctionName=stack[function.output_key])["EventSourceMappings"]
        assert mapping["EventSourceArn"] == arn
        assert mapping["BatchSize"] == 10
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping.get("MaximumBatchingWindowInSeconds", None) in (window, None if window is None else window)
    http = lambda_.get_function_configuration(FunctionName=stack[resources.HTTP_API_FUNCTION.output_key])
    assert http["Environment"]["Variables"][resources.API_KEYS_ENV] == "test-key-1,test-key-2"
