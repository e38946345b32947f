"""Tidying the events table ahead of DynamoDB's TTL: expired halves removed, conditionally."""

from __future__ import annotations

from ...events import EventType
from .codec import KEY, expiry_projection, side_names
from .requests import ConditionFailed, DynamoDBRequests


def purge_expired_halves(requests: DynamoDBRequests, events_table: str, now: int) -> int:
    """Remove the halves of pending items expired at ``now`` (a scan); returns how many.

    Each removal is conditional on the half still being expired, so a half
    rewritten meanwhile stays; an item left with nothing unexpired goes."""
    removed = 0
    for item in requests.paginate(
        "scan",
        TableName=events_table,
        FilterExpression="queryExpiresAt <= :now OR responseExpiresAt <= :now",
        ExpressionAttributeValues={":now": {"N": str(now)}},
        **expiry_projection(),
    ):
        present = [t for t in EventType if side_names(t)[3] in item]
        expired = [t for t in present if int(item[side_names(t)[3]]["N"]) <= now]
        names = {f"#{t.value}{i}": n for t in EventType for i, n in enumerate(side_names(t))}
        values = {":now": {"N": str(now)}}
        key = {KEY: item[KEY]}
        try:
            if len(expired) == len(present):
                # nothing unexpired left: the item goes, unless a half was written since
                requests.call(
                    "purge expired events", "delete_item", TableName=events_table, Key=key,
                    ConditionExpression=" AND ".join(
                        f"(attribute_not_exists(#{t.value}3) OR #{t.value}3 <= :now)" for t in EventType
                    ),
                    ExpressionAttributeNames={k: v for k, v in names.items() if k.endswith("3")},
                    ExpressionAttributeValues=values,
                )  # fmt: skip
            else:
                removing = [f"#{t.value}{i}" for t in expired for i in range(4)]
                requests.call(
                    "purge expired events", "update_item", TableName=events_table, Key=key,
                    UpdateExpression="REMOVE " + ", ".join(removing),
                    ConditionExpression=" AND ".join(f"#{t.value}3 <= :now" for t in expired),
                    ExpressionAttributeNames={k: names[k] for k in removing},
                    ExpressionAttributeValues=values,
                )  # fmt: skip
        except ConditionFailed:
            continue
        removed += len(expired)
    return removed
