"""``/dashboard``: the weekly insights as pages, the pipeline's health, "generate report now", login.

Pages are HTML rendered on the server (Jinja2, autoescaped; charts as SVG, no JavaScript).
The same figures are served as JSON under ``/dashboard/api/`` for scripts with the API key.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ....exceptions import ConfigurationError, QueueError
from ....reporting.weeks import IsoWeek
from ..deps import WiringDep
from . import jobs as report_jobs
from .auth import (
    CSRF_FIELD,
    LOGIN_PATH,
    PASSWORD_VARIABLE,
    SESSION_COOKIE,
    AuthDep,
    DashboardAuth,
    Session,
    Visitor,
    VisitorDep,
    is_loopback,
    password_matches,
    safe_next,
)
from .views import load_health_page, load_week_page, rendered_report_html, template_helpers, week_index, weekly_report

PACKAGE_DIR = pathlib.Path(__file__).parent
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
)
templates.env.globals.update(template_helpers())
STYLESHEET = (PACKAGE_DIR / "static" / "dashboard.css").read_text()

#: No script runs on these pages, and nothing loads from elsewhere (the machine may be offline).
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: The report as mailed keeps its inline styles; still no script.
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
WEEK_PATTERN = r"^[0-9]{4}-W[0-9]{2}$"
WeekQuery = Annotated[
    str | None,
    Query(description="ISO week, e.g. 2026-W47 (default: the last complete week, or the latest with data).",
          max_length=16, pattern=WEEK_PATTERN),
]  # fmt: skip

router = APIRouter(prefix="/dashboard", tags=["dashboard"])


def _week_or_422(text: str) -> str:
    try:
        return str(IsoWeek.parse(text))
    except ConfigurationError as exc:
        raise HTTPException(422, detail=str(exc)) from None


def _page(
    request: Request, auth: DashboardAuth, visitor: Visitor, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page for ``visitor``; a browser without a session gets one, so its forms carry a CSRF token."""
    session = visitor.session
    fresh = None
    if session is None and visitor.via != "api-key":
        fresh = Response()
        session = auth.new_session(fresh, logged_in=False, secure=request.url.scheme == "https")
    response = templates.TemplateResponse(
        request,
        template,
        {
            "visitor": visitor,
            "csrf_field": CSRF_FIELD,
            "csrf_token": auth.csrf_token(session) if session else "",
            "password_variable": PASSWORD_VARIABLE,
            **context,
        },
        status_code=status_code,
    )
    if fresh is not None:
        response.raw_headers.extend(h for h in fresh.raw_headers if h[0] == b"set-cookie")
    return _secured(response)


def _secured(response: Response, policy: str = PAGE_POLICY) -> Response:
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_csrf(auth: DashboardAuth, visitor: Visitor, token: str | None) -> None:
    if visitor.via == "api-key":
        return  # a header a browser never sends on another site's behalf
    if not auth.csrf_valid(visitor.session, token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="missing or invalid CSRF token: reload the page and submit the form again"
        )


# -- the weekly insights ----------------------------------------------------------------


@router.get("", response_class=HTMLResponse, summary="The week's insights: charts and tables")
async def week_page(request: Request, wiring: WiringDep, visitor: VisitorDep, auth: AuthDep, week: WeekQuery = None):
    requested = _week_or_422(week) if week else None
    page = await run_in_threadpool(load_week_page, wiring, requested)
    context = {
        "page": page,
        "report": page.report,
        "jobs_unavailable": await run_in_threadpool(report_jobs.unavailable_reason, wiring),
        "last_report": (await run_in_threadpool(wiring.store.recent_report_deliveries, 1) or [None])[0],
    }
    return _page(request, auth, visitor, "week.html", context)


@router.get("/api/weeks", summary="The week index: weeks with data, and the default week")
async def weeks_json(wiring: WiringDep, visitor: VisitorDep) -> dict[str, Any]:
    weeks, default, reason = await run_in_threadpool(week_index, wiring)
    return {
        "weeks": [{"week": w.week, "interactions": w.interactions} for w in weeks],
        "default": {"week": default, "reason": reason},
    }


@router.get("/api/report", summary="The week's report as `cv-analytics report --format json` prints it")
async def report_json(wiring: WiringDep, visitor: VisitorDep, week: WeekQuery = None) -> JSONResponse:
    report = await run_in_threadpool(weekly_report, wiring, _week_or_422(week) if week else None)
    return JSONResponse(report.to_json_dict())


@router.get("/reports/{week}", response_class=HTMLResponse, summary="The week's report, as the email shows it")
async def report_html(week: Annotated[str, Path(pattern=WEEK_PATTERN)], wiring: WiringDep, visitor: VisitorDep) -> Response:
    html = await run_in_threadpool(rendered_report_html, wiring, _week_or_422(week))
    return _secured(HTMLResponse(html), REPORT_POLICY)


# -- pipeline health --------------------------------------------------------------------


@router.get("/health", response_class=HTMLResponse, summary="Queues, dead letters, spool, last runs")
async def health_page(request: Request, wiring: WiringDep, visitor: VisitorDep, auth: AuthDep):
    page = await run_in_threadpool(load_health_page, wiring)
    return _page(request, auth, visitor, "health.html", {"health": page})


@router.get("/api/status", summary="What `cv-analytics status --json` shows, for every configured queue")
async def status_json(wiring: WiringDep, visitor: VisitorDep) -> dict[str, Any]:
    page = await run_in_threadpool(load_health_page, wiring)
    return {**page.status.to_json(), "unavailable": [{"queue": q, "error": e} for q, e in page.unavailable]}


# -- generate a report now (through the jobs service) -----------------------------------


JobId = Annotated[str, Path(max_length=128)]


@router.post("/reports", include_in_schema=False)
async def generate_report(
    request: Request,
    wiring: WiringDep,
    visitor: VisitorDep,
    auth: AuthDep,
    week: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str | None, Form(max_length=512)] = None,
) -> Response:
    """Submit an ``analytics.report`` job for ``week``, then show its progress."""
    _check_csrf(auth, visitor, csrf_token)
    chosen = _week_or_422(week)
    try:
        job_id = await run_in_threadpool(report_jobs.submit_report, wiring, chosen)
    except (ConfigurationError, QueueError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"the report job was not queued: {exc}") from None
    return RedirectResponse(f"/dashboard/jobs/{job_id}", status_code=status.HTTP_303_SEE_OTHER)


async def _job_or_404(wiring: Any, job_id: str) -> report_jobs.JobView:
    try:
        view = await run_in_threadpool(report_jobs.job_view, wiring, job_id)
    except ConfigurationError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no jobs service here: {exc}") from None
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no report job {job_id!r}")
    return view


@router.get("/jobs/{job_id}", response_class=HTMLResponse, summary="A report job's progress (reloads), then its report")
async def job_page(request: Request, job_id: JobId, wiring: WiringDep, visitor: VisitorDep, auth: AuthDep):
    view = await _job_or_404(wiring, job_id)
    return _page(request, auth, visitor, "job.html", {"job": view})


@router.get("/jobs/{job_id}/report", response_class=HTMLResponse, summary="The report a succeeded job rendered")
async def job_report(job_id: JobId, wiring: WiringDep, visitor: VisitorDep) -> Response:
    await _job_or_404(wiring, job_id)
    html = await run_in_threadpool(report_jobs.job_report_html, wiring, job_id)
    if html is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"job {job_id!r} has no report (yet)")
    return _secured(HTMLResponse(html), REPORT_POLICY)


# -- login ------------------------------------------------------------------------------


def _login_visitor(request: Request, auth: DashboardAuth) -> Visitor:
    return Visitor(auth.read_session(request), "anonymous", request.app.state.wiring.settings.dashboard_password is not None)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request, auth: AuthDep, next: str | None = None):  # noqa: A002 - the query's name
    visitor = _login_visitor(request, auth)
    context = {"next": safe_next(next), "error": None, "loopback": is_loopback(request)}
    return _page(request, auth, visitor, "login.html", context)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    auth: AuthDep,
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str | None, Form(max_length=512)] = None,
    next: Annotated[str | None, Form(max_length=2048)] = None,  # noqa: A002 - the form field's name
) -> Response:
    visitor = _login_visitor(request, auth)
    _check_csrf(auth, visitor, csrf_token)
    configured = request.app.state.wiring.settings.dashboard_password
    if configured is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"no password is configured (set {PASSWORD_VARIABLE}); the dashboard answers on loopback only",
        )
    address = request.client.host if request.client else ""
    wait = auth.throttle.retry_after(address)
    if wait is not None:
        context = {
            "next": safe_next(next),
            "error": f"Too many wrong passwords from your address; try again in {wait} s.",
            "loopback": is_loopback(request),
        }
        page = _page(request, auth, visitor, "login.html", context, status_code=status.HTTP_429_TOO_MANY_REQUESTS)
        page.headers["Retry-After"] = str(wait)
        return page
    if not password_matches(password, configured):
        auth.throttle.failed(address)
        context = {"next": safe_next(next), "error": "Wrong password.", "loopback": is_loopback(request)}
        return _page(request, auth, visitor, "login.html", context, status_code=status.HTTP_401_UNAUTHORIZED)
    auth.throttle.succeeded(address)
    response = RedirectResponse(safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    auth.new_session(response, logged_in=True, secure=request.url.scheme == "https")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(
    request: Request, auth: AuthDep, csrf_token: Annotated[str | None, Form(max_length=512)] = None
) -> Response:
    session: Session | None = auth.read_session(request)
    _check_csrf(auth, Visitor(session, "login", True), csrf_token)
    response = RedirectResponse(LOGIN_PATH, status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/dashboard", httponly=True, samesite="lax")
    return response


@router.get("/static/dashboard.css", include_in_schema=False)
async def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
