"""What is measured offline is what is served: the batch path's lists equal the HTTP answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lmrec.artifacts import build_artifact, load_artifact
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import split
from lmrec.models import TrainingData
from lmrec.models.fused import Fused
from lmrec.pipeline import Pipeline, Query
from lmrec.serving import Settings, create_app
from lmrec.serving.encoders import HashingEncoder

ENCODER = HashingEncoder(dim=64)


def _new_items() -> list[dict[str, Any]]:
    """Text twins of the last items of the first users' histories (so they rank high for them)."""
    ds = load_dataset("sample")
    frame = ds.catalog.frame
    out = []
    for u in range(3):
        last = int(ds.interactions.history(u)[-1])
        row = {k: v for k, v in frame.iloc[last].items() if k != "item"}
        out.append({"item_id": f"new-{u}", **row})
    return out


NEW_ITEMS = _new_items()

#: (request knobs and constraints) exercised for every user: MMR, a cap, a filter, a query, boosts.
CASES: list[dict[str, Any]] = [
    {},
    {"mmr_lambda": 0.6, "mmr_penalty": "mean"},
    {"exposure_cap": 1, "exposure_field": "brand"},
    {"filters": {"categories": "Makeup"}},
    {"query": "romantic comedy, nothing about couples"},
    {"boosts": {"brand=Luxe Lab": 1.5}, "mmr_lambda": 0.8},
]


@pytest.fixture(scope="module")
def fused_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = load_dataset("sample")
    vectors = ENCODER(ds.catalog.texts())
    s = split(ds.interactions, "loo", seed=0)
    model = Fused(strategies=("ease", "content", "multi-interest")).fit(
        TrainingData(s.train, ds.catalog, vectors, s.valid)
    )
    out = tmp_path_factory.mktemp("parity") / "fused"
    return build_artifact(
        ds, model, out, item_vectors=vectors, text_model_identity=ENCODER.identity
    )


@pytest.fixture
def served(fused_artifact: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_dir=fused_artifact, db=tmp_path / "state.db", allow_anonymous=True)
    with TestClient(create_app(settings, encoder=ENCODER)) as client:
        r = client.post("/v1/items", json={"items": NEW_ITEMS})
        assert r.status_code == 200 and r.json()["added"] == len(NEW_ITEMS), r.text
        yield client


def _query(user: str, case: dict[str, Any]) -> Query:
    knobs = {k: v for k, v in case.items() if k not in ("filters", "query")}
    return Query(
        user_id=user, k=10, filters=case.get("filters", {}), text=case.get("query"), knobs=knobs
    )


@pytest.mark.slow
def test_batch_path_equals_http(served: TestClient, fused_artifact: Path) -> None:
    offline = Pipeline.from_artifact(load_artifact(fused_artifact), ENCODER)
    offline.add_items(
        [i["item_id"] for i in NEW_ITEMS],
        [{k: v for k, v in i.items() if k != "item_id"} for i in NEW_ITEMS],
    )
    users = offline.histories.users.ids[:15]
    queries = [_query(u, case) for case in CASES for u in users]
    batch = offline.recommend_batch(queries)
    new_seen = 0
    for q, got in zip(queries, batch, strict=True):
        body = {"user_id": q.user_id, "k": q.k, **{k: v for k, v in q.knobs.items()}}
        if q.filters:
            body["filters"] = dict(q.filters)
        if q.text:
            body["query"] = q.text
        r = served.post("/v1/recommendations", json=body)
        assert r.status_code == 200, r.text
        http = r.json()["items"]
        assert [i["item_id"] for i in http] == [g.item_id for g in got], body
        for h, g in zip(http, got, strict=True):
            assert h["score"] == pytest.approx(g.score, rel=1e-6, abs=1e-6)
            assert h["explanation"]["text"] == g.explanation.text  # type: ignore[union-attr]
        new_seen += sum(g.item_id.startswith("new-") for g in got)
    assert new_seen > 0  # the new items were in play, not only present


def test_recommend_cli_writes_the_served_lists(fused_artifact: Path, tmp_path: Path) -> None:
    """`lmrec recommend` (the batch path) and `POST /v1/recommendations` agree, knobs included."""
    from typer.testing import CliRunner

    from lmrec.cli import app

    users = [*load_artifact(fused_artifact).users.ids[:5], "nobody-knows-me"]
    (tmp_path / "users.txt").write_text("\n".join(users) + "\n")
    out = tmp_path / "recs.jsonl"
    args = ["recommend", "--model-dir", str(fused_artifact), "--users", str(tmp_path / "users.txt")]
    args += ["--k", "7", "--out", str(out)]
    knobs = ["--param", "mmr_lambda=0.6", "--param", "exposure_cap=2"]
    result = CliRunner().invoke(app, [*args, *knobs])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["user_id"] for line in lines] == users
    settings = Settings(model_dir=fused_artifact, db=tmp_path / "state.db", allow_anonymous=True)
    with TestClient(create_app(settings, encoder=ENCODER)) as client:
        for line in lines:
            body = {"user_id": line["user_id"], "k": 7, "mmr_lambda": 0.6, "exposure_cap": 2}
            r = client.post("/v1/recommendations", json=body)
            assert r.status_code == 200, r.text
            assert line["items"] == [i["item_id"] for i in r.json()["items"]]
            assert len(line["items"]) == 7
    bad = CliRunner().invoke(app, [*args, "--param", "mmr_lambada=0.6"])
    assert bad.exit_code != 0 and "mmr_lambada" in str(bad.exception)
