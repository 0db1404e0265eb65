"""Text strategies: conformance, known answers from item vectors, new and cold items."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from tests.models.conformance import PersonalisedBehaviour, StrategyConformance, parity_vectors

from lmrec.data import Histories, cold_items
from lmrec.evaluation import EvalOptions, evaluate_model
from lmrec.models import TrainingData
from lmrec.models.content import ContentProfile
from lmrec.models.hybrid import Hybrid
from lmrec.models.lm_adapter import LMAdapter

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
