"""The stack as data: infra/template.yaml and infra/terraform/ read into one normal form.

Both readers resolve every reference to a *token* naming the resource it points
at and which of its attributes (``sqs:cv-analytics-dev-analytics.fifo#arn``), so
a CloudFormation ``!GetAtt AnalyticsQueue.Arn`` and a Terraform
``aws_sqs_queue.analytics.arn`` reached through two module outputs compare
equal. Settings are then described per kind of resource (:data:`KINDS`), keyed
by CloudFormation's property names; a property one side sets and the other
does not know shows up as a difference rather than vanishing.

The Terraform reader evaluates the small subset of HCL expressions the module
uses (references, string templates, ``jsonencode``, ``merge``, ``coalesce``,
``toset``, ``for_each`` over a set, ``count`` of 0 or 1, ``a == b``, ``a != b``
and ``c ? x : y``)
and fails naming the expression for anything else, so the module stays plain
enough to be held to the template.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)

#: What AWS pseudo parameters and Terraform's data sources for them resolve to.
PARTITION, REGION, ACCOUNT, URL_SUFFIX = "<partition>", "<region>", "<account>", "<url-suffix>"


@dataclass(frozen=True)
class ResourceType:
    """One AWS resource type under its two names, with the property that names it."""

    kind: str
    cloudformation: str
    terraform: str
    cloudformation_name: str | None
    terraform_name: str | None
    #: What CloudFormation's Ref gives, and Terraform's ``id``.
    ref: str


RESOURCE_TYPES = (
    ResourceType("sqs", "AWS::SQS::Queue", "aws_sqs_queue", "QueueName", "name", "url"),
    ResourceType("dynamodb", "AWS::DynamoDB::Table", "aws_dynamodb_table", "TableName", "name", "name"),
    ResourceType("lambda", "AWS::Lambda::Function", "aws_lambda_function", "FunctionName", "function_name", "name"),
    ResourceType("logs", "AWS::Logs::LogGroup", "aws_cloudwatch_log_group", "LogGroupName", "name", "name"),
    ResourceType("sns", "AWS::SNS::Topic", "aws_sns_topic", "TopicName", "name", "arn"),
    ResourceType("events", "AWS::Events::Rule", "aws_cloudwatch_event_rule", "Name", "name", "name"),
    ResourceType("apigateway", "AWS::ApiGatewayV2::Api", "aws_apigatewayv2_api", "Name", "name", "id"),
    ResourceType(
        "apigateway-integration", "AWS::ApiGatewayV2::Integration", "aws_apigatewayv2_integration", None, None, "id"
    ),
    ResourceType("alarm", "AWS::CloudWatch::Alarm", "aws_cloudwatch_metric_alarm", "AlarmName", "alarm_name", "name"),
    ResourceType("iam-role", "AWS::IAM::Role", "aws_iam_role", "RoleName", "name", "name"),
)
BY_CLOUDFORMATION = {t.cloudformation: t for t in RESOURCE_TYPES}
BY_TERRAFORM = {t.terraform: t for t in RESOURCE_TYPES}

#: Terraform attribute → the token attribute it means (``id`` is the type's ``ref``).
TERRAFORM_ATTRIBUTES = {
    "arn": "arn",
    "url": "url",
    "name": "name",
    "function_name": "name",
    "api_endpoint": "endpoint",
    "invoke_arn": "invoke_arn",
}
#: CloudFormation GetAtt attribute → token attribute.
CLOUDFORMATION_ATTRIBUTES = {"Arn": "arn", "QueueName": "name", "QueueUrl": "url", "ApiEndpoint": "endpoint"}


def token(kind: str, name: str, attribute: str) -> str:
    return f"{kind}:{name}#{attribute}"


def identity(value: Any) -> Any:
    """A token without its attribute: the resource itself (a function by ARN or by name is one function)."""
    return value.split("#", 1)[0] if isinstance(value, str) and "#" in value else value


class UnsupportedExpression(ValueError):
    pass


# -- CloudFormation -------------------------------------------------------------------


class CloudFormationStack:
    """A template with its parameters set: intrinsic functions evaluated to values and tokens."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.template = template
        self.parameters = parameters
        self.logical_ids: dict[str, str] = {}  # token identity → logical id

    def resources(self, resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] == resource_type and self.condition_holds(resource.get("Condition")):
                yield logical_id, resource

    def properties(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A resource's properties evaluated, Tags aside (compared on their own: Terraform sets them once)."""
        return self.value({k: v for k, v in resource.get("Properties", {}).items() if k != "Tags"})

    def tags(self) -> dict[str, dict[str, Any]]:
        """Each tagged resource's tags as a mapping (CloudFormation writes them as a list or a map, by type)."""
        tagged = {}
        for logical_id, resource in self.template["Resources"].items():
            if "Tags" in resource.get("Properties", {}):
                tags = self.value(resource["Properties"]["Tags"])
                tagged[logical_id] = {t["Key"]: t["Value"] for t in tags} if isinstance(tags, list) else tags
        return tagged

    def condition_holds(self, name: str | None) -> bool:
        return name is None or bool(self.value(self.template["Conditions"][name]))

    def physical_name(self, logical_id: str) -> str:
        resource = self.template["Resources"][logical_id]
        resource_type = BY_CLOUDFORMATION.get(resource["Type"])
        name_property = resource_type.cloudformation_name if resource_type else None
        if name_property and name_property in resource.get("Properties", {}):
            return str(self.value(resource["Properties"][name_property]))
        return f"<{logical_id}>"

    def token(self, logical_id: str, attribute: str | None) -> str:
        resource_type = BY_CLOUDFORMATION.get(self.template["Resources"][logical_id]["Type"])
        kind = resource_type.kind if resource_type else self.template["Resources"][logical_id]["Type"]
        if attribute is None:
            normal = resource_type.ref if resource_type else "id"
        else:
            normal = CLOUDFORMATION_ATTRIBUTES.get(attribute, attribute.lower())
        result = token(kind, self.physical_name(logical_id), normal)
        self.logical_ids[identity(result)] = logical_id
        if kind == "logs" and normal == "arn":
            return result + ":*"  # a log group's Arn attribute ends in :* in CloudFormation
        return result

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::URLSuffix":
            return URL_SUFFIX
        if name in self.template.get("Parameters", {}):
            return self.parameters[name]
        if name in self.template["Resources"]:
            return self.token(name, None)
        raise UnsupportedExpression(f"!Ref {name}: neither a parameter nor a resource")

    def _sub(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.token(logical_id, attribute)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Ref":
                return self._ref(argument)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.token(logical_id, attribute)
            if function == "Fn::Sub":
                if not isinstance(argument, str):
                    raise UnsupportedExpression(f"Fn::Sub with variables: {argument!r}")
                return self._sub(argument)
            if function == "Fn::If":
                condition, if_true, if_false = argument
                return self.value(if_true if self.condition_holds(condition) else if_false)
            if function == "Fn::Equals":
                left, right = self.value(argument)
                return left == right
            if function == "Fn::Not":
                return not self.value(argument[0])
            if function == "Fn::And":
                return all(self.value(argument))
            if function == "Fn::Or":
                return any(self.value(argument))
            if function == "Condition":
                return self.condition_holds(argument)
            if function == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self.value(items))
            if function.startswith("Fn::"):
                raise UnsupportedExpression(f"{function} is not evaluated: {argument!r}")
        return {key: self.value(item) for key, item in node.items()}


# -- Terraform ---------------------------------------------------------------------------


def _load_hcl(path: pathlib.Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(), serialization_options=HCL_OPTIONS)


@dataclass
class TerraformModule:
    """The blocks of one module directory (every ``*.tf`` file in it)."""

    path: pathlib.Path
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: pathlib.Path) -> TerraformModule:
        module = cls(path)
        for file in sorted(path.glob("*.tf")):
            parsed = _load_hcl(file)
            for block in parsed.get("variable", []):
                module.variables.update(block)
            for block in parsed.get("locals", []):
                module.locals.update(block)
            for block in parsed.get("output", []):
                module.outputs.update(block)
            for block in parsed.get("module", []):
                module.modules.update(block)
            for block in parsed.get("provider", []):
                module.providers.update(block)
            for section, into in (("resource", module.resources), ("data", module.data)):
                for block in parsed.get(section, []):
                    for type_name, by_name in block.items():
                        for name, body in by_name.items():
                            into[(type_name, name)] = body
        return module


@dataclass(frozen=True)
class TerraformResource:
    """One resource instance: its module scope, address and body (with ``each`` for a for_each instance)."""

    scope: TerraformScope
    type: str
    name: str
    body: dict[str, Any]
    each: tuple[Any, Any] | None = None

    def value(self, node: Any) -> Any:
        return self.scope.value(node, each=self.each)

    @property
    def address(self) -> str:
        index = "" if self.each is None else f"[{self.each[0]!r}]"
        return f"{self.scope.address}{self.type}.{self.name}{index}"


class TerraformScope:
    """A module instance: its variables' values, its child modules, and its resources' tokens."""

    def __init__(
        self,
        module: TerraformModule,
        variables: Callable[[str], Any],
        address: str = "",
        registry: dict[str, TerraformResource] | None = None,
    ) -> None:
        self.module = module
        self._variables = variables
        self.address = address
        self.registry: dict[str, TerraformResource] = {} if registry is None else registry
        self._children: dict[str, TerraformScope] = {}

    @classmethod
    def root(cls, path: pathlib.Path, tfvars: dict[str, Any]) -> TerraformScope:
        module = TerraformModule.load(path)

        def variable(name: str) -> Any:
            if name in tfvars:
                return tfvars[name]
            return _default(module, name)

        return cls(module, variable)

    def var(self, name: str) -> Any:
        if name not in self.module.variables:
            raise UnsupportedExpression(f"{self.address or 'root module'}: no variable {name!r}")
        return self._variables(name)

    def child(self, name: str) -> TerraformScope:
        if name not in self._children:
            call = self.module.modules[name]
            module = TerraformModule.load((self.module.path / call["source"]).resolve())

            def variable(variable_name: str) -> Any:
                if variable_name in call:
                    return self.value(call[variable_name])
                return _default(module, variable_name)

            self._children[name] = TerraformScope(module, variable, f"{self.address}module.{name}.", self.registry)
        return self._children[name]

    def children(self) -> Iterator[TerraformScope]:
        for name in self.module.modules:
            child = self.child(name)
            yield child
            yield from child.children()

    def scopes(self) -> Iterator[TerraformScope]:
        yield self
        yield from self.children()

    # -- resources --

    def instances(self, type_name: str, name: str) -> list[TerraformResource]:
        body = self.module.resources[(type_name, name)]
        if "count" in body:
            count = self.value(body["count"])
            if count not in (0, 1):
                raise UnsupportedExpression(f"{self.address}{type_name}.{name}: count other than 0 or 1 is not read")
            return [TerraformResource(self, type_name, name, body)] * count
        if "for_each" not in body:
            return [TerraformResource(self, type_name, name, body)]
        keys = self.value(body["for_each"])
        items = keys.items() if isinstance(keys, dict) else ((key, key) for key in keys)
        return [TerraformResource(self, type_name, name, body, each=(key, value)) for key, value in items]

    def instance(self, type_name: str, name: str, key: Any = None) -> TerraformResource:
        for resource in self.instances(type_name, name):
            if resource.each is None or resource.each[0] == key:
                return resource
        raise UnsupportedExpression(f"{self.address}{type_name}.{name}[{key!r}]: no such instance")

    def token(self, resource: TerraformResource, attribute: str) -> str:
        resource_type = BY_TERRAFORM.get(resource.type)
        kind = resource_type.kind if resource_type else resource.type
        if resource_type and resource_type.terraform_name:
            name = str(resource.value(resource.body[resource_type.terraform_name]))
        else:
            name = f"<{resource.address}>"
        if attribute == "execution_arn" and kind == "apigateway":
            return f"arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT}:{self.token(resource, 'id')}"
        if attribute == "id" and resource_type:
            normal = resource_type.ref
        else:
            normal = TERRAFORM_ATTRIBUTES.get(attribute, attribute)
        result = token(kind, name, normal)
        self.registry[identity(result)] = resource
        return result

    # -- expressions --

    def value(self, node: Any, each: tuple[Any, Any] | None = None) -> Any:
        if isinstance(node, list):
            return [self.value(item, each) for item in node]
        if isinstance(node, dict):
            return {key: self.value(item, each) for key, item in node.items()}
        if not isinstance(node, str) or "${" not in node:
            return node
        parts = _template_parts(node)
        if len(parts) == 1 and isinstance(parts[0], _Expression):
            return self.expression(parts[0].text, each)
        return "".join(
            str(self.expression(part.text, each)) if isinstance(part, _Expression) else part for part in parts
        )

    def expression(self, text: str, each: tuple[Any, Any] | None) -> Any:
        text = text.strip()
        call = re.fullmatch(r"([a-z_][a-z0-9_]*)\((.*)\)", text, re.DOTALL)
        if call and _balanced(call.group(2)):
            function = FUNCTIONS.get(call.group(1))
            if function is None:
                raise UnsupportedExpression(f"{self.address}: function {call.group(1)}() is not evaluated")
            arguments = _load_hcl_text(f"v = [{call.group(2)}]")["v"]
            return function(*self.value(arguments, each))
        operand = r'("[^"]*"|[\w.]+)'
        conditional = re.fullmatch(
            operand + r"(?:\s*(==|!=)\s*" + operand + r")?\s*\?\s*([^:]+?)\s*:\s*(.+)", text
        )
        comparison = re.fullmatch(operand + r"\s*(==|!=)\s*" + operand, text)
        if comparison:
            left, operator, right = comparison.groups()
            return (self.expression(left, each) == self.expression(right, each)) == (operator == "==")
        if conditional:  # the forms used: var.x == "" ? a : b, local.flag ? a : b
            left, operator, right, if_true, if_false = conditional.groups()
            if operator is None:
                holds = self.expression(left, each) is True
            else:
                holds = (self.expression(left, each) == self.expression(right, each)) == (operator == "==")
            return self.expression(if_true if holds else if_false, each)
        if re.fullmatch(r"-?\d+(\.\d+)?|true|false|null", text):
            return json.loads(text)
        if text.startswith('"') or text.startswith("{") or text.startswith("["):
            literal = _load_hcl_text(f"v = {text}")["v"]
            if literal == "${" + text + "}":  # not a literal after all: an operation on one
                raise UnsupportedExpression(f"{self.address or 'root module'}: cannot evaluate {text!r}")
            return self.value(literal, each)
        traversal = _traversal(text)
        if traversal is None:
            raise UnsupportedExpression(f"{self.address or 'root module'}: cannot evaluate {text!r}")
        return self.reference(traversal, each)

    def reference(self, parts: list[Any], each: tuple[Any, Any] | None) -> Any:
        head = parts[0]
        if head == "var":
            value, rest = self.var(parts[1]), parts[2:]
        elif head == "local":
            if parts[1] not in self.module.locals:
                raise UnsupportedExpression(f"{self.address}: no local {parts[1]!r}")
            value, rest = self.value(self.module.locals[parts[1]]), parts[2:]
        elif head == "module":
            child = self.child(parts[1])
            value, rest = child.value(child.module.outputs[parts[2]]["value"]), parts[3:]
        elif head == "each":
            if each is None:
                raise UnsupportedExpression(f"{self.address}: each outside for_each")
            value, rest = {"key": each[0], "value": each[1]}[parts[1]], parts[2:]
        elif head == "data":
            value, rest = self.data(parts[1], parts[2], parts[3]), parts[4:]
        else:
            type_name, name, rest = head, parts[1], parts[2:]
            if (type_name, name) not in self.module.resources:
                raise UnsupportedExpression(f"{self.address}: no resource {type_name}.{name}")
            key = None
            if rest and isinstance(rest[0], _Index):
                key, rest = self.value(rest[0].text, each), rest[1:]
            value, rest = self.token(self.instance(type_name, name, key), rest[0]), rest[1:]
        for part in rest:
            part = self.value(part.text, each) if isinstance(part, _Index) else part
            value = value[part]
        return value

    def data(self, type_name: str, name: str, attribute: str) -> Any:
        pseudo = {
            ("aws_partition", "partition"): PARTITION,
            ("aws_region", "name"): REGION,
            ("aws_caller_identity", "account_id"): ACCOUNT,
        }
        if (type_name, attribute) in pseudo:
            return pseudo[(type_name, attribute)]
        if type_name == "aws_iam_policy_document" and attribute == "json":
            return policy_document(self, self.module.data[(type_name, name)])
        raise UnsupportedExpression(f"{self.address}: data.{type_name}.{name}.{attribute} is not read")


def _default(module: TerraformModule, name: str) -> Any:
    if name not in module.variables:
        raise UnsupportedExpression(f"{module.path}: no variable {name!r}")
    return module.variables[name].get("default", f"<var.{name}>")


def _load_hcl_text(text: str) -> dict[str, Any]:
    return hcl2.loads(text + "\n", serialization_options=HCL_OPTIONS)


@dataclass(frozen=True)
class _Expression:
    text: str


@dataclass(frozen=True)
class _Index:
    text: str


def _template_parts(text: str) -> list[str | _Expression]:
    """``"${a}-x-${b}"`` → [Expression(a), "-x-", Expression(b)]."""
    parts: list[str | _Expression] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        if start > position:
            parts.append(text[position:start])
        depth, index, quoted = 1, start + 2, False
        while depth:
            character = text[index]
            if character == '"' and text[index - 1] != "\\":
                quoted = not quoted
            elif not quoted and character == "{":
                depth += 1
            elif not quoted and character == "}":
                depth -= 1
            index += 1
        parts.append(_Expression(text[start + 2 : index - 1]))
        position = index
    if position < len(text):
        parts.append(text[position:])
    return parts


def _balanced(text: str) -> bool:
    depth = 0
    for character in text:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def _traversal(text: str) -> list[Any] | None:
    """``a.b["k"].c`` → ["a", "b", Index('"k"'), "c"]; None if it is not a plain reference."""
    if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*|\[[^\]]+\])*", text):
        return None
    return [
        _Index(match.group(2)) if match.group(2) is not None else match.group(1)
        for match in re.finditer(r"([A-Za-z_][\w-]*)|\[([^\]]+)\]", text)
    ]


def _merge(*maps: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for item in maps:
        merged.update(item)
    return merged


def _coalesce(*values: Any) -> Any:
    return next(value for value in values if value not in (None, ""))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "jsonencode": lambda value: value,  # kept as data, compared as data
    "merge": _merge,
    "coalesce": _coalesce,
    "toset": lambda values: list(dict.fromkeys(values)),
    "filebase64sha256": lambda path: f"<sha256 of {path}>",
}


def policy_document(scope: TerraformScope, body: dict[str, Any]) -> dict[str, Any]:
    """An aws_iam_policy_document data source in the JSON form IAM (and CloudFormation) use."""
    statements = []
    for block in body.get("statement", []):
        unknown = set(block) - {"sid", "effect", "actions", "resources", "principals"}
        if unknown:
            raise UnsupportedExpression(f"policy statement with {sorted(unknown)} is not read")
        statement: dict[str, Any] = {"Effect": block.get("effect", "Allow"), "Action": scope.value(block["actions"])}
        if "sid" in block:
            statement["Sid"] = block["sid"]
        if "resources" in block:
            statement["Resource"] = scope.value(block["resources"])
        for principal in block.get("principals", []):
            statement.setdefault("Principal", {})[principal["type"]] = scope.value(principal["identifiers"])
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


class TerraformStack:
    """The root module with a variable file, and every resource instance in it and its modules."""

    def __init__(self, path: pathlib.Path, tfvars: dict[str, Any]) -> None:
        self.root = TerraformScope.root(path, tfvars)

    def resources(self, type_name: str) -> Iterator[TerraformResource]:
        for scope in self.root.scopes():
            for resource_type, name in scope.module.resources:
                if resource_type == type_name:
                    yield from scope.instances(resource_type, name)

    def resolve(self, reference: str) -> TerraformResource:
        """The resource a token names (it must have been produced by this stack)."""
        return self.root.registry[identity(reference)]


def load_hcl(path: pathlib.Path) -> dict[str, Any]:
    """Any HCL file (``.tf``, ``.tfvars``) as data, strings unquoted, expressions as ``${...}``."""
    return _load_hcl(path)


# -- the normal form, per kind -------------------------------------------------------------

#: Terraform's meta-arguments and what the normal form leaves out on purpose.
TERRAFORM_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "tags", "tags_all"}


def _rest(body: dict[str, Any], used: set[str], ignored: set[str], prefix: str) -> dict[str, Any]:
    return {f"{prefix}:{key}": value for key, value in body.items() if key not in used | ignored}


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A Terraform block that appears at most once (hcl2 gives a list of them)."""
    blocks = body.get(name) or [{}]
    if len(blocks) != 1:
        raise UnsupportedExpression(f"more than one {name} block")
    return blocks[0]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# queues

SQS_PROPERTIES = {
    "fifo_queue": "FifoQueue",
    "content_based_deduplication": "ContentBasedDeduplication",
    "message_retention_seconds": "MessageRetentionPeriod",
    "visibility_timeout_seconds": "VisibilityTimeout",
    "max_message_size": "MaximumMessageSize",
    "delay_seconds": "DelaySeconds",
    "receive_wait_time_seconds": "ReceiveMessageWaitTimeSeconds",
    "redrive_policy": "RedrivePolicy",
}


def sqs_attributes(properties: dict[str, Any]) -> dict[str, Any]:
    """Queue properties in the string form SQS attributes take (``presets.sqs_attributes``'s), redrive as data."""
    attributes: dict[str, Any] = {}
    fifo = properties.get("FifoQueue") in (True, "true")
    for name, value in properties.items():
        if name in ("FifoQueue", "ContentBasedDeduplication") and not fifo:
            continue
        if name == "RedrivePolicy":
            policy = json.loads(value) if isinstance(value, str) else value
            attributes[name] = {
                "deadLetterTargetArn": policy["deadLetterTargetArn"],
                "maxReceiveCount": int(policy["maxReceiveCount"]),
            }
        elif isinstance(value, bool):
            attributes[name] = "true" if value else "false"
        else:
            attributes[name] = str(value)
    if fifo:
        attributes.setdefault("ContentBasedDeduplication", "false")
    return attributes


def cloudformation_queues(stack: CloudFormationStack) -> dict[str, Any]:
    queues = {}
    for logical_id, resource in stack.resources("AWS::SQS::Queue"):
        properties = stack.properties(resource)
        queues[stack.physical_name(logical_id)] = sqs_attributes(
            {k: v for k, v in properties.items() if k != "QueueName"}
        )
    return queues


def terraform_queues(stack: TerraformStack) -> dict[str, Any]:
    queues = {}
    for resource in stack.resources("aws_sqs_queue"):
        body = resource.value(resource.body)
        properties = {
            SQS_PROPERTIES.get(k, f"terraform:{k}"): v for k, v in body.items() if k not in TERRAFORM_META | {"name"}
        }
        queues[body["name"]] = sqs_attributes(properties)
    return queues


# tables


def _table(
    key_schema: list[dict[str, str]],
    attributes: list[dict[str, str]],
    billing_mode: str,
    indexes: list[dict[str, Any]],
    ttl: dict[str, Any] | None,
    kept_on_delete: bool,
    rest: dict[str, Any],
) -> dict[str, Any]:
    description = {
        "BillingMode": billing_mode,
        "KeySchema": key_schema,
        "AttributeDefinitions": sorted(attributes, key=lambda a: a["AttributeName"]),
        "GlobalSecondaryIndexes": sorted(indexes, key=lambda i: i["IndexName"]),
        "TimeToLiveSpecification": ttl,
        "KeptOnDelete": kept_on_delete,
        **rest,
    }
    return description


def cloudformation_tables(stack: CloudFormationStack) -> dict[str, Any]:
    tables = {}
    for logical_id, resource in stack.resources("AWS::DynamoDB::Table"):
        p = stack.properties(resource)
        used = {
            "TableName", "KeySchema", "AttributeDefinitions", "BillingMode", "GlobalSecondaryIndexes",
            "TimeToLiveSpecification",
        }
        tables[p["TableName"]] = _table(
            p["KeySchema"],
            p["AttributeDefinitions"],
            p.get("BillingMode", "PROVISIONED"),
            p.get("GlobalSecondaryIndexes", []),
            p.get("TimeToLiveSpecification"),
            resource.get("DeletionPolicy") == "Retain" and resource.get("UpdateReplacePolicy") == "Retain",
            _rest(p, used, set(), "cloudformation"),
        )
    return tables


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return keys


def terraform_tables(stack: TerraformStack) -> dict[str, Any]:
    tables = {}
    for resource in stack.resources("aws_dynamodb_table"):
        body = resource.value(resource.body)
        indexes = []
        for index in body.get("global_secondary_index", []):
            projection: dict[str, Any] = {"ProjectionType": index["projection_type"]}
            if index.get("non_key_attributes"):
                projection["NonKeyAttributes"] = index["non_key_attributes"]
            indexes.append(
                {
                    "IndexName": index["name"],
                    "KeySchema": _key_schema(index["hash_key"], index.get("range_key")),
                    "Projection": projection,
                }
            )
        ttl = _block(body, "ttl")
        used = {"name", "hash_key", "range_key", "attribute", "billing_mode", "global_secondary_index", "ttl"}
        tables[body["name"]] = _table(
            _key_schema(body["hash_key"], body.get("range_key")),
            [{"AttributeName": a["name"], "AttributeType": a["type"]} for a in body.get("attribute", [])],
            body.get("billing_mode", "PROVISIONED"),
            indexes,
            {"AttributeName": ttl["attribute_name"], "Enabled": ttl.get("enabled", False)} if ttl else None,
            bool(_block(body, "lifecycle").get("prevent_destroy")),
            _rest(body, used, TERRAFORM_META, "terraform"),
        )
    return tables


# functions

LAMBDA_PROPERTIES = {
    "handler": "Handler",
    "runtime": "Runtime",
    "memory_size": "MemorySize",
    "timeout": "Timeout",
    "architectures": "Architectures",
    "reserved_concurrent_executions": "ReservedConcurrentExecutions",
}
#: Compared elsewhere (Role: the IAM kind) or not comparable (the code: an S3 object there, a local zip here).
LAMBDA_IGNORED = {"Description", "Role", "Code", "FunctionName", "Tags"}
LAMBDA_IGNORED_TERRAFORM = {
    "description", "role", "filename", "s3_bucket", "s3_key", "source_code_hash", "function_name",
}


def _function(properties: dict[str, Any]) -> dict[str, Any]:
    properties.setdefault("Architectures", ["x86_64"])
    properties.setdefault("MemorySize", 128)
    properties.setdefault("Timeout", 3)
    logging = properties.pop("LoggingConfig", {})
    properties["LogGroup"] = logging.get("LogGroup")
    properties["LogFormat"] = logging.get("LogFormat", "Text")
    properties["Environment"] = properties.pop("Environment", {}).get("Variables", {})
    return properties


def cloudformation_functions(stack: CloudFormationStack) -> dict[str, Any]:
    functions = {}
    for logical_id, resource in stack.resources("AWS::Lambda::Function"):
        raw = {k: v for k, v in resource["Properties"].items() if k not in LAMBDA_IGNORED}
        functions[stack.physical_name(logical_id)] = _function(stack.value(raw))
    return functions


def terraform_functions(stack: TerraformStack) -> dict[str, Any]:
    functions = {}
    for resource in stack.resources("aws_lambda_function"):
        body = resource.value(resource.body)
        properties = {
            LAMBDA_PROPERTIES.get(k, f"terraform:{k}"): v
            for k, v in body.items()
            if k not in TERRAFORM_META | LAMBDA_IGNORED_TERRAFORM | {"environment", "logging_config"}
        }
        logging = _block(body, "logging_config")
        properties["LoggingConfig"] = {
            "LogGroup": logging.get("log_group"),
            "LogFormat": logging.get("log_format", "Text"),
        }
        properties["Environment"] = {"Variables": _block(body, "environment").get("variables", {})}
        functions[body["function_name"]] = _function(properties)
    return functions


# event source mappings


def _event_source(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "EventSourceArn": identity(properties.pop("EventSourceArn")),
        "BatchSize": properties.pop("BatchSize", 10),
        "MaximumBatchingWindowInSeconds": properties.pop("MaximumBatchingWindowInSeconds", 0),
        "FunctionResponseTypes": properties.pop("FunctionResponseTypes", []),
        "Enabled": properties.pop("Enabled", True),
        "ScalingConfig": properties.pop("ScalingConfig", None),
        **properties,
    }


def cloudformation_event_sources(stack: CloudFormationStack) -> dict[str, Any]:
    mappings = {}
    for _, resource in stack.resources("AWS::Lambda::EventSourceMapping"):
        properties = stack.properties(resource)
        function = identity(properties.pop("FunctionName"))
        mappings[function] = _event_source(properties)
    return mappings


ESM_PROPERTIES = {
    "event_source_arn": "EventSourceArn",
    "batch_size": "BatchSize",
    "maximum_batching_window_in_seconds": "MaximumBatchingWindowInSeconds",
    "function_response_types": "FunctionResponseTypes",
    "enabled": "Enabled",
}


def terraform_event_sources(stack: TerraformStack) -> dict[str, Any]:
    mappings = {}
    for resource in stack.resources("aws_lambda_event_source_mapping"):
        body = resource.value(resource.body)
        properties = {
            ESM_PROPERTIES.get(k, f"terraform:{k}"): v
            for k, v in body.items()
            if k not in TERRAFORM_META | {"function_name", "scaling_config"}
        }
        scaling = _block(body, "scaling_config")
        if scaling:
            properties["ScalingConfig"] = {"MaximumConcurrency": scaling["maximum_concurrency"]}
        mappings[identity(body["function_name"])] = _event_source(properties)
    return mappings


# alarms

ALARM_PROPERTIES = {
    "namespace": "Namespace",
    "metric_name": "MetricName",
    "dimensions": "Dimensions",
    "statistic": "Statistic",
    "extended_statistic": "ExtendedStatistic",
    "period": "Period",
    "evaluation_periods": "EvaluationPeriods",
    "datapoints_to_alarm": "DatapointsToAlarm",
    "threshold": "Threshold",
    "comparison_operator": "ComparisonOperator",
    "treat_missing_data": "TreatMissingData",
    "alarm_actions": "AlarmActions",
    "ok_actions": "OKActions",
    "insufficient_data_actions": "InsufficientDataActions",
}


def _alarm(properties: dict[str, Any]) -> dict[str, Any]:
    properties["Threshold"] = float(properties["Threshold"])
    properties.setdefault("TreatMissingData", "missing")
    return properties


def cloudformation_alarms(stack: CloudFormationStack) -> dict[str, Any]:
    alarms = {}
    for _, resource in stack.resources("AWS::CloudWatch::Alarm"):
        properties = stack.properties(resource)
        properties.pop("AlarmDescription", None)
        properties["Dimensions"] = {d["Name"]: d["Value"] for d in properties.get("Dimensions", [])}
        alarms[properties.pop("AlarmName")] = _alarm(properties)
    return alarms


def terraform_alarms(stack: TerraformStack) -> dict[str, Any]:
    alarms = {}
    for resource in stack.resources("aws_cloudwatch_metric_alarm"):
        body = resource.value(resource.body)
        properties = {
            ALARM_PROPERTIES.get(k, f"terraform:{k}"): v
            for k, v in body.items()
            if k not in TERRAFORM_META | {"alarm_name", "alarm_description"}
        }
        alarms[body["alarm_name"]] = _alarm(properties)
    return alarms


# IAM: each function's role, as the resources it may act on and the actions on each


def _grants(documents: list[dict[str, Any]]) -> dict[str, list[str]]:
    grants: dict[str, set[str]] = {}
    for document in documents:
        for statement in document["Statement"]:
            if statement.get("Effect", "Allow") != "Allow" or "NotAction" in statement or "NotResource" in statement:
                raise UnsupportedExpression(f"only plain Allow statements are compared: {statement}")
            for resource in _listed(statement["Resource"]):
                grants.setdefault(resource, set()).update(_listed(statement["Action"]))
    return {resource: sorted(actions) for resource, actions in sorted(grants.items())}


def _assumed_by(document: dict[str, Any]) -> list[str]:
    return sorted(
        service
        for statement in document["Statement"]
        if "sts:AssumeRole" in _listed(statement["Action"])
        for service in _listed(statement["Principal"].get("Service", []))
    )


def cloudformation_roles(stack: CloudFormationStack) -> dict[str, Any]:
    roles = {}
    for logical_id, resource in stack.resources("AWS::Lambda::Function"):
        role_id = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        role = stack.properties(stack.template["Resources"][role_id])
        roles[stack.physical_name(logical_id)] = {
            "AssumedBy": _assumed_by(role["AssumeRolePolicyDocument"]),
            "ManagedPolicyArns": sorted(role.get("ManagedPolicyArns", [])),
            "Grants": _grants([policy["PolicyDocument"] for policy in role.get("Policies", [])]),
        }
    return roles


def terraform_roles(stack: TerraformStack) -> dict[str, Any]:
    roles = {}
    for function in stack.resources("aws_lambda_function"):
        role = stack.resolve(function.value(function.body["role"]))
        role_identity = identity(role.scope.token(role, "arn"))
        documents = [
            policy.value(policy.body["policy"])
            for policy in stack.resources("aws_iam_role_policy")
            if identity(policy.value(policy.body["role"])) == role_identity
        ]
        attachments = [
            attachment.value(attachment.body["policy_arn"])
            for attachment in stack.resources("aws_iam_role_policy_attachment")
            if identity(attachment.value(attachment.body["role"])) == role_identity
        ]
        roles[function.value(function.body["function_name"])] = {
            "AssumedBy": _assumed_by(role.value(role.body["assume_role_policy"])),
            "ManagedPolicyArns": sorted(attachments),
            "Grants": _grants(documents),
        }
    return roles


# log groups


def cloudformation_log_groups(stack: CloudFormationStack) -> dict[str, Any]:
    return {
        p["LogGroupName"]: {"RetentionInDays": p.get("RetentionInDays")}
        for p in (stack.properties(r) for _, r in stack.resources("AWS::Logs::LogGroup"))
    }


def terraform_log_groups(stack: TerraformStack) -> dict[str, Any]:
    return {
        body["name"]: {"RetentionInDays": body.get("retention_in_days")}
        for body in (r.value(r.body) for r in stack.resources("aws_cloudwatch_log_group"))
    }


# schedules


def cloudformation_schedules(stack: CloudFormationStack) -> dict[str, Any]:
    rules = {}
    for _, resource in stack.resources("AWS::Events::Rule"):
        p = stack.properties(resource)
        rules[p["Name"]] = {
            "ScheduleExpression": p.get("ScheduleExpression"),
            "State": p.get("State", "ENABLED"),
            "Targets": sorted(({"Id": t["Id"], "Arn": identity(t["Arn"])} for t in p.get("Targets", [])), key=str),
        }
    return rules


def terraform_schedules(stack: TerraformStack) -> dict[str, Any]:
    rules = {}
    for resource in stack.resources("aws_cloudwatch_event_rule"):
        body = resource.value(resource.body)
        rule = identity(resource.scope.token(resource, "arn"))
        targets = [
            t.value(t.body)
            for t in stack.resources("aws_cloudwatch_event_target")
            if identity(t.value(t.body["rule"])) == rule
        ]
        rules[body["name"]] = {
            "ScheduleExpression": body.get("schedule_expression"),
            "State": body.get("state", "ENABLED"),
            "Targets": sorted(({"Id": t["target_id"], "Arn": identity(t["arn"])} for t in targets), key=str),
        }
    return rules


# invoke permissions


def cloudformation_permissions(stack: CloudFormationStack) -> dict[str, Any]:
    permissions = {}
    for _, resource in stack.resources("AWS::Lambda::Permission"):
        p = stack.properties(resource)
        permissions[f"{identity(p['FunctionName'])} by {p['Principal']}"] = {
            "Action": p["Action"],
            "SourceArn": identity(p.get("SourceArn")),
        }
    return permissions


def terraform_permissions(stack: TerraformStack) -> dict[str, Any]:
    permissions = {}
    for resource in stack.resources("aws_lambda_permission"):
        body = resource.value(resource.body)
        function = body["function_name"]
        if not function.startswith("lambda:"):  # a plain name: the function of that name
            function = token("lambda", function, "name")
        permissions[f"{identity(function)} by {body['principal']}"] = {
            "Action": body["action"],
            "SourceArn": identity(body.get("source_arn")),
        }
    return permissions


# the HTTP API


def cloudformation_http_apis(stack: CloudFormationStack) -> dict[str, Any]:
    apis = {}
    for logical_id, resource in stack.resources("AWS::ApiGatewayV2::Api"):
        api = stack.properties(resource)
        api_id = stack.token(logical_id, None)
        integrations = {
            stack.token(i, None): stack.properties(r)
            for i, r in stack.resources("AWS::ApiGatewayV2::Integration")
            if stack.value(r["Properties"]["ApiId"]) == api_id
        }
        routes = [stack.properties(r) for _, r in stack.resources("AWS::ApiGatewayV2::Route")]
        stages = [stack.properties(r) for _, r in stack.resources("AWS::ApiGatewayV2::Stage")]
        apis[api["Name"]] = {
            "ProtocolType": api["ProtocolType"],
            "Routes": {
                r["RouteKey"]: _integration(integrations[r["Target"].removeprefix("integrations/")])
                for r in routes
                if r["ApiId"] == api_id
            },
            "Stages": {
                s["StageName"]: {
                    "AutoDeploy": s.get("AutoDeploy", False),
                    "ThrottlingRateLimit": s.get("DefaultRouteSettings", {}).get("ThrottlingRateLimit"),
                    "ThrottlingBurstLimit": s.get("DefaultRouteSettings", {}).get("ThrottlingBurstLimit"),
                    "AccessLogDestination": identity(s.get("AccessLogSettings", {}).get("DestinationArn")),
                    "AccessLogFormat": (
                        json.loads(s["AccessLogSettings"]["Format"]) if "AccessLogSettings" in s else None
                    ),
                }
                for s in stages
                if s["ApiId"] == api_id
            },
        }
    return apis


def _integration(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "IntegrationType": properties["IntegrationType"],
        "IntegrationUri": identity(properties["IntegrationUri"]),
        "PayloadFormatVersion": properties.get("PayloadFormatVersion"),
        "TimeoutInMillis": properties.get("TimeoutInMillis", 30000),
    }


def terraform_http_apis(stack: TerraformStack) -> dict[str, Any]:
    apis = {}
    for resource in stack.resources("aws_apigatewayv2_api"):
        api = resource.value(resource.body)
        api_id = resource.scope.token(resource, "id")
        integrations = {
            i.scope.token(i, "id"): {
                "IntegrationType": body["integration_type"],
                "IntegrationUri": body["integration_uri"],
                "PayloadFormatVersion": body.get("payload_format_version"),
                "TimeoutInMillis": body.get("timeout_milliseconds", 30000),
            }
            for i in stack.resources("aws_apigatewayv2_integration")
            if (body := i.value(i.body))["api_id"] == api_id
        }
        routes = [r.value(r.body) for r in stack.resources("aws_apigatewayv2_route")]
        stages = [s.value(s.body) for s in stack.resources("aws_apigatewayv2_stage")]
        apis[api["name"]] = {
            "ProtocolType": api["protocol_type"],
            "Routes": {
                r["route_key"]: _integration(integrations[r["target"].removeprefix("integrations/")])
                for r in routes
                if r["api_id"] == api_id
            },
            "Stages": {
                s["name"]: {
                    "AutoDeploy": s.get("auto_deploy", False),
                    "ThrottlingRateLimit": _block(s, "default_route_settings").get("throttling_rate_limit"),
                    "ThrottlingBurstLimit": _block(s, "default_route_settings").get("throttling_burst_limit"),
                    "AccessLogDestination": identity(_block(s, "access_log_settings").get("destination_arn")),
                    "AccessLogFormat": _block(s, "access_log_settings").get("format"),
                }
                for s in stages
                if s["api_id"] == api_id
            },
        }
    return apis


@dataclass(frozen=True)
class Kind:
    """One kind of resource described from both sides: name → settings."""

    name: str
    cloudformation: Callable[[CloudFormationStack], dict[str, Any]]
    terraform: Callable[[TerraformStack], dict[str, Any]]


#: Add a kind here (and its two readers) when both the template and the module gain a resource type.
KINDS = (
    Kind("queues", cloudformation_queues, terraform_queues),
    Kind("tables", cloudformation_tables, terraform_tables),
    Kind("functions", cloudformation_functions, terraform_functions),
    Kind("event source mappings", cloudformation_event_sources, terraform_event_sources),
    Kind("alarms", cloudformation_alarms, terraform_alarms),
    Kind("function roles", cloudformation_roles, terraform_roles),
    Kind("log groups", cloudformation_log_groups, terraform_log_groups),
    Kind("schedules", cloudformation_schedules, terraform_schedules),
    Kind("invoke permissions", cloudformation_permissions, terraform_permissions),
    Kind("http apis", cloudformation_http_apis, terraform_http_apis),
)


def differences(
    left: Any, right: Any, path: str = "", names: tuple[str, str] = ("CloudFormation", "Terraform")
) -> Iterator[str]:
    """Where two descriptions differ, one line each: ``x-errors/Threshold: CloudFormation 1.0, Terraform 2.0``."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            where = f"{path}/{key}" if path else str(key)
            if key not in right:
                yield f"{where}: only in {names[0]} ({left[key]!r})"
            elif key not in left:
                yield f"{where}: only in {names[1]} ({right[key]!r})"
            else:
                yield from differences(left[key], right[key], where, names)
    elif _strings(left) and _strings(right) and set(left) != set(right):
        # lists of actions, routes...: say which items, not the whole lists
        only_left, only_right = sorted(set(left) - set(right)), sorted(set(right) - set(left))
        sides = [f"only in {name} {items}" for name, items in zip(names, (only_left, only_right)) if items]
        yield f"{path}: " + "; ".join(sides)
    elif left != right:
        yield f"{path}: {names[0]} {left!r}, {names[1]} {right!r}"


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
