"""The dashboard as a person sees it, in Chromium: the numbers are the JSON report's, weeks switch, login and logout.

Screenshots go to docs/images/ (the README shows them).
"""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import API_KEY, OWNER, PASSWORD, SCREENSHOTS, report_json, run_cli, serving, settings_for

pytestmark = pytest.mark.slow


def number(text: str) -> float:
    """``1,299 ms`` → 1299.0; ``98.5%`` → 98.5."""
    match = re.search(r"-?[0-9][0-9,]*(\.[0-9]+)?", text)
    assert match, f"no number in {text!r}"
    return float(match.group(0).replace(",", ""))


def assert_page_shows(page, report: dict) -> None:
    """Every figure the page draws from the report equals the JSON report's."""
    volume, match, performance, gaps = report["volume"], report["match"], report["performance"], report["gaps"]
    assert page.locator("#week").inner_text() == report["week"]
    assert number(page.locator("#total-queries").inner_text()) == volume["queries"]
    assert number(page.locator("#answered").inner_text()) == volume["answered"]
    assert number(page.locator("#unanswered").inner_text()) == volume["unanswered"]
    assert number(page.locator("#correlation-rate").inner_text()) == round(volume["correlationRate"] * 100, 1)
    assert number(page.locator("#full-rate").inner_text()) == round(match["fullRate"] * 100, 1)

    rows = page.locator("#top-skills tbody tr")
    assert rows.count() == len(report["topSkills"]) > 0
    for n, skill in enumerate(report["topSkills"]):
        cells = rows.nth(n).locator("th, td").all_inner_texts()
        assert cells[0] == skill["skill"] and number(cells[1]) == skill["queries"]
        assert [int(c) for c in cells[3:7]] == [skill["full"], skill["partial"], skill["none"], skill["unjudged"]]

    assert number(page.locator("#gap-queries").inner_text()) == gaps["queries"]
    for table, groups in (("#gaps-missing", gaps["missing"]), ("#gaps-weak", gaps["weak"])):
        rows = page.locator(f"{table} tbody tr")
        for n, group in enumerate(groups):
            key = rows.nth(n).locator("th").inner_text()
            assert key.split(" (term)")[0] == group["key"]
            assert number(rows.nth(n).locator("td").first.inner_text()) == group["queries"]
            assert rows.nth(n).locator(".examples li").all_inner_texts() == group["examples"]

    for series, key in (("totalTime", "total"), ("llmTime", "llm"), ("retrievalTime", "retrieval")):
        row = page.locator(f"#latency-{key}")
        assert number(row.locator(".samples").inner_text()) == performance[series]["samples"]
        for p in ("p50", "p95", "p99"):
            assert number(row.locator(f".{p}").inner_text()) == performance[series][p], (series, p)

    # the charts: one bar per day and per hour, each labelled with its count
    day_values = [int(v) for v in page.locator("#chart-by-day .bar").evaluate_all("bars => bars.map(b => b.dataset.value)")]
    assert day_values == [d["queries"] for d in volume["byDay"]]
    assert page.locator("#chart-by-day .bar .value").all_text_contents() == [f"{d['queries']:,}" for d in volume["byDay"]]
    hour_values = page.locator("#chart-by-hour .bar").evaluate_all("bars => bars.map(b => Number(b.dataset.value))")
    assert hour_values == [h["queries"] for h in volume["byHour"]]
    skill_labels = page.locator("#chart-skills .bar").evaluate_all("bars => bars.map(b => [b.dataset.label, Number(b.dataset.value)])")
    assert skill_labels == [[s["skill"], s["queries"]] for s in report["topSkills"]]
    assert page.locator("#chart-match .bar .value").all_text_contents() == [
        f"{match[k]:,}" for k in ("full", "partial", "none", "unknown")
    ]


def test_a_person_logs_in_reads_the_week_switches_weeks_and_logs_out(demo_data, demo_weeks, page_of):
    earlier, last = demo_weeks
    expected = {week: report_json(demo_data, week) for week in demo_weeks}
    assert expected[last]["volume"]["queries"] > 100 and expected[earlier]["volume"]["queries"] > 100
    with serving(settings_for(demo_data, CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)) as base:
        page = page_of()
        page.goto(f"{base}/dashboard")
        assert page.url.startswith(f"{base}/dashboard/login")
        page.fill("#password", "not the password")
        page.click("#login")
        assert page.locator("#login-error").inner_text() == "Wrong password."
        page.screenshot(path=str(SCREENSHOTS / "dashboard-login.png"))
        page.fill("#password", PASSWORD)
        page.click("#login")
        assert page.url == f"{base}/dashboard"

        assert page.locator("#week-reason").inner_text() == "Showing the last complete week."
        assert_page_shows(page, expected[last])
        assert f"Last sent: {last} to {OWNER} via smtp" in page.locator("#last-sent").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "dashboard-week.png"), full_page=True)
        page.click(f"#last-sent a")
        assert page.url == f"{base}/dashboard/reports/{last}"
        assert last in page.title() and f"{expected[last]['volume']['queries']:,}" in page.content()
        page.go_back()

        page.select_option("#week-select", earlier)
        page.click("#show-week")
        assert page.url == f"{base}/dashboard?week={earlier}"
        assert_page_shows(page, expected[earlier])
        trends = page.locator("#chart-trends .bar").count()
        assert trends == 0 or expected[earlier]["trends"]["rising"] + expected[earlier]["trends"]["falling"]
        page.click("#next-week")
        assert_page_shows(page, expected[last])
        page.click("#previous-week")
        assert page.locator("#week").inner_text() == earlier

        page.click("text=Pipeline health")
        assert page.locator("#queue-analytics .visible").inner_text() == "0"
        assert "last wrote an interaction 20" in page.locator("#last-worker").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "dashboard-health.png"), full_page=True)

        page.click("#logout")
        assert page.url == f"{base}/dashboard/login"
        page.goto(f"{base}/dashboard/health")
        assert page.url.startswith(f"{base}/dashboard/login")


def test_without_a_password_loopback_sees_the_dashboard_and_the_notice(demo_data, demo_weeks, page_of):
    with serving(settings_for(demo_data)) as base:
        page = page_of()
        page.goto(f"{base}/dashboard?week={demo_weeks[1]}")
        assert "answers only on loopback" in page.locator("#loopback-notice").inner_text()
        assert page.locator("#logout").count() == 0
        assert_page_shows(page, report_json(demo_data, demo_weeks[1]))


def test_generate_report_now_queues_a_job_the_workers_run_and_ends_with_a_link_to_the_report(
    demo_data, demo_weeks, page_of
):
    earlier = demo_weeks[0]
    expected = report_json(demo_data, earlier)
    with serving(settings_for(demo_data, CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)) as base:
        page = page_of()
        page.goto(f"{base}/dashboard/login?next=/dashboard%3Fweek%3D{earlier}")
        page.fill("#password", PASSWORD)
        page.click("#login")
        assert page.locator("#week").inner_text() == earlier
        page.click("#generate-report")
        assert re.fullmatch(rf"{re.escape(base)}/dashboard/jobs/[^/]+", page.url)
        assert page.locator("#job-status").get_attribute("data-status") == "queued"
        # the jobs workers, as `cv-analytics jobs worker` / `jobs results` run them beside the app
        run_cli(demo_data, "jobs", "worker", "--drain", "--wait", "0")
        run_cli(demo_data, "jobs", "results", "--drain", "--wait", "0")
        page.wait_for_selector("#job-report", timeout=30_000)  # the page reloads itself until the job is done
        assert page.locator("#job-status").get_attribute("data-status") == "succeeded"
        page.screenshot(path=str(SCREENSHOTS / "dashboard-report-job.png"))
        page.click("#job-report")
        assert earlier in page.title() and f"{expected['volume']['queries']:,}" in page.content()
        page.goto(f"{base}/dashboard/health")
        assert f"{earlier}: succeeded" in page.locator("#report-jobs").inner_text()


def test_the_dashboard_json_is_the_cli_report_but_for_when_it_was_built(demo_data, demo_weeks):
    with serving(settings_for(demo_data)) as base:
        for week in demo_weeks:
            served = httpx.get(f"{base}/dashboard/api/report", params={"week": week}, headers={"x-api-key": API_KEY}).json()
            printed = report_json(demo_data, week)
            assert {**served, "generatedAt": None} == {**printed, "generatedAt": None}
        default = httpx.get(f"{base}/dashboard/api/weeks", headers={"x-api-key": API_KEY}).json()
        assert default["default"] == {"week": demo_weeks[1], "reason": "the last complete week"}
        assert [w["week"] for w in default["weeks"]] == list(demo_weeks)
