"""The DynamoDB store backend, through boto3.

Tables (names and keys from :mod:`cv_analytics.deploy.resources`, on-demand billing):

``events`` (``<prefix>-query-events``, key ``requestId``)
    Events waiting for their counterpart. One item per correlation id holds
    a pending query and/or a pending response in separate attributes
    (``query``, ``queryShape``, ``queryReceivedAt``, ``queryExpiresAt``, and the
    same for ``response``), written with ``UpdateExpression SET`` so that the
    two halves never overwrite each other. ``ttl`` (epoch seconds) is the
    latest expiry written; DynamoDB deletes the item some time after it, up to
    days later, so every read also checks each half's own ``...ExpiresAt``.
``interactions`` (``<prefix>-analytics``, key ``requestId``, GSI ``week-index`` on ``week`` + ``timestamp``)
    One item per interaction, in the wire format's camelCase names.
``reports`` (``<prefix>-reports``, key ``week`` + ``recipient``)
    Send-once records of weekly reports.

Text over 64 KiB (a long query or response) is stored zlib-compressed as a
binary attribute, so that a query and a response of up to 256 KiB each
usually fit DynamoDB's 400 KB item limit; an item still over it fails with
:class:`~cv_analytics.exceptions.StoreError`.

Correlation without transactions
---------------------------------
Several Lambda invocations may record the two halves of one correlation id at
the same moment, and a load-then-save (the base class's way, safe inside
SQLite's transaction) would let both see no counterpart and both leave their
half pending. :meth:`DynamoDBStore.record_events` therefore works optimistically,
per correlation id:

1. read the interaction and the pending item, strongly consistent (one
   ``BatchGetItem`` for the whole batch);
2. decide as the base class does (same :class:`RecordOutcome` for the same
   history), then write with a condition that the state read still holds:
   a new interaction only if absent (``attribute_not_exists(requestId)``), the
   completion of a partial one only if it still lacks that side, a pending
   half only if that half is absent or expired;
3. a pending half is written with ``ReturnValues=ALL_NEW``: the write is
   atomic on the item, so of two racing halves exactly one, the later, sees
   the other. It then creates the interaction (conditionally, as above);
4. a failed condition means someone else wrote in between: read again and
   decide again (a few rounds, then
   :class:`~cv_analytics.exceptions.StoreUnavailableError`).

A pending item holding both halves and no interaction (the later writer
crashed between steps 3 and the creation) is completed by the next event of
that id, or by :meth:`DynamoDBStore.sweep_orphans`, which also completes a
partial interaction from a pending half it lacks. So exactly one interaction
per id is written, whatever the interleaving, and no half is lost.

Costs: reads the hot path makes are key lookups (``BatchGetItem``,
``UpdateItem`` return values); the week's report is a ``Query`` on the GSI;
:meth:`counts`, :meth:`sweep_orphans`, :meth:`purge_expired` and
``iter_interactions()`` without a week scan a table, which is for operations
and the periodic sweep, not for the request path. Every call asks for
``ReturnConsumedCapacity=TOTAL``, which a
:class:`~cv_analytics.boto.metering.RequestCounter` adds up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..deploy import resources
from ..boto.clients import (
    MAX_ATTEMPTS,
    ClientError,
    client_config,
    error_codes,
    make_client,
    translated_errors,
)
from ..clock import Clock, now_ms
from ..events import EventShape, EventType, load_event, to_json
from ..exceptions import StoreError, StoreUnavailableError
from .base import DEFAULT_PENDING_TTL_SECONDS, Changes, Event, PendingSides, Store
from .models import (
    Interaction,
    InteractionStatus,
    PendingEvent,
    RecordOutcome,
    ReportDelivery,
    StoreCounts,
    SweepResult,
)

if TYPE_CHECKING:
    import boto3

    from ..boto.metering import RequestCounter
    from ..wiring import Settings

__all__ = ["DynamoDBStore"]

log = logging.getLogger(__name__)
#: The error code of a table that does not exist.
_TABLE_MISSING = frozenset({"ResourceNotFoundException"})

#: Text longer than this is stored zlib-compressed (binary), to stay under the 400 KB item limit.
COMPRESS_OVER_BYTES = 64 * 1024
#: BatchGetItem takes at most 100 keys, BatchWriteItem 25 requests.
BATCH_GET_KEYS = 100
BATCH_WRITE_ITEMS = 25
#: Rounds of read–decide–conditional write before giving up on a contended id.
MAX_ROUNDS = 5
#: Retries of the unprocessed part of a batch read or write (throttled partitions).
MAX_UNPROCESSED_RETRIES = 8

_KEY = resources.EVENTS_TABLE.partition_key.name  # "requestId", the key of both event and interaction tables
_TTL = resources.EVENTS_TABLE.ttl_attribute or "ttl"
_WEEK_INDEX = resources.WEEK_INDEX.name
_SIDE_TIMESTAMP = {EventType.QUERY: "queryTimestamp", EventType.RESPONSE: "responseTimestamp"}
_CONDITIONAL_FAILED = "ConditionalCheckFailedException"


def _side_names(event_type: EventType) -> tuple[str, str, str, str]:
    """Attribute names of one pending half: body, shape, received at, expires at."""
    side = event_type.value
    return side, f"{side}Shape", f"{side}ReceivedAt", f"{side}ExpiresAt"


class DynamoDBStore(Store):
    """Store backend on three DynamoDB tables (see the module docstring).

    ``tables`` maps ``events``, ``interactions`` and ``reports`` to table
    names; missing keys default to the names :mod:`cv_analytics.deploy.resources`
    gives them with the default prefix (``cv-analytics-query-events``...).
    """

    def __init__(
        self,
        tables: Mapping[str, str] | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.Session | None = None,
        clock: Clock | None = None,
        pending_ttl_seconds: float = DEFAULT_PENDING_TTL_SECONDS,
        request_counter: RequestCounter | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(clock=clock, pending_ttl_seconds=pending_ttl_seconds)
        tables = dict(tables or {})
        self.events_table = tables.get("events") or resources.EVENTS_TABLE.name()
        self.interactions_table = tables.get("interactions") or resources.INTERACTIONS_TABLE.name()
        self.reports_table = tables.get("reports") or resources.REPORTS_TABLE.name()
        self.client = make_client(
            "dynamodb",
            region=region,
            endpoint_url=endpoint_url,
            session=session,
            config=client_config(max_attempts=max_attempts),
            request_counter=request_counter,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None, **kwargs: Any) -> DynamoDBStore:
        """The store the environment describes: ``CV_ANALYTICS_EVENTS_TABLE``,
        ``CV_ANALYTICS_INTERACTIONS_TABLE``, ``CV_ANALYTICS_REPORTS_TABLE``,
        ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``CV_ANALYTICS_PENDING_TTL``."""
        kwargs.setdefault("region", settings.aws_region)
        kwargs.setdefault("endpoint_url", settings.aws_endpoint_url)
        kwargs.setdefault("pending_ttl_seconds", settings.pending_ttl_seconds)
        return cls(settings.dynamodb_tables, clock=clock, **kwargs)

    def close(self) -> None:
        self.client.close()

    # -- errors ---------------------------------------------------------------

    def _guard(self, action: str) -> contextlib.AbstractContextManager[None]:
        return translated_errors(
            action,
            "DynamoDB",
            missing_codes=_TABLE_MISSING,
            missing="a DynamoDB table does not exist ({detail}); create the tables with "
            "`cv-analytics aws bootstrap` and export CV_ANALYTICS_EVENTS_TABLE, "
            "CV_ANALYTICS_INTERACTIONS_TABLE and CV_ANALYTICS_REPORTS_TABLE",
            unavailable=StoreUnavailableError,
            error=StoreError,
        )

    def _call(self, action: str, operation: str, **request: Any) -> dict[str, Any]:
        """One DynamoDB call, errors translated; a failed condition raises :class:`_ConditionFailed`."""
        with self._guard(action):
            try:
                return dict(getattr(self.client, operation)(ReturnConsumedCapacity="TOTAL", **request))
            except ClientError as exc:
                if _CONDITIONAL_FAILED in error_codes(exc):
                    raise _ConditionFailed from exc
                raise

    # -- correlation ----------------------------------------------------------

    def record_events(self, events: Sequence[Event]) -> list[RecordOutcome]:
        """Record validated events; returns what each did, in order (see the module docstring).

        Idempotent, and safe with other writers of the same ids at the same
        time. Raises :class:`StoreUnavailableError` when DynamoDB cannot be
        reached or an id stays contended; what was written stays written, and
        recording the batch again completes it without double-counting.
        """
        if not events:
            return []
        now = now_ms(self.clock)
        by_id: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            by_id.setdefault(event.correlation_id, []).append(index)
        outcomes: list[RecordOutcome | None] = [None] * len(events)
        todo = set(by_id)
        for _ in range(MAX_ROUNDS):
            interactions, items = self._fetch(todo)
            contended: set[str] = set()
            # pending items of answered interactions: whatever they hold is a duplicate now
            cleanup: list[str] = []
            try:
                for cid in sorted(todo):
                    indices = by_id[cid]
                    stored = interactions.get(cid)
                    plan = _plan(
                        [events[i] for i in indices], stored, _unexpired_sides(items.get(cid), now), now, self.pending_ttl_ms
                    )
                    try:
                        self._carry_out(cid, plan, now)
                    except _ConditionFailed:
                        contended.add(cid)
                        continue
                    for i, outcome in zip(indices, plan.outcomes, strict=True):
                        outcomes[i] = outcome
                    answered = plan.interaction or stored
                    if cid in items and answered is not None and answered.status is InteractionStatus.ANSWERED:
                        cleanup.append(cid)
            finally:
                # also when a later id failed: what was written stays consistent
                self._delete_pending(cleanup)
            if not contended:
                break
            todo = contended
        else:
            raise StoreUnavailableError(
                f"{len(todo)} correlation id(s) kept changing under concurrent writers "
                f"({', '.join(sorted(todo)[:3])}...); retry the batch"
            )
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]

    def _carry_out(self, cid: str, plan: _Plan, now: int) -> None:
        """Apply one id's plan with the conditions that make it safe; raises _ConditionFailed on a race."""
        if plan.interaction is not None:
            self._put_interaction(plan.interaction, plan.lacking)
        elif plan.new_sides:
            after = self._write_pending(cid, plan.new_sides, now)
            if any(t not in plan.seen_sides and t not in plan.new_sides for t in after):
                # The counterpart arrived between our read and our write: we are the later
                # writer, so completing the interaction is ours to do. Decide again on the new state.
                raise _ConditionFailed

    def _put_interaction(self, interaction: Interaction, lacking: EventType | None) -> None:
        """Create an interaction (``lacking`` None: only if absent) or complete a partial one
        (only if it still lacks ``lacking``)."""
        request: dict[str, Any] = {"TableName": self.interactions_table, "Item": _interaction_item(interaction)}
        if lacking is None:
            request["ConditionExpression"] = "attribute_not_exists(#key)"
            request["ExpressionAttributeNames"] = {"#key": _KEY}
        else:
            request["ConditionExpression"] = "attribute_exists(#key) AND attribute_not_exists(#side)"
            request["ExpressionAttributeNames"] = {"#key": _KEY, "#side": _SIDE_TIMESTAMP[lacking]}
        self._call(f"write interaction {interaction.correlation_id}", "put_item", **request)

    def _write_pending(self, cid: str, sides: Mapping[EventType, PendingEvent], now: int) -> PendingSides:
        """SET the new halves, each only if absent or expired; returns the item's unexpired halves after."""
        names: dict[str, str] = {"#ttl": _TTL}
        values: dict[str, Any] = {":now": {"N": str(now)}}
        sets: list[str] = []
        conditions: list[str] = []
        latest = 0
        for n, (event_type, pending) in enumerate(sides.items()):
            body, shape, received, expires = _side_names(event_type)
            names.update({f"#b{n}": body, f"#s{n}": shape, f"#r{n}": received, f"#e{n}": expires})
            values.update(
                {
                    f":b{n}": _text_value(to_json(pending.event)),
                    f":s{n}": {"S": pending.event.shape.value},
                    f":r{n}": {"N": str(pending.received_at)},
                    f":e{n}": {"N": str(pending.expires_at)},
                }
            )
            sets += [f"#b{n} = :b{n}", f"#s{n} = :s{n}", f"#r{n} = :r{n}", f"#e{n} = :e{n}"]
            conditions.append(f"(attribute_not_exists(#e{n}) OR #e{n} <= :now)")
            latest = max(latest, pending.expires_at)
        # TTL in epoch seconds; the latest half written expires last (every writer uses the same TTL)
        values[":ttl"] = {"N": str(math.ceil(latest / 1000))}
        sets.append("#ttl = :ttl")
        response = self._call(
            f"record pending events of {cid}",
            "update_item",
            TableName=self.events_table,
            Key={_KEY: {"S": cid}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )
        return _unexpired_sides(response.get("Attributes"), now)

    def sweep_orphans(self, older_than_seconds: float, *, batch_size: int = 500) -> SweepResult:
        """Turn events that waited longer than ``older_than_seconds`` into interactions.

        One pass over the events table (a scan, ``batch_size`` items a page).
        Each interaction is created only if absent, so a sweep racing with a
        late counterpart, or with another sweep, never counts twice. It also
        completes what a crashed writer left: a pending item holding both
        halves, or a half that an existing partial interaction lacks.
        """
        now = now_ms(self.clock)
        cutoff = now - int(older_than_seconds * 1000)
        unanswered = orphans = 0
        for stale in self._scan_stale(cutoff, now, batch_size):
            interactions, _ = self._fetch(set(stale))
            answered: list[str] = []
            for cid, sides in stale.items():
                existing = interactions.get(cid)
                query, response = sides.get(EventType.QUERY), sides.get(EventType.RESPONSE)
                try:
                    if existing is None:
                        interaction = Interaction.from_events(
                            query.event if query else None,  # type: ignore[arg-type]
                            response.event if response else None,  # type: ignore[arg-type]
                            processed_at=now,
                        )
                        self._put_interaction(interaction, None)
                        unanswered += query is not None and response is None
                        orphans += query is None
                    else:
                        missing = [p for t, p in sides.items() if not existing.has_side(t)]
                        interaction = existing
                        if missing:  # a half written after the interaction (a very slow writer): complete it
                            interaction = existing.completed_with(missing[0].event, processed_at=now)
                            self._put_interaction(interaction, missing[0].event.event_type)
                except _ConditionFailed:
                    continue  # someone else wrote it first; the next sweep tidies the pending item
                if interaction.status is InteractionStatus.ANSWERED:
                    answered.append(cid)
                else:
                    self._delete_pending_unless_counterpart(cid, interaction, now)
            self._delete_pending(answered)
        return SweepResult(unanswered=unanswered, orphan_responses=orphans)

    # -- reads ----------------------------------------------------------------

    def get_interaction(self, correlation_id: str) -> Interaction | None:
        response = self._call(
            f"read interaction {correlation_id}",
            "get_item",
            TableName=self.interactions_table,
            Key={_KEY: {"S": correlation_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _interaction_from_item(item) if item else None

    def iter_interactions(self, week: str | None = None) -> Iterator[Interaction]:
        """One week: a ``Query`` on ``week-index``, page by page, oldest first (ties by id).
        All weeks: a scan, sorted in memory (exports and operations only).

        The index is eventually consistent: an interaction written a moment
        ago may be missing (the weekly report runs long after its week)."""
        if week is None:
            items = self._paginate("scan", TableName=self.interactions_table)
            yield from sorted(map(_interaction_from_item, items), key=lambda i: (i.timestamp, i.correlation_id))
            return
        run: list[Interaction] = []
        for item in self._paginate(
            "query",
            TableName=self.interactions_table,
            IndexName=_WEEK_INDEX,
            KeyConditionExpression="#week = :week",
            ExpressionAttributeNames={"#week": "week"},
            ExpressionAttributeValues={":week": {"S": week}},
        ):
            interaction = _interaction_from_item(item)
            # the index orders by timestamp alone; order equal timestamps by id, as the embedded store does
            if run and run[0].timestamp != interaction.timestamp:
                yield from sorted(run, key=lambda i: i.correlation_id)
                run = []
            run.append(interaction)
        yield from sorted(run, key=lambda i: i.correlation_id)

    def counts(self) -> StoreCounts:
        """Interactions by status and unexpired pending events: two scans, for operations, not the hot path."""
        now = now_ms(self.clock)
        by_status = {status: 0 for status in InteractionStatus}
        for item in self._paginate(
            "scan",
            TableName=self.interactions_table,
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
        ):
            by_status[InteractionStatus(item["status"]["S"])] += 1
        queries = responses = 0
        for item in self._paginate("scan", TableName=self.events_table, **_expiry_projection()):
            waiting = _unexpired_types(item, now)
            queries += EventType.QUERY in waiting
            responses += EventType.RESPONSE in waiting
        return StoreCounts(interactions=by_status, pending_queries=queries, pending_responses=responses)

    def get_pending(self, correlation_id: str) -> PendingSides:
        response = self._call(
            f"read pending events of {correlation_id}",
            "get_item",
            TableName=self.events_table,
            Key={_KEY: {"S": correlation_id}},
            ConsistentRead=True,
        )
        return _unexpired_sides(response.get("Item"), now_ms(self.clock))

    # -- report deliveries ------------------------------------------------------

    def get_report_delivery(self, week: str, recipient: str) -> ReportDelivery | None:
        response = self._call(
            f"read the report delivery of {week}",
            "get_item",
            TableName=self.reports_table,
            Key={"week": {"S": week}, "recipient": {"S": recipient}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        return ReportDelivery(week, recipient, item["channel"]["S"], int(item["sentAt"]["N"]))

    def record_report_delivery(self, delivery: ReportDelivery) -> None:
        self._call(
            f"record the report delivery of {delivery.week}",
            "put_item",
            TableName=self.reports_table,
            Item={
                "week": {"S": delivery.week},
                "recipient": {"S": delivery.recipient},
                "channel": {"S": delivery.channel},
                "sentAt": {"N": str(delivery.sent_at)},
            },
        )

    # -- maintenance ------------------------------------------------------------

    expires_by_itself = True  # DynamoDB TTL deletes expired items (lazily)

    def purge_expired(self) -> int:
        """Remove expired pending halves now (a scan); returns how many.

        DynamoDB's TTL deletes whole items for free, later; this is for when
        the table should be tidy sooner. Each removal is conditional on the
        half still being expired, so a half rewritten meanwhile stays."""
        now = now_ms(self.clock)
        removed = 0
        for item in self._paginate(
            "scan",
            TableName=self.events_table,
            FilterExpression="queryExpiresAt <= :now OR responseExpiresAt <= :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
            **_expiry_projection(),
        ):
            present = [t for t in EventType if _side_names(t)[3] in item]
            expired = [t for t in present if int(item[_side_names(t)[3]]["N"]) <= now]
            names = {f"#{t.value}{i}": n for t in EventType for i, n in enumerate(_side_names(t))}
            values = {":now": {"N": str(now)}}
            key = {_KEY: item[_KEY]}
            try:
                if len(expired) == len(present):
                    # nothing unexpired left: the item goes, unless a half was written since
                    self._call(
                        "purge expired events", "delete_item", TableName=self.events_table, Key=key,
                        ConditionExpression=" AND ".join(
                            f"(attribute_not_exists(#{t.value}3) OR #{t.value}3 <= :now)" for t in EventType
                        ),
                        ExpressionAttributeNames={k: v for k, v in names.items() if k.endswith("3")},
                        ExpressionAttributeValues=values,
                    )  # fmt: skip
                else:
                    removing = [f"#{t.value}{i}" for t in expired for i in range(4)]
                    self._call(
                        "purge expired events", "update_item", TableName=self.events_table, Key=key,
                        UpdateExpression="REMOVE " + ", ".join(removing),
                        ConditionExpression=" AND ".join(f"#{t.value}3 <= :now" for t in expired),
                        ExpressionAttributeNames={k: names[k] for k in removing},
                        ExpressionAttributeValues=values,
                    )  # fmt: skip
            except _ConditionFailed:
                continue
            removed += len(expired)
        return removed

    def write_interactions(self, interactions: Sequence[Interaction]) -> None:
        """Put interactions directly, replacing any with the same id (bulk loads, benchmarks, migrations)."""
        self._batch_write(
            self.interactions_table, [{"PutRequest": {"Item": _interaction_item(i)}} for i in interactions]
        )

    # -- backend primitives (the base class's load/save shape) ---------------------

    def _load(self, correlation_ids: set[str], now: int) -> tuple[dict[str, Interaction], dict[str, PendingSides]]:
        interactions, items = self._fetch(correlation_ids)
        pending = {cid: sides for cid, item in items.items() if (sides := _unexpired_sides(item, now))}
        return interactions, pending

    def _save(self, changes: Changes) -> None:
        """Unconditional writes (no transaction exists to make them safe against other
        writers: :meth:`record_events` and :meth:`sweep_orphans` do not use this)."""
        self.write_interactions(list(changes.interaction_puts.values()))
        self._delete_pending(changes.pending_deletes)
        by_id: dict[str, dict[EventType, PendingEvent]] = {}
        for (cid, event_type), pending in changes.pending_puts.items():
            by_id.setdefault(cid, {})[event_type] = pending
        for cid, sides in by_id.items():
            with contextlib.suppress(_ConditionFailed):
                self._write_pending(cid, sides, 0)

    def _pending_received_before(self, cutoff: int, now: int, limit: int) -> dict[str, PendingSides]:
        found: dict[str, PendingSides] = {}
        for page in self._scan_stale(cutoff, now, limit):
            for cid, sides in page.items():
                if len(found) >= limit:
                    return found
                found[cid] = sides
        return found

    # -- plumbing ---------------------------------------------------------------

    def _fetch(self, correlation_ids: Iterable[str]) -> tuple[dict[str, Interaction], dict[str, dict[str, Any]]]:
        """Interactions and raw pending items of these ids: strongly consistent ``BatchGetItem``s."""
        ids = sorted(set(correlation_ids))
        interactions: dict[str, Interaction] = {}
        items: dict[str, dict[str, Any]] = {}
        per_table = BATCH_GET_KEYS // 2  # both tables share one request's 100 keys
        for start in range(0, len(ids), per_table):
            keys = [{_KEY: {"S": cid}} for cid in ids[start : start + per_table]]
            request = {
                self.interactions_table: {"Keys": keys, "ConsistentRead": True},
                self.events_table: {"Keys": keys, "ConsistentRead": True},
            }
            for table, found in self._batch_get(request):
                for item in found:
                    cid = item[_KEY]["S"]
                    if table == self.interactions_table:
                        interactions[cid] = _interaction_from_item(item)
                    else:
                        items[cid] = item
        return interactions, items

    def _batch_get(self, request: dict[str, Any]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for attempt in range(MAX_UNPROCESSED_RETRIES + 1):
            response = self._call("read events and interactions", "batch_get_item", RequestItems=request)
            yield from response.get("Responses", {}).items()
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            _backoff(attempt)
        raise StoreUnavailableError("DynamoDB kept throttling a batch read; retry later")

    def _delete_pending_unless_counterpart(self, cid: str, partial: Interaction, now: int) -> None:
        """Delete the pending item of a partial interaction unless the side it lacks arrived meanwhile
        (that half stays, and completes the interaction on the next sweep)."""
        lacking = EventType.QUERY if not partial.has_side(EventType.QUERY) else EventType.RESPONSE
        with contextlib.suppress(_ConditionFailed):
            self._call(
                f"delete pending events of {cid}",
                "delete_item",
                TableName=self.events_table,
                Key={_KEY: {"S": cid}},
                ConditionExpression="attribute_not_exists(#e) OR #e <= :now",
                ExpressionAttributeNames={"#e": _side_names(lacking)[3]},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )

    def _delete_pending(self, correlation_ids: Iterable[str]) -> None:
        """Delete pending items whose interaction is answered: any half left there is a duplicate."""
        self._batch_write(
            self.events_table, [{"DeleteRequest": {"Key": {_KEY: {"S": cid}}}} for cid in sorted(set(correlation_ids))]
        )

    def _batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_ITEMS):
            pending: dict[str, Any] = {table: requests[start : start + BATCH_WRITE_ITEMS]}
            for attempt in range(MAX_UNPROCESSED_RETRIES + 1):
                response = self._call(f"write to {table}", "batch_write_item", RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise StoreUnavailableError(f"DynamoDB kept throttling writes to {table}; retry later")

    def _paginate(self, operation: str, **request: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = self._call(f"{operation} {request.get('TableName')}", operation, **request)
            yield from response.get("Items", [])
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _scan_stale(self, cutoff: int, now: int, page_size: int) -> Iterator[dict[str, PendingSides]]:
        """Pages of ids whose unexpired pending events were received before ``cutoff``."""
        request: dict[str, Any] = {
            "TableName": self.events_table,
            "Limit": page_size,
            "FilterExpression": (
                "(queryReceivedAt < :cutoff AND queryExpiresAt > :now) OR "
                "(responseReceivedAt < :cutoff AND responseExpiresAt > :now)"
            ),
            "ExpressionAttributeValues": {":cutoff": {"N": str(cutoff)}, ":now": {"N": str(now)}},
        }
        while True:
            response = self._call("scan pending events", "scan", **request)
            page = {item[_KEY]["S"]: sides for item in response.get("Items", []) if (sides := _unexpired_sides(item, now))}
            if page:
                yield page
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last


# -- deciding, per correlation id ----------------------------------------------------


class _ConditionFailed(Exception):
    """A conditional write found the item changed since it was read."""


@dataclass
class _Plan:
    """What recording one id's events does: outcomes, and the one write that makes them true."""

    outcomes: list[RecordOutcome]
    seen_sides: frozenset[EventType]
    #: the interaction to write, if any, and the side the stored one lacks (None: create it)
    interaction: Interaction | None = None
    lacking: EventType | None = None
    #: pending halves to add when no interaction is written
    new_sides: dict[EventType, PendingEvent] = field(default_factory=dict)


def _plan(
    events: Sequence[Event], stored: Interaction | None, sides: PendingSides, now: int, ttl_ms: int
) -> _Plan:
    """The base class's decisions for one id's events, in order, from the state read."""
    plan = _Plan(outcomes=[], seen_sides=frozenset(sides))
    interaction = stored
    sides = dict(sides)
    # Both halves pending and no interaction: a writer saw both and stopped before
    # creating it. The first of these events completes it.
    claim_repair = False
    if interaction is None and len(sides) == 2:
        query, response = sides[EventType.QUERY], sides[EventType.RESPONSE]
        interaction = Interaction.from_events(query.event, response.event, processed_at=now)  # type: ignore[arg-type]
        claim_repair = True
    for event in events:
        event_type = event.event_type
        if interaction is not None:
            if interaction.has_side(event_type):
                plan.outcomes.append(RecordOutcome.CORRELATED if claim_repair else RecordOutcome.DUPLICATE)
                claim_repair = False
                continue
            interaction = interaction.completed_with(event, processed_at=now)
            plan.outcomes.append(RecordOutcome.COMPLETED_LATE)
            continue
        if event_type in sides:
            plan.outcomes.append(RecordOutcome.DUPLICATE)
        elif event_type.counterpart in sides:
            counterpart = sides[event_type.counterpart].event
            query, response = (event, counterpart) if event_type is EventType.QUERY else (counterpart, event)
            interaction = Interaction.from_events(query, response, processed_at=now)  # type: ignore[arg-type]
            plan.outcomes.append(RecordOutcome.CORRELATED)
        else:
            sides[event_type] = PendingEvent(event, received_at=now, expires_at=now + ttl_ms)
            plan.new_sides[event_type] = sides[event_type]
            plan.outcomes.append(RecordOutcome.PENDING)
    if interaction is not stored:
        plan.interaction = interaction
        plan.new_sides = {}
        if stored is not None:
            plan.lacking = EventType.QUERY if not stored.has_side(EventType.QUERY) else EventType.RESPONSE
    return plan


# -- items ------------------------------------------------------------------------


def _expiry_projection() -> dict[str, Any]:
    return {"ProjectionExpression": "requestId, queryExpiresAt, responseExpiresAt"}


def _unexpired_types(item: Mapping[str, Any] | None, now: int) -> set[EventType]:
    """Which halves of a pending item have not expired (TTL deletion is lazy: check each half)."""
    if not item:
        return set()
    return {t for t in EventType if (e := _side_names(t)[3]) in item and int(item[e]["N"]) > now}


def _unexpired_sides(item: Mapping[str, Any] | None, now: int) -> PendingSides:
    """The halves of a pending item that have not expired, parsed."""
    sides: PendingSides = {}
    for event_type in _unexpired_types(item, now):
        assert item is not None
        body, shape, received, expires = _side_names(event_type)
        event = load_event(_text_of(item[body]))
        stored_shape = EventShape(item[shape]["S"]) if shape in item else event.shape
        if stored_shape is not event.shape:
            event = event.model_copy(update={"shape": stored_shape})
        sides[event_type] = PendingEvent(event, int(item[received]["N"]), int(item[expires]["N"]))
    return sides


def _text_value(text: str) -> dict[str, Any]:
    data = text.encode()
    if len(data) > COMPRESS_OVER_BYTES:
        return {"B": zlib.compress(data, 6)}
    return {"S": text}


def _text_of(value: Mapping[str, Any]) -> str:
    if "B" in value:
        return zlib.decompress(value["B"]).decode()
    return str(value["S"])


def _interaction_item(interaction: Interaction) -> dict[str, Any]:
    data = interaction.model_dump(mode="python", by_alias=True, exclude_none=True)
    item: dict[str, Any] = {_KEY: {"S": data.pop("correlationId")}}
    for name, value in data.items():
        encoded = _to_attribute(value)
        if encoded is not None:
            item[name] = encoded
    return item


def _to_attribute(value: Any) -> dict[str, Any] | None:
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
        return _text_value(value)
    if isinstance(value, list | tuple):
        return {"L": [a for v in value if (a := _to_attribute(v)) is not None]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _from_attribute(value: Mapping[str, Any]) -> Any:
    if "S" in value or "B" in value:
        return _text_of(value)
    if "N" in value:
        text = value["N"]
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "L" in value:
        return [_from_attribute(v) for v in value["L"]]
    if "NULL" in value:
        return None
    raise ValueError(f"unexpected DynamoDB attribute {value!r}")


def _interaction_from_item(item: Mapping[str, Any]) -> Interaction:
    data = {name: _from_attribute(value) for name, value in item.items() if name != _KEY}
    data["correlationId"] = item[_KEY]["S"]
    return Interaction.model_validate(data)


def _backoff(attempt: int) -> None:
    # Unprocessed items mean a throttled partition: back off before asking again (AWS's advice for batch calls).
    time.sleep(min(1.0, 0.05 * 2**attempt))
