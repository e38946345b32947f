"""Every failure is one `error: ...` line and a non-zero exit; --debug adds the traceback.

A damaged SQLite file is fatal: the worker stops and names the file and how to check it.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import subprocess
import sys

import pytest

from cv_analytics._sqlite import corrupt_database_error, is_corrupt_error
from cv_analytics.exceptions import DatabaseCorruptError, QueueUnavailableError, StoreUnavailableError


def _query(cid: str) -> str:
    return json.dumps({"eventType": "query", "correlationId": cid, "timestamp": 1_763_164_800_000, "query": "q"})


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _damage(path: pathlib.Path, *, header: bool) -> None:
    """Garbage over the header ("file is not a database") or over the pages after it ("malformed")."""
    for suffix in ("-wal", "-shm"):
        pathlib.Path(f"{path}{suffix}").unlink(missing_ok=True)
    with open(path, "r+b") as handle:
        handle.seek(0 if header else 4096)
        handle.write(b"\x5a" * (100 if header else path.stat().st_size - 4096))


@pytest.fixture
def sent(cli, cli_env, tmp_path) -> pathlib.Path:
    """A data directory with queues.db and store.db holding one interaction, and two messages waiting."""
    body = tmp_path / "pair.jsonl"
    response = {"eventType": "response", "correlationId": "c-1", "timestamp": 1_763_164_800_100, "response": "a"}
    body.write_text(_query("c-1") + "\n" + json.dumps(response) + "\n")
    cli("send", str(body))
    cli("worker", "--drain")
    cli("send", str(body), "--replay")
    return pathlib.Path(cli_env["CV_ANALYTICS_DATA_DIR"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["status"], {"CV_ANALYTICS_ORPHAN_TIMEOUT": "soon"}, "CV_ANALYTICS_ORPHAN_TIMEOUT must be a number"),
        (["worker", "--drain"], {"CV_ANALYTICS_QUEUE_URL": "bogus://"}, "unknown queue URL 'bogus://'"),
        (["export"], {"CV_ANALYTICS_STORE_URL": "postgres://x"}, "unknown store URL 'postgres://x'"),
        (["worker", "--wait", "30"], {}, "Invalid value for '--wait'"),
        (["export", "--week", "2026-47"], {}, "a week must look like 2026-W47"),
    ],
)
def test_a_bad_setting_or_option_is_one_line_and_exit_2(cli, cli_env, args, env, expected):
    cli_env.update(env)
    result = cli(*args, check=False)
    assert expected in _one_error_line(result)
    assert result.returncode == 2


@pytest.mark.slow
@pytest.mark.parametrize("command", [["status"], ["send", "x.json"], ["worker", "--drain"], ["demo", "--interactions", "5", "--data-dir", "{file}"]])
def test_a_data_directory_that_is_a_file_is_one_line(cli, cli_env, tmp_path, command):
    not_a_dir = tmp_path / "data-file"
    not_a_dir.write_text("oops")
    cli_env["CV_ANALYTICS_DATA_DIR"] = str(not_a_dir)
    result = cli(*[part.replace("{file}", str(not_a_dir)) for part in command], check=False)
    assert f"{not_a_dir} is a file, not a directory" in _one_error_line(result)


@pytest.mark.slow
@pytest.mark.parametrize("header", [True, False], ids=["not-a-database", "malformed"])
def test_the_worker_stops_on_a_damaged_queue_database_and_says_how_to_check_it(cli, sent, header):
    queues_db = sent / "queues.db"
    _damage(queues_db, header=header)

    result = cli("worker", "--drain", check=False, timeout=60)  # before: retried "malformed" forever

    line = _one_error_line(result)
    assert result.returncode == 1
    assert f"the database {queues_db} is damaged" in line
    assert f"sqlite3 {queues_db} 'PRAGMA integrity_check'" in line and ".recover" in line


@pytest.mark.slow
def test_the_worker_stops_on_a_damaged_store_instead_of_retrying_its_messages(cli, sent):
    store_db = sent / "store.db"
    _damage(store_db, header=False)

    result = cli("worker", "--drain", check=False, timeout=60)

    assert f"the database {store_db} is damaged" in _one_error_line(result)
    status = cli("status", "--json", check=False)
    assert "damaged" in _one_error_line(status)


@pytest.mark.slow
def test_a_truncated_store_is_one_line_from_export(cli, sent):
    store_db = sent / "store.db"
    with open(store_db, "r+b") as handle:
        handle.truncate(store_db.stat().st_size // 2 or 1)
    for suffix in ("-wal", "-shm"):
        pathlib.Path(f"{store_db}{suffix}").unlink(missing_ok=True)
    result = cli("export", check=False)
    assert str(store_db) in _one_error_line(result)


@pytest.mark.slow
def test_report_out_onto_a_file_is_one_line(cli, sent, tmp_path):
    target = tmp_path / "report.html"
    target.write_text("keep me")
    result = cli("report", "--out", str(target), check=False)
    assert f"--out {target}: {target} is a file, not a directory" in _one_error_line(result)
    assert target.read_text() == "keep me"


@pytest.mark.slow
def test_export_to_a_full_disk_is_one_line(cli_env, sent):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "cv_analytics", "export"], env=cli_env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert "No space left on device" in _one_error_line(result)


@pytest.mark.slow
def test_debug_shows_the_traceback_by_option_and_by_variable(cli, cli_env):
    cli_env["CV_ANALYTICS_QUEUE_URL"] = "bogus://"
    assert "Traceback" in cli("--debug", "worker", check=False).stderr
    cli_env["CV_ANALYTICS_DEBUG"] = "1"
    result = cli("worker", check=False)
    assert "Traceback" in result.stderr and result.stderr.splitlines()[-1].startswith("error: unknown queue URL")


def test_corruption_is_classified_apart_from_unavailability(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()
    assert is_corrupt_error(caught.value)
    assert not is_corrupt_error(sqlite3.OperationalError("database is locked"))
    error = corrupt_database_error(path, caught.value)
    assert isinstance(error, DatabaseCorruptError) and error.path == str(path)
    assert not isinstance(error, (QueueUnavailableError, StoreUnavailableError))


def test_opening_a_damaged_file_raises_the_fatal_error_from_both_backends(tmp_path):
    from cv_analytics.queues.sqlite import SQLiteQueueBackend
    from cv_analytics.stores.sqlite import SQLiteStore

    for name, opener in (("queues.db", SQLiteQueueBackend), ("store.db", SQLiteStore)):
        path = tmp_path / name
        path.write_bytes(os.urandom(8192))
        with pytest.raises(DatabaseCorruptError, match="PRAGMA integrity_check"):
            opener(path)


def test_a_store_that_turns_out_damaged_mid_run_stops_the_worker_and_dead_letters_nothing(tmp_path):
    """The processor used to treat any non-store exception as the message's fault (poison)."""
    from cv_analytics.processor import Worker
    from cv_analytics.queues.base import OutgoingMessage
    from cv_analytics.queues.sqlite import SQLiteQueueBackend
    from cv_analytics.stores.sqlite import SQLiteStore

    class DamagedOnWrite(SQLiteStore):
        """A real store whose file is found damaged at the first write (as SQLite reports it)."""

        def record_events(self, events):  # type: ignore[override]
            raise corrupt_database_error(self.path, sqlite3.DatabaseError("database disk image is malformed"))

    queue = SQLiteQueueBackend(tmp_path / "queues.db").queue("analytics")
    queue.send_batch([OutgoingMessage(_query("c-1"), group_id="g", dedup_id="d")])
    worker = Worker(queue, DamagedOnWrite(tmp_path / "store.db"), wait_seconds=0)

    with pytest.raises(DatabaseCorruptError, match="integrity_check"):
        worker.run(drain=True)
    assert queue.dead_letter_queue is not None and queue.dead_letter_queue.attributes().visible == 0
