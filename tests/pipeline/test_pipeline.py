"""The pipeline's batch path: knobs, new items on the model's scale, batch equals one by one."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import split
from lmrec.errors import LmrecError
from lmrec.evaluation import evaluate_pipeline
from lmrec.models import TrainingData
from lmrec.models.fused import Fused
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, PipelineConfig, Query, UserHistories
from lmrec.ranking.rerank import RerankOptions
from lmrec.serving.encoders import HashingEncoder

ENCODER = HashingEncoder(dim=64)


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    ds = load_dataset("sample")
    vectors = ENCODER(ds.catalog.texts())
    s = split(ds.interactions, "loo", seed=0)
    return ds, s, vectors


def _pipeline(ds, s, vectors, model, config=None) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(
        model,
        ds.items,
        ds.catalog,
        histories=UserHistories.from_interactions(ds.users, s.test_history),
        item_vectors=vectors,
        encoder=ENCODER,
        config=config,
    )


@pytest.fixture(scope="module")
def fused_rrf(sample) -> Pipeline:  # type: ignore[no-untyped-def]
    ds, s, vectors = sample
    model = Fused(strategies=("ease", "content"), fusion="rrf", select=False).fit(
        TrainingData(s.train, ds.catalog, vectors, s.valid)
    )
    return _pipeline(ds, s, vectors, model)


def test_knobs_are_validated_once_and_name_the_problem() -> None:
    base = RerankOptions()
    assert base.updated({"mmr_lambda": 0.7, "exposure_cap": None}).mmr_lambda == 0.7
    assert base.updated({}) is base
    with pytest.raises(LmrecError, match="mmr_lambada"):
        base.updated({"mmr_lambada": 0.7})
    with pytest.raises(LmrecError, match="mmr_lambda: Input should be less than or equal to 1"):
        base.updated({"mmr_lambda": 3})
    assert RerankOptions(boosts="brand=Acme:0.5,tags=vegan:1").boosts == {  # type: ignore[arg-type]
        "brand=Acme": 0.5,
        "tags=vegan": 1.0,
    }


def test_batch_equals_one_by_one_with_every_knob(fused_rrf: Pipeline, sample) -> None:  # type: ignore[no-untyped-def]
    ds, _, _ = sample
    queries = [
        Query(user_id=ds.users.id(0), k=8),
        Query(user_id=ds.users.id(1), k=5, knobs={"mmr_lambda": 0.5}),
        Query(user_id=ds.users.id(2), k=6, knobs={"exposure_cap": 1}),
        Query(user_id=ds.users.id(3), k=6, filters={"categories": "Makeup"}),
        Query(user_id=ds.users.id(4), k=6, text="romantic comedy, nothing about love"),
        Query(history=[ds.items.id(7)], k=4, knobs={"boosts": {"brand=Luxe Lab": 2.0}}),
        Query(k=3),
    ]
    batch = fused_rrf.recommend_batch(queries)
    for q, got in zip(queries, batch, strict=True):
        assert got == fused_rrf.recommend(q)
        assert len(got) == q.k


@pytest.mark.slow
def test_mmr_knob_raises_diversity_and_cap_holds(fused_rrf: Pipeline, sample) -> None:  # type: ignore[no-untyped-def]
    ds, s, vectors = sample
    div = {
        lam: evaluate_pipeline(
            fused_rrf, s.test, item_vectors=vectors, knobs={"mmr_lambda": lam}
        ).summary["diversity@10"]
        for lam in (1.0, 0.5)
    }
    assert div[0.5] > div[1.0]
    attrs = ds.catalog.attribute_vectors()
    by_attr = {
        lam: evaluate_pipeline(
            fused_rrf,
            s.test,
            item_vectors=attrs,
            knobs={"mmr_lambda": lam, "mmr_space": "attributes"},
        ).summary["diversity@10"]
        for lam in (1.0, 0.3)
    }
    assert by_attr[0.3] > by_attr[1.0]
    brand = ds.catalog.frame["brand"]
    for u in range(20):
        got = fused_rrf.recommend(Query(user_id=ds.users.id(u), k=10, knobs={"exposure_cap": 2}))
        counts = brand.iloc[[ds.items.index(r.item_id) for r in got]].value_counts()
        assert counts.max() <= 2


def test_the_pipeline_config_is_the_default_and_a_query_overrides_it(sample) -> None:  # type: ignore[no-untyped-def]
    ds, s, vectors = sample
    model = resolve_strategy("ease")().fit(TrainingData(s.train, ds.catalog, vectors))
    capped = _pipeline(ds, s, vectors, model, PipelineConfig(rerank=RerankOptions(exposure_cap=1)))
    user = ds.users.id(0)
    brand = ds.catalog.frame["brand"]
    got = capped.recommend(Query(user_id=user, k=10))
    assert brand.iloc[[ds.items.index(r.item_id) for r in got]].value_counts().max() == 1
    loose = capped.recommend(Query(user_id=user, k=10, knobs={"exposure_cap": 10}))
    assert loose != got


def test_a_new_item_ranks_by_its_text_on_the_models_scale(fused_rrf: Pipeline, sample) -> None:  # type: ignore[no-untyped-def]
    """Under RRF the new-item score must be an RRF-sized number, not the fill value's size."""
    ds, s, _ = sample
    pipeline = _pipeline(ds, s, ENCODER(ds.catalog.texts()), fused_rrf.model)
    pipeline.add_items(["noise"], [{"title": "zzz qqq xxv", "description": "wvw kkq"}])
    users = [ds.users.id(u) for u in range(100)]
    lists = pipeline.recommend_batch([Query(user_id=u, k=10) for u in users])
    share = np.mean([any(r.item_id == "noise" for r in lst) for lst in lists])
    assert share < 0.05, share  # text that matches nobody is not recommended to everybody
    # The text twin of the item closest to the user's history profile scores like the model's
    # best item: its cosine is the highest, so it maps to the highest score.
    user = users[0]
    history = pipeline.histories.get(user)
    v = ENCODER(ds.catalog.texts())
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    profile = v[history].mean(axis=0)
    closest = int(np.argmax(v @ profile))
    row = ds.catalog.frame.iloc[closest].drop(labels=["item"]).to_dict()
    pipeline.add_items(["twin"], [row])
    got = pipeline.recommend(Query(user_id=user, k=3))
    assert "twin" in [r.item_id for r in got], got
    twin = next(r for r in got if r.item_id == "twin")
    assert twin.reasons[0].startswith("content") and twin.explanation is not None
    assert twin.explanation.contributions


def test_unknown_filter_field_is_a_clear_error(fused_rrf: Pipeline, sample) -> None:  # type: ignore[no-untyped-def]
    ds, _, _ = sample
    with pytest.raises(LmrecError, match="unknown filter field 'colour'"):
        fused_rrf.recommend(Query(user_id=ds.users.id(0), filters={"colour": "red"}))
