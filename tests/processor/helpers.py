"""Messages of the processor suites, and the engine run the way the worker runs it."""

from __future__ import annotations

from collections.abc import Sequence

from cv_analytics.events import QueryEvent, ResponseEvent, to_json
from cv_analytics.processor import AnalyticsHandler
from cv_analytics.queues.base import Message, OutgoingMessage, Queue
from cv_analytics.queues.batch import BatchEngine, BatchResult
from cv_analytics.stores.base import Store

TS = 1_763_164_800_000


def q(cid: str, session: str = "s1") -> OutgoingMessage:
    event = QueryEvent(correlation_id=cid, timestamp=TS, session_id=session, query=f"{cid}?")
    return OutgoingMessage(to_json(event), event.group_id, event.dedup_id)


def r(cid: str, session: str = "s1") -> OutgoingMessage:
    event = ResponseEvent(correlation_id=cid, timestamp=TS + 100, session_id=session, response="ok")
    return OutgoingMessage(to_json(event), event.group_id, event.dedup_id)


def poison(session: str = "s1", text: str = '{"eventType": "query", "timestamp": 1}') -> OutgoingMessage:
    return OutgoingMessage(text, session, f"poison-{session}-{len(text)}")


def deep(session: str = "s1", depth: int = 5_000) -> OutgoingMessage:
    """A valid-looking query whose metadata nests ``depth`` arrays deep (10 KB: well under 256 KiB)."""
    body = (
        '{"eventType":"query","correlationId":"deep","timestamp":%d,"sessionId":"%s","query":"q",'
        '"metadata":{"a":%s%s}}' % (TS, session, "[" * depth, "]" * depth)
    )
    return OutgoingMessage(body, session, f"deep-{session}")


def process(store: Store, batch: Sequence[Message], *, fifo: bool = True) -> BatchResult:
    """The engine's outcomes for a batch, before any queue is touched."""
    return BatchEngine(AnalyticsHandler(store)).process(batch, fifo=fifo)


def process_and_settle(queue: Queue, store: Store, batch: Sequence[Message]) -> BatchResult:
    """Outcomes, then dead-lettering and releases, as on Lambda (nothing deleted)."""
    engine = BatchEngine(AnalyticsHandler(store))
    result = engine.process(batch, fifo=queue.config.fifo, max_receive_count=queue.config.max_receive_count)
    return engine.settle(queue, result, delete=False, outage_delay=None)
