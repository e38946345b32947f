"""Queues the client tests send to, with faults injected on demand.

``MemoryQueue`` really stores what it is sent (with FIFO deduplication, as the
base class asks of a backend) and can be made unreachable, or made to hang in a
send until a gate opens. ``FileQueue`` keeps messages in a JSON-lines file so a
forked child or a subprocess can send to it and the test can read them back.
They stand in for the SQLite backend in the fault-injection tests only; the
tests that need the real embedded queue use it.
"""

from __future__ import annotations

import fcntl
import json
import pathlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from cv_analytics.exceptions import QueueUnavailableError
from cv_analytics.queues.base import Message, OutgoingMessage, Queue, QueueAttributes, QueueConfig, SendOutcome


class MemoryQueue(Queue):
    """An in-process FIFO queue whose sends can fail (``down``) or block (``gate``)."""

    def __init__(self, name: str = "analytics", config: QueueConfig | None = None) -> None:
        super().__init__(name, config or QueueConfig())
        self._lock = threading.Lock()
        self.stored: list[OutgoingMessage] = []
        self._ids: dict[str, str] = {}
        self._received: dict[str, OutgoingMessage] = {}
        self.dead: list[tuple[Message, str]] = []
        #: raise QueueUnavailableError from every send while True
        self.down = False
        #: when set to an Event, every send waits for it (a queue that hangs)
        self.gate: threading.Event | None = None
        #: set as soon as a send has started
        self.entered = threading.Event()
        #: requests (``_send_batch`` calls) so far, and the numbers (from 1) of those that find the queue down
        self.send_calls = 0
        self.unreachable_requests: set[int] = set()
        #: how many messages each ``send_many`` call carried
        self.send_many_sizes: list[int] = []

    def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        self.send_many_sizes.append(len(messages))
        return super().send_many(messages)

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[str]:
        self.send_calls += 1
        self.entered.set()
        gate = self.gate
        if gate is not None:
            gate.wait()
        if self.down or self.send_calls in self.unreachable_requests:
            raise QueueUnavailableError("memory queue is down (test fault)")
        ids = []
        with self._lock:
            for m in messages:
                assert m.dedup_id is not None
                if m.dedup_id not in self._ids:
                    self._ids[m.dedup_id] = str(uuid.uuid4())
                    self.stored.append(m)
                ids.append(self._ids[m.dedup_id])
        return ids

    def bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(m.body) for m in self.stored]

    @property
    def dead_letter_queue(self) -> Queue | None:
        return None

    def attributes(self) -> QueueAttributes:
        with self._lock:
            return QueueAttributes(self.name, len(self.stored), len(self._received), 0, None)

    def purge(self) -> None:
        with self._lock:
            self.stored.clear()

    def _receive(self, max_messages: int, wait_seconds: float, visibility_timeout: float) -> list[Message]:
        with self._lock:
            batch, self.stored = self.stored[:max_messages], self.stored[max_messages:]
            out = []
            for m in batch:
                handle = str(uuid.uuid4())
                self._received[handle] = m
                out.append(Message(self._ids[m.dedup_id or ""], handle, m.body, m.group_id, m.dedup_id, 1, time.time()))
            return out

    def _delete_batch(self, receipt_handles: list[str]) -> None:
        with self._lock:
            for handle in receipt_handles:
                self._received.pop(handle, None)

    def _change_visibility(self, receipt_handle: str, timeout_seconds: float, reason: str | None) -> None:
        with self._lock:
            m = self._received.pop(receipt_handle, None)
            if m is not None:
                self.stored.insert(0, m)

    def _dead_letter(self, message: Message, reason: str) -> None:
        with self._lock:
            self._received.pop(message.receipt_handle, None)
            self.dead.append((message, reason))

    def _peek(self, limit: int) -> list[Message]:
        with self._lock:
            return [Message(self._ids[m.dedup_id or ""], "", m.body, m.group_id, m.dedup_id, 0, 0.0) for m in self.stored[:limit]]


class FileQueue(MemoryQueue):
    """Messages appended to a JSON-lines file under ``flock``: visible across processes."""

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__()
        self.path = path

    def _send_batch(self, messages: list[OutgoingMessage]) -> list[str]:
        self.send_calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        if self.down:
            raise QueueUnavailableError("file queue is down (test fault)")
        lines = "".join(
            json.dumps({"body": m.body, "group": m.group_id, "dedup": m.dedup_id}) + "\n" for m in messages
        )
        with open(self.path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(lines)
        return [str(uuid.uuid4()) for _ in messages]

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until ``condition()`` holds; for states reached by the sender thread, never for timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def segments(directory: pathlib.Path) -> list[pathlib.Path]:
    """The spool segment files in ``directory``."""
    return sorted(directory.glob("*.spool.jsonl")) if directory.exists() else []
