"""Who may see the dashboard: a login session, the API key, or (with no password configured) loopback only.

The session is a signed cookie (itsdangerous): a random session id and whether it
logged in, HttpOnly, SameSite=Lax, with a max age. Every form carries a CSRF token
bound to that session id (a second signature over it, with its own salt); a POST
without it, or with another session's, is refused with 403. Scripts send ``x-api-key``
instead (a header no other site can make a browser send, so no CSRF token is asked of them).
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request, Response, status
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..deps import API_KEY_HEADER, api_key_matches, get_settings

SESSION_COOKIE = "cv_analytics_dashboard"
CSRF_FIELD = "csrf_token"
#: A login lasts a working day; the cookie and its CSRF tokens expire together.
SESSION_MAX_AGE_SECONDS = 12 * 3600
PASSWORD_VARIABLE = "CV_ANALYTICS_DASHBOARD_PASSWORD"
LOGIN_PATH = "/dashboard/login"
#: Wrong passwords one address may try in the window before its logins are refused (429) until the oldest ages out.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 300.0


@dataclass(frozen=True)
class Session:
    session_id: str
    logged_in: bool


@dataclass(frozen=True)
class Visitor:
    """Who is asking, and how they got in."""

    session: Session | None
    #: ``login``, ``api-key``, ``loopback``, or ``anonymous`` (the login form)
    via: str
    password_configured: bool

    @property
    def can_log_out(self) -> bool:
        return self.via == "login"


class LoginThrottle:
    """Wrong passwords per client address, in a sliding window: guessing the password costs time.

    Per process (each ``serve`` process counts its own); at most ``max_addresses`` are kept,
    the least recently failing forgotten first, so a flood of addresses cannot grow memory.
    """

    def __init__(
        self,
        *,
        attempts: int = LOGIN_ATTEMPTS,
        window_seconds: float = LOGIN_WINDOW_SECONDS,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._attempts, self._window, self._max, self._clock = attempts, window_seconds, max_addresses, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again, or None when it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        cutoff = self._clock() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if len(failures) < self._attempts:
            return None
        return max(1, math.ceil(failures[0] - cutoff))

    def failed(self, address: str) -> None:
        failures = self._failures.pop(address, None) or deque(maxlen=self._attempts)
        failures.append(self._clock())
        self._failures[address] = failures
        while len(self._failures) > self._max:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


class DashboardAuth:
    """The signing keys of one app (its secret from ``Settings.session_secret``, else random per process)."""

    def __init__(self, secret: str | None, *, throttle: LoginThrottle | None = None) -> None:
        self.throttle = throttle or LoginThrottle()
        key = secret or secrets.token_urlsafe(32)
        self._sessions = URLSafeTimedSerializer(key, salt="cv-analytics.dashboard.session")
        self._csrf = URLSafeTimedSerializer(key, salt="cv-analytics.dashboard.csrf")

    def read_session(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        return Session(data["sid"], data.get("in") is True)

    def new_session(self, response: Response, *, logged_in: bool, secure: bool) -> Session:
        """A fresh session id (a login never keeps the id it was offered: no fixation)."""
        session = Session(secrets.token_urlsafe(24), logged_in)
        response.set_cookie(
            SESSION_COOKIE,
            self._sessions.dumps({"sid": session.session_id, "in": logged_in}),
            max_age=SESSION_MAX_AGE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/dashboard",
        )
        return session

    def csrf_token(self, session: Session) -> str:
        return self._csrf.dumps(session.session_id)

    def csrf_valid(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        try:
            bound = self._csrf.loads(token, max_age=SESSION_MAX_AGE_SECONDS)
        except BadSignature:
            return False
        return isinstance(bound, str) and hmac.compare_digest(bound.encode(), session.session_id.encode())


async def get_auth(request: Request) -> DashboardAuth:
    """The app's signer, made on first use (on the event loop: no two threads make two random secrets)."""
    auth = getattr(request.app.state, "dashboard_auth", None)
    if auth is None:
        auth = request.app.state.dashboard_auth = DashboardAuth(get_settings(request).session_secret)
    return auth


def _loopback_name(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback(request: Request) -> bool:
    """The client is on this machine, and asked for it by a loopback name: another site's page
    rebinding its own name to 127.0.0.1 (DNS rebinding) sends its name in ``Host`` and is refused."""
    client = request.client.host if request.client else ""
    return _loopback_name(client) and _loopback_name(request.url.hostname or "")


def password_matches(presented: str, configured: str) -> bool:
    return hmac.compare_digest(presented.encode(), configured.encode())


def safe_next(path: str | None) -> str:
    """Where to go after logging in: a dashboard path only (never another site: ``//evil``, ``/\\evil``)."""
    if path and path.startswith("/dashboard") and "\\" not in path and path.isprintable() and " " not in path:
        return path
    return "/dashboard"


async def require_visitor(request: Request) -> Visitor:
    """Let in a valid API key, a logged-in session, or (no password configured) a loopback client.

    Otherwise: 401 for an API-style request (a bad ``x-api-key``, or not asking for HTML),
    a 303 to the login page for a browser, 403 off loopback when no password is configured.
    """
    settings = get_settings(request)
    auth = await get_auth(request)
    presented = request.headers.get(API_KEY_HEADER)
    password = settings.dashboard_password
    if presented is not None:
        if api_key_matches(presented, settings.api_keys):
            return Visitor(None, "api-key", password is not None)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown API key: send one of CV_ANALYTICS_API_KEYS in the x-api-key header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    session = auth.read_session(request)
    if password is None:
        if not is_loopback(request):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=(
                    "the dashboard answers only on loopback (open it as http://127.0.0.1:PORT or http://localhost:PORT) "
                    f"while no password is configured: set {PASSWORD_VARIABLE} on the server to log in from elsewhere "
                    "(or send x-api-key)"
                ),
            )
        return Visitor(session, "loopback", False)
    if session is not None and session.logged_in:
        return Visitor(session, "login", True)
    if "text/html" in request.headers.get("accept", "") and request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(
            status.HTTP_303_SEE_OTHER,
            detail="log in first",
            headers={"Location": f"{LOGIN_PATH}?{urlencode({'next': here})}"},
        )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=f"log in at {LOGIN_PATH}, or send x-api-key",
        headers={"WWW-Authenticate": API_KEY_HEADER},
    )


VisitorDep = Annotated[Visitor, Depends(require_visitor)]
AuthDep = Annotated[DashboardAuth, Depends(get_auth)]
