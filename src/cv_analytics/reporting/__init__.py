"""The weekly report: insights from the store, rendered as HTML email, text and JSON, delivered on a schedule."""

from .builder import build_report
from .delivery import (
    Deliverer,
    DeliveryResult,
    DeliveryStatus,
    FileDeliverer,
    OutgoingReport,
    PartialDeliveryError,
    build_message,
    send_weekly_report,
    write_report,
)
from .model import WeeklyReport
from .render import RenderedReport, render, render_html, render_json, render_text
from .schedule import DEFAULT_SCHEDULE, CronSchedule, ReportScheduler, parse_schedule
from .smtp import SMTPDeliverer, SMTPSecurity, SMTPSettings
from .weeks import IsoWeek, last_complete_week, parse_week, previous_week

__all__ = [
    "DEFAULT_SCHEDULE",
    "CronSchedule",
    "Deliverer",
    "DeliveryResult",
    "DeliveryStatus",
    "FileDeliverer",
    "IsoWeek",
    "OutgoingReport",
    "PartialDeliveryError",
    "RenderedReport",
    "ReportScheduler",
    "SMTPDeliverer",
    "SMTPSecurity",
    "SMTPSettings",
    "WeeklyReport",
    "build_message",
    "build_report",
    "last_complete_week",
    "parse_schedule",
    "parse_week",
    "previous_week",
    "render",
    "render_html",
    "render_json",
    "render_text",
    "send_weekly_report",
    "write_report",
]
