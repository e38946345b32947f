"""Count the AWS requests boto3 clients make, for cost figures and tests.

A :class:`RequestCounter` hooks into botocore's event system
(https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html)
of the clients or sessions it is attached to and tallies, per service and
operation:

* **calls**: API calls as the code makes them (``before-call``), once per call
  however many times botocore retries it;
* **attempts**: HTTP requests actually sent (``before-send``), retries included;
* **errors**: calls that ended in an error (``after-call-error`` and error responses);
* **billable requests**: what SQS bills, where every 64 KiB chunk of a request's
  or response's payload is one request (https://aws.amazon.com/sqs/pricing/);
  every other service counts one per attempt;
* **capacity units**: DynamoDB's ``ConsumedCapacity`` per table, from responses
  of calls made with ``ReturnConsumedCapacity="TOTAL"`` (the DynamoDB store
  always asks for it). On-demand tables bill these units, not requests.

Nothing here imports boto3: the counter only registers callbacks on objects
that already exist, so the embedded install can import it.

Usage::

    counter = RequestCounter()
    store = DynamoDBStore(tables, region=region, request_counter=counter)
    before = counter.snapshot()
    store.record_events(events)
    used = counter.snapshot() - before
    used.calls_to("dynamodb"), used.capacity_units, used.to_markdown()
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: SQS bills each 64 KiB chunk of a payload as one request.
SQS_BILLING_CHUNK_BYTES = 64 * 1024

Key = tuple[str, str]  # (service, operation), e.g. ("sqs", "SendMessageBatch")


@dataclass(frozen=True)
class RequestCounts:
    """An immutable view of a :class:`RequestCounter`; subtract two for the requests in between."""

    calls: Mapping[Key, int] = field(default_factory=dict)
    attempts: Mapping[Key, int] = field(default_factory=dict)
    errors: Mapping[Key, int] = field(default_factory=dict)
    billable: Mapping[Key, int] = field(default_factory=dict)
    #: DynamoDB capacity units consumed, per table name.
    capacity_units: Mapping[str, float] = field(default_factory=dict)

    def calls_to(self, service: str | None = None, operation: str | None = None) -> int:
        """API calls to ``service`` (``sqs``, ``dynamodb``, ``cloudwatch``), optionally one ``operation``."""
        return _total(self.calls, service, operation)

    def attempts_to(self, service: str | None = None, operation: str | None = None) -> int:
        """HTTP requests sent, retries included."""
        return _total(self.attempts, service, operation)

    def errors_from(self, service: str | None = None, operation: str | None = None) -> int:
        return _total(self.errors, service, operation)

    def billable_requests(self, service: str | None = None, operation: str | None = None) -> int:
        """Requests as billed: SQS counts a request per 64 KiB chunk of payload, others one per attempt."""
        return _total(self.billable, service, operation)

    @property
    def total_capacity_units(self) -> float:
        return sum(self.capacity_units.values())

    def __sub__(self, other: RequestCounts) -> RequestCounts:
        return RequestCounts(
            calls=_minus(self.calls, other.calls),
            attempts=_minus(self.attempts, other.attempts),
            errors=_minus(self.errors, other.errors),
            billable=_minus(self.billable, other.billable),
            capacity_units={
                table: round(units - other.capacity_units.get(table, 0.0), 6)
                for table, units in self.capacity_units.items()
                if units - other.capacity_units.get(table, 0.0) > 0
            },
        )

    def to_markdown(self) -> str:
        """A Markdown table: one row per service and operation, then capacity units per table."""
        lines = ["| service | operation | calls | attempts | errors | billable requests |", "|---|---|---:|---:|---:|---:|"]
        for service, operation in sorted(set(self.calls) | set(self.attempts)):
            key = (service, operation)
            lines.append(
                f"| {service} | {operation} | {self.calls.get(key, 0)} | {self.attempts.get(key, 0)} | "
                f"{self.errors.get(key, 0)} | {self.billable.get(key, 0)} |"
            )
        if self.capacity_units:
            lines += ["", "| DynamoDB table | capacity units |", "|---|---:|"]
            lines += [f"| {table} | {units:g} |" for table, units in sorted(self.capacity_units.items())]
        return "\n".join(lines)


class RequestCounter:
    """Tallies the AWS requests of every client or session it is :meth:`attach`-ed to. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[Key] = Counter()
        self._attempts: Counter[Key] = Counter()
        self._errors: Counter[Key] = Counter()
        self._billable: Counter[Key] = Counter()
        self._capacity: dict[str, float] = {}

    def attach(self, *targets: Any) -> None:
        """Count the requests of boto3 clients or sessions (``boto3.Session``, ``botocore.session.Session``).

        A session counts every client created from it afterwards. Attaching the
        same object twice counts its requests once.
        """
        for target in targets:
            events = _event_system(target)
            # botocore ignores a second registration under the same unique_id: attaching twice counts once
            suffix = f"cv-analytics-counter-{id(self)}"
            events.register("before-call", self._on_call, unique_id=f"{suffix}-call")
            events.register("before-send", self._on_send, unique_id=f"{suffix}-send")
            events.register("after-call", self._on_response, unique_id=f"{suffix}-response")
            events.register("after-call-error", self._on_error, unique_id=f"{suffix}-error")

    def snapshot(self) -> RequestCounts:
        """The counts so far, frozen."""
        with self._lock:
            return RequestCounts(
                calls=dict(self._calls),
                attempts=dict(self._attempts),
                errors=dict(self._errors),
                billable=dict(self._billable),
                capacity_units=dict(self._capacity),
            )

    def reset(self) -> None:
        with self._lock:
            for counter in (self._calls, self._attempts, self._errors, self._billable):
                counter.clear()
            self._capacity.clear()

    # shortcuts on the live counts
    def calls_to(self, service: str | None = None, operation: str | None = None) -> int:
        return self.snapshot().calls_to(service, operation)

    def attempts_to(self, service: str | None = None, operation: str | None = None) -> int:
        return self.snapshot().attempts_to(service, operation)

    # -- botocore hooks ---------------------------------------------------------------

    def _on_call(self, event_name: str, **_: Any) -> None:
        key = _key(event_name)
        with self._lock:
            self._calls[key] += 1

    def _on_send(self, event_name: str, request: Any = None, **_: Any) -> None:
        key = _key(event_name)
        body = getattr(request, "body", None)
        size = len(body) if isinstance(body, bytes | bytearray | str) else 0
        with self._lock:
            self._attempts[key] += 1
            self._billable[key] += _billable(key[0], size)

    def _on_response(self, event_name: str, http_response: Any = None, parsed: Any = None, **_: Any) -> None:
        key = _key(event_name)
        units = list(_consumed_capacity(parsed))
        status = getattr(http_response, "status_code", 200)
        # A large receive is billed by its response payload; the send side was counted as one chunk.
        extra = 0
        if key[0] == "sqs" and http_response is not None:
            content = getattr(http_response, "content", b"") or b""
            extra = max(0, _billable("sqs", len(content)) - 1)
        with self._lock:
            if status >= 400:
                self._errors[key] += 1
            self._billable[key] += extra
            for table, value in units:
                self._capacity[table] = round(self._capacity.get(table, 0.0) + value, 6)

    def _on_error(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self._errors[_key(event_name)] += 1


def _event_system(target: Any) -> Any:
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events"):  # a boto3 / botocore client
        return meta.events
    if hasattr(target, "events") and hasattr(target.events, "register"):  # boto3.Session
        return target.events
    get_component = getattr(target, "get_component", None)  # botocore.session.Session
    if get_component is not None:
        return get_component("event_emitter")
    raise TypeError(f"cannot count the requests of {type(target).__name__}: pass a boto3 client or session")


def _key(event_name: str) -> Key:
    # "before-call.sqs.SendMessageBatch" -> ("sqs", "SendMessageBatch")
    parts = event_name.split(".")
    service = parts[1] if len(parts) > 1 else "?"
    operation = parts[2] if len(parts) > 2 else "?"
    return service, operation


def _billable(service: str, payload_bytes: int) -> int:
    if service != "sqs":
        return 1
    return max(1, math.ceil(payload_bytes / SQS_BILLING_CHUNK_BYTES))


def _consumed_capacity(parsed: Any) -> Iterable[tuple[str, float]]:
    if not isinstance(parsed, Mapping):
        return
    consumed = parsed.get("ConsumedCapacity")
    entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    for entry in entries:
        if isinstance(entry, Mapping) and "TableName" in entry:
            yield str(entry["TableName"]), float(entry.get("CapacityUnits", 0.0))


def _total(counts: Mapping[Key, int], service: str | None, operation: str | None) -> int:
    return sum(
        n for (s, o), n in counts.items() if (service is None or s == service) and (operation is None or o == operation)
    )


def _minus(a: Mapping[Key, int], b: Mapping[Key, int]) -> dict[Key, int]:
    return {k: v - b.get(k, 0) for k, v in a.items() if v - b.get(k, 0)}
