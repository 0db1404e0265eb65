"""The fused decision layer: conformance, learned fusion on validation data, knobs from config."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from tests.models.conformance import PersonalisedBehaviour, StrategyConformance

from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import split
from lmrec.errors import ConfigError
from lmrec.evaluation import evaluate_model
from lmrec.evaluation.runner import parse_params
from lmrec.models import TrainingData
from lmrec.models.names import resolve_strategy
from lmrec.ranking.decision import Fused, FusedConfig


class TestFusedRRF(StrategyConformance, PersonalisedBehaviour):
    strategy = Fused
    params: ClassVar[dict[str, Any]] = {"strategies": ("itemknn", "content"), "depth": 10}


class TestFusedMMR(StrategyConformance, PersonalisedBehaviour):
    strategy = Fused
    params: ClassVar[dict[str, Any]] = {
        "strategies": ("itemknn", "multi-interest"),
        "depth": 10,
        "mmr_lambda": 0.9,
    }


def test_config_accepts_cli_strings() -> None:
    cfg = FusedConfig(strategies="ease, content", boosts="brand=Acme:0.5,tags=vegan:1")  # type: ignore[arg-type]
    assert cfg.strategies == ("ease", "content")
    assert cfg.boosts == {"brand=Acme": 0.5, "tags=vegan": 1.0}
    with pytest.raises(ConfigError, match="strategy_params"):
        Fused(strategies=("ease",), strategy_params={"content": {}})._parts()


@pytest.fixture(scope="module")
def sample_split():  # type: ignore[no-untyped-def]
    ds = load_dataset("sample")
    vectors = ds.catalog.attribute_vectors().toarray().astype(np.float32)
    s = split(ds.interactions, "loo", seed=0)
    return s, TrainingData(s.train, ds.catalog, vectors, s.valid), vectors


def test_learned_fusion_trains_on_validation_and_is_not_worse_than_its_parts(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, _vectors = sample_split
    names = ("ease", "itemknn", "content")
    ndcg = {}
    for name in names:
        model = resolve_strategy(name)().fit(data)
        ndcg[name] = evaluate_model(model, s.test_history, s.test).summary["ndcg@10"]
    fused = Fused(strategies=names).fit(data)
    assert fused.fusion_ == "learned" and set(fused.feature_weights) >= {"ease:score", "age"}
    got = evaluate_model(fused, s.test_history, s.test).summary["ndcg@10"]
    # 500 users: a smoke check only (the claim itself is benchmarks/decision_beauty.py, with CIs).
    assert got >= max(ndcg.values()) - 0.02, (got, ndcg)


def test_mmr_lambda_from_config_raises_diversity(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, vectors = sample_split
    div = {}
    for lam in (1.0, 0.5):
        model = Fused(strategies=("ease", "content"), fusion="rrf", mmr_lambda=lam).fit(data)
        res = evaluate_model(model, s.test_history, s.test, item_vectors=vectors)
        div[lam] = res.summary["diversity@10"]
    assert div[0.5] > div[1.0]


def test_exposure_cap_from_config_holds_in_the_dense_scores(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, _ = sample_split
    model = Fused(strategies=("ease",), fusion="rrf", exposure_cap=2).fit(data)
    groups = model.exposure_groups("brand")
    scores = model.score(s.test_history.histories(np.arange(20)))
    for row in scores:
        top = np.argsort(-row, kind="stable")[:10]
        counts = np.bincount(groups[top][groups[top] >= 0])
        assert counts.max() <= 2


def test_mmr_in_attribute_space_raises_attribute_diversity(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, _ = sample_split
    attrs = data.catalog.attribute_vectors()
    div = {}
    model = Fused(strategies=("ease", "content"), fusion="rrf", mmr_space="attributes").fit(data)
    for lam in (1.0, 0.3):
        model.config = model.config.model_copy(update={"mmr_lambda": lam})
        div[lam] = evaluate_model(model, s.test_history, s.test, item_vectors=attrs).summary[
            "diversity@10"
        ]
    assert div[0.3] > div[1.0], div


def test_rerank_relevance_is_the_score_and_reuses_one_relevance(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, _ = sample_split
    model = Fused(strategies=("ease", "content"), fusion="rrf", mmr_lambda=0.5).fit(data)
    h = s.test_history.histories(np.arange(30))
    rel = model.relevance(h)
    np.testing.assert_array_equal(model.rerank_relevance(rel, h), model.score(h))
    plain = model.rerank_relevance(
        rel, h, model.config.model_copy(update={"mmr_lambda": 1.0}).rerank_options()
    )
    np.testing.assert_array_equal(plain, rel)


def test_mmr_relevance_scale_from_config(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, _ = sample_split
    cfg = Fused(mmr_relevance="exp", mmr_penalty="mean").config
    assert cfg.rerank_options().mmr_relevance == "exp"
    # As `lmrec evaluate --param fused.mmr_relevance=exp` passes it.
    params = parse_params(["fused.mmr_relevance=exp", "fused.mmr_lambda=0.4"])["fused"]
    assert Fused(params).config.rerank_options().mmr_relevance == "exp"
    with pytest.raises(ConfigError, match="mmr_relevance"):
        Fused(mmr_relevance="softmax")
    model = Fused(
        strategies=("ease", "content"),
        mmr_space="attributes",
        mmr_penalty="mean",
        mmr_relevance="exp",
        mmr_lambda=0.4,
    ).fit(data)
    h = s.test_history.histories(np.arange(30))
    rel = model.relevance(h)
    plain = model.config.model_copy(update={"mmr_lambda": 1.0}).rerank_options()
    np.testing.assert_array_equal(model.rerank_relevance(rel, h, plain), rel)
    diverse = model.rerank_relevance(rel, h)
    minmax = model.rerank_relevance(
        rel, h, model.config.model_copy(update={"mmr_relevance": "minmax"}).rerank_options()
    )
    assert not np.array_equal(diverse, rel) and not np.array_equal(diverse, minmax)
