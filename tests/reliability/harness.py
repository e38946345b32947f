"""What the fault scenarios share: traffic in the contract's shapes, the processes under test, the exactly-once tallies.

A scenario builds traffic with :func:`contract_traffic`, runs the real commands as processes
(:class:`CliProcess`: ``python -m cv_analytics ...``, killed with SIGKILL or stopped with SIGTERM),
counts what arrived with :func:`tally_interactions` / :func:`tally_jobs`, and records its row of the
README table with :func:`record_survived` before it asserts, so a failing run is recorded too.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Variables that would point a child process at AWS or another data directory.
_FOREIGN = ("AWS_SQS_URL", "AI_JOB_REQUEST_QUEUE_URL", "AI_JOB_RESPONSE_QUEUE_URL", "AWS_ENDPOINT_URL")

#: Where :func:`record_survived` writes its rows (one JSON file per scenario); unset: rows are not kept.
RESULTS_VARIABLE = "CV_ANALYTICS_FAULTS_OUT"

#: Monday 2025-11-17 00:00 UTC: traffic falls in ISO week 2025-W47 unless a scenario says otherwise.
WEEK_START_MS = 1_763_337_600_000

#: Recruiter questions the traffic cycles through (the soak benchmark's too).
RECRUITER_QUESTIONS = (
    "What is your experience with TypeScript?",
    "Have you used Kubernetes in production?",
    "Do you know Rust?",
    "Tell me about your Python projects",
    "Any experience with AWS Lambda and SQS?",
    "Have you led a team?",
    "Do you know COBOL?",
    "What databases have you worked with?",
)


def child_env(data_dir: pathlib.Path, **overrides: str) -> dict[str, str]:
    """The environment of a process that runs everything embedded under ``data_dir`` (nothing inherited that points elsewhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CV_ANALYTICS_") and k not in _FOREIGN}
    env["CV_ANALYTICS_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def query_event(correlation_id: str, session_id: str, timestamp: int, question: str) -> dict[str, Any]:
    """A query exactly as the existing producer sends it (contract/query-event.json)."""
    return {
        "eventType": "query",
        "correlationId": correlation_id,
        "timestamp": timestamp,
        "sessionId": session_id,
        "query": question,
        "metadata": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "referer": "https://cv.example.dev"},
    }


def response_event(correlation_id: str, session_id: str, timestamp: int) -> dict[str, Any]:
    """A response exactly as the existing producer sends it (contract/response-event.json)."""
    return {
        "eventType": "response",
        "correlationId": correlation_id,
        "timestamp": timestamp,
        "sessionId": session_id,
        "response": "I have 7 years of TypeScript experience, mostly with Node.js and Express.",
        "performance": {"totalTime": 234, "llmTime": 180, "retrievalTime": 54, "cacheHit": False},
        "metadata": {"matchQuality": 0.95, "sourcesUsed": ["TypeScript", "Node.js", "Express"]},
    }


@dataclass(frozen=True)
class Traffic:
    """Events in the order a producer sends them, and the interactions they make."""

    events: list[dict[str, Any]]
    correlation_ids: list[str]

    def __len__(self) -> int:
        return len(self.events)


def contract_traffic(
    pairs: int,
    *,
    sessions: int = 97,
    responses_first: float = 0.10,
    seed: int = 0,
    start_ms: int = WEEK_START_MS,
    prefix: str = "",
) -> Traffic:
    """``pairs`` query/response pairs in the contract's shapes, sessions interleaved.

    Pair *i* belongs to session ``i % sessions``, so consecutive events are of different sessions; a
    ``responses_first`` share of the pairs send the response before the query (both arrival orders).
    Correlation ids are UUIDs derived from ``seed`` and ``prefix``, so two calls never collide unless asked to.
    """
    rng = random.Random(seed)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"cv-analytics-reliability/{prefix}/{seed}")
    events: list[dict[str, Any]] = []
    ids: list[str] = []
    for i in range(pairs):
        cid = str(uuid.uuid5(namespace, str(i)))
        session = f"{prefix}session-{i % sessions:03d}"
        at = start_ms + i * 10
        query = query_event(cid, session, at, RECRUITER_QUESTIONS[i % len(RECRUITER_QUESTIONS)])
        response = response_event(cid, session, at + 234)
        events.extend((response, query) if rng.random() < responses_first else (query, response))
        ids.append(cid)
    return Traffic(events, ids)


@dataclass(frozen=True)
class Tally:
    """What arrived of what was sent: the numbers each scenario's row reports."""

    expected: int
    #: distinct expected items found in the final state asked for
    arrived: int
    #: expected items missing, or not in the final state asked for
    lost: int
    #: items seen more than once (a stored row twice, a week counted twice, a job run to completion twice, a report sent twice)
    duplicated: int
    #: items found that nobody sent
    unexpected: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exactly_once(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unexpected == 0


def tally_interactions(store: Any, expected_ids: Collection[str], *, status: str = "answered") -> Tally:
    """Each expected correlation id stored once, in ``status``; the week index agrees with the rows."""
    expected = set(expected_ids)
    rows = Counter()
    wrong_status: list[str] = []
    for interaction in store.iter_interactions():
        rows[interaction.correlation_id] += 1
        if interaction.correlation_id in expected and str(getattr(interaction.status, "value", interaction.status)) != status:
            wrong_status.append(interaction.correlation_id)
    indexed = sum(week.interactions for week in store.weeks())
    present = expected & rows.keys()
    duplicated = sum(n - 1 for n in rows.values() if n > 1) + max(0, indexed - sum(rows.values()))
    return Tally(
        expected=len(expected),
        arrived=len(present) - len(set(wrong_status)),
        lost=len(expected - present) + len(set(wrong_status)),
        duplicated=duplicated,
        unexpected=len(rows.keys() - expected),
        details={"rows": sum(rows.values()), "weekIndex": indexed, "wrongStatus": sorted(wrong_status)[:5]},
    )


def tally_sends(sent: Iterable[Hashable], expected: Collection[Hashable]) -> Tally:
    """Each expected delivery (e.g. a report's ``(week, recipient)``) made once: a second one is a duplicate."""
    counts = Counter(sent)
    wanted = set(expected)
    return Tally(
        expected=len(wanted),
        arrived=len(wanted & counts.keys()),
        lost=len(wanted - counts.keys()),
        duplicated=sum(n - 1 for n in counts.values() if n > 1),
        unexpected=len(counts.keys() - wanted),
        details={"sent": {str(key): n for key, n in counts.items()}},
    )


def read_ledger(path: pathlib.Path) -> list[dict[str, Any]]:
    """The JSON lines a test job type appended (``tests.jobs.types_for_tests``: start/end per run)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def tally_jobs(job_store: Any, job_ids: Collection[str], *, ledger: pathlib.Path | None = None) -> Tally:
    """Each job ``succeeded``; none left ``running``; with a ledger, each job's handler ran to its end once."""
    states = Counter()
    lost = 0
    for job_id in job_ids:
        job = job_store.get(job_id)
        status = "missing" if job is None else str(getattr(job.status, "value", job.status))
        states[status] += 1
        lost += status != "succeeded"
    duplicated = 0
    completions: Counter[str] = Counter()
    if ledger is not None:
        completions = Counter(line["job"] for line in read_ledger(ledger) if line.get("event") == "end")
        duplicated = sum(n - 1 for job, n in completions.items() if n > 1 and job in set(job_ids))
    return Tally(
        expected=len(job_ids),
        arrived=len(job_ids) - lost,
        lost=lost,
        duplicated=duplicated,
        details={"states": dict(states), "completedTwice": sorted(j for j, n in completions.items() if n > 1)[:5]},
    )


#: The repository's root: ``python -m tests.reliability.<module>`` runs from here.
REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[2]


class CliProcess:
    """``python -m cv_analytics ARGS...`` as a process of its own, its output in files (no pipe to fill).

    ``module`` runs another module the same way (a scenario's own producer, e.g.
    ``tests.reliability.producer_process``), from ``cwd`` (the repository's root unless given).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *args: str,
        log_dir: pathlib.Path,
        name: str | None = None,
        module: str = "cv_analytics",
        cwd: pathlib.Path | None = None,
    ) -> None:
        self.args = args
        log_dir.mkdir(parents=True, exist_ok=True)
        label = name or "-".join(args or (module,)).replace("/", "_")
        self._stdout_path = log_dir / f"{label}.{time.monotonic_ns()}.out"
        self._stderr_path = log_dir / f"{label}.{time.monotonic_ns()}.err"
        if cwd is None and module != "cv_analytics":
            cwd = REPOSITORY_ROOT
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args], env=dict(env), stdout=out, stderr=err, cwd=cwd
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash (no handler, no atexit); the kernel releases its locks."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the clean exit; returns the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def stdout(self) -> str:
        return self._stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self._stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_output(self, text: str, timeout: float = 60, *, stream: str = "stderr") -> None:
        """Until ``text`` appears in its output; fails with the output if the process exits or time runs out first."""
        read = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in read():
                return
            if not self.alive():
                raise AssertionError(f"{' '.join(self.args)} exited {self.process.returncode} before {text!r}:\n{self.stderr()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"{' '.join(self.args)}: no {text!r} within {timeout} s:\n{self.stderr()[-3000:]}")

    def __enter__(self) -> CliProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def spooled_events(spool_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(correlationId, eventType)`` of every event a spool directory still holds (past each segment's recorded position).

    Read-only, as ``spool_status`` counts them: what a killed client left on disk, for a scenario to check it arrives.
    """
    from cv_analytics.client.spool import POSITION_SUFFIX, SEGMENT_SUFFIX

    found: list[tuple[str, str]] = []
    for path in sorted(pathlib.Path(spool_dir).glob(f"*{SEGMENT_SUFFIX}")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # replayed and removed meanwhile
            continue
        try:
            offset, index = (int(p) for p in path.with_name(path.name + POSITION_SUFFIX).read_text().split())
        except (FileNotFoundError, ValueError):
            offset, index = 0, 0
        if offset > len(data):
            offset, index = 0, 0
        for n, line in enumerate(data[offset:].split(b"\n")):
            if not line:
                continue
            for record in json.loads(line)[index if n == 0 else 0 :]:
                found.append(_spooled_identity(record))
    return found


def _spooled_identity(record: list[Any]) -> tuple[str, str]:
    kind = record[0]
    if kind in ("q", "r"):  # the client's log_query/log_response tuples
        return record[2], "query" if kind == "q" else "response"
    event = record[1] if kind == "e" else json.loads(record[1])  # a wire dict, or a prepared message body
    return event["correlationId"], event["eventType"]


def wait_until(condition: Callable[[], bool], timeout: float, *, what: str, interval: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a scenario starts later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def random_moments(count: int, *, low: float, high: float, seed: int) -> list[float]:
    """``count`` sorted moments in ``[low, high)``, reproducible from ``seed`` (the seed goes in the row)."""
    rng = random.Random(seed)
    return sorted(rng.uniform(low, high) for _ in range(count))


@dataclass(frozen=True)
class Survived:
    """One row of the README's "Faults survived" table."""

    scenario: str
    #: what was done to the system
    injected: str
    #: how much went through while it was done
    traffic: str
    lost: int
    duplicated: int
    #: anything else the row should say (a bound measured, the seed of the random moments)
    notes: str = ""
    backend: str = "embedded"

    @property
    def key(self) -> str:
        return f"{self.scenario}-{self.backend}".replace(" ", "_").replace("/", "_")


def record_survived(row: Survived) -> None:
    """Keep the row for ``tests/reliability/table.py`` when ``$CV_ANALYTICS_FAULTS_OUT`` names a directory."""
    out = os.environ.get(RESULTS_VARIABLE)
    if not out:
        return
    directory = pathlib.Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    data = {**asdict(row), "recordedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadAverage": os.getloadavg()[0]}
    (directory / f"{row.key}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def assert_exactly_once(tally: Tally, what: str) -> None:
    """The closing check of every scenario."""
    assert tally.exactly_once, f"{what}: {tally}"


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class CallTimes:
    """How long each call took on the caller's thread (``perf_counter_ns`` around it), in nanoseconds."""

    samples: list[int] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        """The ``q`` quantile (0–1) in milliseconds, nearest rank."""
        ordered = sorted(self.samples)
        rank = min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))
        return ordered[rank] / 1e6

    @property
    def max_ms(self) -> float:
        return max(self.samples) / 1e6

    def summary(self) -> str:
        return (
            f"caller p50 {self.percentile_ms(0.50):.4f} ms, p99 {self.percentile_ms(0.99):.4f} ms, "
            f"max {self.max_ms:.2f} ms over {len(self.samples):,} calls"
        )


def log_steadily(
    call: Callable[[Any], object],
    items: Sequence[Any],
    start: int,
    *,
    rate: float,
    times: CallTimes,
    seconds: float = float("inf"),
    until: Callable[[], bool] | None = None,
) -> int:
    """``call(item)`` for ``items[start:]`` at ``rate`` calls per second, each call timed into ``times``.

    Stops after ``seconds``, when ``until()`` holds (asked every 50 calls), or at the end of the items;
    returns the index of the next item to log.
    """
    begun = time.perf_counter()
    i = start
    while i < len(items):
        now = time.perf_counter()
        if now - begun >= seconds or (until is not None and (i - start) % 50 == 0 and until()):
            break
        due = begun + (i - start) / rate
        if now < due:
            time.sleep(due - now)
            continue
        before = time.perf_counter_ns()
        call(items[i])
        times.samples.append(time.perf_counter_ns() - before)
        i += 1
    return i


#: The issue's bound on the caller's wait at p99, milliseconds (scenarios 2 and 6 assert it).
CALLER_P99_BOUND_MS = 1.0

_WRITE_LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", time.time(), flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
print("released", time.time(), flush=True)
"""


class WriteLocker:
    """Another process holding ``BEGIN EXCLUSIVE`` on an SQLite database for ``seconds``, then letting go."""

    def __init__(self, database: pathlib.Path, seconds: float, *, log_dir: pathlib.Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._out = log_dir / f"locker.{time.monotonic_ns()}.out"
        with open(self._out, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-c", _WRITE_LOCKER, str(database), str(seconds)], stdout=out)

    def _said(self) -> dict[str, float]:
        return {word: float(at) for word, at in (line.split() for line in self._out.read_text().splitlines())}

    def wait_locked(self, timeout: float = 60) -> None:
        wait_until(lambda: "locked" in self._said() or self.process.poll() is not None, timeout, what="the lock taken")
        assert "locked" in self._said(), f"the locker exited {self.process.returncode} without the lock"

    def released(self) -> bool:
        return self.process.poll() is not None

    def held_seconds(self, timeout: float = 120) -> float:
        """Waits for the release; how long the lock was held."""
        self.process.wait(timeout)
        said = self._said()
        assert "locked" in said and "released" in said, f"the locker exited {self.process.returncode}: {said}"
        return said["released"] - said["locked"]
