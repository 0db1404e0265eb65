"""Validation as strategies see it: a full-ranking NDCG below the models, passed in `TrainingData`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from tests.models.conformance import parity_vectors

from lmrec.data import Histories, Interactions
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import leave_one_out
from lmrec.evaluation import EvalOptions, evaluate_model
from lmrec.models import TrainingData
from lmrec.models.lm_adapter import LMAdapter
from lmrec.models.names import resolve_strategy
from lmrec.ranking.validation import Scorer, ValidationScore, full_ranking_ndcg


def log(pairs: list[tuple[int, int]], n_users: int = 3, n_items: int = 5) -> Interactions:
    users, items = zip(*pairs, strict=True) if pairs else ((), ())
    return Interactions.build(
        np.array(users, dtype=np.int64), np.array(items, dtype=np.int64), n_users, n_items
    )


def test_known_answer_with_exclusion_cold_user_and_tail_items():
    # u0 saw 0 and 1; u1 saw nothing (ranked by popularity); u2 saw 4.
    history = log([(0, 0), (0, 1), (2, 4), (2, 0)])
    targets = log([(0, 3), (1, 2), (2, 0), (2, 3)])
    asked: list[int] = []

    def score(h: Histories) -> np.ndarray:
        asked.extend(h.lengths.tolist())
        return np.tile(np.array([5.0, 4.0, 3.0, 2.0, 1.0], np.float32), (len(h), 1))

    res = full_ranking_ndcg(score, history, targets)
    # u0 ranks 2, 3, 4 -> target 3 second. u1 ranks by popularity (0: 2, 1: 1, 4: 1), ties
    # to the lower index: 0, 1, 4, 2, 3 -> target 2 fourth. u2 ranks 1, 2, 3 -> target 3 third.
    d = [1 / math.log2(r + 1) for r in range(1, 6)]
    u2 = d[2] / (d[0] + d[1])  # target 0 is in u2's history: a miss that still counts as relevant
    assert res.ndcg == pytest.approx((d[1] + d[3] + u2) / 3)
    # Head items: the top 20% by history count, item 0; u2's tail target is 3 alone.
    assert res.tail_ndcg == pytest.approx((d[1] + d[3] + d[2]) / 3)
    assert asked == [2, 2]  # the cold user is never scored by the model


def test_no_targets_is_nan():
    res = full_ranking_ndcg(lambda h: np.zeros((len(h), 5), np.float32), log([(0, 1)]), log([]))
    assert math.isnan(res.ndcg) and math.isnan(res.tail_ndcg)


@pytest.mark.parametrize("name", ["pop", "ease", "als", "content"])
def test_same_figure_as_the_evaluator(name: str):
    """Tuning measures what `evaluate_model` reports (through the pipeline), exactly."""
    ds = load_dataset("sample")
    split = leave_one_out(ds.interactions)
    vectors = parity_vectors(ds.n_items)
    model = resolve_strategy(name)().fit(TrainingData(split.train, ds.catalog, vectors))
    for history, targets in ((split.train, split.valid), (split.test_history, split.test)):
        ours = full_ranking_ndcg(model.score, history, targets)
        theirs = evaluate_model(model, history, targets, options=EvalOptions(ks=(10,)))
        assert ours.ndcg == theirs.summary["ndcg@10"]
        assert ours.tail_ndcg == theirs.segments["tail_items"]["ndcg@10"]


def test_a_strategy_measures_itself_with_the_validator_it_is_given(parity):
    """Models call `TrainingData.validator`; none imports the evaluator."""
    calls: list[tuple[int, int]] = []

    def validator(score: Scorer, history: Interactions, targets: Interactions) -> ValidationScore:
        calls.append((len(history), len(targets)))
        return ValidationScore(ndcg=0.5 - 0.1 * len(calls), tail_ndcg=0.0)

    train, valid = parity.select(parity.items >= 2), parity.select(parity.items < 2)
    params: dict[str, Any] = {"embedding_dim": 8, "hidden_dim": 16, "epochs": 3}
    data = TrainingData(train, item_vectors=parity_vectors(parity.n_items), valid=valid)
    model = LMAdapter({**params, "text_weight": 0.0, "patience": 5})
    model.fit(TrainingData(data.interactions, None, data.item_vectors, data.valid, validator))
    assert calls == [(len(train), len(valid))] * 3
    assert model.valid_curve_ == pytest.approx([0.4, 0.3, 0.2])
    assert model.best_epoch_ == 1
    merged = TrainingData(train, valid=valid, validator=validator).merged()
    assert merged.validator is validator and merged.valid is None
