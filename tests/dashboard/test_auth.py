"""Who gets into the dashboard: login (signed session, CSRF on every form), the API key, loopback without a password."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from cv_analytics.entrypoints.web import create_app
from cv_analytics.entrypoints.web.dashboard.auth import SESSION_COOKIE
from cv_analytics.wiring import Wiring

from .conftest import API_KEY, PASSWORD, SECRET, settings_for

HTML = {"accept": "text/html,application/xhtml+xml"}
LOOPBACK = ("127.0.0.1", 50123)
ELSEWHERE = ("203.0.113.7", 50123)


@pytest.fixture
def make_client(tmp_path) -> Iterator:
    wirings: list[Wiring] = []

    def make(*, client=LOOPBACK, base_url="http://127.0.0.1:8000", **env: str) -> TestClient:
        wiring = Wiring(settings_for(tmp_path / "data", **env))
        wirings.append(wiring)
        return TestClient(create_app(wiring), base_url=base_url, client=client, follow_redirects=False)

    yield make
    for wiring in wirings:
        wiring.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has a form without a CSRF token"
    return match.group(1)


def logged_in(client: TestClient) -> str:
    """Log in through the form; returns the CSRF token of the dashboard page after it."""
    token = csrf_of(client.get("/dashboard/login", headers=HTML).text)
    answer = client.post("/dashboard/login", data={"password": PASSWORD, "csrf_token": token, "next": "/dashboard"})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    page = client.get("/dashboard", headers=HTML)
    assert page.status_code == 200
    return csrf_of(page.text)


# -- without a password: loopback only ---------------------------------------------


def test_without_a_password_loopback_gets_the_dashboard_and_is_told_why_no_login(make_client):
    client = make_client()
    page = client.get("/dashboard", headers=HTML)
    assert page.status_code == 200
    assert "No password is configured: the dashboard answers only on" in page.text
    assert "CV_ANALYTICS_DASHBOARD_PASSWORD" in page.text
    assert client.get("/dashboard/health", headers=HTML).status_code == 200
    assert client.get("/dashboard/api/report").status_code == 200


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/health", "/dashboard/api/report", "/dashboard/reports/2026-W01"])
def test_without_a_password_any_other_address_is_refused_with_what_to_set(make_client, path):
    answer = make_client(client=ELSEWHERE).get(path, headers=HTML)
    assert answer.status_code == 403
    assert "set CV_ANALYTICS_DASHBOARD_PASSWORD" in answer.json()["detail"]


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "cv.example.dev"])
def test_without_a_password_a_loopback_client_asking_for_another_host_name_is_refused(make_client, host):
    """DNS rebinding: another site's page whose name now resolves to 127.0.0.1 sends that name in Host."""
    client = make_client(base_url=f"http://{host}:8000")
    answer = client.get("/dashboard", headers=HTML)
    assert answer.status_code == 403 and "http://127.0.0.1:PORT" in answer.json()["detail"]


@pytest.mark.parametrize("base_url", ["http://localhost:8000", "http://[::1]:8000", "http://127.0.0.2:8000"])
def test_without_a_password_every_loopback_name_is_accepted(make_client, base_url):
    assert make_client(base_url=base_url).get("/dashboard", headers=HTML).status_code == 200


def test_without_a_password_the_api_key_still_opens_it_from_elsewhere(make_client):
    client = make_client(client=ELSEWHERE)
    assert client.get("/dashboard/api/report", headers={"x-api-key": API_KEY}).status_code == 200
    assert client.get("/dashboard/api/report", headers={"x-api-key": "wrong"}).status_code == 401


def test_without_a_password_the_login_form_says_there_is_nothing_to_log_into(make_client):
    client = make_client()
    page = client.get("/dashboard/login", headers=HTML)
    assert page.status_code == 200 and "No password is configured" in page.text
    assert 'id="login-form"' not in page.text
    assert client.post("/dashboard/login", data={"password": "anything"}).status_code == 403


# -- with a password ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/health", "/dashboard/reports/2026-W01", "/dashboard?week=2026-W03"])
def test_a_browser_without_a_session_is_sent_to_the_login_page_and_back(make_client, path):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    answer = client.get(path, headers=HTML)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/dashboard/login?next=") and unquote(location.split("next=", 1)[1]) == path


@pytest.mark.parametrize("headers", [{}, {"accept": "application/json"}, {"x-api-key": "not-the-key", **HTML}])
def test_scripts_without_a_valid_key_get_401(make_client, headers):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    for path in ("/dashboard/api/report", "/dashboard/api/status", "/dashboard/api/weeks", "/dashboard"):
        assert client.get(path, headers=headers).status_code == 401, path


def test_the_api_key_opens_every_page_without_a_session(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD, client=ELSEWHERE)
    for path in ("/dashboard", "/dashboard/health", "/dashboard/api/report", "/dashboard/api/status"):
        assert client.get(path, headers={"x-api-key": API_KEY, **HTML}).status_code == 200, path


def test_a_wrong_password_is_refused_and_no_session_is_granted(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    token = csrf_of(client.get("/dashboard/login", headers=HTML).text)
    answer = client.post("/dashboard/login", data={"password": PASSWORD + "!", "csrf_token": token})
    assert answer.status_code == 401 and "Wrong password." in answer.text
    assert client.get("/dashboard", headers=HTML).status_code == 303


def test_login_sets_a_signed_httponly_lax_cookie_with_a_max_age_and_a_fresh_session_id(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    login_page = client.get("/dashboard/login", headers=HTML)
    offered = client.cookies.get(SESSION_COOKIE)
    answer = client.post(
        "/dashboard/login", data={"password": PASSWORD, "csrf_token": csrf_of(login_page.text), "next": "/dashboard/health"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/health"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Max-Age=43200" in cookie
    granted = client.cookies.get(SESSION_COOKIE)
    assert granted != offered  # the session id offered before login is never the logged-in one
    signer = URLSafeTimedSerializer(SECRET, salt="cv-analytics.dashboard.session")
    assert signer.loads(granted)["in"] is True and signer.loads(offered)["in"] is False
    assert client.get("/dashboard/health", headers=HTML).status_code == 200


def test_the_session_secret_from_settings_signs_cookies_any_process_accepts(make_client):
    first = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    logged_in(first)
    second = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    second.cookies.set(SESSION_COOKIE, first.cookies.get(SESSION_COOKIE), path="/dashboard")
    assert second.get("/dashboard", headers=HTML).status_code == 200
    other_secret = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD, CV_ANALYTICS_SESSION_SECRET="another")
    other_secret.cookies.set(SESSION_COOKIE, first.cookies.get(SESSION_COOKIE), path="/dashboard")
    assert other_secret.get("/dashboard", headers=HTML).status_code == 303


def test_a_forged_or_tampered_session_cookie_is_no_session(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    forged = URLSafeTimedSerializer("guessed", salt="cv-analytics.dashboard.session").dumps({"sid": "x", "in": True})
    for cookie in (forged, "garbage", URLSafeTimedSerializer(SECRET, salt="other").dumps({"sid": "x", "in": True})):
        client.cookies.set(SESSION_COOKIE, cookie, path="/dashboard")
        assert client.get("/dashboard", headers=HTML).status_code == 303


def test_login_never_redirects_off_the_dashboard(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/elsewhere", "/dashboard\r\nSet-Cookie: x=1"):
        token = csrf_of(client.get("/dashboard/login", headers=HTML).text)
        answer = client.post("/dashboard/login", data={"password": PASSWORD, "csrf_token": token, "next": target})
        assert answer.headers["location"] == "/dashboard", target


# -- CSRF on every form ------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_login_without_or_with_a_forged_csrf_token_is_refused(make_client, token):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    client.get("/dashboard/login", headers=HTML)
    data = {"password": PASSWORD} | ({} if token is None else {"csrf_token": token})
    answer = client.post("/dashboard/login", data=data)
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
    assert client.get("/dashboard", headers=HTML).status_code == 303


def test_a_csrf_token_of_another_session_is_refused(make_client):
    victim, attacker = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD), make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    logged_in(victim)
    attackers_token = csrf_of(attacker.get("/dashboard/login", headers=HTML).text)  # validly signed, other session
    assert victim.post("/dashboard/logout", data={"csrf_token": attackers_token}).status_code == 403
    assert victim.post("/dashboard/reports", data={"week": "2026-W01", "csrf_token": attackers_token}).status_code == 403
    assert victim.get("/dashboard", headers=HTML).status_code == 200  # still logged in


def test_logout_needs_its_token_then_ends_the_session(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    token = logged_in(client)
    assert client.post("/dashboard/logout").status_code == 403
    assert client.get("/dashboard", headers=HTML).status_code == 200
    answer = client.post("/dashboard/logout", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/login"
    assert client.get("/dashboard", headers=HTML).status_code == 303


def test_generate_report_without_a_csrf_token_is_refused_even_on_loopback(make_client):
    client = make_client()
    client.get("/dashboard", headers=HTML)
    assert client.post("/dashboard/reports", data={"week": "2026-W01"}).status_code == 403
    assert client.post("/dashboard/reports", data={"week": "2026-W01", "csrf_token": "x"}).status_code == 403


def test_pages_forbid_scripts_and_framing(make_client):
    page = make_client().get("/dashboard", headers=HTML)
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy


# -- guessing the password ---------------------------------------------------------------


def _try(client: TestClient, password: str):
    token = csrf_of(client.get("/dashboard/login", headers=HTML).text)
    return client.post("/dashboard/login", data={"password": password, "csrf_token": token, "next": "/dashboard"})


def test_five_wrong_passwords_lock_that_address_out_even_with_the_right_one(make_client):
    client = make_client(CV_ANALYTICS_DASHBOARD_PASSWORD=PASSWORD)
    assert [_try(client, f"guess-{i}").status_code for i in range(5)] == [401] * 5
    refused = _try(client, PASSWORD)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 300
    assert "Too many wrong passwords" in refused.text
    assert client.get("/dashboard", headers=HTML).status_code == 303  # still not logged in
    elsewhere = TestClient(client.app, base_url="http://127.0.0.1:8000", client=("198.51.100.9", 50123), follow_redirects=False)
    assert _try(elsewhere, PASSWORD).status_code == 303  # the same app, another address: not locked


def test_a_right_password_clears_the_count_and_the_lock_ages_out():
    from cv_analytics.entrypoints.web.dashboard.auth import LoginThrottle

    now = [1_000.0]
    throttle = LoginThrottle(attempts=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.retry_after("a") is None  # the success forgot the two before it
    throttle.failed("a"), throttle.failed("a")
    assert throttle.retry_after("a") == 60
    now[0] += 30
    assert throttle.retry_after("a") == 30
    now[0] += 30.5
    assert throttle.retry_after("a") is None  # the oldest failure left the window


def test_the_throttle_forgets_the_oldest_addresses_beyond_its_bound():
    from cv_analytics.entrypoints.web.dashboard.auth import LoginThrottle

    throttle = LoginThrottle(attempts=1, max_addresses=100)
    for i in range(1_000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert throttle.retry_after("10.0.0.0") is None and throttle.retry_after("10.0.3.231") is not None
