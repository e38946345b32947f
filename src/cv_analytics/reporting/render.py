"""Render a :class:`WeeklyReport` as HTML email, plain text and JSON.

Query text is untrusted (anyone can type into the chatbot), so it is made
harmless in every rendering:

* HTML: Jinja2 autoescaping, always on for the HTML template;
* every rendering: control and bidirectional-formatting characters become
  spaces or are dropped (a terminal escape sequence or a right-to-left override
  in a query must not rewrite what the owner reads);
* JSON: ``<``, ``>`` and ``&`` are written as ``\\u003c`` … so the document is
  safe to paste inside HTML; it parses back to the same text.

The HTML is built for mail clients: tables, inline styles only, bar charts as
table cells with widths and background colours; no scripts, no web fonts, no
external images.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .model import WeeklyReport

_CONTROL = re.compile(r"[\r\n\t\v\f]+")


def clean_text(value: str) -> str:
    """Untrusted text made safe to show: whitespace controls become a space; other
    control and format characters (ANSI escapes, bidi overrides, NUL) are dropped."""
    value = _CONTROL.sub(" ", value)
    return "".join(ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return clean_text(value)
    return value


def _num(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.0f} ms"


def counted(value: int, one: str, many: str | None = None) -> str:
    """``1 question``, ``4 questions``, ``1 query``, ``2 queries``: a count with its noun agreeing."""
    return f"{_num(value)} {one if value == 1 else (many or one + 's')}"


def _share(value: int, largest: int) -> int:
    """Bar length in percent of the largest value; at least 1 for anything non-zero."""
    if largest <= 0 or value <= 0:
        return 0
    return max(1, round(100 * value / largest))


def _long_date(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def _short_date(day: dt.date) -> str:
    return f"{day.day} {day:%b}"


def _signed(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def _text_bar(value: int, largest: int, width: int = 30) -> str:
    return "#" * round(width * _share(value, largest) / 100)


def _environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("cv_analytics.reporting", "templates"),
        autoescape=autoescape,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=_num,
        pct=_pct,
        ms=_ms,
        share=_share,
        signed=_signed,
        long_date=_long_date,
        short_date=_short_date,
        text_bar=_text_bar,
        clean=clean_text,
        counted=counted,
    )
    return env


# Autoescape is forced on for HTML rather than chosen by file name, so a renamed
# template can never turn it off.
_HTML = _environment(autoescape=True)
_TEXT = _environment(autoescape=False)


def subject(report: WeeklyReport) -> str:
    """The email subject: week, dates and the headline figure."""
    span = f"{_short_date(report.start)} – {_short_date(report.end)} {report.end.year}"
    n = report.volume.queries
    return f"CV analytics {report.week} ({span}): {counted(n, 'recruiter question')}"


def _context(report: WeeklyReport) -> dict[str, Any]:
    v = report.volume
    return {
        "r": report,
        "subject": subject(report),
        "max_day": max((d.queries for d in v.by_day), default=0),
        "max_hour": max((h.queries for h in v.by_hour), default=0),
        "max_skill": max((s.queries for s in report.top_skills), default=0),
        "max_bucket": max((b.queries for b in report.match.histogram), default=0),
        "judged": report.match.full + report.match.partial + report.match.none,
    }


def render_html(report: WeeklyReport) -> str:
    return _HTML.get_template("report.html.j2").render(_context(report))


def render_text(report: WeeklyReport) -> str:
    return _TEXT.get_template("report.txt.j2").render(_context(report))


def render_json(report: WeeklyReport) -> str:
    """Stable JSON (camelCase fields, see docs/report-json.md), HTML-safe, UTF-8 text."""
    data = report.to_json_dict()
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


@dataclass(frozen=True)
class RenderedReport:
    """One report in every format, rendered once and shared by every deliverer."""

    report: WeeklyReport
    subject: str
    html: str
    text: str
    json: str

    @property
    def week(self) -> str:
        return self.report.week


def render(report: WeeklyReport) -> RenderedReport:
    return RenderedReport(
        report=report,
        subject=subject(report),
        html=render_html(report),
        text=render_text(report),
        json=render_json(report),
    )
