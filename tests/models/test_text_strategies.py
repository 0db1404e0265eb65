"""Text strategies: conformance, known answers from item vectors, new and cold items."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from tests.models.conformance import PersonalisedBehaviour, StrategyConformance, parity_vectors

from lmrec.data import Histories, Interactions, cold_items
from lmrec.data.splitting import split as random_split
from lmrec.evaluation import EvalOptions, evaluate_model
from lmrec.models import TrainingData, load_model
from lmrec.models.content import ContentProfile
from lmrec.models.hybrid import Hybrid, _pick, _Trial
from lmrec.models.lm_adapter import TEXT_WEIGHT_GRID, LMAdapter

FAST_ADAPTER: dict[str, Any] = {
    "embedding_dim": 8,
    "hidden_dim": 16,
    "epochs": 15,
    "batch_size": 16,
}


class TestContent(StrategyConformance, PersonalisedBehaviour):
    strategy = ContentProfile

    def test_new_item_is_scored_from_its_text(self, fitted, parity):
        vec = parity_vectors(parity.n_items)[0:1]  # an "even" item's vector
        fitted.add_items(vec)
        s = fitted.score(Histories.from_lists([[0, 2, 4]]))
        assert s.shape[1] == parity.n_items + 1
        assert s[0, -1] > np.median(s[0])


class TestLMAdapter(StrategyConformance, PersonalisedBehaviour):
    strategy = LMAdapter
    params: ClassVar[dict[str, Any]] = FAST_ADAPTER


class TestHybrid(StrategyConformance, PersonalisedBehaviour):
    strategy = Hybrid
    params: ClassVar[dict[str, Any]] = {
        "cf": "itemknn",
        "text": "lm-adapter",
        "text_params": FAST_ADAPTER,
        "weight": 0.5,
    }


def test_lm_adapter_ranks_cold_items_from_text(parity):
    """Cold items never seen in training still rank by their text: even users get even cold items."""
    split = cold_items(parity, test_fraction=0.3, valid_fraction=0.0, seed=0)
    vectors = parity_vectors(parity.n_items)
    model = LMAdapter(FAST_ADAPTER).fit(TrainingData(split.train, item_vectors=vectors))
    res = evaluate_model(
        model, split.test_history, split.test, options=EvalOptions(ks=(1, 5), save_top=5)
    )
    # The unseen items of a user's own parity are exactly their cold targets: they must come first.
    assert res.summary["hr@1"] == 1.0
    assert res.summary["ndcg@5"] > 0.95


def topic_catalogue(n_items: int = 24) -> tuple[Interactions, np.ndarray]:
    """Two topics by text (even items "A", odd items "B"); every user reads one topic.

    Items 0..n_items-5 have interactions; the last four (two per topic) are cold: text only.
    """
    n_warm = n_items - 4
    users, items = [], []
    for u in range(30):
        for i in range(u % 2, n_warm, 2):
            users.append(u)
            items.append(i)
    log = Interactions.build(np.array(users), np.array(items), 30, n_items)
    return log, parity_vectors(n_items)


def test_lm_adapter_ranks_cold_item_near_history_above_unrelated_warm_items():
    """A cold item whose text matches a user's history outranks warm items of the other topic."""
    log, vectors = topic_catalogue()
    model = LMAdapter(FAST_ADAPTER).fit(TrainingData(log, item_vectors=vectors))
    cold_a, cold_b = [20, 22], [21, 23]
    s = model.score(Histories.from_lists([[0, 2, 4, 6]]))[0]
    unrelated_warm = s[1:20:2]
    assert s[cold_a].min() > unrelated_warm.max()
    assert s[cold_a].min() > s[cold_b].max()


def test_residual_adapter_starts_from_the_text_space():
    """Before any useful training the residual adapter's item space is the text space."""
    log, vectors = topic_catalogue()
    params = {**FAST_ADAPTER, "epochs": 1, "learning_rate": 1e-12, "text_weight": 0.0}
    model = LMAdapter(params).fit(TrainingData(log, item_vectors=vectors))
    np.testing.assert_allclose(model.embed(vectors), vectors, atol=1e-5)
    content = ContentProfile({"recency": 0.0}).fit(TrainingData(log, item_vectors=vectors))
    h = Histories.from_lists([[0, 2], [1, 5, 7]])
    np.testing.assert_allclose(model.score(h), content.score(h), atol=1e-5)


def test_lm_adapter_text_weight_is_picked_on_validation(parity):
    """With validation data and text_weight="auto", the kept weight scores best on validation."""
    split = cold_items(parity, test_fraction=0.2, valid_fraction=0.2, seed=0)
    vectors = parity_vectors(parity.n_items)
    data = TrainingData(split.train, item_vectors=vectors, valid=split.valid)
    model = LMAdapter(FAST_ADAPTER).fit(data)
    assert model.text_weight_ in TEXT_WEIGHT_GRID
    opts = EvalOptions(ks=(10,), save_top=10)
    for w in TEXT_WEIGHT_GRID:
        model.text_weight_ = w
        ndcg = evaluate_model(model, split.train, split.valid, options=opts).summary["ndcg@10"]
        assert ndcg <= model.valid_ndcg_ + 1e-12


def test_hybrid_picks_the_cf_candidate_that_wins_on_validation(parity, tmp_path):
    """Popularity cannot tell even from odd users; item-kNN can, so validation must pick it.

    A random split: leave-one-out on this log holds out the same item, unseen in training,
    for every user, which no CF model can rank (item-kNN once won there on float noise).
    """
    split = random_split(parity, "random", seed=0)
    data = TrainingData(split.train, item_vectors=parity_vectors(parity.n_items), valid=split.valid)
    model = Hybrid({"cf": "pop|itemknn", "text": "content", "weight": 0.0}).fit(data)
    assert model.cf_name_ == "itemknn"
    assert {t.cf for t in model.trials_} == {"pop", "itemknn"}
    h = Histories.from_lists([[0, 2, 4], [1, 3]])
    np.testing.assert_allclose(load_model(model.save(tmp_path / "m")).score(h), model.score(h))


def test_balanced_pick_beats_the_best_cf_on_both_fronts():
    """Overall picks the best validation NDCG; balanced the blend ahead of the best CF on
    overall *and* tail NDCG by the widest margin (ease alone leads overall, als the tail)."""
    trials = [
        _Trial("ease", "content", 0.0, ndcg=0.100, tail_ndcg=0.010),
        _Trial("ease", "content", 0.4, ndcg=0.110, tail_ndcg=0.020),  # worse tail than als
        _Trial("als", "content", 0.0, ndcg=0.090, tail_ndcg=0.030),
        _Trial("als", "content", 0.4, ndcg=0.102, tail_ndcg=0.036),  # ahead on both
        _Trial("als", "content", 0.7, ndcg=0.080, tail_ndcg=0.050),  # tail only
    ]
    grid = (0.0, 0.4, 0.7)
    assert _pick(trials, "overall", grid) == trials[1]
    assert _pick(trials, "balanced", grid) == trials[3]
    assert _pick(trials, "balanced", (0.7,)) == trials[4]  # a fixed weight limits the pick


def test_a_text_strategy_without_text_says_which_flags_give_it_text() -> None:
    import pytest
    from tests.conftest import parity_log

    from lmrec.errors import LmrecError

    with pytest.raises(LmrecError, match=r"Hybrid reads item text.*--catalog FILE.*--item-columns"):
        Hybrid().fit(TrainingData(parity_log()))
