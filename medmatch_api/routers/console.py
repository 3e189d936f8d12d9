"""The review console: a few static files (HTML, JavaScript, CSS) served at /console.

No build step and nothing from elsewhere: the page talks only to this API (REST with the
bearer token in a header, WebSockets with it as `token`), so its policy allows this origin only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse, RedirectResponse

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/console", include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = CONSOLE_DIR / name
    # `name` is one path segment (no "/"), and only the console's own files are served
    if path.suffix not in MEDIA_TYPES or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such console file")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("")
def console_root() -> RedirectResponse:
    return RedirectResponse("/console/")


@router.get("/")
def console_page() -> FileResponse:
    return _file("index.html")


@router.get("/{name}")
def console_file(name: str) -> FileResponse:
    return _file(name)
