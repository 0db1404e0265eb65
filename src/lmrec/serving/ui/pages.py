"""The dashboard's routes: data-free HTML pages at `/ui/...` and their static files.

A page is `templates/base.html` around `templates/<page>.html` (plain
`string.Template`, no template engine). Static files are read from the package on
first use and served under a content-hash query string, so browsers cache them
until lmrec changes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from lmrec.serving.deps import ApiError

__all__ = ["PAGES", "Page", "router"]


@dataclass(frozen=True)
class Page:
    """A dashboard page: its title, template and script name, and whether the menu lists it."""

    title: str
    name: str
    in_menu: bool = True
    #: Reports are shown in a sandboxed frame and carry their own inline styles.
    frames_reports: bool = False


#: Pages by their path below `/ui` ("" is `/ui` itself).
PAGES: dict[str, Page] = {
    "": Page("Overview", "overview"),
    "user": Page("User", "user"),
    "item": Page("Item", "item"),
    "experiments": Page("Experiments", "experiments"),
    "reports": Page("Reports", "reports", frames_reports=True),
    "login": Page("Log in", "login", in_menu=False),
}

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A report is a blob in a frame without scripts (sandbox); it inherits this policy, so
# its inline styles and embedded plots must be allowed here.
_REPORTS_POLICY = _POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + (
    "; frame-src blob:"
)
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def _read(kind: str, name: str) -> bytes:
    return files("lmrec.serving.ui").joinpath(kind, name).read_bytes()


@cache
def _asset(name: str) -> tuple[bytes, str]:
    """A static file's bytes and a short hash of them (the cache-busting version)."""
    data = _read("static", name)
    return data, hashlib.sha256(data).hexdigest()[:12]


@cache
def _static_names() -> frozenset[str]:
    return frozenset(
        p.name for p in files("lmrec.serving.ui").joinpath("static").iterdir() if p.is_file()
    )


def _url(name: str) -> str:
    return f"/ui/static/{name}?v={_asset(name)[1]}"


def _menu(current: str) -> str:
    links = []
    for path, page in PAGES.items():
        if not page.in_menu:
            continue
        here = ' aria-current="page"' if path == current else ""
        links.append(f'<li><a href="/ui{"/" + path if path else ""}"{here}>{page.title}</a></li>')
    return "\n".join(links)


@cache
def _render(path: str) -> bytes:
    page = PAGES[path]
    body = _read("templates", f"{page.name}.html").decode()
    html = Template(_read("templates", "base.html").decode()).substitute(
        title=page.title,
        page=page.name,
        menu=_menu(path),
        main=body,
        css=_url("style.css"),
        app_js=_url("app.js"),
        page_js=_url(f"{page.name}.js"),
    )
    return html.encode()


def _page(path: str) -> HTMLResponse:
    if path not in PAGES:
        raise ApiError(404, "not_found", "no such page")
    policy = _REPORTS_POLICY if PAGES[path].frames_reports else _POLICY
    return HTMLResponse(_render(path), headers={**_HEADERS, "Content-Security-Policy": policy})


@router.get("/ui")
def overview_page() -> HTMLResponse:
    """The dashboard's overview page (no data: the browser fetches it with its key)."""
    return _page("")


@router.get("/ui/static/{name}")
def static_file(name: str) -> Response:
    """A script or style sheet of the dashboard."""
    if name not in _static_names() or not name.endswith(tuple(_TYPES)):
        raise ApiError(404, "not_found", "no such file")
    data, _ = _asset(name)
    return Response(
        data,
        media_type=_TYPES[name[name.rindex(".") :]],
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=86400",
        },
    )


@router.get("/ui/{page}")
def page(page: str) -> HTMLResponse:
    """One dashboard page."""
    return _page(page)
