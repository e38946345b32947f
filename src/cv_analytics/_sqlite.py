"""SQLite connections shared by the embedded backends: one per thread and per process.

A connection must never cross ``fork()`` (the child would share the parent's
file locks), so connections are keyed by process id as well as thread.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence

from .exceptions import DatabaseCorruptError, SchemaVersionError

#: Pages of WAL after which a commit checkpoints by itself. High, because the
#: background checkpointer normally gets there first: the commit that crosses
#: this threshold pays the checkpoint's fsyncs on the caller's time.
AUTOCHECKPOINT_PAGES = 16384
#: How often the background checkpointer copies the WAL back into the database.
CHECKPOINT_INTERVAL_SECONDS = 0.2

#: Mean seconds between two tries for the write lock while another connection holds it.
LOCK_RETRY_SECONDS = 0.0005

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
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        if self._on_connect:
            self._on_connect(conn)
        _CHECKPOINTER.watch(self)
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
        if immediate:
            self._begin_immediate(conn)
        else:
            conn.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, waiting up to ``busy_timeout`` for another connection's write lock.

        Not with SQLite's own busy handler: it sleeps 1, 2, 5, 10 … 100 ms between
        tries, so a writer that arrives while another process commits back to back
        (a worker draining the queue, a client replaying its spool) sleeps through
        every gap between their transactions and starves until they stop. Here the
        tries come every half millisecond or so (jittered, so that several waiters
        do not try in step), and a waiter gets the lock at the next gap.
        """
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline: float | None = None
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc):
                        raise
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.busy_timeout
                    elif now >= deadline:
                        raise
                time.sleep(random.uniform(0.0, 2 * LOCK_RETRY_SECONDS))
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")

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


class _Checkpointer:
    """One daemon thread per process that checkpoints every watched database in the background.

    A passive checkpoint neither blocks nor waits for readers and writers; doing
    it here takes its write-back and fsyncs off the senders' and workers' time
    (https://www.sqlite.org/wal.html#application_initiated_checkpoints).
    """

    def __init__(self) -> None:
        self._watched: weakref.WeakSet[SQLiteConnections] = weakref.WeakSet()
        self._lock = threading.Lock()
        # Held while the thread is inside SQLite, and across fork(): a child forked
        # while this thread held one of SQLite's internal mutexes would deadlock on
        # its first sqlite3.connect (seen in a forked worker test).
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        os.register_at_fork(before=self._before_fork, after_in_parent=self._after_fork_in_parent,
                            after_in_child=self._after_fork_in_child)  # fmt: skip

    def _before_fork(self) -> None:
        self._lock.acquire()
        self._round.acquire()

    def _after_fork_in_parent(self) -> None:
        self._round.release()
        self._lock.release()

    def _after_fork_in_child(self) -> None:
        # the thread did not come along; the next watch() starts one
        self._lock, self._round, self._thread, self._pid = threading.Lock(), threading.Lock(), None, os.getpid()

    def watch(self, connections: SQLiteConnections) -> None:
        with self._lock:
            self._watched.add(connections)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cv-analytics-sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        own: dict[pathlib.Path, sqlite3.Connection] = {}
        pid = os.getpid()
        while os.getpid() == pid:
            time.sleep(CHECKPOINT_INTERVAL_SECONDS)
            with self._lock:
                paths = {c.path: c.busy_timeout for c in list(self._watched)}
            with self._round:
                self._checkpoint(own, paths)

    @staticmethod
    def _checkpoint(own: dict[pathlib.Path, sqlite3.Connection], paths: dict[pathlib.Path, float]) -> None:
        for path in set(own) - set(paths):
            own.pop(path).close()
        for path in paths:
            try:
                conn = own.get(path)
                if conn is None:
                    conn = own[path] = sqlite3.connect(path, timeout=0.1, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                # busy or gone: the next round, or a commit past the threshold, will do it
                bad = own.pop(path, None)
                if bad is not None:
                    with contextlib.suppress(sqlite3.Error):
                        bad.close()


_CHECKPOINTER = _Checkpointer()


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


#: What SQLite says when a file is damaged (SQLITE_CORRUPT) or is something else (SQLITE_NOTADB).
_CORRUPT_MESSAGES = ("database disk image is malformed", "file is not a database", "malformed database schema")


def is_corrupt_error(exc: BaseException) -> bool:
    """True when ``exc`` says the database file itself is damaged: fatal, never worth a retry."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return True
    text = str(exc).lower()
    return any(message in text for message in _CORRUPT_MESSAGES)


def corrupt_database_error(path: str | os.PathLike[str], exc: sqlite3.Error) -> DatabaseCorruptError:
    """The fatal error for a damaged database file, naming it and the commands to check and recover it."""
    name = os.fspath(path)
    return DatabaseCorruptError(
        f"the database {name} is damaged ({exc}): stop every process using it, check it with "
        f"`sqlite3 {name} 'PRAGMA integrity_check'`, and recover what it holds with "
        f"`sqlite3 {name} .recover | sqlite3 {name}.recovered` (then move the recovered file into place)",
        path=name,
    )


def is_busy_error(exc: sqlite3.Error) -> bool:
    """True for the errors that mean "try again later" rather than a bug."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "unable to open" in text or "disk i/o" in text
    )


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Bring the schema (its version in ``PRAGMA user_version``) up to ``len(migrations)``, inside the
    caller's transaction; each entry migrates version i to i + 1. A newer file than this code knows
    is a :class:`SchemaVersionError`."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise SchemaVersionError(
            f"{path} has schema version {version}; this cv-analytics knows up to {len(migrations)}. Upgrade cv-analytics."
        )
    for step in range(version, len(migrations)):
        for statement in migrations[step].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step + 1}")
