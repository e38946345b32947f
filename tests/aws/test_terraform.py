"""infra/terraform/: formatted, parseable, valid where its provider is installed, and the template's twin.

The parity tests read the CloudFormation template and the Terraform module
into one normal form (tests/aws/stack_model.py) with the same inputs (the dev
variable file's values, the template's parameters set to them) and compare
them kind by kind; the queues are also held to src/cv_analytics/queues/presets.py.
Where the hashicorp/aws provider is installed, `terraform validate` runs, and
`terraform apply` creates the stack in moto (on loopback), read back with boto3.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import zipfile
from typing import Any

import pytest

from cv_analytics.deploy import resources

from . import stack_model
from .conftest import REPO
from .stack_model import KINDS, CloudFormationStack, Kind, TerraformStack

TERRAFORM_DIR = REPO / "infra" / "terraform"
ENVIRONMENTS = ("dev", "prod")
TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"
#: The template's parameters Terraform has no counterpart of: the code is a local zip there (lambda_zip_path).
CLOUDFORMATION_ONLY_PARAMETERS = {"CodeBucket", "CodeKey"}
#: Terraform's own variables, which the template has no parameter for.
TERRAFORM_ONLY_VARIABLES = {"region", "lambda_zip_path", "lambda_s3_bucket", "lambda_s3_key"}


def _terraform_files() -> list[pathlib.Path]:
    return sorted([*TERRAFORM_DIR.rglob("*.tf"), *TERRAFORM_DIR.rglob("*.tfvars")])


def _snake(name: str) -> str:
    """``JobRequestQueueDepthThreshold`` → ``job_request_queue_depth_threshold``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _tfvars(environment: str) -> dict[str, Any]:
    return stack_model.load_hcl(TERRAFORM_DIR / "environments" / f"{environment}.tfvars")


def _run_terraform(*args: str, cwd: pathlib.Path, env: dict[str, str] | None = None, stdin: str | None = None,
                   timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TERRAFORM, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )


def _terraform_env(data_dir: pathlib.Path) -> dict[str, str]:
    return dict(os.environ, TF_IN_AUTOMATION="1", TF_DATA_DIR=str(data_dir), CHECKPOINT_DISABLE="1", TF_INPUT="0")


needs_terraform = pytest.mark.skipif(
    not os.access(TERRAFORM, os.X_OK), reason=f"terraform is not installed ({TERRAFORM})"
)


# -- the files ------------------------------------------------------------------------


def test_the_module_has_the_layout_its_readme_describes() -> None:
    for path in ("versions.tf", "main.tf", "variables.tf", "outputs.tf", "backend.tf.example", "README.md",
                 "environments/dev.tfvars", "environments/prod.tfvars"):
        assert (TERRAFORM_DIR / path).is_file(), path
    for module in ("queues", "tables", "functions", "api", "monitoring", "iam"):
        for file in ("main.tf", "variables.tf", "outputs.tf"):
            assert (TERRAFORM_DIR / "modules" / module / file).is_file(), f"modules/{module}/{file}"


@needs_terraform
def test_terraform_fmt_finds_every_file_formatted(tmp_path: pathlib.Path) -> None:
    result = _run_terraform("fmt", "-check", "-recursive", "-diff", "-no-color", ".", cwd=TERRAFORM_DIR,
                            env=_terraform_env(tmp_path))
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


@needs_terraform
def test_the_backend_example_is_formatted_too(tmp_path: pathlib.Path) -> None:
    example = (TERRAFORM_DIR / "backend.tf.example").read_text()
    result = _run_terraform("fmt", "-no-color", "-", cwd=tmp_path, env=_terraform_env(tmp_path), stdin=example)
    assert result.returncode == 0, result.stderr
    assert result.stdout == example


@pytest.mark.parametrize("path", _terraform_files(), ids=lambda p: str(p.relative_to(TERRAFORM_DIR)))
def test_every_file_parses_as_hcl(path: pathlib.Path) -> None:
    parsed = stack_model.load_hcl(path)
    assert parsed, f"{path} is empty"


def test_the_backend_example_keeps_state_in_s3_with_a_lock_table() -> None:
    parsed = stack_model.load_hcl(TERRAFORM_DIR / "backend.tf.example")
    ((backend,),) = [block["backend"] for block in parsed["terraform"]]
    s3 = backend["s3"]
    assert {"bucket", "key", "region", "dynamodb_table"} <= set(s3)
    assert s3["encrypt"] is True


def test_the_aws_provider_is_pinned_and_tags_everything_with_project_and_environment() -> None:
    versions = stack_model.load_hcl(TERRAFORM_DIR / "versions.tf")
    (terraform,) = versions["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    (providers,) = terraform["required_providers"]
    assert providers["aws"] == {"source": "hashicorp/aws", "version": "~> 5.0"}
    root = stack_model.TerraformModule.load(TERRAFORM_DIR)
    (default_tags,) = root.providers["aws"]["default_tags"]
    assert default_tags["tags"] == {"Project": "CVAnalytics", "Environment": "${var.environment}"}
    assert root.variables["environment"]["type"] == "string"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_sets_its_name_and_nothing_secret(environment: str) -> None:
    tfvars = _tfvars(environment)
    assert tfvars["environment"] == environment
    root = stack_model.TerraformModule.load(TERRAFORM_DIR)
    assert set(tfvars) <= set(root.variables), set(tfvars) - set(root.variables)
    sensitive = {name for name, spec in root.variables.items() if spec.get("sensitive")}
    assert sensitive == {"api_keys", "llm_api_key"}
    assert not sensitive & set(tfvars), "secrets come from TF_VAR_..., never a committed file"


def test_dev_and_prod_are_separate_deployments() -> None:
    assert _tfvars("dev")["name_prefix"] != _tfvars("prod")["name_prefix"]


def test_every_template_parameter_is_a_terraform_variable_with_the_same_default(template: dict[str, Any]) -> None:
    variables = stack_model.TerraformModule.load(TERRAFORM_DIR).variables
    for parameter, spec in template["Parameters"].items():
        if parameter in CLOUDFORMATION_ONLY_PARAMETERS:
            continue
        name = _snake(parameter)
        assert name in variables, f"parameter {parameter} has no variable {name}"
        assert variables[name].get("default") == spec.get("Default"), name
        assert bool(variables[name].get("sensitive")) == bool(spec.get("NoEcho")), name
    known = {_snake(p) for p in template["Parameters"]} | TERRAFORM_ONLY_VARIABLES | {"environment"}
    assert set(variables) <= known, set(variables) - known


# -- parity -------------------------------------------------------------------------------


def _variable_values(tfvars: dict[str, Any]) -> dict[str, Any]:
    root = stack_model.TerraformModule.load(TERRAFORM_DIR)
    return {
        name: tfvars.get(name, spec.get("default", f"<var.{name}>")) for name, spec in root.variables.items()
    }


@pytest.fixture(scope="module")
def stacks(template: dict[str, Any]) -> tuple[CloudFormationStack, TerraformStack]:
    """Both stacks with the dev inputs: each template parameter set to its Terraform variable's value."""
    tfvars = _tfvars("dev")
    values = _variable_values(tfvars)
    parameters = {
        name: values.get(_snake(name), spec.get("Default"))
        for name, spec in template["Parameters"].items()
        if name not in CLOUDFORMATION_ONLY_PARAMETERS
    }
    return CloudFormationStack(template, parameters), TerraformStack(TERRAFORM_DIR, tfvars)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
def test_the_module_declares_what_the_template_does(
    stacks: tuple[CloudFormationStack, TerraformStack], kind: Kind
) -> None:
    cloudformation, terraform = stacks
    from_template, from_module = kind.cloudformation(cloudformation), kind.terraform(terraform)
    assert from_template, f"the template declares no {kind.name}"
    differences = list(stack_model.differences(from_template, from_module))
    assert not differences, f"{kind.name} differ:\n" + "\n".join(differences)


def test_the_queues_of_both_follow_the_presets(stacks: tuple[CloudFormationStack, TerraformStack]) -> None:
    cloudformation, terraform = stacks
    prefix = _tfvars("dev")["name_prefix"]
    expected = {}
    for spec in resources.STACK_QUEUES:
        dead_letter_arn = (
            stack_model.token("sqs", spec.dead_letter.name(prefix), "arn") if spec.dead_letter is not None else None
        )
        expected[spec.name(prefix)] = stack_model.sqs_attributes(spec.attributes(dead_letter_arn=dead_letter_arn))
    for side, queues in (("CloudFormation", stack_model.cloudformation_queues(cloudformation)),
                         ("Terraform", stack_model.terraform_queues(terraform))):
        differences = list(stack_model.differences(expected, queues, names=("the presets", side)))
        assert not differences, f"{side} queues differ from the presets:\n" + "\n".join(differences)


def test_the_parity_readers_see_the_settings_that_matter(stacks: tuple[CloudFormationStack, TerraformStack]) -> None:
    # a reader that read nothing would make the parity tests pass vacuously
    _, terraform = stacks
    prefix = _tfvars("dev")["name_prefix"]
    queues = stack_model.terraform_queues(terraform)
    assert queues[f"{prefix}-analytics.fifo"]["VisibilityTimeout"] == "300"
    assert queues[f"{prefix}-analytics.fifo"]["RedrivePolicy"] == {
        "deadLetterTargetArn": f"sqs:{prefix}-analytics-dlq.fifo#arn",
        "maxReceiveCount": 3,
    }
    functions = stack_model.terraform_functions(terraform)
    worker = functions[f"{prefix}-process-job-requests"]
    assert (worker["MemorySize"], worker["Timeout"]) == (3008, 900)
    assert worker["Environment"]["AI_JOB_REQUEST_QUEUE_URL"] == f"sqs:{prefix}-ai-job-request#url"
    assert functions[f"{prefix}-http-api"]["Environment"]["CV_ANALYTICS_API_KEYS"] == "<var.api_keys>"
    roles = stack_model.terraform_roles(terraform)
    assert roles[f"{prefix}-process-analytics"]["Grants"][f"sqs:{prefix}-analytics-dlq.fifo#arn"] == [
        "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"
    ]
    sender = f"arn:<partition>:ses:<region>:<account>:identity/{_tfvars('dev')['sender_email']}"
    assert roles[f"{prefix}-weekly-report"]["Grants"][sender] == ["ses:SendRawEmail"]
    alarms = stack_model.terraform_alarms(terraform)
    assert alarms[f"{prefix}-ai-job-request-queue-depth"]["Threshold"] == 100.0
    assert len(alarms) == 23


def test_a_changed_setting_is_reported_by_resource_and_setting() -> None:
    template_side = {"q.fifo": {"VisibilityTimeout": "300", "DelaySeconds": "0"}}
    module_side = {"q.fifo": {"VisibilityTimeout": "900", "terraform:sqs_managed_sse_enabled": True}}
    assert list(stack_model.differences(template_side, module_side)) == [
        "q.fifo/DelaySeconds: only in CloudFormation ('0')",
        "q.fifo/VisibilityTimeout: CloudFormation '300', Terraform '900'",
        "q.fifo/terraform:sqs_managed_sse_enabled: only in Terraform (True)",
    ]


def test_the_alarm_email_is_subscribed_only_when_given(template: dict[str, Any]) -> None:
    def subscriptions(alarm_email: str) -> list[Any]:
        stack = TerraformStack(TERRAFORM_DIR, dict(_tfvars("dev"), alarm_email=alarm_email))
        return [r.value(r.body) for r in stack.resources("aws_sns_topic_subscription")]

    assert subscriptions("") == []
    (subscription,) = subscriptions("ops@example.com")
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")
    assert subscription["topic_arn"] == f"sns:{_tfvars('dev')['name_prefix']}-alarms#arn"
    (cloudformation,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]
    assert cloudformation["Condition"] == "HasAlarmEmail"


def test_the_code_comes_from_the_zip_or_from_s3_when_a_bucket_is_given() -> None:
    def code(**tfvars: str) -> set[tuple[Any, Any, Any]]:
        stack = TerraformStack(TERRAFORM_DIR, dict(_tfvars("dev"), **tfvars))
        functions = [f.value(f.body) for f in stack.resources("aws_lambda_function")]
        assert len(functions) == len(resources.FUNCTIONS)
        return {(f["filename"], f["s3_bucket"], f["s3_key"]) for f in functions}

    assert code() == {(_tfvars("dev")["lambda_zip_path"], None, None)}
    assert code(lambda_s3_bucket="my-code", lambda_s3_key="cv/lambda-1.zip") == {(None, "my-code", "cv/lambda-1.zip")}


def test_the_tags_the_template_sets_are_the_modules_default_tags(
    stacks: tuple[CloudFormationStack, TerraformStack],
) -> None:
    cloudformation, terraform = stacks
    tagged = cloudformation.tags()
    if not tagged:
        pytest.skip("the template tags no resource yet")
    (default_tags,) = terraform.root.module.providers["aws"]["default_tags"]
    wanted = terraform.root.value(default_tags["tags"])
    assert {logical_id: tags for logical_id, tags in tagged.items() if tags != wanted} == {}


def test_an_expression_the_reader_cannot_evaluate_is_named() -> None:
    scope = stack_model.TerraformScope(stack_model.TerraformModule(TERRAFORM_DIR), lambda name: name)
    with pytest.raises(stack_model.UnsupportedExpression, match="var.a > 1"):
        scope.value("${var.a > 1 ? 2 : 3}")


# -- terraform validate, where the provider is installed ------------------------------------

#: Where a provider may be installed without the network: the plugin cache, Terraform's implicit local mirrors.
PLUGIN_DIRS = [
    pathlib.Path(os.environ["TF_PLUGIN_CACHE_DIR"]) if os.environ.get("TF_PLUGIN_CACHE_DIR") else None,
    pathlib.Path.home() / ".terraform.d" / "plugins",
    pathlib.Path.home() / ".local" / "share" / "terraform" / "plugins",
    pathlib.Path("/usr/local/share/terraform/plugins"),
    pathlib.Path("/usr/share/terraform/plugins"),
    pathlib.Path("/opt/tf-plugins"),  # where this project's machine image unpacks it
]


def _installed_aws_provider() -> pathlib.Path | None:
    """The plugin directory holding hashicorp/aws 5.x, if any."""
    for directory in filter(None, PLUGIN_DIRS):
        provider = directory / "registry.terraform.io" / "hashicorp" / "aws"
        if any(version.name.startswith("5.") for version in provider.glob("*")):
            return directory
    return None


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, str]]:
    """A copy of the module, initialised from the installed provider (init's lock file stays out of the checkout)."""
    if not os.access(TERRAFORM, os.X_OK):
        pytest.skip(f"terraform is not installed ({TERRAFORM})")
    plugin_dir = _installed_aws_provider()
    if plugin_dir is None:
        pytest.skip(
            "the hashicorp/aws 5.x provider is not installed in any local plugin directory"
            " (and it cannot be downloaded here): terraform validate and apply not run"
        )
    tmp_path = tmp_path_factory.mktemp("terraform")
    workdir = tmp_path / "terraform"
    shutil.copytree(TERRAFORM_DIR, workdir)
    env = _terraform_env(tmp_path / "data")
    # -plugin-dir: the installed provider or nothing, never the network
    init = _run_terraform("init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={plugin_dir}",
                          cwd=workdir, env=env, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    return workdir, env


def test_terraform_validate_accepts_the_module(initialised: tuple[pathlib.Path, dict[str, str]]) -> None:
    workdir, env = initialised
    validate = _run_terraform("validate", "-no-color", cwd=workdir, env=env, timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr


#: Points the provider at moto: dummy keys, and none of the checks that would call AWS itself.
MOTO_PROVIDER_OVERRIDE = """
provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
"""


#: A moto limitation, not the module's: moto's Budgets has no ListTagsForResource, which the provider
#: calls after creating a budget (and retries for minutes), and its ID needs the account ID the override
#: skips asking for. The budget alone is left out of the apply (terraform validate still checks it).
MOTO_WITHOUT_BUDGET = """
resource "aws_budgets_budget" "monthly" {
  count = 0
}
"""


@pytest.mark.slow
def test_terraform_apply_creates_the_stack_in_moto_tagged_and_as_the_presets_say(
    initialised: tuple[pathlib.Path, dict[str, str]], moto_reset: str, tmp_path: pathlib.Path
) -> None:
    import boto3

    from tests.moto_server import REGION

    workdir, env = initialised
    (workdir / "override.tf").write_text(MOTO_PROVIDER_OVERRIDE)
    (workdir / "modules" / "monitoring" / "override.tf").write_text(MOTO_WITHOUT_BUDGET)
    code = tmp_path / "code.zip"
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("cv_analytics/__init__.py", "")
    # the moto fixture has set AWS_ENDPOINT_URL, which the provider honours, in os.environ
    env = dict(env, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}, TF_VAR_api_keys="test-key")
    try:
        apply = _run_terraform(
            "apply", "-auto-approve", "-input=false", "-no-color", "-var-file=environments/dev.tfvars",
            f"-var=lambda_zip_path={code}", f"-var=region={REGION}", cwd=workdir, env=env, timeout=420,
        )
        assert apply.returncode == 0, apply.stdout[-4000:] + apply.stderr
        outputs = {
            name: output["value"]
            for name, output in json.loads(
                _run_terraform("output", "-json", cwd=workdir, env=env).stdout
            ).items()
        }
    finally:
        (workdir / "override.tf").unlink()
        (workdir / "modules" / "monitoring" / "override.tf").unlink()
        for state in workdir.glob("terraform.tfstate*"):
            state.unlink()

    prefix = _tfvars("dev")["name_prefix"]
    tags = {"Project": "CVAnalytics", "Environment": "dev"}
    sqs, dynamodb, lambda_ = boto3.client("sqs"), boto3.client("dynamodb"), boto3.client("lambda")
    for spec in resources.QUEUES:
        url = outputs[_snake(spec.output_key)]
        assert url.endswith("/" + spec.name(prefix))
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        dead_letter_arn = None
        if spec.dead_letter is not None:
            dead_letter_url = outputs[_snake(spec.dead_letter.output_key)]
            dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        wanted = stack_model.sqs_attributes(spec.attributes(dead_letter_arn=dead_letter_arn))
        assert stack_model.sqs_attributes({k: attributes[k] for k in wanted}) == wanted, spec.key
        assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == tags, spec.key
    for spec in resources.TABLES:
        table = dynamodb.describe_table(TableName=outputs[_snake(spec.output_key)])["Table"]
        assert table["KeySchema"] == spec.key_schema(), spec.key
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        indexes = [
            {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
            for index in table.get("GlobalSecondaryIndexes", [])
        ]
        assert sorted(indexes, key=str) == sorted(spec.global_secondary_indexes(), key=str), spec.key
        ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
        assert (ttl.get("AttributeName"), ttl["TimeToLiveStatus"] == "ENABLED") == (
            spec.ttl_attribute, spec.ttl_attribute is not None
        ), spec.key
        listed = dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
        assert {t["Key"]: t["Value"] for t in listed} == tags, spec.key
    for spec in resources.FUNCTIONS:
        function = lambda_.get_function(FunctionName=spec.name(prefix))
        configuration = function["Configuration"]
        assert (configuration["Handler"], configuration["Runtime"]) == (spec.handler, spec.runtime)
        assert (configuration["Timeout"], configuration["MemorySize"]) == (spec.timeout_seconds, spec.memory_mb)
        variables = configuration["Environment"]["Variables"]
        assert set(variables) == set(spec.environment), spec.key
        for queue in resources.QUEUES:
            assert variables[queue.env_var] == outputs[_snake(queue.output_key)], (spec.key, queue.env_var)
        assert function["Tags"] == tags, spec.key
    # (moto filters mappings by the function reference as given, an ARN here: all are read)
    mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]
    assert len(mappings) == 3
    for queue, function, window in ((resources.ANALYTICS_QUEUE, resources.PROCESSOR_FUNCTION, 0),
                                    (resources.JOB_REQUEST_QUEUE, resources.JOB_WORKER_FUNCTION, 5),
                                    (resources.JOB_RESPONSE_QUEUE, resources.JOB_RESULTS_FUNCTION, 0)):
        (mapping,) = [m for m in mappings if m["FunctionArn"].endswith(":function:" + function.name(prefix))]
        assert mapping["EventSourceArn"].endswith(":" + queue.name(prefix))
        assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])
        assert mapping.get("MaximumBatchingWindowInSeconds", 0) == window, queue.key
    alarms = boto3.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]
    assert len(alarms) == 23
    assert {a["AlarmActions"][0] for a in alarms} == {outputs["alarm_topic_arn"]}
    rule = boto3.client("events").describe_rule(Name=outputs["weekly_report_rule_name"])
    assert (rule["ScheduleExpression"], rule["State"]) == (resources.DEFAULT_SCHEDULE, "ENABLED")
    roles = boto3.client("iam").list_roles()["Roles"]
    for spec in resources.FUNCTIONS:
        (role,) = [r for r in roles if r["RoleName"] == spec.name(prefix)]
        listed = boto3.client("iam").list_role_tags(RoleName=role["RoleName"])["Tags"]
        assert {t["Key"]: t["Value"] for t in listed} == tags, spec.key
