"""SQLite connections shared by the embedded backends: one per thread and per process.

A connection must never cross ``fork()`` (the child would share the parent's
file locks), so connections are keyed by process id as well as thread.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import threading
from collections.abc import Callable, Iterator


#: Connections inherited from a parent process: never used, never closed.
_INHERITED: list[sqlite3.Connection] = []


class SQLiteConnections:
    """Lazily opened connections in WAL mode, with a busy timeout."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout = busy_timeout
        self._on_connect = on_connect
        self._local = threading.local()
        # (pid, connection): a connection opened by a parent process is never
        # closed in a forked child, where closing could disturb the parent's locks.
        self._all: list[tuple[int, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        if self._pid != os.getpid():
            # a forked child: another thread may have held the lock at fork() time
            self._lock, self._pid = threading.Lock(), os.getpid()
        # isolation_level=None: we issue BEGIN ourselves, so reads outside a
        # transaction never hold a lock and writers choose BEGIN IMMEDIATE.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a process crash loses nothing; a power cut may lose the
        # last transactions (https://www.sqlite.org/pragma.html#pragma_synchronous).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if self._on_connect:
            self._on_connect(conn)
        self._local.conn = conn
        self._local.pid = os.getpid()
        with self._lock:
            self._all.append((self._local.pid, conn))
        return conn

    @contextlib.contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error); re-entrant within a thread."""
        conn = self.get()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        pid = os.getpid()
        for owner, conn in conns:
            if owner == pid:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            else:
                _INHERITED.append(conn)  # keep it referenced: garbage collection would close it
        self._local = threading.local()


def is_busy_error(exc: sqlite3.Error) -> bool:
    """True for the errors that mean "try again later" rather than a bug."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "unable to open" in text or "disk i/o" in text
    )
