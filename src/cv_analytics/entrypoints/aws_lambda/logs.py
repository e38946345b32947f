"""The Lambda handlers' log lines: one JSON object per line on stdout, which Lambda sends to CloudWatch Logs.

CloudWatch Logs Insights then queries them by field. Fields passed as
``extra={"fields": {...}}`` become top-level keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

#: Logger of the invocation lines (JSON on stdout, not propagated to Lambda's text handler).
LOGGER_NAME = "cv_analytics.entrypoints.aws_lambda"
#: A failure reason is cut to this many characters in the log.
MAX_LOGGED_REASON = 500


class JsonLinesHandler(logging.Handler):
    """Writes each record as one JSON object on one line of stdout.

    The stream is looked up at each write, so a test capturing stdout sees the lines.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            payload: dict[str, Any] = {
                "timestamp": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            payload.update(getattr(record, "fields", None) or {})
            if record.exc_info:
                payload["exception"] = logging.Formatter().formatException(record.exc_info)
            sys.stdout.write(json.dumps(payload, default=str, ensure_ascii=False, separators=(",", ":")) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a log line must never fail an invocation
            self.handleError(record)


def logger() -> logging.Logger:
    """The handlers' logger, with its JSON handler attached once."""
    log = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, JsonLinesHandler) for h in log.handlers):
        log.addHandler(JsonLinesHandler())
        log.setLevel(logging.INFO)
        # Lambda's runtime puts a text handler on the root logger: do not log each line twice.
        log.propagate = False
    return log


def context_fields(context: Any) -> dict[str, Any]:
    """The request id and function name of Lambda's context object, as log fields."""
    fields: dict[str, Any] = {}
    for name, key in (("aws_request_id", "requestId"), ("function_name", "function")):
        value = getattr(context, name, None)
        if value:
            fields[key] = value
    return fields


def remaining_ms(context: Any) -> int | None:
    """Milliseconds left in the invocation, when the context says."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return int(remaining())
    except (TypeError, ValueError):
        return None
