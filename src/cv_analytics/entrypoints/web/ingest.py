"""``POST /v1/events``: analytics events from other producers (a Cloudflare Worker, another backend).

One event (a JSON object) or a batch (a JSON array of up to 10), in either
contract shape; each is validated by :func:`cv_analytics.events.parse_event` and
made into its queue message by the analytics client's own
:func:`~cv_analytics.client.records.prepare`, so the FIFO group (the session)
and the deduplication id (``<correlationId>:<eventType>``) are the client's: an
event sent twice, by a retry or by both paths, is recorded once. A batch with
bad events enqueues the good ones and reports each bad one by its index.

Status: 202 when every event was accepted, 207 when some were, 422 when none
was valid, 400 for a body that is not an event or a batch, 413 over the size
limit (:mod:`.limits`), 503 with ``Retry-After`` while the queue is unreachable
(the events accepted before it are reported; resending the whole body is
safe, the queue drops the duplicates).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...client.records import EVENT, prepare
from ...events import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS
from ...exceptions import CVAnalyticsError, InvalidEventError
from ...queues.base import MAX_BATCH_SIZE, UNAVAILABLE_ERROR_CODE, OutgoingMessage, SendOutcome
from .deps import ApiKeyDep, WiringDep

router = APIRouter(tags=["ingestion"])

#: Seconds a producer should wait before resending while the queue is unreachable.
RETRY_AFTER_SECONDS = 5

_ID_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 256}
_COMMON_PROPERTIES: dict[str, Any] = {
    "correlationId": {**_ID_SCHEMA, "description": "ties a query to its response"},
    "requestId": {**_ID_SCHEMA, "description": "the older producer's name for correlationId"},
    "timestamp": {
        "type": "integer",
        "minimum": MIN_TIMESTAMP_MS,
        "exclusiveMaximum": MAX_TIMESTAMP_MS,
        "description": "milliseconds since the epoch (2000 to 2100)",
    },
    "sessionId": _ID_SCHEMA,
}
_EITHER_ID = [{"required": ["correlationId"]}, {"required": ["requestId"]}]
_QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "QueryEvent",
    "required": ["eventType", "timestamp", "query"],
    "anyOf": _EITHER_ID,
    "properties": {
        "eventType": {"type": "string", "enum": ["query"]},
        **_COMMON_PROPERTIES,
        "query": {"type": "string"},
        "metadata": {
            "type": "object",
            "properties": {"userAgent": {"type": "string"}, "referer": {"type": "string"}},
        },
    },
}
_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ResponseEvent",
    "required": ["eventType", "timestamp"],
    "anyOf": _EITHER_ID,
    "properties": {
        "eventType": {"type": "string", "enum": ["response"]},
        **_COMMON_PROPERTIES,
        "response": {"type": "string"},
        "performance": {
            "type": "object",
            "properties": {
                "totalTime": {"type": "number", "minimum": 0},
                "llmTime": {"type": "number", "minimum": 0},
                "retrievalTime": {"type": "number", "minimum": 0},
                "cacheHit": {"type": "boolean"},
            },
        },
        "metadata": {
            "type": "object",
            "properties": {
                "matchQuality": {"type": "number", "minimum": 0, "maximum": 1},
                "sourcesUsed": {"type": "array", "items": {"type": "string"}},
            },
        },
        "matchType": {"type": "string", "enum": ["full", "partial", "none"]},
        "matchScore": {"type": "number", "minimum": 0, "maximum": 100},
        "reasoning": {"type": "string"},
    },
}
#: One event in either contract shape (see contract/*.json); texts are bounded by the 256 KiB event limit.
_EVENT_SCHEMA: dict[str, Any] = {"oneOf": [_QUERY_SCHEMA, _RESPONSE_SCHEMA]}
_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["index", "status"],
    "properties": {
        "index": {"type": "integer"},
        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected", "unavailable"]},
        "eventType": {"type": "string"},
        "correlationId": {"type": "string"},
        "error": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "droppedFields": {"type": "array", "items": {"type": "string"}},
    },
}
_REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["accepted", "rejected", "results"],
    "properties": {
        "accepted": {"type": "integer"},
        "rejected": {"type": "integer"},
        "results": {"type": "array", "items": _RESULT_SCHEMA},
        "detail": {"type": "string"},
    },
}
_DETAIL_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"detail": {}}}


def _report(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _REPORT_SCHEMA}}}


def _detail(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _DETAIL_SCHEMA}}}


_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _EVENT_SCHEMA,
                        {"type": "array", "items": _EVENT_SCHEMA, "minItems": 1, "maxItems": MAX_BATCH_SIZE},
                    ]
                }
            }
        },
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: _report("every event was enqueued (or was a duplicate of one already enqueued)"),
    207: _report("some events were enqueued; the others are reported by index"),
    400: _detail("the body is not a JSON event or a batch of up to 10"),
    401: _detail("missing or unknown API key"),
    413: _detail("the body is over the size limit"),
    422: _report("no event of the body was valid; each is reported by index"),
    503: {
        **_report("the queue is unreachable: resend after Retry-After seconds"),
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "string"}}},
    },
}


def _bad_body(message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=400)


def _items(raw: bytes) -> list[Any] | JSONResponse:
    try:
        body = json.loads(raw)
    except RecursionError:
        return _bad_body("body is nested too deeply to be an event")
    except (UnicodeDecodeError, ValueError) as exc:
        return _bad_body(f"body is not valid JSON: {exc}")
    if isinstance(body, dict):
        return [body]
    if not isinstance(body, list):
        return _bad_body(f"body must be one event (a JSON object) or a batch (an array), not {type(body).__name__}")
    if not body:
        return _bad_body("the batch is empty: send 1 to 10 events")
    if len(body) > MAX_BATCH_SIZE:
        return _bad_body(f"the batch has {len(body)} events, at most {MAX_BATCH_SIZE} are accepted per request")
    return body


@router.post(
    "/v1/events",
    summary="Enqueue analytics events (one, or a batch of up to 10)",
    status_code=202,
    responses=_RESPONSES,
    openapi_extra=_REQUEST_BODY,
)
async def ingest_events(request: Request, wiring: WiringDep, _key: ApiKeyDep) -> JSONResponse:
    items = _items(await request.body())
    if isinstance(items, JSONResponse):
        return items
    results: list[dict[str, Any]] = []
    outgoing: list[tuple[int, OutgoingMessage]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append(_rejected(index, f"event {index} must be a JSON object, not {type(item).__name__}", None))
            continue
        try:
            prepared = prepare([EVENT, item])
        except InvalidEventError as exc:
            results.append(_rejected(index, str(exc), exc.field))
            continue
        except RecursionError:
            results.append(_rejected(index, f"event {index} is nested too deeply", None))
            continue
        result: dict[str, Any] = {"index": index, "status": "accepted", **_identity(item)}
        if prepared.dropped_fields:
            result["droppedFields"] = list(prepared.dropped_fields)
        results.append(result)
        outgoing.append((index, prepared.message))
    unavailable = False
    if outgoing:
        outcomes, reason = None, ""
        try:
            outcomes = await run_in_threadpool(_send, wiring, [message for _, message in outgoing])
        except (CVAnalyticsError, OSError) as exc:  # the queue cannot be opened or reached: the producer retries
            reason = f"the analytics queue is unavailable: {exc}"
        for position, (index, _) in enumerate(outgoing):
            entry = results[index]
            outcome = outcomes[position] if outcomes is not None else None
            if outcome is None or outcome.error_code == UNAVAILABLE_ERROR_CODE:
                unavailable = True
                entry.update(status="unavailable", error=outcome.error if outcome is not None else reason)
            elif outcome.duplicate:
                entry["status"] = "duplicate"
            elif not outcome.ok:
                entry.update(status="rejected", error=outcome.error or outcome.error_code or "refused by the queue", field=None)
    return _respond(results, unavailable)


def _send(wiring: WiringDep, messages: list[OutgoingMessage]) -> list[SendOutcome]:
    return wiring.queue().send_many(messages)


def _identity(item: dict[str, Any]) -> dict[str, Any]:
    correlation_id = item.get("correlationId") or item.get("requestId")
    return {"eventType": item.get("eventType"), "correlationId": correlation_id}


def _rejected(index: int, error: str, field: str | None) -> dict[str, Any]:
    return {"index": index, "status": "rejected", "error": error, "field": field}


def _respond(results: list[dict[str, Any]], unavailable: bool) -> JSONResponse:
    accepted = sum(r["status"] in ("accepted", "duplicate") for r in results)
    rejected = sum(r["status"] == "rejected" for r in results)
    body: dict[str, Any] = {"accepted": accepted, "rejected": rejected, "results": results}
    headers: dict[str, str] = {}
    if unavailable:
        code = 503
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        body["detail"] = f"the analytics queue is unreachable: resend in {RETRY_AFTER_SECONDS} s (duplicates are dropped)"
    elif rejected == len(results):
        code = 422
        body["detail"] = (
            results[0]["error"] if len(results) == 1 else f"none of the {len(results)} events is valid: see results"
        )
    elif rejected:
        code = 207
    else:
        code = 202
    return JSONResponse(body, status_code=code, headers=headers)

