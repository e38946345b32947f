"""``AnalyticsClient``: log analytics events from a request path without waiting for anything.

Typical use in a FastAPI CV assistant (one client per process, see :func:`get_client`)::

    from cv_analytics import get_client

    analytics = get_client()

    @app.post("/ask")
    def ask(question: Question, request: Request) -> Answer:
        started = time.perf_counter()
        cid = analytics.log_query(
            question.text,
            session_id=question.session_id,
            metadata={"userAgent": request.headers.get("user-agent"), "referer": request.headers.get("referer")},
        )
        answer = assistant.answer(question.text)
        analytics.log_response(
            cid,
            answer.text,
            session_id=question.session_id,
            total_time=(time.perf_counter() - started) * 1000,
            llm_time=answer.llm_ms,
            retrieval_time=answer.retrieval_ms,
            cache_hit=answer.cached,
            match_quality=answer.match_quality,
            sources_used=answer.sources,
        )
        return answer

What the caller's thread does per call: build a tuple, append it to a bounded
in-memory buffer (an O(1), lock-free ``deque.append``), and, once per batch,
wake the sender. No validation, no JSON, no I/O, no exception. Everything else
happens on a daemon sender thread (see :mod:`.sender`): validation, batching
(10 per send as events come in; a backlog up to ``max_send_events`` per
``send_many``, which SQS splits into requests of 10 and 256 KiB at most),
retries with exponential backoff and
full jitter, and a disk spool (:mod:`.spool`) whenever the queue cannot take
the events: during an outage, and during a burst that would overflow the buffer.

Counters (:meth:`AnalyticsClient.stats`) say what happened to every event:
``sent``, ``spooled`` (written to disk, to be replayed), ``dropped`` (buffer or
spool bound reached), ``failed`` (the queue can never accept it: too large),
``invalid`` (not a valid event), ``retries``, and ``buffered`` right now; also
``seconds_timestamps`` (timestamps given in seconds, converted to milliseconds) and
``dropped_fields`` (optional fields out of range dropped from events that were kept).

One bad event costs at most itself: whatever fails while validating or encoding
it (even a ``RecursionError`` from a deeply nested ``metadata``) counts it as
``invalid``, and the other events go on; ``flush()`` reports success only once
every event logged before it is sent, spooled, or counted as dropped/invalid/failed.

Exit and SIGTERM: at interpreter exit, and on SIGTERM when the application has
not installed a handler of its own (see :func:`install_sigterm_drain`), each
client sends what it can within ``shutdown_timeout`` (5 s) and spools the rest
to ``spool_dir``, where the next client, or ``cv-analytics spool replay``
(:func:`~cv_analytics.client.replay_spool`), sends it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, SystemClock
from ..events import Performance, QueryEvent, ResponseEvent
from ..queues.base import MAX_BATCH_SIZE, Queue
from . import records
from .lifecycle import install_sigterm_drain, live_clients
from .sender import Control, Sender

logger = logging.getLogger("cv_analytics.client")

Timestamp = dt.datetime | int | float
QueueOrFactory = Queue | Callable[[], Queue]


@dataclass(frozen=True)
class ClientStats:
    """What happened to the events logged so far through one client (in this process)."""

    #: accepted by the queue
    sent: int
    #: written to the disk spool (an event spooled twice counts twice); replayed later
    spooled: int
    #: lost on purpose: the buffer was full, or the spool reached its size bound
    dropped: int
    #: the queue can never accept them (too large): not retried
    failed: int
    #: not valid events (or not JSON-serializable), never sent
    invalid: int
    #: sends retried after the queue failed
    retries: int
    #: events in the in-memory buffer right now
    buffered: int
    #: bytes in the spool directory (other processes' segments as of the last scan)
    spool_bytes: int
    #: events whose timestamp was given in seconds and converted to milliseconds
    seconds_timestamps: int = 0
    #: optional fields dropped (out of their documented range), by dotted wire name
    dropped_fields: Mapping[str, int] = field(default_factory=dict)


class AnalyticsClient:
    """Fire-and-forget analytics: ``log_query``/``log_response`` return in microseconds.

    Args:
        queue: the queue to send to, or (preferred) a zero-argument factory that
            opens it. The factory is called on the sender thread, and again in a
            forked child, because connections such as SQLite's must not cross
            ``fork()``.
        spool_dir: directory of the disk spool for this queue (one directory per
            queue; several processes may share it). :func:`cv_analytics.get_client`
            uses ``$CV_ANALYTICS_DATA_DIR/spool`` (``./cv-analytics-data/spool``).
        max_buffer: events held in memory at most; beyond it calls drop (counted).
            Normally the buffer holds a batch or two; it fills only while the sender
            thread gets no CPU, so the default (about 11 MB of small events) rides
            out ~100 ms of that at full call rate. A burst beyond ``spill_threshold``
            goes to the spool, not to memory.
        batch_size: events that wake the sender when it is idle, and what a
            queue request holds (1–10). Below 10, each send is one batch of at
            most ``batch_size`` events, whatever ``max_send_events`` says.
        max_send_events: events handed to the queue in one call at most when
            a backlog is replayed from the spool (after a burst or an outage):
            the embedded queue stores them in one transaction, SQS sends them
            10 per request.
        flush_interval: seconds a partial batch may wait before it is sent.
        spill_threshold: buffered events at which the sender spills the buffer
            to the spool rather than let a burst overflow it (default 1,000, or a
            tenth of a smaller ``max_buffer``).
        max_spool_bytes: bound of the spool directory; beyond it events drop (counted).
        spool_segment_bytes: size at which a new spool segment file is started.
        backoff_base, backoff_max: seconds; retry *n* waits a uniformly random
            time in ``[0, min(backoff_max, backoff_base * 2**(n-1))]`` ("full jitter").
        shutdown_timeout: seconds the exit hook (and SIGTERM) spends sending before it spools the rest.
        clock: time source for event timestamps and backoff (tests pass a ManualClock).
        deadline_clock: time source of the real-time bounds of ``flush``/``close`` and the
            sender's close deadline (the real clock unless a test drives them).
        rng: random source for the jitter.

    Create one per process and share it (:func:`get_client`): each client owns a
    thread, and a client per request leaks them (Langfuse #2974).
    """

    def __init__(
        self,
        queue: QueueOrFactory,
        *,
        spool_dir: str | os.PathLike[str],
        max_buffer: int = 50_000,
        batch_size: int = MAX_BATCH_SIZE,
        max_send_events: int = 500,
        flush_interval: float = 0.5,
        spill_threshold: int | None = None,
        max_spool_bytes: int = 256 * 1024 * 1024,
        spool_segment_bytes: int = 4 * 1024 * 1024,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
        shutdown_timeout: float = 5.0,
        clock: Clock | None = None,
        deadline_clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(queue, Queue):
            self._queue_instance: Queue | None = queue
            self._queue_factory: Callable[[], Queue] | None = None
        elif callable(queue):
            self._queue_instance, self._queue_factory = None, queue
        else:
            raise TypeError(f"queue must be a Queue or a zero-argument function returning one, not {type(queue).__name__}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1–{MAX_BATCH_SIZE}, got {batch_size}")
        if max_send_events < 1:
            raise ValueError(f"max_send_events must be at least 1, got {max_send_events}")
        if max_buffer < batch_size:
            raise ValueError(f"max_buffer must hold at least one batch ({batch_size}), got {max_buffer}")
        self.spool_dir = os.fspath(spool_dir)
        self._options: dict[str, Any] = {
            "max_spool_bytes": max_spool_bytes,
            "spool_segment_bytes": spool_segment_bytes,
            "batch_size": batch_size,
            "max_send": max(batch_size, max_send_events) if batch_size == MAX_BATCH_SIZE else batch_size,
            "flush_interval": flush_interval,
            "spill_threshold": (
                spill_threshold if spill_threshold is not None else max(batch_size, min(1_000, max_buffer // 10))
            ),
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
        }
        self._clock = clock or SystemClock()
        self._deadline_clock = deadline_clock or SystemClock()
        # time.time directly when the clock is the real one: a method call less per event
        self._now: Callable[[], float] = time.time if type(self._clock) is SystemClock else self._clock.now
        self._rng = rng or random.Random()
        self._max_buffer = max_buffer
        self._batch_size = batch_size
        self.shutdown_timeout = shutdown_timeout
        self._setup_process_state()
        live_clients.add(self)
        install_sigterm_drain()

    def _setup_process_state(self) -> None:
        """Everything a process must not share with its parent: buffer, locks, sender."""
        self._buffer: deque[Any] = deque()
        self._control = Control(self._batch_size)
        self._accepting = True
        self._drop_lock = threading.Lock()
        self._buffer_drops = 0
        self._caller_errors = 0
        self._start_lock = threading.Lock()
        self._sender: Sender | None = None
        self._wake: threading.Event | None = None

    # -- the caller's thread: O(1), no I/O, never raises --------------------------

    def log_query(
        self,
        query: str,
        *,
        session_id: str | None = None,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
    ) -> str:
        """Log that a visitor asked ``query``; returns the correlation id to pass to :meth:`log_response`.

        Args:
            query: the question as asked.
            session_id: the visitor's session; events of one session are delivered in order.
            correlation_id: ties the query to its response; a new UUID4 when not given.
            metadata: e.g. ``{"userAgent": ..., "referer": ...}``; do not mutate it after the call.
            timestamp: when it was asked: milliseconds since the epoch, or a datetime
                (naive means UTC); now when not given.
        """
        if correlation_id is None:
            correlation_id = records.new_correlation_id()
        try:
            buffer = self._buffer
            if len(buffer) < self._max_buffer and self._accepting:
                buffer.append(
                    (
                        "q",
                        int(self._now() * 1000) if timestamp is None else timestamp,
                        correlation_id,
                        session_id,
                        query,
                        metadata,
                    )
                )
                if len(buffer) >= self._control.wake_at:
                    self._poke()
                elif self._wake is None:
                    self._start()
            else:
                self._drop()
        except Exception:  # analytics never breaks the request path
            self._caller_error()
        return correlation_id

    def log_response(
        self,
        correlation_id: str,
        response: str | None = None,
        *,
        session_id: str | None = None,
        total_time: float | None = None,
        llm_time: float | None = None,
        retrieval_time: float | None = None,
        cache_hit: bool | None = None,
        performance: Mapping[str, Any] | Performance | None = None,
        match_quality: float | None = None,
        sources_used: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        timestamp: Timestamp | None = None,
    ) -> None:
        """Log the assistant's answer to the query ``correlation_id``.

        Args:
            correlation_id: what :meth:`log_query` returned.
            response: the answer text (may be left out).
            session_id: the visitor's session (as given to :meth:`log_query`).
            total_time, llm_time, retrieval_time: milliseconds spent answering.
            cache_hit: whether the answer came from a cache.
            performance: the same timings as a mapping (``totalTime``...) or a
                :class:`~cv_analytics.events.Performance`; the keyword arguments above win.
            match_quality: how well the CV matched the question, 0–1.
            sources_used: the CV skills or sections the answer drew on.
            metadata: other fields of the response's ``metadata``.
            timestamp: when it was answered (as for :meth:`log_query`).
        """
        try:
            buffer = self._buffer
            if len(buffer) < self._max_buffer and self._accepting:
                buffer.append(
                    (
                        "r",
                        int(self._now() * 1000) if timestamp is None else timestamp,
                        correlation_id,
                        session_id,
                        response,
                        total_time,
                        llm_time,
                        retrieval_time,
                        cache_hit,
                        performance,
                        match_quality,
                        sources_used,
                        metadata,
                    )
                )
                if len(buffer) >= self._control.wake_at:
                    self._poke()
                elif self._wake is None:
                    self._start()
            else:
                self._drop()
        except Exception:
            self._caller_error()

    def log(self, event: QueryEvent | ResponseEvent | Mapping[str, Any]) -> None:
        """Log a ready-made event: a :class:`QueryEvent`/:class:`ResponseEvent` or a wire dict
        (either producer shape). It is validated on the sender thread; an invalid one is
        counted as ``invalid`` and logged, never sent. Do not mutate a dict after the call."""
        try:
            buffer = self._buffer
            if len(buffer) < self._max_buffer and self._accepting:
                buffer.append(("e", event))
                if len(buffer) >= self._control.wake_at:
                    self._poke()
                elif self._wake is None:
                    self._start()
            else:
                self._drop()
        except Exception:
            self._caller_error()

    def _poke(self) -> None:
        wake = self._wake
        if wake is None:
            self._start()
        elif not wake.is_set():  # reading the flag takes no lock; setting it does, at most once per round
            wake.set()

    def _drop(self) -> None:
        with self._drop_lock:
            self._buffer_drops += 1

    def _caller_error(self) -> None:
        with self._drop_lock:
            self._caller_errors += 1

    # -- lifecycle ---------------------------------------------------------------

    def _start(self) -> Sender | None:
        """Start the sender thread (once per process); None after close."""
        with self._start_lock:
            if self._sender is None and self._accepting:
                sender = Sender(
                    self._buffer,
                    self._control,
                    self._open_queue,
                    spool_dir=self.spool_dir,
                    clock=self._clock,
                    deadline_clock=self._deadline_clock,
                    rng=self._rng,
                    buffer_drops=lambda: self._buffer_drops,
                    **self._options,
                )
                sender.start()
                self._sender = sender
                self._wake = sender.wake
            return self._sender

    def _open_queue(self) -> Queue:
        if self._queue_factory is not None:
            queue = self._queue_factory()
            if not isinstance(queue, Queue):
                raise TypeError(f"the queue factory returned {type(queue).__name__}, not a Queue")
            return queue
        assert self._queue_instance is not None
        return self._queue_instance

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait at most ``timeout`` seconds for the events logged so far to reach the queue.

        Also replays spool segments left by processes that ended. Returns True when
        every event buffered before the call is settled (sent, or counted as failed,
        invalid or dropped), False at the deadline: nothing is lost then, what is not
        sent stays buffered or spooled. While the queue is in a backoff, a flush
        makes one attempt at once rather than wait for it.
        """
        sender = self._sender or self._start()
        if sender is None:
            return not self._buffer
        return sender.flush(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Send what can be sent within ``timeout`` seconds, spool the rest, stop the sender.

        Returns True when everything was sent; False when something was left in
        the spool (to be replayed by the next client on the same directory) or the
        queue did not answer in time. Events logged after close are dropped (counted).
        Safe to call more than once.
        """
        self._accepting = False
        with self._start_lock:
            sender = self._sender
        live_clients.discard(self)
        if sender is None:
            if self._buffer:  # logged but never started: start just to send or spool them
                self._accepting = True
                sender = self._start()
                self._accepting = False
            if sender is None:
                return True
        return sender.close(timeout)

    def __enter__(self) -> AnalyticsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(self.shutdown_timeout)

    def stats(self) -> ClientStats:
        """Counters since this client started in this process (a forked child starts at zero)."""
        sender = self._sender
        c = sender.counters if sender is not None else None
        return ClientStats(
            sent=c.sent if c else 0,
            spooled=c.spooled if c else 0,
            dropped=self._buffer_drops + (c.dropped if c else 0),
            failed=c.failed if c else 0,
            invalid=self._caller_errors + (c.invalid if c else 0),
            retries=c.retries if c else 0,
            buffered=len(self._buffer),
            spool_bytes=sender.spool_bytes if sender is not None else 0,
            seconds_timestamps=c.seconds_timestamps if c else 0,
            dropped_fields=dict(c.dropped_fields) if c else {},
        )

    def _after_fork_in_child(self) -> None:
        # The parent's buffered events are the parent's to send: the child starts empty,
        # with its own locks (a lock held by a parent thread at fork stays held forever
        # in the child), its own sender thread, and its own queue connection.
        old = self._sender
        self._setup_process_state()
        if old is not None:
            old.abandon_after_fork()
        if self._queue_instance is not None and self._queue_factory is None:
            logger.debug("analytics client forked with a queue instance, not a factory: the child reuses it")


def _after_fork_in_child() -> None:
    for client in list(live_clients):
        client._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    # Segment #170/#171: without this a forked worker's events sit in a buffer no thread sends.
    os.register_at_fork(after_in_child=_after_fork_in_child)
