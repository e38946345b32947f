"""What cv-analytics costs on AWS: requests per interaction measured on moto, priced at published unit prices.

The flow is the production one, on a moto server this script starts on loopback:
the real AnalyticsClient sends query/response pairs to the SQS FIFO queue; an
event source mapping driven by hand (tests/aws_e2e/lambda_poller.py: one
ReceiveMessage of up to 10, the Lambda event, one DeleteMessageBatch, as
Lambda's poller does, and its requests are billed too) invokes
``cv_analytics.entrypoints.aws_lambda.process_analytics``, which records into DynamoDB;
then ``weekly_report`` runs for a scheduled event and sends the report by SES.
Every request is counted with ``RequestCounter`` (SQS billed per 64 KiB chunk),
one counter per party: the client, the poller, the processor, the reporter.

Two traffic profiles are measured, because batching decides the SQS bill:

* **batched**: pairs logged in bursts, so every send, receive and delete carries 10
  messages (the lower bound, reached when events arrive faster than the
  client's 0.5 s flush interval);
* **one at a time**: each event sent, received and processed on its own (the
  upper bound, and what a quiet CV site does: FIFO event source mappings have
  no batching window).

DynamoDB on-demand bills request units, not requests. moto reports fixed
placeholder capacities, so units are estimated here from each request and
response by DynamoDB's published rules (writes: 1 WRU per started KB of the
item, again for each global secondary index it is written to; reads: 1 RRU per
started 4 KB strongly consistent, half eventually consistent; a key not found
still costs the minimum).

Unit prices are in ``PRICES`` below and in docs/aws-cost.md, with their date
and region; the assumptions (idle polling, cold starts, log bytes) are in
``ASSUMPTIONS`` and printed with the results.

Run: ``.venv/bin/python bench/aws_cost_bench.py`` (``BENCH_PAIRS``,
``BENCH_BURST_PAIRS``, ``BENCH_TRICKLE_PAIRS`` change the sizes).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import io
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
import boto3  # noqa: E402
import yaml  # noqa: E402
from _common import machine, table, write_result  # noqa: E402

from cv_analytics.deploy import resources  # noqa: E402
from cv_analytics.entrypoints import aws_lambda as handlers  # noqa: E402
from cv_analytics.deploy.bootstrap import bootstrap  # noqa: E402
from cv_analytics.boto.metering import RequestCounter, RequestCounts  # noqa: E402
from cv_analytics.client import AnalyticsClient  # noqa: E402
from cv_analytics.wiring import ANALYTICS_QUEUE, Settings  # noqa: E402
from cv_analytics.queues.sqs import SQSQueueBackend  # noqa: E402
from tests.aws_e2e.lambda_poller import EventSourceMapping, LambdaContext  # noqa: E402
from tests.moto_server import REGION, moto_server  # noqa: E402

PAIRS = int(os.environ.get("BENCH_PAIRS", "1000"))
TRICKLE_PAIRS = int(os.environ.get("BENCH_TRICKLE_PAIRS", "50"))
BURST_PAIRS = int(os.environ.get("BENCH_BURST_PAIRS", "50"))
MONTHLY_QUERIES = (10_000, 100_000, 1_000_000)

# -- unit prices (keep in step with docs/aws-cost.md) ------------------------------------

PRICES_AS_OF = "2026-11-22"
PRICES_REGION = "us-east-1"
PRICES: dict[str, float] = {
    # SQS FIFO, first 100 billion requests a month; every 64 KiB chunk of a payload is one request
    "sqs_fifo_per_million_requests": 0.50,
    "sqs_free_requests": 1_000_000,  # always free, standard and FIFO together
    # Lambda, x86_64
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,
    "lambda_free_requests": 1_000_000,  # always free
    "lambda_free_gb_seconds": 400_000,  # always free
    # DynamoDB on-demand (prices since 1 November 2024); no free request units in on-demand mode
    "dynamodb_per_million_wru": 0.625,
    "dynamodb_per_million_rru": 0.125,
    "dynamodb_storage_per_gb_month": 0.25,
    "dynamodb_free_storage_gb": 25,  # always free
    # SES outbound email (the 12-month free tier of new accounts is not counted)
    "ses_per_thousand_emails": 0.10,
    "ses_per_gb_sent": 0.12,
    # CloudWatch
    "cloudwatch_alarm_per_month": 0.10,  # standard resolution, per alarm metric
    "cloudwatch_free_alarms": 10,
    "logs_ingest_per_gb": 0.50,
    "logs_free_ingest_gb": 5,
}

SECONDS_PER_MONTH = 30 * 24 * 3600
WEEKS_PER_MONTH = 52 / 12
ASSUMPTIONS: dict[str, Any] = {
    # Lambda's SQS pollers long-poll (20 s) even when the queue is idle; AWS scales a quiet mapping down
    # to as few as 2 concurrent pollers (services-sqs-scaling); 5, the number it starts with, is assumed.
    "idle_pollers": 5,
    "long_poll_seconds": 20,
    # How often a processor container starts cold: once an hour, every hour of the month.
    "cold_starts_per_month": 730,
    "lambda_memory_gb": 0.5,  # 512 MB, as infra/template.yaml deploys both functions
    # An in-region DynamoDB or SQS round trip, for the Lambda duration model (Profile.billed_ms)
    "aws_call_ms": 10,
    # Lambda's own START/END/REPORT lines per invocation, beside ours (measured below)
    "lambda_platform_log_bytes": 350,
    # Each interaction item kept a month (storage is per GB-month; the item size is measured)
    "reports_per_month": WEEKS_PER_MONTH,
}

# -- DynamoDB request units by the published rules ----------------------------------------


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = str(data).lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(data) if isinstance(data, bytes | bytearray) else len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in data.items())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in data)
    return 0


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


@dataclass
class OnDemandUnits:
    """Write and read request units per table, estimated from each call's request and response."""

    #: tables whose items are also written to global secondary indexes (ALL projection): how many
    index_copies: Mapping[str, int]
    wru: Counter[str] = field(default_factory=Counter)
    rru: Counter[str] = field(default_factory=Counter)
    #: read units of scans (the orphan sweep), kept apart: they are paid per sweep, not per event
    scan_rru: float = 0.0
    scans: int = 0
    #: sizes of the items written, per table
    sizes: dict[str, list[int]] = field(default_factory=dict)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._remember)
        client.meta.events.register("after-call.dynamodb", self._count)

    def snapshot(self) -> tuple[dict[str, float], dict[str, float]]:
        return dict(self.wru), dict(self.rru)

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = copy.deepcopy(params)

    def _write(self, table: str, item: Mapping[str, Any] | None) -> None:
        size = item_size(item) if item else 0
        self.sizes.setdefault(table, []).append(size)
        units = max(1, math.ceil(size / 1024))
        copies = self.index_copies.get(table, 0) if item and "week" in item and "timestamp" in item else 0
        self.wru[table] += units * (1 + copies)

    def _read(self, table: str, items: Iterable[Mapping[str, Any]], misses: int, consistent: bool) -> None:
        factor = 1.0 if consistent else 0.5
        units = sum(max(1, math.ceil(item_size(i) / 4096)) for i in items) + misses
        self.rru[table] += units * factor

    def _count(self, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("bench_params", {})
        operation = model.name
        table = params.get("TableName", "")
        if operation == "PutItem":
            self._write(table, params["Item"])
        elif operation == "UpdateItem":
            self._write(table, parsed.get("Attributes") or params.get("Key"))
        elif operation == "DeleteItem":
            self.wru[table] += 1  # pending items are far below 1 KB
        elif operation == "BatchWriteItem":
            unprocessed = parsed.get("UnprocessedItems", {})
            for name, requests in params.get("RequestItems", {}).items():
                for request in requests[: len(requests) - len(unprocessed.get(name, []))]:
                    if "PutRequest" in request:
                        self._write(name, request["PutRequest"]["Item"])
                    else:
                        self.wru[name] += 1
        elif operation == "GetItem":
            item = parsed.get("Item")
            self._read(table, [item] if item else [], 0 if item else 1, bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for name, request in params.get("RequestItems", {}).items():
                found = parsed.get("Responses", {}).get(name, [])
                unprocessed = len(parsed.get("UnprocessedKeys", {}).get(name, {}).get("Keys", []))
                misses = len(request["Keys"]) - unprocessed - len(found)
                self._read(name, found, misses, bool(request.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            total = sum(item_size(i) for i in items)
            scanned = int(parsed.get("ScannedCount", len(items)) or 0)
            if scanned > len(items):  # filtered out, but read and billed all the same
                total = total * scanned // len(items) if items else scanned * 1024
            units = max(1, math.ceil(total / 4096)) * (1.0 if params.get("ConsistentRead") else 0.5)
            if operation == "Scan":
                self.scan_rru += units
                self.scans += 1
            else:
                self.rru[table] += units


# -- one measured profile ------------------------------------------------------------------


@dataclass
class Profile:
    name: str
    interactions: int
    client: RequestCounts
    poller: RequestCounts
    processor: RequestCounts
    wru: dict[str, float]
    rru: dict[str, float]
    #: read units per orphan sweep (a scan of the pending events)
    sweep_rru: float
    #: mean size of an interaction item, in bytes
    interaction_bytes: float
    invocations: int
    durations_ms: list[float]
    log_bytes: int

    @property
    def events(self) -> int:
        return 2 * self.interactions

    def per_interaction(self, value: float) -> float:
        return value / self.interactions

    @property
    def sqs_billable(self) -> int:
        return sum(c.billable_requests("sqs") for c in (self.client, self.poller, self.processor))

    @property
    def empty_receives(self) -> int:
        """Receives that found nothing (the end of a drain): idle polling, priced apart."""
        return self.poller.billable_requests("sqs", "ReceiveMessage") - self.invocations

    @property
    def sqs_steady(self) -> int:
        """What SQS bills per event in steady state: sends, receives that got messages, deletes."""
        return self.sqs_billable - self.sqs_startup - self.empty_receives

    def billed_ms(self) -> float:
        """Billed duration of a warm invocation: the median measured on moto, or the AWS calls it makes at
        ASSUMPTIONS["aws_call_ms"] each plus 5 ms of Python, whichever is longer (moto on loopback can be faster)."""
        modelled = self.processor.calls_to("dynamodb") / self.invocations * ASSUMPTIONS["aws_call_ms"] + 5
        return float(math.ceil(max(statistics.median(self.durations_ms), modelled)))

    @property
    def sqs_startup(self) -> int:
        """Requests made once per client process or Lambda container (queue attributes, URLs)."""
        return sum(
            c.billable_requests("sqs", op)
            for c in (self.client, self.processor)
            for op in ("GetQueueAttributes", "GetQueueUrl")
        )


def _flow_events(pairs: Iterable[tuple[str, str, int]]) -> Iterable[tuple[str, str, str, int]]:
    for cid, session, ts in pairs:
        yield "query", cid, session, ts
        yield "response", cid, session, ts + 900


def _log(client: AnalyticsClient, kind: str, cid: str, session: str, ts: int, n: int) -> None:
    if kind == "query":
        client.log_query(
            f"Which TypeScript and Node.js projects has she shipped to production? ({n})",
            session_id=session, correlation_id=cid, timestamp=ts,
            metadata={"userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "referer": "https://cv.example.dev/"},
        )  # fmt: skip
    else:
        client.log_response(
            cid, "Three: a payments API, an event pipeline and this assistant, all in TypeScript on Node.js.",
            session_id=session, timestamp=ts, total_time=900, llm_time=700, retrieval_time=200, cache_hit=False,
            match_quality=0.92, sources_used=["TypeScript", "Node.js"],
        )  # fmt: skip


def run_profile(
    name: str, env: dict[str, str], interactions: int, *, one_at_a_time: bool, spool: pathlib.Path
) -> Profile:
    settings = Settings.from_env(env)
    counters = {party: RequestCounter() for party in ("client", "poller", "processor")}
    tables = {spec.name(PREFIX): len(spec.indexes) for spec in resources.TABLES}
    units = OnDemandUnits(tables)
    handlers.configure(env=env, request_counter=counters["processor"])
    # Build the container's warm state now (as its first invocation would) to put the unit estimator on
    # the store's DynamoDB client; the first invocation below still counts as the cold start.
    units.attach(handlers.warm.processor_state().store.client)  # type: ignore[attr-defined]

    sqs = boto3.client("sqs", region_name=REGION)
    mapping = EventSourceMapping(sqs, env["AWS_SQS_URL"])
    counters["poller"].attach(sqs)
    durations: list[float] = []
    log_out = io.StringIO()

    def timed(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
        started = time.perf_counter()
        answer = handlers.process_analytics(event, context)
        durations.append((time.perf_counter() - started) * 1000)
        return answer

    client = AnalyticsClient(
        lambda: SQSQueueBackend(
            queue_urls=settings.sqs_queue_urls,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            request_counter=counters["client"],
        ).queue(ANALYTICS_QUEUE),
        spool_dir=spool,
    )
    start = int(dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC).timestamp() * 1000)
    pairs = [(str(uuid.uuid4()), f"session-{i // 4}", start + i * 60_000) for i in range(interactions)]
    invocations = 0
    with contextlib.redirect_stdout(log_out):
        if one_at_a_time:
            for n, (kind, cid, session, ts) in enumerate(_flow_events(pairs)):
                _log(client, kind, cid, session, ts, n)
                assert client.flush(timeout=30), "the client could not send"
                poll = mapping.poll(timed, LambdaContext())
                assert poll is not None and not poll.failed and len(poll.deleted) == 1
                invocations += 1
        else:
            # Bursts of BURST_PAIRS: moto checks a FIFO message's deduplication id against every message in
            # the queue, so a queue thousands deep slows it to a crawl; a burst of 50 pairs keeps every
            # send, receive and delete full (10 messages) as a longer one would.
            events = list(_flow_events(pairs))
            for burst in range(0, len(events), 2 * BURST_PAIRS):
                for n, (kind, cid, session, ts) in enumerate(events[burst : burst + 2 * BURST_PAIRS], start=burst):
                    _log(client, kind, cid, session, ts, n)
                assert client.flush(timeout=120), "the client could not send"
                polls = mapping.drain(timed)
                assert not [p for p in polls if p.failed]
                invocations += len(polls)
    client.close(timeout=10)
    stats = client.stats()
    assert stats.sent == 2 * interactions, stats
    sqs.close()
    wru, rru = units.snapshot()
    interaction_sizes = units.sizes.get(resources.INTERACTIONS_TABLE.name(PREFIX), [0])
    profile = Profile(
        name,
        interactions,
        counters["client"].snapshot(),
        counters["poller"].snapshot(),
        counters["processor"].snapshot(),
        wru,
        rru,
        units.scan_rru / max(1, units.scans),
        statistics.mean(interaction_sizes),
        invocations,
        durations,
        len(log_out.getvalue().encode()),
    )
    handlers.reset()
    return profile


PREFIX = "cv-bench"


@dataclass
class ReportRun:
    counts: RequestCounts
    wru: dict[str, float]
    rru: dict[str, float]
    duration_ms: float
    email_bytes: int
    #: interactions in the week reported
    interactions: int

    @property
    def week_rru_per_interaction(self) -> float:
        """Read units of the week's Query per interaction in it (a week's report reads the week and the one before)."""
        return self.rru.get(resources.INTERACTIONS_TABLE.name(PREFIX), 0.0) / max(1, self.interactions)

    @property
    def fixed_rru(self) -> float:
        """Read units that do not grow with traffic: the send-once record."""
        return sum(self.rru.values()) - self.rru.get(resources.INTERACTIONS_TABLE.name(PREFIX), 0.0)


def run_report(env: dict[str, str], endpoint: str, interactions: int) -> ReportRun:
    counter = RequestCounter()
    units = OnDemandUnits({})
    handlers.configure(env=env, request_counter=counter)
    state = handlers.warm.reporter_state()  # build it now, to put the unit estimator on its DynamoDB client
    units.attach(state.store.client)  # type: ignore[attr-defined]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        answer = handlers.weekly_report(
            {"detail-type": "Scheduled Event", "time": "2026-11-23T07:00:00Z"}, LambdaContext()
        )
    duration = (time.perf_counter() - started) * 1000
    assert answer["status"] == "sent", answer
    import urllib.request

    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as response:
        raw = json.loads(response.read())["ses"]["RawMessage"]
    handlers.reset()
    wru, rru = units.snapshot()
    return ReportRun(counter.snapshot(), wru, rru, duration, len(raw[-1]["raw_data"].encode()), interactions)


def measure_cold_start(env: dict[str, str]) -> float:
    """Milliseconds from importing the handler module to the end of a first (empty) invocation, in a fresh
    interpreter: Lambda's INIT plus the building of the warm state, which Lambda bills since August 2025."""
    code = (
        "import time; t = time.perf_counter(); "
        "import cv_analytics.entrypoints.aws_lambda as h; h.process_analytics({'Records': []}, None); "
        "print((time.perf_counter() - t) * 1000)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


# -- monthly costs -----------------------------------------------------------------------------


@dataclass
class Month:
    queries: int
    lines: dict[str, float]
    list_price: float
    usage: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def alarm_count() -> int:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "infra" / "template.yaml").read_text(), Loader=Loader)
    return sum(1 for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm")


def month_of(profile: Profile, report: ReportRun, cold_ms: float, queries: int, alarms: int) -> Month:
    p = PRICES
    a = ASSUMPTIONS
    per = profile.per_interaction
    gb = a["lambda_memory_gb"]
    cold_starts = min(a["cold_starts_per_month"], per(profile.invocations) * queries)
    reports = a["reports_per_month"]
    idle = a["idle_pollers"] * SECONDS_PER_MONTH / a["long_poll_seconds"]
    startup_sqs = profile.processor.billable_requests(
        "sqs", "GetQueueAttributes"
    ) + profile.processor.billable_requests("sqs", "GetQueueUrl")
    sqs_requests = per(profile.sqs_steady) * queries + idle + cold_starts * startup_sqs
    invocations = per(profile.invocations) * queries
    lambda_requests = invocations + reports
    gb_seconds = (
        (invocations * profile.billed_ms() + cold_starts * cold_ms + reports * (report.duration_ms + cold_ms))
        / 1000
        * gb
    )
    wru = per(sum(profile.wru.values())) * queries + sum(report.wru.values()) * reports
    # the orphan sweep: a scan at most every 5 minutes (handlers.warm.DEFAULT_SWEEP_INTERVAL_SECONDS), all month
    sweeps = min(invocations, SECONDS_PER_MONTH / handlers.warm.DEFAULT_SWEEP_INTERVAL_SECONDS)
    # each interaction is read by its week's report and again by the next week's (for the trends)
    report_rru = report.week_rru_per_interaction * queries * 2 + report.fixed_rru * reports
    rru = per(sum(profile.rru.values())) * queries + report_rru + sweeps * profile.sweep_rru
    storage_gb = queries * profile.interaction_bytes * 2 / 1e9  # a month of interactions, and their index copies
    log_gb = (per(profile.log_bytes) * queries + invocations * a["lambda_platform_log_bytes"]) / 1e9
    emails = reports

    def over(used: float, free: float) -> float:
        return max(0.0, used - free)

    lines = {
        "SQS": over(sqs_requests, p["sqs_free_requests"]) / 1e6 * p["sqs_fifo_per_million_requests"],
        "Lambda": over(lambda_requests, p["lambda_free_requests"]) / 1e6 * p["lambda_per_million_requests"]
        + over(gb_seconds, p["lambda_free_gb_seconds"]) * p["lambda_per_gb_second"],
        "DynamoDB": wru / 1e6 * p["dynamodb_per_million_wru"]
        + rru / 1e6 * p["dynamodb_per_million_rru"]
        + over(storage_gb, p["dynamodb_free_storage_gb"]) * p["dynamodb_storage_per_gb_month"],
        "SES": emails / 1000 * p["ses_per_thousand_emails"] + emails * report.email_bytes / 1e9 * p["ses_per_gb_sent"],
        "CloudWatch": over(alarms, p["cloudwatch_free_alarms"]) * p["cloudwatch_alarm_per_month"]
        + over(log_gb, p["logs_free_ingest_gb"]) * p["logs_ingest_per_gb"],
    }
    list_price = (
        sqs_requests / 1e6 * p["sqs_fifo_per_million_requests"]
        + lambda_requests / 1e6 * p["lambda_per_million_requests"]
        + gb_seconds * p["lambda_per_gb_second"]
        + lines["DynamoDB"]
        + storage_gb * p["dynamodb_storage_per_gb_month"]
        + lines["SES"]
        + alarms * p["cloudwatch_alarm_per_month"]
        + log_gb * p["logs_ingest_per_gb"]
    )
    usage = {
        "sqs_requests": sqs_requests,
        "lambda_requests": lambda_requests,
        "gb_seconds": gb_seconds,
        "wru": wru,
        "rru": rru,
        "storage_gb": storage_gb,
        "log_gb": log_gb,
    }
    return Month(queries, lines, list_price, usage)


# -- output -----------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _per(value: float) -> str:
    return f"{value:.3f}"


def render(profiles: list[Profile], report: ReportRun, cold_ms: float, alarms: int, wall: float) -> str:
    out = [
        "# AWS cost benchmark\n",
        (
            f"Measured on moto {_moto_version()} ({machine()}), {wall:.0f} s. Prices: {PRICES_REGION}, as of "
            f"{PRICES_AS_OF} (docs/aws-cost.md).\n"
        ),
        "## Requests per interaction (one query + one response)\n",
    ]
    rows = []
    for pr in profiles:
        per = pr.per_interaction
        c, q, h = pr.client, pr.poller, pr.processor
        rows.append([
            pr.name,
            f"{pr.interactions:,}",
            _per(per(c.billable_requests("sqs", "SendMessageBatch"))),
            _per(per(q.billable_requests("sqs", "ReceiveMessage") - pr.empty_receives)),
            _per(per(q.billable_requests("sqs", "DeleteMessageBatch"))),
            _per(per(pr.sqs_startup)),
            _per(pr.sqs_steady / pr.events),
            _per(pr.sqs_billable / pr.events),
            _per(per(pr.invocations)),
            _per(per(h.calls_to("dynamodb"))),
            _per(per(sum(pr.wru.values()))),
            _per(per(sum(pr.rru.values()))),
            f"{statistics.median(pr.durations_ms):.0f} / {pr.billed_ms():.0f}",
        ])  # fmt: skip
    out.append(
        table(
            [
                "profile",
                "interactions",
                "SQS sends",
                "SQS receives",
                "SQS deletes",
                "SQS start-up",
                "SQS per event (steady)",
                "SQS per event (all)",
                "Lambda invocations",
                "DynamoDB calls",
                "DynamoDB WRU",
                "DynamoDB RRU",
                "invocation ms: moto median / billed",
            ],
            rows,
        )
    )
    out.append(
        "\nSQS counts are billed requests (64 KiB chunks); *start-up* is what a client process or a Lambda "
        "container asks once (queue attributes and URLs). Receives and deletes are the event source "
        "mapping's, billed to the account like any other; receives that find nothing are the idle polling "
        "priced below. Billed invocation time is the longer of the moto median and the AWS calls made at "
        f"{ASSUMPTIONS['aws_call_ms']} ms each plus 5 ms.\n"
    )
    out.append(
        f"Weekly report (once a week) over {report.interactions:,} interactions: "
        f"{report.counts.calls_to('dynamodb')} DynamoDB calls "
        f"({sum(report.wru.values()):g} WRU, {sum(report.rru.values()):g} RRU), "
        f"{report.counts.calls_to('ses', 'SendRawEmail')} SES SendRawEmail of {report.email_bytes / 1024:.0f} KiB, "
        f"{report.duration_ms:.0f} ms. A processor cold start (import + first invocation, fresh interpreter): "
        f"{cold_ms:.0f} ms. Interaction item: {profiles[0].interaction_bytes:.0f} bytes on average; an orphan sweep "
        f"reads {profiles[0].sweep_rru:g} RRU. Alarms in the template: {alarms}.\n"
    )

    for pr in profiles:
        out.append(f"## Monthly cost, {pr.name}\n")
        months = [month_of(pr, report, cold_ms, q, alarms) for q in MONTHLY_QUERIES]
        services = list(months[0].lines)
        rows = [[s, *(_money(m.lines[s]) for m in months)] for s in services]
        rows.append(["**total (free tiers applied)**", *(f"**{_money(m.total)}**" for m in months)])
        rows.append(["total at list price (no free tier)", *(_money(m.list_price) for m in months)])
        rows.append(["SQS requests", *(f"{m.usage['sqs_requests']:,.0f}" for m in months)])
        rows.append(
            [
                "Lambda requests / GB-s",
                *(f"{m.usage['lambda_requests']:,.0f} / {m.usage['gb_seconds']:,.0f}" for m in months),
            ]
        )
        rows.append(["DynamoDB WRU / RRU", *(f"{m.usage['wru']:,.0f} / {m.usage['rru']:,.0f}" for m in months)])
        out.append(table(["", *(f"{q:,} queries/month" for q in MONTHLY_QUERIES)], rows) + "\n")

    batched = profiles[0]
    steady = batched.sqs_steady / batched.events
    ten_k = [month_of(pr, report, cold_ms, 10_000, alarms) for pr in profiles]
    free = ("SQS", "Lambda", "CloudWatch")
    out.append("## Goals\n")
    out.append(
        table(
            ["goal", "result", "met"],
            [
                [
                    "≤ 0.3 SQS requests per event through batching",
                    (
                        f"{steady:.3f} per event in steady state ({batched.sqs_billable / batched.events:.4f} with "
                        "the start-up requests and the final empty receive of this short run)"
                    ),
                    "yes" if steady <= 0.3 + 1e-9 else "no",
                ],
                [
                    "a month of 10k queries inside the free tier",
                    "; ".join(
                        f"{pr.name}: {_money(m.total)} = DynamoDB {_money(m.lines['DynamoDB'])} (on-demand has no "
                        f"free request units) + SES {_money(m.lines['SES'])} (no free tier counted); "
                        f"{', '.join(free)} {_money(sum(m.lines[k] for k in free))}"
                        for pr, m in zip(profiles, ten_k)
                    ),
                    "yes for SQS, Lambda and CloudWatch"
                    if all(sum(m.lines[k] for k in free) == 0 for m in ten_k)
                    else "no",
                ],
            ],
        )
    )
    out.append(
        "\nAssumptions: "
        + "; ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in ASSUMPTIONS.items())
        + ". Idle polling ("
        + f"{ASSUMPTIONS['idle_pollers'] * SECONDS_PER_MONTH / ASSUMPTIONS['long_poll_seconds']:,.0f} empty receives a month) "
        "is counted in every column: it is most of the SQS bill at low volume. The one-at-a-time profile is the "
        "honest figure for a quiet site (a FIFO event source mapping has no batching window), the batched one "
        "for bursts; real traffic falls between them."
    )
    return "\n".join(out)


def _moto_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("moto")


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cv-aws-cost-") as tmp, moto_server(tmp) as endpoint:
        report = bootstrap(boto3.Session(region_name=REGION), PREFIX)
        sender = "reports@cv.example.dev"
        boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=sender)
        env = {
            **report["environment"],
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "SENDER_EMAIL": f"CV analytics <{sender}>",
            "RECIPIENT_EMAIL": "owner@cv.example.dev",
            "CV_ANALYTICS_DATA_DIR": str(pathlib.Path(tmp) / "data"),
        }
        spool = pathlib.Path(tmp) / "spool"
        profiles = [
            run_profile(
                f"batched ({PAIRS:,} pairs in bursts of {BURST_PAIRS})",
                env,
                PAIRS,
                one_at_a_time=False,
                spool=spool / "a",
            ),
            run_profile(
                f"one at a time ({TRICKLE_PAIRS:,} pairs, each event alone)",
                env,
                TRICKLE_PAIRS,
                one_at_a_time=True,
                spool=spool / "b",
            ),
        ]
        weekly = run_report(env, endpoint, PAIRS + TRICKLE_PAIRS)  # all of them in 2026-W47
        cold_ms = statistics.median(measure_cold_start(env) for _ in range(3))
        markdown = render(profiles, weekly, cold_ms, alarm_count(), time.perf_counter() - started)
        markdown += "\n\n<details><summary>Every request of the batched profile</summary>\n\n"
        for party in ("client", "poller", "processor"):
            markdown += f"**{party}**\n\n{getattr(profiles[0], party).to_markdown()}\n\n"
        markdown += f"**reporter**\n\n{weekly.counts.to_markdown()}\n\n</details>"
    write_result("aws_cost_bench", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
