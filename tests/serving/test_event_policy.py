"""The server's store and the offline data layer apply one event policy.

Real SQLite files (tmp_path) and real `Dataset.from_frames` calls: the same events,
given to both, must make the same histories, in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serving_fixtures import ENCODER, auth

from lmrec.data import CleaningOptions, Dataset, EventPolicy
from lmrec.serving import Settings, create_app
from lmrec.serving.store import Event, SQLiteStateStore

#: (user, item, type, value, timestamp); ties in time keep this order in both layers.
EVENTS: list[tuple[str, str | None, str, float | None, float]] = [
    ("u1", "a", "view", None, 1.0),
    ("u1", "b", "rating", 2.0, 2.0),
    ("u1", "c", "rating", 3.0, 2.0),
    ("u1", None, "search", None, 3.0),
    ("u1", "d", "not_interested", None, 4.0),
    ("u1", "e", "purchase", None, 5.0),
    ("u1", "a", "click", None, 6.0),
    ("u2", "f", "rating", 1.0, 1.0),
    ("u2", "g", "rating", None, 2.0),
    ("u2", "h", "add_to_cart", None, 1.5),
    ("u2", "i", "view", None, 3.0),
    ("u3", "b", "rating", 2.5, 1.0),
    ("u3", "j", "not_interested", None, 2.0),
]
USERS = ("u1", "u2", "u3")


def store_with(path: Path, policy: EventPolicy | None = None) -> SQLiteStateStore:
    store = SQLiteStateStore(path, policy).open()
    events = [
        Event(f"e{n}", u, item, t, ts, value, {"query": "space films"} if t == "search" else {})
        for n, (u, item, t, value, ts) in enumerate(EVENTS)
    ]
    assert store.add_events(events) == len(EVENTS)
    return store


def offline_histories(policy: EventPolicy) -> dict[str, list[str]]:
    """The same events as an offline log, through the data layer."""
    frame = pd.DataFrame(
        {
            "user": [u for u, *_ in EVENTS],
            "item": ["" if i is None else i for _, i, *_ in EVENTS],
            "event": [t for _, _, t, _, _ in EVENTS],
            "rating": [np.nan if v is None else v for *_, v, _ in EVENTS],
            "timestamp": [ts for *_, ts in EVENTS],
        }
    )
    ds = Dataset.from_frames("log", frame, cleaning=CleaningOptions(event_policy=policy))
    out: dict[str, list[str]] = {u: [] for u in USERS}
    for u in ds.users.ids:
        out[u] = [ds.items.id(int(i)) for i in ds.interactions.history(ds.users.index(u))]
    return out


def test_default_policy_every_rating_and_every_implicit_event_counts(tmp_path: Path) -> None:
    store = store_with(tmp_path / "state.db")
    try:
        assert store.event_policy == EventPolicy()
        assert store.user_state("u1").history == ["a", "b", "c", "e", "a"]
        assert store.user_state("u1").negative == ["d"]
        assert store.user_state("u2").history == ["f", "h", "g", "i"]  # a 1-star rating too
        assert store.user_state("u3").history == ["b"]
    finally:
        store.close()


def test_a_rating_below_min_rating_is_not_in_the_history(tmp_path: Path) -> None:
    store = store_with(tmp_path / "state.db", EventPolicy(min_rating=3.0))
    try:
        u1 = store.user_state("u1")
        assert u1.history == ["a", "c", "e", "a"]  # b (2 stars) out; c (3 stars, the bound) in
        assert u1.negative == ["d"]  # the search is neither history nor negative
        assert store.user_state("u2").history == ["h", "g", "i"]  # a rating without a value stays
        assert store.user_state("u3").history == [] and store.user_state("u3").negative == ["j"]
        assert store.user_state("u1", limit=2).history == ["e", "a"]  # the most recent
    finally:
        store.close()


def test_the_policy_is_applied_when_reading_so_it_can_change(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store_with(path).close()
    store = SQLiteStateStore(path, EventPolicy.parse("view=0,click=0", min_rating=2.5)).open()
    try:
        assert store.count_events() == len(EVENTS)  # every event is kept in the log
        assert store.user_state("u1").history == ["c", "e"]
        assert store.user_state("u3").history == ["b"]  # 2.5 is at the bound
    finally:
        store.close()


@pytest.mark.parametrize(
    "policy",
    [
        EventPolicy(),
        EventPolicy(min_rating=3.0),
        EventPolicy(min_rating=2.5, view=0.0),
        EventPolicy.parse("rating=0,click=0,purchase=2"),
    ],
    ids=["default", "min3", "min2.5-noview", "no-ratings"],
)
def test_store_and_data_layer_agree_on_the_positive_events(
    tmp_path: Path, policy: EventPolicy
) -> None:
    store = store_with(tmp_path / "state.db", policy)
    try:
        served = {u: store.user_state(u).history for u in USERS}
    finally:
        store.close()
    assert served == offline_histories(policy)
    positive = {(u, i) for u, i, t, v, _ in EVENTS if policy.is_positive(t, v)}
    assert {(u, i) for u, items in served.items() for i in items} == positive


def test_store_refuses_an_event_without_an_item_unless_it_is_a_search(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "state.db").open()
    try:
        with pytest.raises(ValueError, match="only a search may omit item_id"):
            store.add_events([Event("x", "u", None, "click", 1.0)])
        assert store.count_events() == 0
    finally:
        store.close()


# --- through the app and the CLI ---------------------------------------------------------------


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[TestClient]:
    """The app with min_rating 4: a 3-star rating does not make an item seen."""
    policy = EventPolicy(min_rating=4.0)
    with TestClient(create_app(settings.model_copy(update={"event_policy": policy}), ENCODER)) as c:
        yield c


def post(client: TestClient, key: str, *events: Mapping[str, object]) -> int:
    r = client.post("/v1/events", json={"events": list(events)}, headers=auth(key))
    return r.status_code


def test_app_history_follows_the_configured_min_rating(
    strict_client: TestClient, keys: dict[str, str]
) -> None:
    rate = [
        {"event_id": "r1", "user_id": "fan", "item_id": "s0", "type": "rating", "value": 3.0},
        {"event_id": "r2", "user_id": "fan", "item_id": "s1", "type": "rating", "value": 4.0},
    ]
    assert post(strict_client, keys["ingest"], *rate) == 200
    body = {"user_id": "fan", "k": 12, "exclude_seen": True, "explain": False}
    r = strict_client.post("/v1/recommendations", json=body, headers=auth(keys["read"]))
    assert r.status_code == 200, r.text
    got = [i["item_id"] for i in r.json()["items"]]
    assert "s1" not in got  # 4 stars: seen, so excluded
    assert "s0" in got  # 3 stars: below min_rating, not in the history


def test_app_records_a_search_without_an_item(client: TestClient, keys: dict[str, str]) -> None:
    search = {"event_id": "q1", "user_id": "u0", "type": "search", "context": {"query": "moon"}}
    assert post(client, keys["ingest"], search) == 200
    no_text = {"event_id": "q2", "user_id": "u0", "type": "search"}
    assert post(client, keys["ingest"], no_text) == 422
    no_item = {"event_id": "q3", "user_id": "u0", "type": "click"}
    assert post(client, keys["ingest"], no_item) == 422


def test_serve_cli_passes_the_policy_to_the_app(
    tmp_path: Path, artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from typer.testing import CliRunner

    import lmrec.serving
    from lmrec.cli import app

    seen: list[Settings] = []

    def fake_create_app(settings: Settings) -> str:
        seen.append(settings)
        return "app"

    monkeypatch.setattr(lmrec.serving, "create_app", fake_create_app)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    args = ["serve", "--model-dir", str(artifact_dir), "--db", str(tmp_path / "s.db")]
    args += ["--allow-anonymous"]
    extra = ["--min-rating", "3.5", "--event-weights", "view=0.1,purchase=2"]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    assert seen[0].event_policy == EventPolicy(view=0.1, purchase=2.0, min_rating=3.5)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and seen[1].event_policy is None  # the artefact's policy
    bad = CliRunner().invoke(app, [*args, "--event-weights", "search=1"])
    assert bad.exit_code != 0 and "cannot weigh event type 'search'" in str(bad.exception)


def test_the_server_applies_the_policy_the_artefact_was_trained_with(
    tmp_path: Path, keys: dict[str, str]
) -> None:
    """`lmrec train --min-rating 4` records it; a server started without flags applies it."""
    from serving_fixtures import make_dataset

    from lmrec.artifacts import build_artifact, load_artifact
    from lmrec.models import EASE, TrainingData
    from lmrec.serving import ApiKeys

    dataset = make_dataset()
    model = EASE(reg=1.0).fit(TrainingData(dataset.interactions, dataset.catalog))
    policy = EventPolicy(min_rating=4.0)
    out = build_artifact(dataset, model, tmp_path / "strict", event_policy=policy)
    assert load_artifact(out).event_policy == policy
    settings = Settings(
        model_dir=out, db=tmp_path / "state.db", api_keys=ApiKeys.model_validate_json(keys["_file"])
    )
    assert settings.event_policy is None  # nothing given: the artefact's policy serves
    with TestClient(create_app(settings, ENCODER)) as client:
        rate = [
            {"event_id": "r1", "user_id": "fan", "item_id": "s0", "type": "rating", "value": 3.0},
            {"event_id": "r2", "user_id": "fan", "item_id": "s1", "type": "rating", "value": 4.0},
        ]
        assert post(client, keys["ingest"], *rate) == 200
        body = {"user_id": "fan", "k": 12, "explain": False}
        got = [
            i["item_id"]
            for i in client.post(
                "/v1/recommendations", json=body, headers=auth(keys["read"])
            ).json()["items"]
        ]
    assert "s1" not in got and "s0" in got
