"""Log lines: JSON objects one per line off a terminal (with the event's ids on top), text on one."""

from __future__ import annotations

import io
import json
import logging

import pytest

from cv_analytics.entrypoints.log_setup import configure_logging


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(logging.INFO, stream=stream)
    log = logging.getLogger("cv_analytics.test")
    log.info("job %s finished", "j1", extra={"fields": {"jobId": "j1", "correlationId": "c1"}})
    log.debug("query text %s", "never above debug")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("handler failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "job j1 finished"
    assert (first["level"], first["logger"], first["jobId"], first["correlationId"]) == ("INFO", "cv_analytics.test", "j1", "c1")
    assert "timestamp" in first and "fields" not in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc_info"]


def test_text_on_a_terminal_and_forced_json() -> None:
    terminal = _Terminal()
    configure_logging(logging.WARNING, stream=terminal)
    logging.getLogger("cv_analytics.test").warning("queue paused")
    assert terminal.getvalue().rstrip().endswith("WARNING cv_analytics.test: queue paused")
    forced = _Terminal()
    configure_logging(logging.WARNING, log_format="json", stream=forced)
    logging.getLogger("cv_analytics.test").warning("queue paused")
    assert json.loads(forced.getvalue())["message"] == "queue paused"
