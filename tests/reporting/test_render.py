"""One report model rendered three ways: escaping of untrusted text, email-safe HTML, empty and tiny weeks, stable JSON."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from html.parser import HTMLParser

import pytest

from cv_analytics.clock import ManualClock
from cv_analytics.events import parse_event
from cv_analytics.reporting import build_report, render
from cv_analytics.reporting.model import SCHEMA_VERSION, WeeklyReport, fields_markdown
from cv_analytics.stores.sqlite import SQLiteStore
from cv_analytics.wiring import insights_for

from . import dataset
from .dataset import CATALOG, WEEK

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "report-json.md"
SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
HOSTILE = f"k8s? {SCRIPT}{IMG}"


def _record(store: SQLiteStore, clock: ManualClock, *pairs: tuple[str, str, float]) -> None:
    """Answered queries on Wednesday of the report week: (id, text, matchQuality)."""
    clock.set(dt.datetime(2026, 11, 23, 1, tzinfo=dt.UTC).timestamp())
    events = []
    for n, (cid, text, quality) in enumerate(pairs):
        ts = dataset.ms(18, 12, n)
        events += [dataset.query(cid, ts, text, "s"), dataset.response(cid, ts, "s", quality, [], (100, 50, 20, False))]
    store.record_events([parse_event(e) for e in events])


class _Tags(HTMLParser):
    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.open: list[str] = []
        self.unbalanced: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.unbalanced.append(tag)


def test_query_text_with_script_and_img_onerror_is_escaped_in_every_rendering(store, clock):
    _record(store, clock, ("x1", HOSTILE, 0.1), ("x2", HOSTILE + " again", 0.2))
    rendered = render(build_report(insights_for(store), WEEK, catalog=CATALOG))
    # HTML: the text is there, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in rendered.html
    parser = _Tags()
    parser.feed(rendered.html)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not [a for a in parser.attrs if a[1].startswith("on")]
    # JSON: no raw angle bracket at all, and the example parses back to the query
    assert "<" not in rendered.json and ">" not in rendered.json
    examples = json.loads(rendered.json)["gaps"]["missing"][0]["examples"]
    assert HOSTILE in examples
    # plain text shows it verbatim: nothing interprets a text/plain part
    assert HOSTILE in rendered.text


def test_control_and_bidi_characters_never_reach_the_reader(store, clock):
    sneaky = "Rust\x1b[2J\x1b[31m?\u202egnp.exe\r\nBcc: someone\x00"
    _record(store, clock, ("y1", sneaky, 0.1), ("y2", sneaky, 0.1))
    rendered = render(build_report(insights_for(store), WEEK, catalog=CATALOG))
    for output in (rendered.html, rendered.text, json.loads(rendered.json)["gaps"]["missing"][0]["examples"][0]):
        assert "\x1b" not in output and "\u202e" not in output and "\x00" not in output and "\r" not in output
    assert "Rust[2J[31m?gnp.exe Bcc: someone" in rendered.text


def test_html_is_self_contained_email_markup(loaded_store):
    html = render(build_report(insights_for(loaded_store), WEEK, catalog=CATALOG)).html
    parser = _Tags()
    parser.feed(html)
    assert not parser.unbalanced and parser.open == []
    assert {"script", "style", "link", "iframe", "form", "img", "svg"}.isdisjoint(parser.tags)
    assert "table" in parser.tags
    assert not [a for a in parser.attrs if a[1] == "class"]  # inline styles only: clients drop <style>
    assert not [a for a in parser.attrs if a[1] in ("src", "href")]  # nothing fetched when opened
    assert "Kubernetes in production?" in html and "Week 2026-W47" in html


def test_text_alternative_carries_the_same_figures(loaded_store):
    text = render(build_report(insights_for(loaded_store), WEEK, catalog=CATALOG)).text
    assert "Questions     11 in 4 sessions" in text
    assert "Correlated    90.9% (target 99%)  << below target" in text
    assert "1. Strengthen Kubernetes in the CV [3 more than in 2026-W46]" in text
    assert '    "Kubernetes in production?"' in text
    assert "up    Kubernetes" in text and "down  Python" in text
    assert "Total            200 ms     400 ms     400 ms          9" in text


def test_an_empty_week_renders_a_short_explanation(store):
    report = build_report(insights_for(store), WEEK, catalog=CATALOG)
    assert report.is_empty and report.actions == [] and report.top_skills == []
    rendered = render(report)
    assert "No recruiter questions were recorded this week." in rendered.html
    assert "No recruiter questions were recorded this week." in rendered.text
    data = json.loads(rendered.json)
    assert data["volume"]["queries"] == 0 and data["volume"]["correlationRate"] is None
    assert data["performance"]["totalTime"] == {"samples": 0, "p50": None, "p95": None, "p99": None}
    assert rendered.subject == "CV analytics 2026-W47 (16 Nov – 22 Nov 2026): 0 recruiter questions"


def test_a_week_with_one_question_renders_without_trends_or_actions(store, clock):
    _record(store, clock, ("only", "Any Python?", 0.9))
    report = build_report(insights_for(store), WEEK, catalog=CATALOG)
    assert report.volume.queries == 1 and report.volume.correlation_rate == 1.0
    assert report.performance.total_time.p50 == report.performance.total_time.p99 == 100
    assert report.actions == [] and report.trends.rising == []
    rendered = render(report)
    assert "Nothing stands out this week" in rendered.html and "Nothing stands out this week" in rendered.text
    assert "1 recruiter question" in rendered.subject


def test_json_uses_documented_camel_case_field_names(loaded_store):
    data = json.loads(render(build_report(insights_for(loaded_store), WEEK, catalog=CATALOG)).json)
    assert list(data) == [
        "schemaVersion", "week", "start", "end", "generatedAt", "volume", "topSkills",
        "match", "trends", "gaps", "performance", "actions",
    ]  # fmt: skip
    assert data["schemaVersion"] == SCHEMA_VERSION
    assert data["start"] == "2026-11-16" and data["end"] == "2026-11-22"
    assert data["volume"]["byDay"][0] == {"day": "Mon", "date": "2026-11-16", "queries": 2}
    assert data["gaps"]["missing"][0] | {"examples": []} == {
        "kind": "skill", "key": "Rust", "queries": 1, "noMatch": 1, "lowMatch": 0, "matched": 0, "examples": []
    }
    assert [g["key"] for g in data["gaps"]["weak"]] == ["Kubernetes"]
    assert WeeklyReport.model_validate(data) == build_report(insights_for(loaded_store), WEEK, catalog=CATALOG).model_copy(
        update={"generated_at": WeeklyReport.model_validate(data).generated_at}
    )


def test_the_json_reference_in_docs_lists_every_field():
    if not DOCS.is_file():
        pytest.fail(f"{DOCS} is missing: write it from cv_analytics.reporting.model.fields_markdown()")
    assert fields_markdown() in DOCS.read_text(encoding="utf-8"), (
        "docs/report-json.md is out of date: paste in the table from "
        "`python -c 'from cv_analytics.reporting.model import fields_markdown; print(fields_markdown())'`"
    )


def test_text_labels_both_gap_lists_and_every_part_of_the_breakdown(loaded_store):
    text = render(build_report(insights_for(loaded_store), WEEK, catalog=CATALOG)).text
    missing = text.index("Missing from the CV: add it")
    weak = text.index("Answered weakly: strengthen what the CV says about it")
    assert missing < text.index("  Rust: 1 question (1 no match, 0 weak)") < weak
    assert missing < text.index("  zig (not in the skills catalog): 1 question") < weak
    assert weak < text.index("  Kubernetes: 2 questions (1 no match, 1 weak; 2 matched)")
    assert "Terraform          ##########                          1  0 full, 0 partial, 0 none, 1 unjudged\n" in text
    assert "Questions     11 in 4 sessions" in text and "1 unanswered, 1 orphan response\n" in text
    assert "(1 more question named no recognisable skill or term.)" in text
    assert "09:00      ############################## 3\n" in text  # by-hour chart with its counts


def test_html_labels_gap_lists_breakdown_ranking_and_chart_values(loaded_store):
    html = render(build_report(insights_for(loaded_store), WEEK, catalog=CATALOG)).html
    assert "Missing from the CV: add it" in html and "Answered weakly: strengthen what the CV says about it" in html
    assert html.index("Missing from the CV") < html.index("<b>Rust</b>") < html.index("Answered weakly") < html.index("<b>Kubernetes</b>")
    assert "Gaps: skills to consider adding" not in html
    assert "0 none</span> · 1 unjudged" in html  # Terraform: 0/0/0 of 1 leaves 1, labelled
    assert "Ranked by the figure on the right" in html
    assert '>3</div><div style="font-size:11px;color:#6b7280;">more than in 2026-W46</div>' in html
    assert "Ranked by the number of questions" not in html
    assert "1 orphan response." in html and "4 sessions" in html
    # each vertical chart carries a row of counts: ten score buckets, 24 hours
    assert html.count('font-size:9px;color:#374151;padding-bottom:2px;">') == 10 + 24
    assert 'padding-bottom:2px;">3</td>' in html  # 09:00 had three questions
    assert "Questions by hour of the day (UTC, 0–23)" in html


def test_counts_agree_with_their_nouns():
    from cv_analytics.reporting.render import counted

    assert [counted(1, "session"), counted(4, "session"), counted(1, "query", "queries"), counted(2, "query", "queries")] == [
        "1 session", "4 sessions", "1 query", "2 queries"
    ]  # fmt: skip
    assert counted(1206, "question") == "1,206 questions"


def test_one_question_in_one_session_is_singular(store, clock):
    _record(store, clock, ("only", "Any Python?", 0.9))
    rendered = render(build_report(insights_for(store), WEEK, catalog=CATALOG))
    assert "Questions     1 in 1 session\n" in rendered.text and "1 in 1 sessions" not in rendered.text
    assert "1 session</div>" in rendered.html and "1 question," in rendered.html
