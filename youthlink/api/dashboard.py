"""The city dashboard: one static page (`/dashboard`) that logs in through GraphQL, reads `cityStats` and draws it
with the vendored Apache ECharts, and its files under /static. No figure is computed here: the page asks the API,
which decides whose figures a login sees (youthlink.domain.stats) and who may download the reports."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PAGE = STATIC / "dashboard" / "index.html"
# Scripts, styles, the query and fetches from this origin only; no inline script (the page's code is its own file).
# Inline style attributes are allowed: ECharts writes its tooltips' markup with them.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "connect-src 'self'", "font-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
])
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()


@router.get("/dashboard", include_in_schema=False)
async def dashboard() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def static_files() -> StaticFiles:
    """/static: the page's script, style and query, and the vendored ECharts."""
    return StaticFiles(directory=STATIC)
