"""``weekly_report(event, context)``: the EventBridge schedule's handler, the weekly report by SES, once.

Sends the report of the ISO week that ended before the event's ``time`` (not
the wall clock, so a delayed or retried invocation reports the right week),
once per week and recipient: a second invocation for the same week sends
nothing and answers ``already_sent``; a failed send records nothing and raises,
so Lambda's retries (two, for an asynchronous invocation) and the next run try
again. ``{"week": "2026-W47"}`` as the event sends that week instead (a manual
rerun with ``aws lambda invoke``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from ...clock import Clock
from ...exceptions import ConfigurationError, CVAnalyticsError
from .logs import context_fields, logger
from .warm import ReporterState, reporter_state


def weekly_report(event: Mapping[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """Lambda handler of the weekly schedule: send last week's report by SES, once.

    Returns ``{"week", "status" ("sent" or "already_sent"), "messageId",
    "channel", "deliveries": [...]}``. Raises
    :class:`~cv_analytics.exceptions.ReportDeliveryError` when a recipient
    could not be sent the report (nothing is recorded for that recipient),
    :class:`~cv_analytics.exceptions.ConfigurationError` when ``SENDER_EMAIL``,
    ``RECIPIENT_EMAIL`` or the event's time is missing or malformed.
    """
    started = time.perf_counter()
    week: str | None = None
    try:
        state = reporter_state()
        week = _report_week(event, state.clock)
        answer = _send_report(state, week)
    except Exception as exc:
        from ...reporting.delivery import DeliveryStatus

        delivered = [r.recipient for r in getattr(exc, "results", []) if r.status is DeliveryStatus.SENT]
        logger().error(
            "weekly report not delivered",
            exc_info=not isinstance(exc, CVAnalyticsError),
            extra={"fields": {**context_fields(context), "week": week, "delivered": delivered, "error": str(exc)}},
        )
        raise
    logger().info(
        "weekly report",
        extra={
            "fields": {
                **context_fields(context),
                **{k: v for k, v in answer.items() if k != "deliveries"},
                "recipients": len(answer["deliveries"]),
                "sent": sum(d["status"] == "sent" for d in answer["deliveries"]),
                "durationMs": round((time.perf_counter() - started) * 1000, 1),
            }
        },
    )
    return answer


def _send_report(state: ReporterState, week: str) -> dict[str, Any]:
    from ...reporting.delivery import DeliveryStatus, send_weekly_report
    from ...wiring.reporting import addresses

    sender, recipients = addresses(state.settings)
    deliverer = state.deliverer()
    message_ids: dict[str, str] = getattr(deliverer, "message_ids", {})
    results = send_weekly_report(
        state.store, week, deliverer, insights=state.insights, catalog=state.catalog,
        sender=sender, recipients=recipients, clock=state.clock,
    )  # fmt: skip
    deliveries = [
        {
            "recipient": r.recipient,
            "status": r.status.value,
            "channel": r.channel,
            "sentAt": r.sent_at,
            "messageId": message_ids.get(r.recipient) if r.status is DeliveryStatus.SENT else None,
        }
        for r in results
    ]
    sent = [d for d in deliveries if d["status"] == DeliveryStatus.SENT.value]
    return {
        "week": week,
        "status": (DeliveryStatus.SENT if sent else DeliveryStatus.ALREADY_SENT).value,
        "messageId": sent[0]["messageId"] if sent else None,
        "channel": deliverer.channel,
        "deliveries": deliveries,
    }


def _report_week(event: Mapping[str, Any] | None, clock: Clock) -> str:
    """The week to report: ``event["week"]`` if given, else the last one complete at the event's time."""
    from ...reporting.weeks import last_complete_week, parse_week

    event = event if isinstance(event, Mapping) else {}
    if event.get("week"):
        return parse_week(str(event["week"]))
    raw = event.get("time")
    if not raw:
        return last_complete_week(clock.now())  # a test invocation from the console: relative to now
    try:
        when = dt.datetime.fromisoformat(str(raw))  # Python 3.11+ reads the trailing Z
    except ValueError:
        raise ConfigurationError(
            f"the scheduled event's time {raw!r} is not an ISO 8601 time such as 2026-11-23T07:00:00Z"
        ) from None
    return last_complete_week(when)
