"""Experiments through the HTTP API: define, assign, log exposures, attribute events, report."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import ENCODER, auth

from lmrec.experiments import Exposure, bucket
from lmrec.serving import Settings, create_app


@pytest.fixture(params=["sqlite", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both state stores."""
    return str(request.param)


EXP = {
    "id": "exp1",
    "variants": [
        {"name": "a", "share": 0.5},
        {"name": "b", "share": 0.5, "knobs": {"mmr_lambda": 0.7}},
    ],
}


def exposures(client: TestClient, experiment_id: str) -> list[Exposure]:
    """The exposures the serving app's store logged for an experiment."""
    return client.app.state.services.store.exposures(experiment_id)  # type: ignore[attr-defined,no-any-return]


def _create(client: TestClient, keys: dict[str, str], body: dict | None = None) -> dict:
    r = client.post("/v1/admin/experiments", json=body or EXP, headers=auth(keys["admin"]))
    assert r.status_code == 201, r.text
    return r.json()


def _recommend(client: TestClient, keys: dict[str, str], user: str, **extra: object) -> dict:
    r = client.post(
        "/v1/recommendations",
        json={"user_id": user, "k": 4, **extra},
        headers=auth(keys["read"]),
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_issue_example_is_accepted_and_listed(client: TestClient, keys: dict[str, str]) -> None:
    created = _create(client, keys)
    assert created["status"] == "running" and created["buckets"] == [0, 10_000]
    listed = client.get("/v1/experiments", headers=auth(keys["read"])).json()["experiments"]
    assert [e["id"] for e in listed] == ["exp1"]
    one = client.get("/v1/experiments/exp1", headers=auth(keys["read"])).json()
    assert one["variants"][1]["knobs"] == {"mmr_lambda": 0.7}


def test_bad_definitions_are_refused_with_the_reason(
    client: TestClient, keys: dict[str, str]
) -> None:
    admin = auth(keys["admin"])
    bad_knob = {
        **EXP,
        "variants": [
            {"name": "a", "share": 0.5},
            {"name": "b", "share": 0.5, "knobs": {"mmr_lamda": 1}},
        ],
    }
    r = client.post("/v1/admin/experiments", json=bad_knob, headers=admin)
    assert r.status_code == 422 and "mmr_lamda" in r.json()["error"]["message"]
    shares = {**EXP, "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.6}]}
    r = client.post("/v1/admin/experiments", json=shares, headers=admin)
    assert r.status_code == 422 and "sum to 1" in r.json()["error"]["message"]
    assert (
        client.post("/v1/admin/experiments", json=EXP, headers=auth(keys["read"])).status_code
        == 403
    )
    _create(client, keys)
    r = client.post("/v1/admin/experiments", json=EXP, headers=admin)
    assert r.status_code == 409 and "exists" in r.json()["error"]["message"]
    # The default layer is full: a second experiment there is refused, another layer is not.
    r = client.post("/v1/admin/experiments", json={**EXP, "id": "exp2"}, headers=admin)
    assert r.status_code == 409 and "layer 'default'" in r.json()["error"]["message"]
    _create(client, keys, {**EXP, "id": "exp3", "layer": "other"})
    assert client.get("/v1/experiments/nope", headers=auth(keys["read"])).status_code == 404


def test_assignment_is_the_hash_and_the_variant_knobs_apply(
    client: TestClient, keys: dict[str, str]
) -> None:
    _create(client, keys)
    seen = {}
    for u in ("u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"):
        body = _recommend(client, keys, u)
        expected = "a" if bucket("exp1", u) < 5_000 else "b"
        assert (body["experiment_id"], body["variant"]) == ("exp1", expected)
        assert body["experiments"] == [{"experiment_id": "exp1", "variant": expected}]
        assert _recommend(client, keys, u)["variant"] == expected  # sticky
        seen[expected] = True
    assert set(seen) == {"a", "b"}
    # Anonymous callers take part through a stable session id; without one they do not.
    anon = client.post(
        "/v1/recommendations",
        json={"session_id": "s-1", "history": ["s0"]},
        headers=auth(keys["read"]),
    ).json()
    assert anon["experiment_id"] == "exp1" and anon["request_id"]
    none = client.post(
        "/v1/recommendations", json={"history": ["s0"]}, headers=auth(keys["read"])
    ).json()
    assert none["experiment_id"] is None and none["request_id"]


def test_stop_ends_assignment_but_keeps_the_data(client: TestClient, keys: dict[str, str]) -> None:
    _create(client, keys)
    first = _recommend(client, keys, "u1")
    r = client.post("/v1/admin/experiments/exp1/stop", headers=auth(keys["admin"]))
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    after = _recommend(client, keys, "u1")
    assert first["experiment_id"] == "exp1" and after["experiment_id"] is None
    report = client.get("/v1/experiments/exp1/report", headers=auth(keys["read"])).json()
    assert report["status"] == "stopped" and report["exposures_total"] == 1


def test_report_counts_exposures_and_attributed_clicks(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    _create(client, keys)
    events = []
    sent = {"a": 0, "b": 0}
    clicks = {"a": 0, "b": 0}
    for n, u in enumerate(f"u{i}" for i in range(8)):
        for rep in range(3):
            body = _recommend(client, keys, u)
            sent[body["variant"]] += 1
            if rep <= n % 2:  # users click once or twice, each time on the list's first item
                clicks[body["variant"]] += 1
                item = body["items"][0]["item_id"]
                event = {"event_id": f"e{n}-{rep}", "user_id": u, "item_id": item, "type": "click"}
                events.append({**event, "request_id": body["request_id"]})
    # A click on an item no list showed (u1 has seen s0, so it is never recommended) is
    # not credited.
    events.append({"event_id": "x1", "user_id": "u1", "item_id": "s0", "type": "click"})
    r = client.post("/v1/events", json={"events": events}, headers=auth(keys["ingest"]))
    assert r.status_code == 200, r.text
    report = client.get("/v1/experiments/exp1/report", headers=auth(keys["read"])).json()
    assert report["exposures"] == sent and report["exposures_total"] == 24
    ctr = next(c for c in report["comparisons"] if c["metric"] == "ctr")
    assert ctr["plain"]["mean_a"] == pytest.approx(clicks["a"] / sent["a"])
    assert ctr["plain"]["mean_b"] == pytest.approx(clicks["b"] / sent["b"])
    assert report["srm"]["flagged"] is False
    # Every exposure is in the file with its items in order.
    logged = exposures(client, "exp1")
    assert (len(logged), len({x.request_id for x in logged})) == (24, 24)


def test_interleaving_mixes_both_arms_and_credits_teams(
    client: TestClient, keys: dict[str, str]
) -> None:
    body = {
        "id": "il",
        "type": "interleaving",
        "variants": [
            {"name": "a", "share": 0.5},
            {"name": "b", "share": 0.5, "knobs": {"mmr_lambda": 0.0}},
        ],
    }
    _create(client, keys, body)
    out = _recommend(client, keys, "u0", k=6)
    assert out["variant"] == "interleaved"
    teams = [i["team"] for i in out["items"]]
    assert set(teams) == {"a", "b"} and abs(teams.count("a") - teams.count("b")) <= 1
    click = {
        "event_id": "c1",
        "user_id": "u0",
        "item_id": out["items"][0]["item_id"],
        "type": "click",
    }
    client.post("/v1/events", json={"events": [click]}, headers=auth(keys["ingest"]))
    report = client.get("/v1/experiments/il/report", headers=auth(keys["read"])).json()
    assert report["clicks"] == {"a": int(teams[0] == "a"), "b": int(teams[0] == "b")}


def test_definitions_and_assignment_survive_a_restart(
    settings: Settings, keys: dict[str, str]
) -> None:
    with TestClient(create_app(settings, encoder=ENCODER)) as client:
        _create(client, keys)
        before = {u: _recommend(client, keys, u)["variant"] for u in ("u0", "u3", "u5")}
    with TestClient(create_app(settings, encoder=ENCODER)) as client:
        after = {u: _recommend(client, keys, u)["variant"] for u in ("u0", "u3", "u5")}
        report = client.get("/v1/experiments/exp1/report", headers=auth(keys["read"])).json()
    assert before == after and report["exposures_total"] == 6


def test_erasing_a_user_removes_their_exposures(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    _create(client, keys)
    _recommend(client, keys, "u1")
    _recommend(client, keys, "u2")
    client.request("DELETE", "/v1/users", json={"user_id": "u1"}, headers=auth(keys["delete"]))
    assert [x.unit for x in exposures(client, "exp1")] == ["u2"]


def test_a_variant_can_serve_another_model(
    client: TestClient, keys: dict[str, str], tmp_path: Path
) -> None:
    from serving_fixtures import make_artifact

    other = make_artifact(tmp_path / "v2", reg=50.0)
    body = {
        **EXP,
        "variants": [
            {"name": "a", "share": 0.5},
            {"name": "b", "share": 0.5, "model_path": str(other)},
        ],
    }
    _create(client, keys, body)
    versions = {
        _recommend(client, keys, f"u{i}")["variant"]: _recommend(client, keys, f"u{i}")[
            "model_version"
        ]
        for i in range(8)
    }
    assert versions["a"] != versions["b"]
    missing = {
        **body,
        "id": "exp9",
        "layer": "x",
        "variants": [
            {"name": "a", "share": 0.5},
            {"name": "b", "share": 0.5, "model_path": str(tmp_path / "nope")},
        ],
    }
    r = client.post("/v1/admin/experiments", json=missing, headers=auth(keys["admin"]))
    assert r.status_code == 422 and "cannot load" in r.json()["error"]["message"]


def test_the_global_holdout_sees_no_experiment(settings: Settings, keys: dict[str, str]) -> None:
    from lmrec.experiments.assignment import in_holdout

    held = settings.model_copy(update={"experiment_holdout": 0.5})
    with TestClient(create_app(held, encoder=ENCODER)) as client:
        _create(client, keys)
        users = [f"visitor-{i}" for i in range(20)]
        got = {u: _recommend(client, keys, u)["experiment_id"] for u in users}
    assert {u for u, e in got.items() if e is None} == {u for u in users if in_holdout(u, 0.5)}
    assert None in got.values() and "exp1" in got.values()


def test_a_preview_gets_the_variants_list_but_logs_no_exposure(
    client: TestClient, keys: dict[str, str], settings: Settings
) -> None:
    _create(client, keys)
    shown = _recommend(client, keys, "u3")
    preview = _recommend(client, keys, "u3", preview=True)
    assert preview["variant"] == shown["variant"]
    assert [i["item_id"] for i in preview["items"]] == [i["item_id"] for i in shown["items"]]
    assert len(exposures(client, "exp1")) == 1
    report = client.get("/v1/experiments/exp1/report", headers=auth(keys["read"])).json()
    assert report["exposures_total"] == 1
