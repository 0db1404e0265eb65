"""Routes of the reports resource: the HTML reports in `Settings.reports_dir`, read-only.

`lmrec evaluate`, `tune`, `simulate` and `experiments report` write self-contained
HTML (plots embedded as data URIs). A read key may list the folder's reports and
read one; nothing outside the folder is reachable: a path is resolved (symbolic
links included) and must stay inside the resolved folder, be a regular `.html`
file and have no hidden component, otherwise the answer is 404 whether or not
such a file exists. A report is sent with a `sandbox` content security policy, so
opened on the server's origin it cannot run script or read the dashboard's key.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from lmrec.serving.deps import ApiError, ReadKey, Services
from lmrec.serving.schemas import ErrorBody
from lmrec.serving.view_schemas import ReportOut, ReportsResponse

__all__ = ["find_report", "list_reports", "router"]

router = APIRouter()

_SUFFIXES = (".html", ".htm")
#: Reports listed at most (newest first), and folder levels searched below the root.
MAX_REPORTS = 500
_MAX_DEPTH = 4
_HEAD_BYTES = 4096
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")
#: What a report may do when opened: show itself (inline styles, embedded images), nothing more.
REPORT_POLICY = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)
_NO_SUCH: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such report in the reports folder"}
}


def _title(path: Path) -> str:
    try:
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return path.name
    match = _TITLE.search(head)
    text = (match.group(1) or match.group(2)) if match else ""
    text = " ".join(html.unescape(_TAGS.sub("", text)).split())
    return text[:200] or path.name


def _inside(root: Path, path: Path) -> bool:
    return path.is_relative_to(root) and path.is_file()


def list_reports(folder: Path, limit: int = MAX_REPORTS) -> tuple[list[ReportOut], bool]:
    """The folder's HTML reports, newest first (at most `limit`), and whether more exist.

    Hidden files and folders are skipped, links are not followed into other folders,
    and a linked file counts only when it resolves inside the folder.
    """
    root = folder.resolve()
    found: list[tuple[float, Path, int]] = []
    for here, dirs, files in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        dirs[:] = [] if depth >= _MAX_DEPTH else sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(_SUFFIXES):
                continue
            path = Path(here, name)
            try:
                real = path.resolve()
                if not _inside(root, real):
                    continue
                stat = real.stat()
            except (OSError, RuntimeError):  # gone meanwhile, or a link loop
                continue
            found.append((stat.st_mtime, path, stat.st_size))
    found.sort(key=lambda t: (-t[0], str(t[1])))
    reports = [
        ReportOut(
            path=path.relative_to(root).as_posix(),
            title=_title(path),
            bytes=size,
            modified=mtime,
        )
        for mtime, path, size in found[:limit]
    ]
    return reports, len(found) > limit


def find_report(folder: Path, relative: str) -> Path | None:
    """The report file `relative` names inside `folder`, or None when it names nothing there."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    parts = Path(relative).parts
    if Path(relative).is_absolute() or any(p.startswith(".") for p in parts):
        return None  # also refuses "..": every traversal starts with a dot component
    root = folder.resolve()
    try:
        real = (root / relative).resolve()
    except (OSError, RuntimeError):  # a link loop, a name too long
        return None
    if not _inside(root, real) or not real.name.lower().endswith(_SUFFIXES):
        return None
    if any(p.startswith(".") for p in real.relative_to(root).parts):
        return None  # a link inside the folder to a hidden file: not listed, so not served
    return real


@router.get("/v1/reports", tags=["reports"], dependencies=[ReadKey], response_model=ReportsResponse)
def reports(svc: Services) -> ReportsResponse:
    """The HTML reports in the server's reports folder, newest first."""
    folder = svc.settings.reports_dir
    if folder is None or not folder.is_dir():
        return ReportsResponse(configured=folder is not None, reports=[])
    found, truncated = list_reports(folder)
    return ReportsResponse(configured=True, reports=found, truncated=truncated)


@router.get(
    "/v1/reports/file",
    tags=["reports"],
    dependencies=[ReadKey],
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The report"}, **_NO_SUCH},
)
def report_file(
    svc: Services,
    path: Annotated[
        str, Query(min_length=1, max_length=1024, description="As `GET /v1/reports` lists it.")
    ],
) -> FileResponse:
    """One report, as the HTML file it is (sandboxed: it runs no script)."""
    folder = svc.settings.reports_dir
    found = find_report(folder, path) if folder is not None else None
    if found is None:
        raise ApiError(404, "not_found", "no such report in the reports folder")
    return FileResponse(
        found,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": REPORT_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
