"""Wake-ups for long polls in this process when a queue of the same database file changes.

One :class:`Notifier` per database file and process. A receiver registers an
event, claims, and if there was nothing waits on that event with
``clock.wait``; a sender, a delete or a visibility change sets the events of
the queue's waiters. Other processes' commits are noticed by the receiver
itself (``PRAGMA data_version``), since no event crosses a process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator


class Notifier:
    """The waiting receivers of each queue (by queue id) of one database file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, set[threading.Event]] = {}

    @contextlib.contextmanager
    def waiting(self, queue_id: int) -> Iterator[threading.Event]:
        """An event set whenever ``queue_id`` changes, for as long as the block runs."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(queue_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiters = self._waiters.get(queue_id)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[queue_id]

    def bump(self, *queue_ids: int) -> None:
        """Wake every receiver waiting on one of ``queue_ids``."""
        if not self._waiters:  # the common case: nobody waits, take no lock
            return
        with self._lock:
            for queue_id in queue_ids:
                for event in self._waiters.get(queue_id, ()):
                    event.set()


_NOTIFIERS: dict[str, Notifier] = {}
_NOTIFIERS_LOCK = threading.Lock()


def notifier_for(path: str) -> Notifier:
    """The notifier of the database file at ``path`` (a real path) in this process."""
    with _NOTIFIERS_LOCK:
        notifier = _NOTIFIERS.get(path)
        if notifier is None:
            notifier = _NOTIFIERS[path] = Notifier()
        return notifier


def _forget_notifiers_in_child() -> None:
    # A lock held by another thread at fork() stays held forever in the child:
    # start afresh there rather than inherit any.
    global _NOTIFIERS_LOCK
    _NOTIFIERS_LOCK = threading.Lock()
    _NOTIFIERS.clear()


os.register_at_fork(after_in_child=_forget_notifiers_in_child)
