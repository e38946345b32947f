"""The chat page: hostile questions escaped on every page served, and a question asked in headless chromium."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from markupsafe import escape

from cv_analytics.stores.models import InteractionStatus

PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


@pytest.mark.parametrize("payload", PAYLOADS, ids=["script", "img_onerror"])
def test_a_hostile_question_is_escaped_on_every_page(client, payload):
    page = client.get("/", params={"q": payload})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert payload not in page.text
    assert f'value="{escape(payload)}"' in page.text  # the question prefilled, as text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"

    answer = client.get("/api/search", params={"q": payload})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    missing = client.get(f"/{payload}")  # a path no route matches
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    metrics = client.get("/metrics").text
    assert payload not in metrics and "<" not in metrics  # route labels are templates, never the path sent


def test_the_page_and_its_assets_come_from_the_package(client):
    page = client.get("/").text
    for asset, kind in (("/static/chat.js", "javascript"), ("/static/chat.css", "text/css"), ("/static/favicon.svg", "image/svg+xml")):
        assert asset in page
        reply = client.get(asset)
        assert reply.status_code == 200 and kind in reply.headers["content-type"]
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


@pytest.mark.slow
def test_the_chat_page_asks_and_shows_the_answer_in_chromium(browser, live_server, drain, wiring):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(live_server + "/")
    page.fill("#question", "What is your experience with TypeScript?")
    page.press("#question", "Enter")
    answer = page.locator("li.answer").first
    answer.wait_for()
    assert "TypeScript" in answer.locator(".text").inner_text()
    assert "TypeScript" in answer.locator("li.match").first.inner_text()
    assert "match full" in answer.locator(".meta").inner_text()
    correlation_id = answer.get_attribute("data-correlation-id")

    drain()
    interaction = wiring.store.get_interaction(correlation_id)
    assert interaction is not None and interaction.status is InteractionStatus.ANSWERED
    assert "Chrome" in (interaction.user_agent or "") and interaction.session_id  # the page's session id
    assert dialogs == []


@pytest.mark.slow
@pytest.mark.parametrize("payload", PAYLOADS, ids=["script", "img_onerror"])
def test_a_hostile_question_shows_literally_and_runs_nothing_in_chromium(browser, live_server, payload):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server}/?{urlencode({'q': payload})}")  # asked on load
    page.locator("li.answer").first.wait_for()
    assert page.locator("li.question").first.inner_text() == payload
    assert page.locator("img[src=x]").count() == 0 and page.locator("#log script").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert dialogs == []
