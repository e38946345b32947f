"""The IAM actions the stack's roles grant, read from ``infra/template.yaml``, and the action each API call needs."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

from cv_analytics.boto.metering import RequestCounts

TEMPLATE = pathlib.Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

#: Batch operations are authorized by the action of their single-message form
#: (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html).
_ACTION_OF = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    # A transaction is authorized item by item, by each item's own action; the job store's only puts
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
    ("dynamodb", "TransactWriteItems"): "dynamodb:PutItem",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub...) as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def granted_actions(role_id: str) -> set[str]:
    """Every action the role's inline policies allow (on some resource)."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader subclass
    actions: set[str] = set()
    for policy in template["Resources"][role_id]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def actions_used(counts: RequestCounts) -> set[str]:
    """The IAM action each API call counted needs."""
    return {_ACTION_OF.get(key, f"{key[0]}:{key[1]}") for key in counts.calls}
