"""The fused model: conformance, learned fusion on validation, and never below its best part there."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from tests.models.conformance import PersonalisedBehaviour, StrategyConformance

from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import split
from lmrec.errors import ConfigError
from lmrec.evaluation import evaluate_model
from lmrec.models import TrainingData
from lmrec.models.fused import Fused, FusedConfig
from lmrec.models.names import resolve_strategy


class TestFusedRRF(StrategyConformance, PersonalisedBehaviour):
    strategy = Fused
    params: ClassVar[dict[str, Any]] = {"strategies": ("itemknn", "content"), "depth": 10}


class TestFusedInterests(StrategyConformance, PersonalisedBehaviour):
    strategy = Fused
    params: ClassVar[dict[str, Any]] = {"strategies": ("itemknn", "multi-interest"), "depth": 10}


def test_config_accepts_cli_strings_and_names_moved_knobs() -> None:
    cfg = FusedConfig(strategies="ease, content")  # type: ignore[arg-type]
    assert cfg.strategies == ("ease", "content")
    with pytest.raises(ConfigError, match="strategy_params"):
        Fused(strategies=("ease",), strategy_params={"content": {}})._parts()
    # Re-ranking moved to the pipeline; the old key says where it went.
    with pytest.raises(ConfigError, match=r"rerank\.mmr_lambda"):
        Fused(mmr_lambda=0.5)


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
    fused = Fused(strategies=names, select=False).fit(data)
    assert fused.fusion_ == "learned" and set(fused.feature_weights) >= {"ease:score", "age"}
    got = evaluate_model(fused, s.test_history, s.test).summary["ndcg@10"]
    # 500 users: a smoke check only (the claim itself is benchmarks/decision_beauty.py, with CIs).
    assert got >= max(ndcg.values()) - 0.02, (got, ndcg)


def test_a_useless_part_is_dropped_on_validation(sample_split) -> None:  # type: ignore[no-untyped-def]
    """One strong part (EASE) and one that knows nothing (random): fused keeps what validates best."""
    s, data, _ = sample_split
    fused = Fused(strategies=("random", "ease"), fusion="rrf").fit(data)
    chosen = fused.validation_[fused.fusion_]
    assert chosen == max(fused.validation_.values())
    assert chosen >= fused.validation_["part:ease"] > fused.validation_["part:random"]
    # RRF with a random part is worse than EASE alone here, so EASE alone is what serves.
    assert fused.fusion_ == "part:ease", fused.validation_
    assert fused.describe()["fusion"] == "part:ease"
    ease = resolve_strategy("ease")().fit(data.merged())
    h = s.test_history.histories(np.arange(20))
    np.testing.assert_array_equal(
        np.argsort(-fused.score(h), axis=1)[:, :10], np.argsort(-ease.score(h), axis=1)[:, :10]
    )


def test_the_choice_survives_save_and_load(sample_split, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, data, _ = sample_split
    fused = Fused(strategies=("random", "ease"), fusion="rrf").fit(data)
    loaded = Fused.load(fused.save(tmp_path / "m"))
    assert loaded.describe() == fused.describe()  # type: ignore[attr-defined]


def test_without_validation_fusion_is_rrf_and_says_so(sample_split) -> None:  # type: ignore[no-untyped-def]
    s, data, _ = sample_split
    fused = Fused(strategies=("ease", "itemknn")).fit(
        TrainingData(s.train, data.catalog, data.item_vectors)
    )
    assert fused.describe()["fusion"] == "rrf" and "no validation" in fused.describe()["reason"]


@pytest.mark.slow
def test_reused_parts_fit_once_and_rank_exactly_as_fresh_ones(sample_split) -> None:  # type: ignore[no-untyped-def]
    """Inside `reuse_fitted_parts`, fused configs that differ only in their fusion share
    their parts' fits (on training data, then on the merged data) and rank the same as
    fused models fitted from scratch; a part with other settings is fitted anew."""
    from lmrec.models.names import reuse_fitted_parts

    s, data, _vectors = sample_split
    configs = [
        {"strategies": ("ease", "itemknn"), "depth": 30},
        {"strategies": ("ease", "itemknn"), "depth": 60, "fusion": "rrf"},
        {"strategies": ("ease", "itemknn"), "strategy_params": {"ease": {"reg": 5.0}}},
    ]
    fresh = [Fused(c).fit(data) for c in configs]
    with reuse_fitted_parts() as cache:
        shared = [Fused(c).fit(data) for c in configs]
        # 2 parts x (train, merged) for the first config; the third refits EASE only.
        assert cache.fits == 4 + 2
    assert shared[0].parts_[1] is shared[1].parts_[1] is shared[2].parts_[1]
    assert shared[0].parts_[0] is shared[1].parts_[0] is not shared[2].parts_[0]
    histories = s.test_history.histories(np.arange(100))
    for a, b in zip(fresh, shared, strict=True):
        assert a.describe() == b.describe()
        np.testing.assert_array_equal(a.score(histories), b.score(histories))
    # Outside the block nothing is kept.
    assert Fused(configs[0]).fit(data).parts_[0] is not shared[0].parts_[0]


def test_a_refit_keeps_the_fusion_and_fits_each_part_once_on_all_data(
    sample_split, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """After `start_from`, the fusion (mode, ranker weights, validation scores) is the
    earlier model's, each part is the one a fit on train + validation gives, a part that
    warm-starts starts from its own earlier weights, and the refit survives save/load."""
    _, data, _ = sample_split
    tiny = {"embedding_dim": 8, "max_len": 5, "epochs": 2, "progress": False}
    cfg = {"strategies": ("ease", "sasrec"), "strategy_params": {"sasrec": tiny}, "depth": 20}
    old = Fused(cfg).fit(data)
    new = Fused(cfg).start_from(old).fit(data)
    assert (new.fusion_, new.validation_) == (old.fusion_, old.validation_)
    assert new.feature_weights == old.feature_weights
    ease = resolve_strategy("ease")().fit(data.merged())
    np.testing.assert_array_equal(new.parts_[0].weights_, ease.weights_)  # type: ignore[attr-defined]
    assert new.parts_[1].warm_started_ and not old.parts_[1].warm_started_  # type: ignore[attr-defined]
    assert "fusion kept" in new.describe()["refit"] and "refit" not in old.describe()
    assert Fused.load(new.save(tmp_path / "m")).describe() == new.describe()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="other settings"):
        Fused({**cfg, "depth": 30}).start_from(old)
    with pytest.raises(ConfigError, match="not an unfitted Fused"):
        Fused(cfg).start_from(Fused(cfg))


def test_an_item_nobody_interacted_with_gets_no_recency_credit(sample_split) -> None:  # type: ignore[no-untyped-def]
    """`age` is the first interaction's time (1 = newest); an item without one is the
    oldest, not the newest, so a ranker that favours recent items does not push it."""
    s, data, vectors = sample_split
    item = int(s.train.items[np.argmax(s.train.timestamps)])  # the newest item seen
    train = s.train.select(s.train.items != item)
    fused = Fused(strategies=("itemknn", "content"), fusion="rrf").fit(
        TrainingData(train, data.catalog, vectors)
    )
    first = fused.context_.first_seen
    unseen = np.flatnonzero(train.item_counts[: len(first)] == 0)
    assert item in unseen and (first[unseen] == 0.0).all()
    assert first.max() > 0.0  # the items that were seen keep their recency
