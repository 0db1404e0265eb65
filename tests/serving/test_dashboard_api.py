"""The read-only views the dashboard is built on, the reports folder's confinement, and the pages.

`/v1/overview`, `/v1/users/history`, `/v1/items/lookup`, `/v1/reports[/file]` and
`/ui/...`: what each answers, which scope it needs, and that no path names a file
outside the reports folder. The browser side is `test_ui_browser.py`.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from serving_fixtures import ENCODER, ROMANCE, SPACE, auth

from lmrec.serving import Settings, create_app
from lmrec.serving.browse_routes import histogram_quantile
from lmrec.serving.report_routes import find_report, list_reports
from lmrec.serving.ui import PAGES

TITLES = [title for _, title, _ in SPACE + ROMANCE]


def _event(n: int, user: str, item: str | None, type: str = "click", **extra: object) -> dict:
    return {"event_id": f"e{n}", "user_id": user, "item_id": item, "type": type, **extra}


# -- overview ----------------------------------------------------------------------------


def test_overview_reports_the_model_counts_traffic_and_loads(
    client: TestClient, keys: dict[str, str], tmp_path: Path
) -> None:
    events = [_event(1, "u0", "s3"), _event(2, "new-user", "r1"), _event(3, "new-user", "r2")]
    assert client.post("/v1/events", json={"events": events}, headers=auth(keys["all"])).is_success
    item = {"item_id": "s9", "title": "Orbit Nine", "categories": ["space"]}
    client.post("/v1/items", json={"items": [item]}, headers=auth(keys["all"]))
    rejected = client.post(
        "/v1/admin/models", json={"path": str(tmp_path / "missing")}, headers=auth(keys["admin"])
    )
    assert rejected.status_code == 422

    body = client.get("/v1/overview", headers=auth(keys["read"])).json()
    current = client.get("/v1/models/current", headers=auth(keys["read"])).json()
    assert body["model"] == current
    assert body["manifest"]["version"] == current["model_version"]
    assert body["manifest"]["dataset"]["n_users"] == 8 and "files" not in body["manifest"]
    assert body["counts"] == {
        "users_trained": 8,
        "users_online": 2,
        "items": 13,
        "items_active": 13,
        "items_online": 1,
        "events": 3,
        "erased_users": 0,
    }
    traffic = body["traffic"]
    assert traffic["events_accepted"] == 3 and traffic["events_per_s"] > 0
    routes = {r["route"]: r for r in traffic["routes"]}
    assert routes["/v1/events"]["requests"] == 1 and routes["/v1/events"]["p95_ms"] > 0
    first, failed = body["loads"]
    assert first["accepted"] and first["version"] == current["model_version"]
    assert not failed["accepted"] and failed["version"] is None and failed["reason"]
    assert first["path"] is None  # paths are for admin keys
    admin = client.get("/v1/overview", headers=auth(keys["all"])).json()
    assert admin["loads"][0]["path"] == str(client.app.state.services.settings.model_dir)
    assert body["experiments_running"] == 0


def test_overview_needs_read_and_hides_traffic_when_metrics_are_private(
    settings: Settings, keys: dict[str, str]
) -> None:
    private = settings.model_copy(update={"metrics_public": False})
    with TestClient(create_app(private, encoder=ENCODER)) as c:
        assert c.get("/v1/overview").status_code == 401
        assert c.get("/v1/overview", headers=auth(keys["ingest"])).status_code == 403
        assert c.get("/v1/overview", headers=auth(keys["read"])).json()["traffic"] is None
        assert c.get("/v1/overview", headers=auth(keys["all"])).json()["traffic"] is not None


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 0.015),  # rank 5 of 10 falls 3/6 into (0.01, 0.02]
        (0.95, 0.05),  # rank 9.5: the middle of (0.03, 0.07]
        (0.1, 0.005),  # rank 1: half of the first bucket (from 0)
        (1.0, 0.07),  # rank 10: the top of the last finite bucket
    ],
)
def test_histogram_quantile_interpolates_like_prometheus(q: float, expected: float) -> None:
    buckets = [(0.01, 2.0), (0.02, 8.0), (0.03, 9.0), (0.07, 10.0), (float("inf"), 10.0)]
    assert histogram_quantile(q, buckets) == pytest.approx(expected)


def test_histogram_quantile_in_the_last_bucket_and_empty() -> None:
    assert histogram_quantile(0.99, [(0.1, 1.0), (float("inf"), 4.0)]) == 0.1
    assert histogram_quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None


# -- a user's history, items by id --------------------------------------------------------


def test_user_history_has_titles_types_and_the_trained_items(
    client: TestClient, keys: dict[str, str]
) -> None:
    events = [
        _event(1, "u0", "s3", timestamp=100.0),
        _event(2, "u0", "r1", "not_interested", timestamp=200.0),
        _event(3, "u0", None, "search", timestamp=300.0, context={"query": "rockets"}),
        _event(4, "u9", "s0", timestamp=400.0),
    ]
    client.post("/v1/events", json={"events": events}, headers=auth(keys["ingest"]))
    body = client.post(
        "/v1/users/history", json={"user_id": "u0"}, headers=auth(keys["read"])
    ).json()
    assert body["known"] and not body["erased"]
    got = [(e["event_id"], e["title"], e["type"], e["in_history"]) for e in body["events"]]
    assert got == [
        ("e3", "", "search", False),
        ("e2", "Summer Kiss", "not_interested", False),
        ("e1", "Galaxy Wars", "click", True),
    ]
    assert [(i["item_id"], i["title"]) for i in body["trained"]] == [
        ("s1", "Alien Planet"),
        ("s2", "Rocket Dawn"),
        ("s4", "Moon Base"),
        ("s5", "Comet Chase"),
    ]
    short = client.post(
        "/v1/users/history", json={"user_id": "u0", "limit": 1}, headers=auth(keys["read"])
    ).json()
    assert [e["event_id"] for e in short["events"]] == ["e3"]
    assert [i["item_id"] for i in short["trained"]] == ["s5"]  # the newest


def test_user_history_of_unknown_and_erased_users(client: TestClient, keys: dict[str, str]) -> None:
    unknown = client.post(
        "/v1/users/history", json={"user_id": "nobody"}, headers=auth(keys["read"])
    ).json()
    assert unknown == {
        "user_id": "nobody",
        "known": False,
        "erased": False,
        "events": [],
        "trained": [],
    }
    client.post("/v1/events", json={"events": [_event(1, "u1", "s0")]}, headers=auth(keys["all"]))
    client.request("DELETE", "/v1/users", json={"user_id": "u1"}, headers=auth(keys["delete"]))
    gone = client.post(
        "/v1/users/history", json={"user_id": "u1"}, headers=auth(keys["read"])
    ).json()
    assert gone["erased"] and not gone["known"] and gone["events"] == [] and gone["trained"] == []
    assert (
        client.post(
            "/v1/users/history", json={"user_id": "u1"}, headers=auth(keys["ingest"])
        ).status_code
        == 403
    )


def test_item_lookup_in_order_with_deleted_and_unknown_items(
    client: TestClient, keys: dict[str, str]
) -> None:
    client.post(
        "/v1/items",
        json={"items": [{"item_id": "n1", "title": "New One", "year": 2026}]},
        headers=auth(keys["all"]),
    )
    client.request("DELETE", "/v1/items", params={"item_id": "r0"}, headers=auth(keys["delete"]))
    body = client.post(
        "/v1/items/lookup",
        json={"item_ids": ["n1", "zz", "r0", "s0", "n1"]},
        headers=auth(keys["read"]),
    ).json()
    assert [(i["item_id"], i["title"], i["active"]) for i in body["items"]] == [
        ("n1", "New One", True),
        ("r0", "Paris Love", False),
        ("s0", "Star Voyage", True),
    ]
    assert body["items"][0]["fields"]["year"] == 2026
    assert body["items"][2]["fields"]["categories"] == ["space"]
    assert body["missing"] == ["zz"]
    assert client.post("/v1/items/lookup", json={"item_ids": ["s0"]}).status_code == 401


# -- reports --------------------------------------------------------------------------------


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A reports folder with reports, things that are not reports, and ways out of it."""
    root = tmp_path / "reports"
    (root / "tune" / "run1").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "eval.html").write_text("<html><head><title>Eval &amp; ml-100k</title></head></html>")
    (root / "tune" / "run1" / "report.html").write_text("<h1>Tuning <b>EASE</b></h1>")
    (root / "notes.txt").write_text("not a report")
    (root / ".hidden" / "secret.html").write_text("hidden")
    (root / ".draft.html").write_text("hidden")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.html").write_text("<title>outside</title>")
    (root / "link-out.html").symlink_to(outside / "secret.html")
    (root / "dir-out").symlink_to(outside, target_is_directory=True)
    (root / "link-in.html").symlink_to(root / "eval.html")
    os.utime(root / "eval.html", (1e9, 1e9))  # the oldest
    return root


def test_listing_has_only_the_folders_own_reports(reports: Path) -> None:
    found, truncated = list_reports(reports)
    # Newest first; the link inside the folder has its target's time (ties: by path).
    assert [(r.path, r.title) for r in found] == [
        ("tune/run1/report.html", "Tuning EASE"),
        ("eval.html", "Eval & ml-100k"),
        ("link-in.html", "Eval & ml-100k"),
    ]
    assert not truncated
    assert list_reports(reports, limit=1) == (found[:1], True)


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.html",
        "tune/../../outside/secret.html",
        "link-out.html",
        "dir-out/secret.html",
        ".hidden/secret.html",
        ".draft.html",
        "notes.txt",
        "tune",
        "missing.html",
        "..",
        "",
        "\\..\\outside\\secret.html",
        "eval.html\x00.txt",
        "%2e%2e/outside/secret.html",
    ],
)
def test_no_path_leaves_the_reports_folder(reports: Path, path: str) -> None:
    assert find_report(reports, path) is None
    assert find_report(reports, str(reports.parent / "outside" / "secret.html")) is None


def test_reports_are_listed_and_served_sandboxed_to_read_keys(
    settings: Settings, keys: dict[str, str], reports: Path
) -> None:
    with TestClient(create_app(settings.model_copy(update={"reports_dir": reports}))) as c:
        listed = c.get("/v1/reports", headers=auth(keys["read"])).json()
        assert listed["configured"] and len(listed["reports"]) == 3
        r = c.get(
            "/v1/reports/file", params={"path": "tune/run1/report.html"}, headers=auth(keys["read"])
        )
        assert r.status_code == 200 and "Tuning" in r.text
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["content-security-policy"].startswith("sandbox")
        assert r.headers["x-content-type-options"] == "nosniff"
        for path in ("../outside/secret.html", "link-out.html", str(reports / "eval.html")):
            bad = c.get("/v1/reports/file", params={"path": path}, headers=auth(keys["read"]))
            assert bad.status_code == 404 and bad.json()["error"]["code"] == "not_found"
        assert c.get("/v1/reports").status_code == 401
        assert c.get("/v1/reports/file", params={"path": "eval.html"}).status_code == 401
        assert c.get("/v1/reports", headers=auth(keys["ingest"])).status_code == 403


def test_without_a_reports_folder_nothing_is_served(
    client: TestClient, keys: dict[str, str]
) -> None:
    assert client.get("/v1/reports", headers=auth(keys["read"])).json() == {
        "configured": False,
        "reports": [],
        "truncated": False,
    }
    r = client.get("/v1/reports/file", params={"path": "eval.html"}, headers=auth(keys["read"]))
    assert r.status_code == 404


# -- the pages ------------------------------------------------------------------------------


def test_pages_are_data_free_same_origin_and_locked_down(client: TestClient) -> None:
    for path in PAGES:
        r = client.get(f"/ui/{path}" if path else "/ui")
        assert r.status_code == 200, path
        html = r.text
        assert not any(t in html for t in TITLES), path  # no data without a key
        assert "://" not in html, path  # every asset is the server's own
        policy = r.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        assert r.headers["cache-control"] == "no-store"
        for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', html):
            got = client.get(asset)
            assert got.status_code == 200 and "://" not in got.text, asset
            assert got.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/nope").status_code == 404
    assert client.get("/ui/static/pages.py").status_code == 404
    assert client.get("/ui/static/..%2Fpages.py").status_code == 404


def test_the_dashboard_can_be_turned_off(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"ui": False}))) as c:
        assert c.get("/ui").status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_lmrec_serve_serves_the_dashboard(
    artifact_dir: Path, keys: dict[str, str], tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(keys["_file"])
    port = _free_port()
    command = "from lmrec.cli import main; main()"
    args = ["--model-dir", str(artifact_dir), "--db", str(tmp_path / "state.db")]
    args += ["--api-keys-file", str(keys_file), "--port", str(port), "--encoder", "none"]
    proc = subprocess.Popen([sys.executable, "-c", command, "serve", *args])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "lmrec serve exited"
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "lmrec serve did not become ready"
            time.sleep(0.1)
        page = httpx.get(f"{url}/ui/user")
        assert page.status_code == 200 and 'data-page="user"' in page.text
        script = re.search(r'src="(/ui/static/user\.js[^"]*)"', page.text)
        assert script and httpx.get(url + script.group(1)).status_code == 200
        overview = httpx.get(f"{url}/v1/overview", headers=auth(keys["read"]))
        assert overview.status_code == 200 and overview.json()["counts"]["users_trained"] == 8
    finally:
        proc.terminate()
        proc.wait(timeout=30)
