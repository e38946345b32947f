"""The background sender: buffer → (spool) → queue, in order, in batches.

Two daemon threads per client:

* the *sender* thread decides: it validates, batches, retries, spools. It
  never calls the queue, so it is never stuck in it;
* the *I/O* thread (:class:`_Shipper`) opens the queue and runs one
  ``send_many`` at a time for it: a batch as events come in, and up to
  ``max_send`` events of a backlog replayed from the spool (the embedded queue
  stores them in one transaction; SQS sends them ten per request).

Why two: a caller in a tight loop holds the GIL, and a thread that releases it
(SQLite does, around every statement) waits a whole switch interval (5 ms) to
get it back. A send of a few dozen statements would leave the buffer
unattended for a tenth of a second, long enough for a burst to overflow it.
With the I/O apart, the sender thread keeps spilling a burst to disk while a
send is under way.

The rules that keep events in order per session:

* ``pending`` holds the events being sent, oldest first. Events come from the
  spool while it has unread records, and from the buffer only when it has none:
  whatever is unread in the spool is older than the buffer.
* A burst moves the buffer to the spool's *tail*. Buffer-sourced events in
  ``pending`` that then cannot be sent are older than everything unread in the
  spool, so they go to its *head* (:meth:`Spool.prepend`); and while such
  events are in ``pending``, nothing is read from the spool behind them.
* Spool records are committed only once sent (or known never to be sendable):
  a crash replays them, and deduplication ids make the replay harmless.
* One batch is on its way at a time; a batch that fails is retried before
  anything after it is sent. (Entries a queue refuses one by one while taking
  the rest, as SQS may, are retried after the rest of their batch; so are the
  requests of a multi-request batch from the first that found the queue
  unreachable on, which ``send_many`` reports without trying them.)
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._backoff import backoff_delay
from ..clock import Clock
from ..exceptions import EventTooLargeError, InvalidEventError, QueueUnavailableError
from ..queues.base import MAX_BATCH_BYTES, MAX_BATCH_SIZE, OutgoingMessage, Queue, SendOutcome
from . import records
from .drops import record_drops
from .spool import Spool

logger = logging.getLogger("cv_analytics.client")

#: Bytes of event bodies handed to the queue in one call at most (with at least
#: one event): bounds what waits in memory while a big batch is on its way.
MAX_SEND_BYTES = 2 * 1024 * 1024
#: Events validated between two looks at the buffer while filling a batch.
_FILL_STEP = 50
#: How often (clock seconds) to look for segments left by processes that ended.
RESCAN_INTERVAL = 30.0
#: The same warning at most this often (clock seconds).
WARNING_INTERVAL = 60.0
#: New drops are added to the spool directory's total (what ``status`` shows) at most this often (clock seconds).
DROPS_RECORD_INTERVAL = 1.0


class Control:
    """What the caller's thread reads on every call, written by the sender thread.

    ``wake_at``: the buffer length at which a call wakes the sender. One batch
    while the sender is idle; the spill threshold while a send is under way or
    the queue is down, when waking it for less would only cost the caller.
    """

    __slots__ = ("wake_at",)

    def __init__(self, wake_at: int) -> None:
        self.wake_at = wake_at


@dataclass(slots=True, eq=False)
class _Entry:
    prepared: records.Prepared | None  # None: invalid or failed, already counted
    from_spool: bool
    own: bool
    record: Any
    done: bool = False


class _Counters:
    __slots__ = (
        "sent", "spooled", "dropped", "failed", "invalid", "retries", "settled_own", "popped",
        "seconds_timestamps", "dropped_fields",
    )  # fmt: skip

    def __init__(self) -> None:
        self.sent = self.spooled = self.dropped = self.failed = 0
        self.invalid = self.retries = self.settled_own = self.popped = 0
        #: events whose timestamp came in seconds and was converted to milliseconds
        self.seconds_timestamps = 0
        #: optional fields dropped for being out of range, by dotted wire name
        self.dropped_fields: Counter[str] = Counter()


class _Shipper:
    """The I/O thread: one ``send_many`` at a time, its result left for the sender."""

    def __init__(self, open_queue: Callable[[], Queue], wake: threading.Event) -> None:
        self._open_queue = open_queue
        self._queue: Queue | None = None
        self._wake = wake
        self._go = threading.Event()
        self._messages: list[OutgoingMessage] = []
        self.done = threading.Event()
        self.result: list[SendOutcome] | Exception | None = None
        self.thread = threading.Thread(target=self._run, name="cv-analytics-sender-io", daemon=True)

    def submit(self, messages: list[OutgoingMessage]) -> None:
        self.done.clear()
        self.result = None
        self._messages = messages
        self._go.set()

    def _run(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            try:
                if self._queue is None:
                    self._queue = self._open_queue()
                result: list[SendOutcome] | Exception = self._queue.send_many(self._messages)
            except Exception as exc:  # the queue's failure, not the event's: worth a retry
                result = exc
            self.result = result
            self.done.set()
            self._wake.set()


class Sender:
    """Owns the sender thread and everything it touches (see the module docstring)."""

    def __init__(
        self,
        buffer: deque[Any],
        control: Control,
        open_queue: Callable[[], Queue],
        *,
        spool_dir: str,
        max_spool_bytes: int,
        spool_segment_bytes: int,
        batch_size: int,
        max_send: int,
        flush_interval: float,
        spill_threshold: int,
        backoff_base: float,
        backoff_max: float,
        clock: Clock,
        deadline_clock: Clock,
        rng: random.Random,
        buffer_drops: Callable[[], int],
    ) -> None:
        self._buffer = buffer
        self._control = control
        self._buffer_drops = buffer_drops
        self._drops_seen = 0
        self._drops_recorded = 0
        self._drops_record_at = 0.0
        self._spool = Spool(spool_dir, max_bytes=max_spool_bytes, segment_bytes=spool_segment_bytes, clock=clock)
        self._spool_open = False
        self._spool_retry_at = 0.0
        self._batch_size = batch_size
        self._max_send = max_send
        self._flush_interval = flush_interval
        self._spill_threshold = spill_threshold
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._clock = clock
        # flush/close bounds are the caller's real-time waits on this thread's progress: a
        # ManualClock would make them instant or endless, so they have their own clock
        self._deadline_clock = deadline_clock
        self._rng = rng
        self.counters = _Counters()
        self._pending: deque[_Entry] = deque()
        self._inflight: list[_Entry] | None = None
        self._burst = False
        # backoff
        self._attempt = 0
        self._retry_at = 0.0
        self._unreachable = False
        self._next_rescan = 0.0
        self._warned: dict[str, float] = {}
        # coordination with other threads
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self._shipper = _Shipper(open_queue, self.wake)
        self._progress = threading.Condition(threading.Lock())
        self._flush_gen = 0
        self._served_gen = 0
        # flush() and close() ask for an attempt now, backoff or not; counted so none is lost
        self._force_gen = 0
        self._force_gen_seen = 0
        self._force_served = 0
        self._rescan_requested = False
        self._foreign_backlog = False
        self._close_at: float | None = None  # deadline_clock.monotonic() deadline once closing
        self._abandoned = False
        self._drained = False
        self.thread: threading.Thread | None = None

    # -- other threads ---------------------------------------------------------

    def start(self) -> None:
        self._shipper.thread.start()
        self.thread = threading.Thread(target=self._run, name="cv-analytics-sender", daemon=True)
        self.thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every event buffered before the call is settled; see the client."""
        deadline = self._deadline_clock.monotonic() + max(0.0, timeout)
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            return False
        try:
            target = self.counters.popped + len(self._buffer)
        finally:
            self._lock.release()
        with self._progress:
            self._flush_gen += 1
            gen = self._flush_gen
            self._force_gen += 1
            self._rescan_requested = True
            self.wake.set()
            while True:
                if self._served_gen >= gen and self.counters.settled_own >= target and not self._foreign_backlog:
                    return True
                if self._abandoned or (self.thread is not None and not self.thread.is_alive()):
                    return self._drained and not self._buffer  # closed already
                remaining = deadline - self._deadline_clock.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)

    def close(self, timeout: float) -> bool:
        """Send what can be sent before the deadline, spool the rest, stop the thread."""
        deadline = self._deadline_clock.monotonic() + max(0.0, timeout)
        # keep part of the time to spool what is left; the spool is fast
        self._close_at = deadline - min(0.25 * timeout, 0.5)
        with self._progress:
            self._force_gen += 1
        self.wake.set()
        if self.thread is not None:
            self.thread.join(max(0.0, deadline - self._deadline_clock.monotonic()))
            if self.thread.is_alive():  # stuck in the spool's disk I/O, not in the queue
                logger.error("analytics sender did not stop within %.1f s; %d buffered event(s) may be lost",
                             timeout, len(self._buffer))
                self._abandoned = True
                return False
        return self._drained

    def abandon_after_fork(self) -> None:
        """In a forked child: this sender's threads do not exist there; let go of its files."""
        self._abandoned = True
        self._spool.abandon_after_fork()

    @property
    def spool_bytes(self) -> int:
        return self._spool.size_bytes

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if self._cycle():
                    return
            except Exception:  # never let the thread die: analytics must not stop silently
                logger.exception("analytics sender hit an unexpected error; continuing in %.1f s", self._flush_interval)
                self._deadline_clock.sleep(self._flush_interval)

    def _cycle(self) -> bool:
        """One round; returns True when the thread should end."""
        # Clear first: a wake-up that arrives while this round runs makes the next wait return at once.
        self.wake.clear()
        progressed = burst = False
        with self._lock:
            if self._abandoned:
                return True
            gen = self._flush_gen
            self._force_gen_seen = self._force_gen
            self._maintain()
            if self._inflight is not None and self._shipper.done.is_set():
                batch, self._inflight = self._inflight, None
                self._settle(batch, self._shipper.result)
                progressed = True
            if self._closing_now():
                self._spill_all(reason="the client is closing and the queue did not take them in time")
                self._finish()
                return True
            if self._inflight is None and self._backing_off():
                self._spill_all(reason=None)  # the queue is unreachable: nothing waits in memory
            elif len(self._buffer) >= self._spill_threshold or (self._burst and len(self._buffer) >= self._batch_size):
                # A burst: to disk first, and send nothing until it is over (a send lets
                # the caller run whole switch intervals, which is what fills the buffer).
                # It is over when the caller added less than a batch while this thread
                # waited for the GIL.
                burst = self._spill_buffer()
            self._burst = burst
            if self._inflight is None and not burst:
                batch = self._next_batch()
                if batch:
                    self._inflight = batch
                    self._shipper.submit([e.prepared.message for e in batch if e.prepared is not None])
            if self._inflight is not None and not burst:
                # Validate a little of what comes next while this batch is on its way, not
                # the next batch: this thread busy in Python makes the I/O thread wait for
                # the GIL after each statement, with the queue's write lock held.
                self._fill(2 * self._batch_size)
            waiting = self._inflight is not None or self._backing_off()
            self._control.wake_at = self._spill_threshold if waiting else self._batch_size
            self._foreign_backlog = self._spool_open and self._spool.has_backlog(foreign_only=True)
        with self._progress:
            self._served_gen = max(self._served_gen, gen)
            self._progress.notify_all()
        if not (progressed or burst):
            self.wake.wait(self._idle_wait())
        return False

    def _closing_now(self) -> bool:
        if self._close_at is None:
            return False
        if self._deadline_clock.monotonic() >= self._close_at:
            return True
        if self._inflight is not None:
            return False
        # drained, or the last attempt failed: waiting out a backoff would only burn the deadline
        return self._drained_now() or (self._attempt > 0 and not self._force_attempt)

    @property
    def _force_attempt(self) -> bool:
        return self._force_gen_seen > self._force_served

    def _backing_off(self) -> bool:
        return self._attempt > 0 and not self._force_attempt and self._clock.now() < self._retry_at

    def _idle_wait(self) -> float:
        if self._close_at is not None:
            return max(0.001, min(self._flush_interval, self._close_at - self._deadline_clock.monotonic()))
        if self._attempt and self._inflight is None:
            return max(0.001, min(self._flush_interval, self._retry_at - self._clock.now()))
        return self._flush_interval

    def _maintain(self) -> None:
        now = self._clock.now()
        if not self._spool_open and now >= self._spool_retry_at:
            try:
                self._spool.open()
                self._spool_open = True
                self._next_rescan = now + RESCAN_INTERVAL
            except OSError as exc:
                self._spool_retry_at = now + RESCAN_INTERVAL
                self._warn("spool-open", "cannot open the spool directory %s (%s): events wait in memory only",
                           self._spool.directory, exc)
        elif self._spool_open and (now >= self._next_rescan or self._rescan_requested):
            self._next_rescan = now + RESCAN_INTERVAL
            self._rescan_requested = False
            try:
                self._spool.claim_leftovers()
            except OSError as exc:
                self._warn("spool-scan", "cannot scan the spool directory %s: %s", self._spool.directory, exc)
        drops = self._buffer_drops()
        if drops > self._drops_seen:
            self._warn("buffer-full", "analytics buffer full: %d event(s) dropped so far (raise max_buffer, "
                       "or check that the spool directory is writable)", drops)
            self._drops_seen = drops
        self._record_drops()

    def _record_drops(self, *, final: bool = False) -> None:
        """Add the drops since the last time to the spool directory's total (``status`` shows it), about once a second."""
        dropped = self._buffer_drops() + self.counters.dropped
        now = self._clock.now()
        if dropped <= self._drops_recorded or (not final and now < self._drops_record_at):
            return
        self._drops_record_at = now + DROPS_RECORD_INTERVAL
        try:
            record_drops(self._spool.directory, dropped - self._drops_recorded, at_ms=int(now * 1000))
        except OSError as exc:
            self._warn("drops-record", "cannot record %d dropped event(s) in %s for `cv-analytics status`: %s",
                       dropped - self._drops_recorded, self._spool.directory, exc)
            return
        self._drops_recorded = dropped

    def _drained_now(self) -> bool:
        return (
            self._inflight is None
            and not self._buffer
            and not self._pending
            and not (self._spool_open and self._spool.has_backlog())
        )

    def _finish(self) -> None:
        self._drained = self._drained_now()
        self._record_drops(final=True)
        self._spool.close()

    # -- batches ---------------------------------------------------------------

    def _next_batch(self) -> list[_Entry]:
        if self._backing_off():
            return []
        # A backlog in the spool goes in calls of up to max_send events (the queue
        # splits them into requests). From the buffer, one batch at a time as events
        # come in: a burst is spilled to disk before this thread spends its time
        # validating it, and no more than a batch or two of events are ever only
        # in memory, to be put back at the head of the spool should the queue fail.
        self._fill(self._max_send, from_buffer=self._batch_size)
        batch: list[_Entry] = []
        size = 0
        limit, max_bytes = self._batch_size, MAX_BATCH_BYTES
        for entry in self._pending:
            if entry.done:
                continue
            assert entry.prepared is not None
            if not batch and entry.from_spool and self._max_send > MAX_BATCH_SIZE:
                limit, max_bytes = self._max_send, MAX_SEND_BYTES
            if batch and (len(batch) >= limit or size + entry.prepared.size > max_bytes):
                break
            batch.append(entry)
            size += entry.prepared.size
        if batch and self._attempt:
            self.counters.retries += 1
        self._force_served = self._force_gen_seen  # the attempt a flush or close asked for is this one
        return batch

    def _fill(self, target: int, *, from_buffer: int | None = None) -> None:
        """Bring ``pending`` up to ``target`` events to send: from the spool while it has
        unread ones, then from the buffer, until ``pending`` holds ``from_buffer``
        (default ``target``) unsent events from the buffer.

        Validating is most of this thread's work, so it goes a step at a time and
        stops, once it has something to send, when the buffer reaches the spill
        threshold: a burst that arrives meanwhile is spilled to disk next round
        rather than left to overflow the buffer.
        """
        waiting = sum(1 for e in self._pending if not e.done)
        buffer_left = target
        if from_buffer is not None:
            buffer_left = from_buffer - sum(1 for e in self._pending if not e.done and not e.from_spool)
        while waiting < target:
            if waiting and len(self._buffer) >= self._spill_threshold:
                break
            want = min(target - waiting, _FILL_STEP)
            if self._spool_open and self._spool.has_unread():
                if any(not e.from_spool and not e.done for e in self._pending):
                    # Buffer events still unsent are older than the spool's unread ones (those
                    # were spilled after them): nothing may overtake them, nor sit between
                    # them and the head of the spool should they have to be prepended to it.
                    break
                taken = self._spool.take(want)
                if not taken:
                    break
                for record, own in taken:
                    entry = self._prepare(record, from_spool=True, own=own)
                    self._pending.append(entry)
                    waiting += not entry.done
            elif self._buffer and buffer_left > 0:
                popleft = self._buffer.popleft
                count = min(want, len(self._buffer), buffer_left)
                buffer_left -= count
                for _ in range(count):
                    record = popleft()
                    self.counters.popped += 1  # counted before anything can fail: flush's target holds it
                    entry = self._prepare(record, from_spool=False, own=True)
                    self._pending.append(entry)
                    waiting += not entry.done
            else:
                break
        self._settle_prefix()

    def _prepare(self, record: Any, *, from_spool: bool, own: bool) -> _Entry:
        try:
            prepared = records.prepare(record)
        except EventTooLargeError as exc:
            self.counters.failed += 1
            self._warn("too-large", "analytics event not sent, it can never fit a queue message: %s", exc)
        except InvalidEventError as exc:
            self.counters.invalid += 1
            self._warn("invalid", "analytics event not sent, it is invalid: %s", exc)
        except Exception as exc:  # noqa: BLE001 - one event costs at most itself (RecursionError included)
            self.counters.invalid += 1
            self._warn("invalid", "analytics event not sent, it could not be validated (%s): %s", type(exc).__name__, exc)
        else:
            if prepared.converted_from_seconds:
                self.counters.seconds_timestamps += 1
            if prepared.dropped_fields:
                self.counters.dropped_fields.update(prepared.dropped_fields)
            return _Entry(prepared, from_spool, own, record)
        self.counters.settled_own += own
        return _Entry(None, from_spool, own, record, done=True)

    def _settle(self, batch: list[_Entry], result: list[SendOutcome] | Exception | None) -> None:
        if not isinstance(result, list):
            self._on_failure(result if isinstance(result, Exception) else QueueUnavailableError("no result"))
            return
        transient: list[SendOutcome] = []
        for entry, outcome in zip(batch, result, strict=True):
            if outcome.ok:
                self.counters.sent += 1
            elif outcome.sender_fault:
                self.counters.failed += 1
                self._warn("sender-fault", "analytics event rejected by the queue and not retried: %s", outcome.error)
            else:
                transient.append(outcome)
                continue
            entry.done = True
            self.counters.settled_own += entry.own
        self._settle_prefix()
        if transient:
            self._on_failure(QueueUnavailableError(f"{len(transient)} entr(ies) refused: {transient[0].error}"))
        else:
            self._on_success()

    def _settle_prefix(self) -> None:
        committed = 0
        while self._pending and self._pending[0].done:
            committed += self._pending.popleft().from_spool
        if committed:
            self._spool.commit(committed)

    def _on_failure(self, exc: Exception) -> None:
        self._attempt += 1
        delay = backoff_delay(self._attempt, self._backoff_base, self._backoff_max, self._rng)
        self._retry_at = self._clock.now() + delay
        if not self._unreachable:
            self._unreachable = True
            level = logging.WARNING if isinstance(exc, QueueUnavailableError) else logging.ERROR
            logger.log(level, "analytics queue unreachable (%s: %s); spooling events to %s and retrying with backoff",
                       type(exc).__name__, exc, self._spool.directory)
        else:
            logger.debug("analytics queue still unreachable (attempt %d, next in %.2f s): %s", self._attempt, delay, exc)

    def _on_success(self) -> None:
        if self._unreachable:
            logger.info("analytics queue reachable again after %d attempt(s); replaying the spool", self._attempt + 1)
        self._unreachable = False
        self._attempt = 0

    # -- spilling to disk ------------------------------------------------------

    def _spill_buffer(self) -> bool:
        """Move the whole buffer to the spool's tail; whether anything was written."""
        if not self._spool_open or not self._buffer:
            return False
        popleft = self._buffer.popleft
        popped = [popleft() for _ in range(len(self._buffer))]
        self.counters.popped += len(popped)
        invalid_before = self.counters.invalid + self.counters.failed
        try:
            written, dropped = self._spool.append(popped, encode=self._encode_chunk)
        except OSError as exc:
            # keep them in memory, in order; the buffer's bound then drops the overflow (counted)
            self.counters.popped -= len(popped)
            self._buffer.extendleft(reversed(popped))
            self._warn("spool-write", "cannot write the spool in %s (%s): events wait in memory",
                       self._spool.directory, exc)
            return False
        except Exception:  # noqa: BLE001 - never lose events uncounted: flush must not report them settled
            lost = len(popped) - (self.counters.invalid + self.counters.failed - invalid_before)
            self.counters.dropped += lost
            self.counters.settled_own += lost
            logger.exception("analytics spool write failed unexpectedly: %d event(s) dropped", lost)
            return True
        self._spooled(written, dropped)
        return True

    def _spill_all(self, *, reason: str | None) -> None:
        """Buffer-sourced events of ``pending`` to the spool's head, then the buffer to its tail.

        ``reason`` says why, for the log, when what cannot be spooled is lost (closing).
        """
        if not self._spool_open:
            if reason:
                self._warn("spool-closed", "%s and the spool is unavailable: %d event(s) lost",
                           reason, len(self._buffer) + sum(not e.done for e in self._pending))
            return
        moved = [e for e in self._pending if not e.from_spool and not e.done]
        if moved:
            try:
                written, dropped = self._spool.prepend(
                    [e.prepared.as_record() for e in moved if e.prepared is not None]
                )
            except OSError as exc:
                self._warn("spool-write", "cannot write the spool in %s (%s): events wait in memory",
                           self._spool.directory, exc)
                return
            self._pending = deque(e for e in self._pending if e.from_spool or e.done)
            self._spooled(written, dropped)
            self._settle_prefix()
        self._spill_buffer()

    def _spooled(self, written: int, dropped: int) -> None:
        self.counters.spooled += written
        if dropped:
            self.counters.dropped += dropped
            self.counters.settled_own += dropped
            self._warn("spool-full", "analytics spool %s is full (%d bytes): %d event(s) dropped",
                       self._spool.directory, self._spool.max_bytes, dropped)

    def _encode_chunk(self, chunk: Sequence[Any]) -> tuple[str, Sequence[Any]]:
        try:
            return records.dumps(chunk), chunk
        except (TypeError, ValueError, RecursionError):
            pass
        # Something in the chunk is not plain JSON (a datetime, a model): validate those
        # records now and spool them in their final form.
        clean: list[Any] = []
        for record in chunk:
            try:
                records.dumps(record)
                clean.append(record)
            except (TypeError, ValueError, RecursionError):
                entry = self._prepare(record, from_spool=False, own=True)
                if entry.prepared is not None:
                    clean.append(entry.prepared.as_record())
        return records.dumps(clean), clean

    # -- logging ---------------------------------------------------------------

    def _warn(self, key: str, message: str, *args: Any) -> None:
        now = self._clock.now()
        if now - self._warned.get(key, float("-inf")) >= WARNING_INTERVAL:
            self._warned[key] = now
            logger.warning(message, *args)
        else:
            logger.debug(message, *args)
