"""How the long-running commands log: JSON lines when stderr is not a terminal, plain text on one.

A process under ``serve``, systemd or a container writes one JSON object per
line (python-json-logger) that a log shipper can index; ``extra={"fields": {...}}``
(the convention of the Lambda handlers' logs) puts ``correlationId`` or
``jobId`` at the top level. Query text and secrets are logged at debug level
only: the callers keep to that, the formatter does not filter.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _FieldsJsonFormatter(JsonFormatter):
    """Renames to the Lambda logs' keys and lifts ``fields`` to the top level."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        fields = log_data.pop("fields", None)
        if isinstance(fields, dict):
            log_data.update(fields)


def json_formatter() -> logging.Formatter:
    return _FieldsJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
    )


def configure_logging(level: int, *, log_format: str = "auto", stream: Any = None) -> None:
    """Root logging at ``level``: ``log_format`` is ``json``, ``text`` or ``auto`` (JSON unless a terminal)."""
    stream = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not _isatty(stream))
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter() if use_json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
