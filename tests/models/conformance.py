"""The conformance suite every strategy passes (STYLE 7).

A strategy's test module subclasses `StrategyConformance`, sets `strategy` (and
optionally `params`, `needs_text`) and inherits these checks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from lmrec.data import Histories, Interactions
from lmrec.errors import ConfigError, LmrecError, NotFittedError
from lmrec.models.base import Recommender, TrainingData, load_model


def parity_vectors(n_items: int) -> np.ndarray:
    """Unit item vectors where items of the same parity point the same way (plus noise)."""
    rng = np.random.default_rng(0)
    base = np.zeros((n_items, 8), dtype=np.float32)
    base[np.arange(n_items) % 2 == 0, 0] = 1.0
    base[np.arange(n_items) % 2 == 1, 1] = 1.0
    base += 0.05 * rng.standard_normal(base.shape).astype(np.float32)
    return base / np.linalg.norm(base, axis=1, keepdims=True)


class StrategyConformance:
    """Shared checks; subclasses set `strategy`."""

    strategy: ClassVar[type[Recommender]]
    params: ClassVar[dict[str, Any]] = {}

    def data(self, log: Interactions) -> TrainingData:
        vectors = parity_vectors(log.n_items) if self.strategy.uses_text else None
        return TrainingData(log, item_vectors=vectors)

    @pytest.fixture()
    def fitted(self, parity: Interactions) -> Recommender:
        return self.strategy(self.params).fit(self.data(parity))

    def test_default_construction_does_no_work(self):
        model = self.strategy()
        assert not model.fitted
        with pytest.raises(NotFittedError):
            model.score(Histories.from_lists([[0]]))

    def test_config_round_trip_and_unknown_key(self):
        model = self.strategy(self.params)
        again = self.strategy(model.config.model_dump())
        assert again.config == model.config
        with pytest.raises(ConfigError, match="no_such_key"):
            self.strategy({"no_such_key": 1})

    def test_fit_returns_self(self, parity):
        model = self.strategy(self.params)
        assert model.fit(self.data(parity)) is model and model.fitted

    def test_scores_shape_for_known_and_fresh_histories(self, fitted, parity):
        known = parity.histories([0, 1])
        fresh = Histories.from_lists([[2, 4], [1]])
        for h in (known, fresh):
            s = fitted.score(h)
            assert s.shape == (2, parity.n_items) and s.dtype == np.float32
            assert np.isfinite(s).all()

    def test_empty_history(self, fitted, parity):
        s = fitted.score(Histories.from_lists([[]]))
        assert s.shape == (1, parity.n_items) and np.isfinite(s).all()

    def test_unknown_item_in_history_is_ignored(self, fitted, parity):
        with_new = fitted.score(Histories.from_lists([[2, 4, parity.n_items + 5]]))
        assert with_new.shape == (1, parity.n_items) and np.isfinite(with_new).all()

    def test_batch_equals_one_by_one(self, fitted):
        lists = [[0, 2], [1, 3, 5], [4], []]
        batch = fitted.score(Histories.from_lists(lists))
        single = np.vstack([fitted.score(Histories.from_lists([h])) for h in lists])
        np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-5)

    def test_inner_product_embeddings_reproduce_the_scores(self, fitted):
        """A strategy that offers embeddings (for ANN candidates) scores by exactly them."""
        items = fitted.item_embeddings()
        h = Histories.from_lists([[0, 2, 4], [1, 3], [5]])
        if items is None:  # not an inner-product scorer: it says so when asked
            with pytest.raises(LmrecError, match="inner product"):
                fitted.query_embeddings(h)
            return
        queries = fitted.query_embeddings(h)
        assert items.shape == (fitted.n_items, queries.shape[1])
        np.testing.assert_allclose(queries @ items.T, fitted.score(h), rtol=1e-4, atol=1e-5)

    def test_save_load_identical_scores(self, fitted, tmp_path):
        h = Histories.from_lists([[0, 2, 4], [1, 3]])
        fitted.save(tmp_path / "m")
        loaded = load_model(tmp_path / "m")
        assert type(loaded) is type(fitted) and loaded.config == fitted.config
        np.testing.assert_array_equal(loaded.score(h), fitted.score(h))


class PersonalisedBehaviour:
    """Known answer on the parity data: even histories rank even items first."""

    def test_parity_known_answer(self, fitted, parity):
        s = fitted.score(Histories.from_lists([[0, 2, 4], [1, 3, 5]]))
        s[0, [0, 2, 4]] = -np.inf
        s[1, [1, 3, 5]] = -np.inf
        top0 = np.argsort(-s[0])[:5]
        top1 = np.argsort(-s[1])[:5]
        assert (top0 % 2 == 0).all(), top0
        assert (top1 % 2 == 1).all(), top1
