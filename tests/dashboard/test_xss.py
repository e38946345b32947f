"""Recruiters' questions are hostile text: escaped on every dashboard page, and in Chromium no script runs.

The questions go in through the real pipeline (``send`` → ``worker --drain``, see conftest),
answered badly, so they are the latest example questions of their gaps; a body with markup
in its event type is dead-lettered, and its failure reason is on the health page.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from cv_analytics.entrypoints.web import create_app
from cv_analytics.wiring import Wiring

from .conftest import API_KEY, IMG, SCRIPT, serving, settings_for

pytestmark = pytest.mark.slow

ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
ESCAPED_IMG = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"
RAW_MARKUP = re.compile(r"<script|<img|onerror=alert\(\d\)>", re.IGNORECASE)


def pages(week: str) -> list[str]:
    return [
        f"/dashboard?week={week}",
        "/dashboard",
        "/dashboard/health",
        f"/dashboard/reports/{week}",
        "/dashboard/login",
    ]


@pytest.fixture
def client(demo_data):
    wiring = Wiring(settings_for(demo_data))
    yield TestClient(create_app(wiring), base_url="http://127.0.0.1:8000", client=("127.0.0.1", 40000))
    wiring.close()


def test_every_page_shows_the_hostile_questions_as_text_never_as_markup(client, demo_weeks):
    week = demo_weeks[1]
    for path in pages(week):
        html = client.get(path, headers={"accept": "text/html"}).text
        assert not RAW_MARKUP.search(html), (path, RAW_MARKUP.search(html))
    week_page = client.get(f"/dashboard?week={week}").text
    # they are there, escaped: as gap examples on the week page
    assert ESCAPED_SCRIPT + " Do you know Rust?" in week_page
    assert ESCAPED_IMG + " Have you used Terraform?" in week_page
    health = client.get("/dashboard/health").text
    assert f"got &#39;{ESCAPED_SCRIPT}&#39;" in health  # the dead letter's failure reason
    report = client.get(f"/dashboard/reports/{week}").text
    assert "alert(1)" in report and not RAW_MARKUP.search(report)


def test_the_json_routes_keep_the_text_as_data(client, demo_weeks):
    report = client.get(f"/dashboard/api/report?week={demo_weeks[1]}", headers={"x-api-key": API_KEY}).json()
    examples = [e for g in report["gaps"]["missing"] + report["gaps"]["weak"] for e in g["examples"]]
    assert f"{SCRIPT} Do you know Rust?" in examples and f"{IMG} Have you used Terraform?" in examples
    status = client.get("/dashboard/api/status").json()
    assert any(SCRIPT in reason["reason"] for d in status["deadLetters"] for reason in d["reasons"])


def test_in_chromium_no_dialog_opens_on_any_page_and_the_text_reads_as_typed(demo_data, demo_weeks, page_of):
    week = demo_weeks[1]
    with serving(settings_for(demo_data)) as base:
        page = page_of()  # the fixture fails the test should any alert() dialog open
        for path in pages(week):
            page.goto(f"{base}{path}")
            page.wait_for_load_state("load")
            assert page.locator("img").count() == 0, path
        page.goto(f"{base}/dashboard?week={week}")
        examples = page.locator(".examples li").all_inner_texts()
        assert f"{SCRIPT} Do you know Rust?" in examples and f"{IMG} Have you used Terraform?" in examples
        page.goto(f"{base}/dashboard/health")
        assert SCRIPT in page.locator(".reasons").inner_text()
