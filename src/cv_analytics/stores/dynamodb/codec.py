"""DynamoDB items of the store: attribute names, values, compression, pending halves.

Text over 64 KiB (a long query or response) is stored zlib-compressed as a
binary attribute, so that a query and a response of up to 256 KiB each usually
fit DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from .. import dynamodb_tables as resources
from ...events import EventType
from ..base import decode_pending
from ..models import Interaction
from ..plan import CorrelationState, PendingSides, UnreadableHalf

#: Text longer than this is stored zlib-compressed (binary), to stay under the 400 KB item limit.
COMPRESS_OVER_BYTES = 64 * 1024

KEY = resources.EVENTS_TABLE.partition_key.name  # "requestId", the key of both event and interaction tables
TTL = resources.EVENTS_TABLE.ttl_attribute or "ttl"
WEEK_INDEX = resources.WEEK_INDEX.name
SIDE_TIMESTAMP = {EventType.QUERY: "queryTimestamp", EventType.RESPONSE: "responseTimestamp"}


def side_names(event_type: EventType) -> tuple[str, str, str, str]:
    """Attribute names of one pending half: body, shape, received at, expires at."""
    side = event_type.value
    return side, f"{side}Shape", f"{side}ReceivedAt", f"{side}ExpiresAt"


def expiry_projection() -> dict[str, Any]:
    return {"ProjectionExpression": "requestId, queryExpiresAt, responseExpiresAt"}


def unexpired_types(item: Mapping[str, Any] | None, now: int) -> set[EventType]:
    """Which halves of a pending item have not expired (TTL deletion is lazy: check each half)."""
    if not item:
        return set()
    return {t for t in EventType if (e := side_names(t)[3]) in item and int(item[e]["N"]) > now}


def unexpired_sides(item: Mapping[str, Any] | None, now: int) -> PendingSides:
    """The halves of a pending item that have not expired, parsed; one that does not decode is left out."""
    return item_state(item, now).pending if item else {}


def item_state(item: Mapping[str, Any] | None, now: int, state: CorrelationState | None = None) -> CorrelationState:
    """A pending item's unexpired halves into ``state``; a half that does not decode is kept aside."""
    state = state or CorrelationState()
    if not item:
        return state
    state.pending_stored = True
    for event_type in unexpired_types(item, now):
        body, shape, received, expires = side_names(event_type)
        text = ""
        try:
            text = text_of(item[body])
            state.pending[event_type] = decode_pending(
                text, item[shape]["S"] if shape in item else None, int(item[received]["N"]), int(item[expires]["N"])
            )
        except Exception as exc:  # noqa: BLE001 - one bad item must not stop the others (issue 7, item 2)
            state.unreadable[event_type] = UnreadableHalf(f"does not decode: {exc}", int(item[received]["N"]), text)
    return state


def text_value(text: str) -> dict[str, Any]:
    data = text.encode()
    if len(data) > COMPRESS_OVER_BYTES:
        return {"B": zlib.compress(data, 6)}
    return {"S": text}


def text_of(value: Mapping[str, Any]) -> str:
    if "B" in value:
        return zlib.decompress(value["B"]).decode()
    return str(value["S"])


def interaction_item(interaction: Interaction) -> dict[str, Any]:
    data = interaction.model_dump(mode="python", by_alias=True, exclude_none=True)
    item: dict[str, Any] = {KEY: {"S": data.pop("correlationId")}}
    for name, value in data.items():
        encoded = to_attribute(value)
        if encoded is not None:
            item[name] = encoded
    return item


def to_attribute(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # DynamoDB has no NaN or infinity
        return {"N": format(Decimal(repr(value)), "f")}
    if isinstance(value, str):
        return text_value(value)
    if isinstance(value, list | tuple):
        return {"L": [a for v in value if (a := to_attribute(v)) is not None]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attribute(value: Mapping[str, Any]) -> Any:
    if "S" in value or "B" in value:
        return text_of(value)
    if "N" in value:
        text = value["N"]
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "L" in value:
        return [from_attribute(v) for v in value["L"]]
    if "NULL" in value:
        return None
    raise ValueError(f"unexpected DynamoDB attribute {value!r}")


def interaction_from_item(item: Mapping[str, Any]) -> Interaction:
    data = {name: from_attribute(value) for name, value in item.items() if name != KEY}
    data["correlationId"] = item[KEY]["S"]
    return Interaction.model_validate(data)


