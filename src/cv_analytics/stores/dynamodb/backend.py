"""The DynamoDB store backend: the base class's plans applied with condition expressions.

Tables (names and keys from :mod:`cv_analytics.stores.dynamodb_tables`, on-demand billing):

``events`` (``<prefix>-query-events``, key ``requestId``)
    Events waiting for their counterpart. One item per correlation id holds a
    pending query and/or response in separate attributes (``query``,
    ``queryShape``, ``queryReceivedAt``, ``queryExpiresAt``, the same for
    ``response``), written with ``UpdateExpression SET`` so the two halves never
    overwrite each other. ``ttl`` (epoch seconds) is the latest expiry written;
    DynamoDB deletes the item up to days after it, so reads check each half's own
    ``...ExpiresAt``.
``interactions`` (``<prefix>-analytics``, key ``requestId``, GSI ``week-index`` on ``week`` + ``timestamp``)
    One item per interaction, in the wire format's camelCase names.
``reports`` (``<prefix>-reports``, key ``week`` + ``recipient``)
    Send-once records of weekly reports.

Without transactions, each plan's preconditions (see
:class:`~cv_analytics.stores.plan.CorrelationPlan`) become conditions: a new
interaction only if absent (``attribute_not_exists(requestId)``), a completion
only while the stored one still lacks that side, a pending half only if that
half is absent or expired. A pending half is written with ``ReturnValues=ALL_NEW``:
the write is atomic on the item, so of two Lambdas racing on one id exactly
one, the later, sees the other half there; its plan is reported stale, and the
base plans again from the item holding both halves, which creates the one
interaction. A crashed writer's item holding both halves is completed the same
way by the next event of that id, or by the sweep.

Costs: the hot path is a ``BatchGetItem`` per batch and one write per id; the
week's report is a ``Query`` on the GSI; :meth:`DynamoDBStore.counts`, the
sweep, :meth:`DynamoDBStore.purge_expired` and ``iter_interactions()`` without a
week scan a table (operations and the periodic sweep, not the request path).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import dynamodb_tables as resources
from ...boto.clients import MAX_ATTEMPTS, client_config, make_client
from ...clock import Clock, now_ms
from ...events import EventType, to_json
from ..base import DEFAULT_PENDING_TTL_SECONDS, PendingSides, Store
from ..models import Interaction, InteractionStatus, PendingEvent, ReportDelivery, StoreCounts, WeekSummary
from ..plan import CorrelationPlan, CorrelationState
from .codec import (
    KEY,
    TTL,
    WEEK_INDEX,
    SIDE_TIMESTAMP,
    expiry_projection,
    interaction_from_item,
    interaction_item,
    item_state,
    side_names,
    text_value,
    unexpired_sides,
    unexpired_types,
)
from .maintenance import purge_expired_halves
from .requests import BATCH_GET_KEYS, ConditionFailed, DynamoDBRequests

if TYPE_CHECKING:
    import boto3

    from ...boto.metering import RequestCounter

__all__ = ["DynamoDBStore"]


class DynamoDBStore(Store):
    """Store backend on three DynamoDB tables (see the module docstring).

    ``tables`` maps ``events``, ``interactions`` and ``reports`` to table
    names; missing keys default to the names :mod:`cv_analytics.stores.dynamodb_tables`
    gives them with the default prefix (``cv-analytics-query-events``...).
    Pass a boto3 DynamoDB ``client``, or ``region``/``endpoint_url``/``session``
    to have one made (with ``max_attempts`` and ``request_counter`` attached).
    """

    def __init__(
        self,
        tables: Mapping[str, str] | None = None,
        *,
        client: Any = None,
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
        if client is None:
            client = make_client(
                "dynamodb", region=region, endpoint_url=endpoint_url, session=session,
                config=client_config(max_attempts=max_attempts), request_counter=request_counter,
            )  # fmt: skip
        elif request_counter is not None:
            request_counter.attach(client)
        self.client = client
        self._requests = DynamoDBRequests(client, self.clock)

    def close(self) -> None:
        self.client.close()

    # -- primitives of the base class ---------------------------------------------

    def _load(self, correlation_ids: set[str], now: int) -> dict[str, CorrelationState]:
        """Interactions and pending items of these ids: strongly consistent ``BatchGetItem``s."""
        ids = sorted(correlation_ids)
        states: dict[str, CorrelationState] = {}
        per_table = BATCH_GET_KEYS // 2  # both tables share one request's 100 keys
        for start in range(0, len(ids), per_table):
            keys = [{KEY: {"S": cid}} for cid in ids[start : start + per_table]]
            request = {
                self.interactions_table: {"Keys": keys, "ConsistentRead": True},
                self.events_table: {"Keys": keys, "ConsistentRead": True},
            }
            for table, found in self._requests.batch_get(request):
                for item in found:
                    state = states.setdefault(item[KEY]["S"], CorrelationState())
                    if table == self.interactions_table:
                        state.interaction = interaction_from_item(item)
                    else:
                        item_state(item, now, state)
        return states

    def _apply(self, plans: Sequence[CorrelationPlan], now: int) -> set[str]:
        contended: set[str] = set()
        # pending items of answered interactions: whatever they hold is a duplicate now
        spent: list[str] = []
        try:
            for plan in plans:
                try:
                    self._apply_one(plan, now, spent)
                except ConditionFailed:
                    contended.add(plan.correlation_id)
        finally:
            # also when a later id failed: what was written stays consistent
            self._delete_pending(spent)
        return contended

    def _apply_one(self, plan: CorrelationPlan, now: int, spent: list[str]) -> None:
        cid = plan.correlation_id
        if plan.interaction is not None:
            self._put_interaction(plan.interaction, plan.lacking, create=plan.assumed.interaction is None)
        elif plan.new_pending:
            after = self._write_pending(cid, plan.new_pending, plan.assumed, now)
            if any(t not in plan.assumed.pending and t not in plan.new_pending for t in after):
                # The counterpart arrived between our read and our write: we are the later
                # writer, so completing the interaction is ours. Plan again on the new state.
                raise ConditionFailed
        if not plan.remove_pending:
            return
        if plan.keep_if_arrived:
            self._delete_pending_unless_arrived(cid, plan.keep_if_arrived, now)
        else:
            spent.append(cid)

    def _stale_ids(self, cutoff: int, now: int, page_size: int) -> Iterator[list[str]]:
        request: dict[str, Any] = {
            "TableName": self.events_table,
            "Limit": page_size,
            "FilterExpression": (
                "(queryReceivedAt < :cutoff AND queryExpiresAt > :now) OR "
                "(responseReceivedAt < :cutoff AND responseExpiresAt > :now)"
            ),
            "ExpressionAttributeValues": {":cutoff": {"N": str(cutoff)}, ":now": {"N": str(now)}},
            "ProjectionExpression": KEY,
        }
        for response in self._requests.pages("scan", **request):
            ids = [item[KEY]["S"] for item in response.get("Items", [])]
            if ids:
                yield ids

    # -- conditional writes ------------------------------------------------------

    def _put_interaction(self, interaction: Interaction, lacking: EventType | None, *, create: bool) -> None:
        """Create an interaction (only if absent) or complete a partial one (only while it lacks ``lacking``)."""
        request: dict[str, Any] = {"TableName": self.interactions_table, "Item": interaction_item(interaction)}
        if create:
            request["ConditionExpression"] = "attribute_not_exists(#key)"
            request["ExpressionAttributeNames"] = {"#key": KEY}
        elif lacking is not None:
            request["ConditionExpression"] = "attribute_exists(#key) AND attribute_not_exists(#side)"
            request["ExpressionAttributeNames"] = {"#key": KEY, "#side": SIDE_TIMESTAMP[lacking]}
        self._requests.call(f"write interaction {interaction.correlation_id}", "put_item", **request)

    def _write_pending(
        self, cid: str, sides: Mapping[EventType, PendingEvent], assumed: CorrelationState, now: int
    ) -> PendingSides:
        """SET the new halves, each only if absent or expired (or still the unreadable half
        ``assumed`` saw); returns the item's unexpired halves after."""
        names: dict[str, str] = {"#ttl": TTL}
        values: dict[str, Any] = {":now": {"N": str(now)}}
        sets: list[str] = []
        conditions: list[str] = []
        latest = 0
        for n, (event_type, pending) in enumerate(sides.items()):
            body, shape, received, expires = side_names(event_type)
            names.update({f"#b{n}": body, f"#s{n}": shape, f"#r{n}": received, f"#e{n}": expires})
            values.update(
                {
                    f":b{n}": text_value(to_json(pending.event)),
                    f":s{n}": {"S": pending.event.shape.value},
                    f":r{n}": {"N": str(pending.received_at)},
                    f":e{n}": {"N": str(pending.expires_at)},
                }
            )
            sets += [f"#b{n} = :b{n}", f"#s{n} = :s{n}", f"#r{n} = :r{n}", f"#e{n} = :e{n}"]
            condition = f"attribute_not_exists(#e{n}) OR #e{n} <= :now"
            unreadable = assumed.unreadable.get(event_type)
            if unreadable is not None:  # it replaces a half that would not decode, if still that one
                values[f":old{n}"] = {"N": str(unreadable.received_at)}
                condition += f" OR #r{n} = :old{n}"
            conditions.append(f"({condition})")
            latest = max(latest, pending.expires_at)
        # TTL in epoch seconds; the latest half written expires last (every writer uses the same TTL)
        values[":ttl"] = {"N": str(math.ceil(latest / 1000))}
        sets.append("#ttl = :ttl")
        response = self._requests.call(
            f"record pending events of {cid}", "update_item", TableName=self.events_table, Key={KEY: {"S": cid}},
            UpdateExpression="SET " + ", ".join(sets), ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
        )  # fmt: skip
        return unexpired_sides(response.get("Attributes"), now)

    def _delete_pending_unless_arrived(self, cid: str, halves: frozenset[EventType], now: int) -> None:
        """Delete an id's pending item unless one of ``halves`` was written meanwhile
        (it stays, and completes the interaction later)."""
        names = {f"#e{n}": side_names(t)[3] for n, t in enumerate(sorted(halves))}
        try:
            self._requests.call(
                f"delete pending events of {cid}", "delete_item", TableName=self.events_table, Key={KEY: {"S": cid}},
                ConditionExpression=" AND ".join(f"(attribute_not_exists({n}) OR {n} <= :now)" for n in names),
                ExpressionAttributeNames=names, ExpressionAttributeValues={":now": {"N": str(now)}},
            )  # fmt: skip
        except ConditionFailed:
            pass  # the half that arrived keeps the item; the next event or sweep tidies it

    def _delete_pending(self, correlation_ids: Iterable[str]) -> None:
        self._requests.batch_write(
            self.events_table, [{"DeleteRequest": {"Key": {KEY: {"S": cid}}}} for cid in sorted(set(correlation_ids))]
        )

    # -- reads ----------------------------------------------------------------

    def get_interaction(self, correlation_id: str) -> Interaction | None:
        response = self._requests.call(
            f"read interaction {correlation_id}", "get_item", TableName=self.interactions_table,
            Key={KEY: {"S": correlation_id}}, ConsistentRead=True,
        )  # fmt: skip
        item = response.get("Item")
        return interaction_from_item(item) if item else None

    def iter_interactions(self, week: str | None = None) -> Iterator[Interaction]:
        """One week: a ``Query`` on ``week-index``, page by page, oldest first (ties by id).
        All weeks: a scan, sorted in memory (exports and operations only).

        The index is eventually consistent: an interaction written a moment
        ago may be missing (the weekly report runs long after its week)."""
        if week is None:
            items = self._requests.paginate("scan", TableName=self.interactions_table)
            yield from sorted(map(interaction_from_item, items), key=lambda i: (i.timestamp, i.correlation_id))
            return
        run: list[Interaction] = []
        for item in self._requests.paginate(
            "query", TableName=self.interactions_table, IndexName=WEEK_INDEX,
            KeyConditionExpression="#week = :week", ExpressionAttributeNames={"#week": "week"},
            ExpressionAttributeValues={":week": {"S": week}},
        ):  # fmt: skip
            interaction = interaction_from_item(item)
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
        for item in self._requests.paginate(
            "scan", TableName=self.interactions_table, ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
        ):  # fmt: skip
            by_status[InteractionStatus(item["status"]["S"])] += 1
        queries = responses = 0
        for item in self._requests.paginate("scan", TableName=self.events_table, **expiry_projection()):
            waiting = unexpired_types(item, now)
            queries += EventType.QUERY in waiting
            responses += EventType.RESPONSE in waiting
        return StoreCounts(interactions=by_status, pending_queries=queries, pending_responses=responses)

    def get_pending(self, correlation_id: str) -> PendingSides:
        response = self._requests.call(
            f"read pending events of {correlation_id}", "get_item", TableName=self.events_table,
            Key={KEY: {"S": correlation_id}}, ConsistentRead=True,
        )  # fmt: skip
        return unexpired_sides(response.get("Item"), now_ms(self.clock))

    # -- report deliveries ------------------------------------------------------

    def get_report_delivery(self, week: str, recipient: str) -> ReportDelivery | None:
        response = self._requests.call(
            f"read the report delivery of {week}", "get_item", TableName=self.reports_table,
            Key={"week": {"S": week}, "recipient": {"S": recipient}}, ConsistentRead=True,
        )  # fmt: skip
        item = response.get("Item")
        if not item:
            return None
        return ReportDelivery(week, recipient, item["channel"]["S"], int(item["sentAt"]["N"]))

    def record_report_delivery(self, delivery: ReportDelivery) -> None:
        self._requests.call(
            f"record the report delivery of {delivery.week}", "put_item", TableName=self.reports_table,
            Item={
                "week": {"S": delivery.week}, "recipient": {"S": delivery.recipient},
                "channel": {"S": delivery.channel}, "sentAt": {"N": str(delivery.sent_at)},
            },
        )  # fmt: skip

    def recent_report_deliveries(self, limit: int = 5) -> list[ReportDelivery]:
        """A scan of the reports table: one item per week and recipient, a few a year."""
        deliveries = [
            ReportDelivery(item["week"]["S"], item["recipient"]["S"], item["channel"]["S"], int(item["sentAt"]["N"]))
            for item in self._requests.paginate("scan", TableName=self.reports_table)
        ]
        return sorted(deliveries, key=lambda d: (d.sent_at, d.week), reverse=True)[:limit]

    def weeks(self) -> list[WeekSummary]:
        """A projected scan of the interactions (operations and the dashboard's week picker, not the request path)."""
        by_week: dict[str, tuple[int, int]] = {}
        for item in self._requests.paginate(
            "scan", TableName=self.interactions_table, ProjectionExpression="#week, processedAt",
            ExpressionAttributeNames={"#week": "week"},
        ):  # fmt: skip
            week = item["week"]["S"]
            count, latest = by_week.get(week, (0, 0))
            processed = int(item["processedAt"]["N"]) if "processedAt" in item else 0
            by_week[week] = (count + 1, max(latest, processed))
        return [WeekSummary(week, count, latest) for week, (count, latest) in sorted(by_week.items())]

    # -- maintenance ------------------------------------------------------------

    expires_by_itself = True  # DynamoDB TTL deletes expired items (lazily)

    def purge_expired(self) -> int:
        """Remove expired pending halves now (a scan); returns how many.

        DynamoDB's TTL deletes whole items for free, later; this is for when
        the table should be tidy sooner. Each removal is conditional on the
        half still being expired, so a half rewritten meanwhile stays."""
        return purge_expired_halves(self._requests, self.events_table, now_ms(self.clock))

    def prune_interactions(self, before_ms: int) -> int:
        """A scan for the interactions stamped before ``before_ms``, deleted 25 at a time (an operations job)."""
        old = [
            {KEY: item[KEY]}
            for item in self._requests.paginate(
                "scan",
                TableName=self.interactions_table,
                FilterExpression="#ts < :before",
                ExpressionAttributeNames={"#ts": "timestamp", "#key": KEY},
                ExpressionAttributeValues={":before": {"N": str(before_ms)}},
                ProjectionExpression="#key",
            )
        ]
        self._requests.batch_write(self.interactions_table, [{"DeleteRequest": {"Key": key}} for key in old])
        return len(old)

    def write_interactions(self, interactions: Sequence[Interaction]) -> None:
        """Put interactions directly, replacing any with the same id (bulk loads, benchmarks, migrations)."""
        self._requests.batch_write(
            self.interactions_table, [{"PutRequest": {"Item": interaction_item(i)}} for i in interactions]
        )
