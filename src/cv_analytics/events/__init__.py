"""The wire format of analytics events: validation and one internal form.

Two producer shapes are accepted (see ``shared/contract/``):

* current: ``correlationId``, ``sessionId``, ``performance``, ``metadata.matchQuality``
  (0–1) and ``metadata.sourcesUsed``;
* older: ``requestId`` instead of ``correlationId`` and, on responses, top-level
  ``matchType`` (full|partial|none), ``matchScore`` (0–100) and ``reasoning``.

Both parse into :class:`QueryEvent` / :class:`ResponseEvent`; :func:`to_wire`
writes the current shape back out.

Limits and ranges, the same on every path (the worker, ``send`` and the client):

* a body is at most 256 KiB (:data:`MAX_EVENT_BYTES`) and nested at most 32
  levels deep (:data:`MAX_NESTING_DEPTH`, the top-level object counting as one);
  deeper is an :class:`InvalidEventError`, never a ``RecursionError``;
* ``timestamp`` is milliseconds since the epoch between 2000-01-01 and
  2100-01-01 (:data:`MIN_TIMESTAMP_MS`, :data:`MAX_TIMESTAMP_MS`); outside it the
  event is invalid (``field="timestamp"``). A value below 10^11 cannot be
  milliseconds (that is March 1973) and is taken as *seconds*: it is converted
  to milliseconds, with a warning logged once per process, and the event says so
  (``converted_from_seconds``);
* optional fields have ranges: ``performance.totalTime``/``llmTime``/
  ``retrievalTime`` are milliseconds >= 0, ``metadata.matchQuality`` is 0–1,
  the older ``matchScore`` 0–100. An optional metadata or performance field out
  of its range (or of the wrong type) is *dropped* from the event, which is kept
  (``dropped_fields`` names what went; a warning is logged once per field);
  required fields (``eventType``, ``correlationId``, ``timestamp``, ``query``)
  and the texts stay strict;
* ``metadata.sourcesUsed`` given as one string is one source: ``"Python"`` is
  ``["Python"]``;
* the FIFO deduplication id of an event is :func:`deduplication_id`, which
  always fits SQS's 128 characters (and so does :func:`message_group_id`).
"""

from . import model as _model
from .ids import MAX_SQS_ID_CHARS, deduplication_id, message_group_id
from .model import (
    EDGE_CONTEXT,
    FULL_MATCH_THRESHOLD,
    MAX_EVENT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    PARTIAL_MATCH_THRESHOLD,
    SECONDS_THRESHOLD,
    EventShape,
    EventType,
    MatchType,
    Performance,
    QueryEvent,
    QueryMetadata,
    ResponseEvent,
    ResponseMetadata,
    classify_match_quality,
    iso_week,
    to_json,
    to_wire,
)
from .parsing import check_nesting, check_plausible, load_event, parse_event

#: which warnings were logged once already (tests reset it)
_warned = _model._warned

__all__ = [
    "EDGE_CONTEXT",
    "FULL_MATCH_THRESHOLD",
    "MAX_EVENT_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_SQS_ID_CHARS",
    "MAX_TIMESTAMP_MS",
    "MIN_TIMESTAMP_MS",
    "PARTIAL_MATCH_THRESHOLD",
    "SECONDS_THRESHOLD",
    "check_nesting",
    "check_plausible",
    "classify_match_quality",
    "deduplication_id",
    "iso_week",
    "load_event",
    "message_group_id",
    "parse_event",
    "to_json",
    "to_wire",
    "EventShape",
    "EventType",
    "MatchType",
    "Performance",
    "QueryEvent",
    "QueryMetadata",
    "ResponseEvent",
    "ResponseMetadata",
]
