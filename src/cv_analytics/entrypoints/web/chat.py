"""``GET /``: a small chat page over ``/api/search``, with its assets shipped in the package (no CDN).

Every value the server renders is autoescaped by Jinja2; the page's script
inserts what the API returns with ``textContent``, never as HTML, and the
Content-Security-Policy allows scripts from this origin only.
"""

from __future__ import annotations

import pathlib
from typing import Annotated

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from .search import MAX_QUESTION_CHARS

router = APIRouter(tags=["chat"])

_HERE = pathlib.Path(__file__).parent
STATIC_DIR = _HERE / "static"
TEMPLATES_DIR = _HERE / "templates"
#: Where :data:`STATIC_DIR` is served (``create_app`` mounts it).
STATIC_PATH = "/static"

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=jinja2.StrictUndefined
)

#: Scripts, styles and requests from this origin only: a value that slipped through as markup still cannot run.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

EXAMPLE_QUESTIONS = (
    "What is your experience with TypeScript?",
    "Have you run Kubernetes in production?",
    "Do you know Rust?",
)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


@router.get("/", response_class=HTMLResponse, summary="The chat page")
def chat_page(
    request: Request,
    q: Annotated[str | None, Query(max_length=MAX_QUESTION_CHARS, description="A question to ask on load.")] = None,
) -> HTMLResponse:
    html = templates.get_template("chat.html.j2").render(
        question=q or "",
        examples=EXAMPLE_QUESTIONS,
        static=STATIC_PATH,
        max_question_chars=MAX_QUESTION_CHARS,
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)
