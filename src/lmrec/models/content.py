"""Content-based strategy: a user profile built from the text vectors of their history."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.models.base import ModelConfig, Recommender, TrainingData, inner_products
from lmrec.models.itemknn import recent_weights
from lmrec.tuning.space import Tunable

__all__ = ["ContentConfig", "ContentProfile", "profiles"]


class ContentConfig(ModelConfig):
    """`recency`: weight of a history item is exp(-recency * steps back from the newest)
    (0 = plain mean; 0.3 halves the weight about every 2 items); `max_history`: only the
    newest items count."""

    recency: Annotated[float, Tunable(0.0, 1.0)] = Field(0.3, ge=0.0)
    max_history: Annotated[int, Tunable(5, 200, log=True)] = Field(50, ge=1)


def profiles(
    vectors: np.ndarray, histories: Histories, recency: float, max_history: int
) -> np.ndarray:
    """Recency-weighted, L2-normalised mean of history item vectors; zeros for empty histories.

    History items without a vector (index beyond `vectors`) are skipped.
    """
    out = histories.weighted_rows(vectors, recent_weights(histories, recency, max_history))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


class ContentProfile(Recommender):
    """Cosine similarity between each item's text vector and the user's profile vector.

    Needs no interactions at all, so new and cold items are scored like any other.
    """

    Config = ContentConfig
    config: ContentConfig
    uses_text = True

    def _fit(self, data: TrainingData) -> None:
        assert data.item_vectors is not None
        self.vectors_ = np.ascontiguousarray(data.item_vectors, dtype=np.float32)
        self.n_items = len(self.vectors_)

    def add_items(self, vectors: np.ndarray) -> None:
        """Append text vectors of new items; they are scored from the next call on."""
        self._require_fitted()
        self.vectors_ = np.vstack([self.vectors_, np.asarray(vectors, dtype=np.float32)])
        self.n_items = len(self.vectors_)

    def _score(self, histories: Histories) -> np.ndarray:
        return inner_products(self.query_embeddings(histories), self.vectors_)

    def item_embeddings(self) -> np.ndarray:
        self._require_fitted()
        return self.vectors_

    def query_embeddings(self, histories: Histories) -> np.ndarray:
        return profiles(self.vectors_, histories, self.config.recency, self.config.max_history)

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Drop-one, exactly (see `lmrec.ranking.explain`), in closed form: one pass over
        the history instead of a profile per dropped position.

        Without position p, newer positions keep their weights and every older one moves
        one step nearer the newest: its weight grows by exp(recency), and the one just
        past `max_history` comes in. So that profile is a suffix sum of the weighted
        vectors plus exp(recency) times a prefix sum of the next-step weighted ones.
        """
        self._require_fitted()
        h = np.asarray(history, dtype=np.int64)
        it = np.asarray(items, dtype=np.int64)
        n = len(h)
        if n == 0:
            return np.zeros((len(it), 0), dtype=np.float32)
        c = self.config
        back = np.arange(n)[::-1]
        has = (h >= 0) & (h < self.n_items)
        hv = self.vectors_[np.where(has, h, 0)].astype(np.float64)
        decay = np.exp(-c.recency * back) * has
        now = hv * (decay * (back < c.max_history))[:, None]
        nearer = hv * (decay * (back <= c.max_history))[:, None]
        full = now.sum(axis=0)
        after = full - np.cumsum(now, axis=0)  # positions newer than p
        before = np.cumsum(nearer, axis=0) - nearer  # positions older than p
        dropped = after + np.exp(c.recency) * before
        unit = np.vstack([full, dropped])
        unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
        inside = (it >= 0) & (it < self.n_items)
        scores = self.vectors_[np.where(inside, it, 0)].astype(np.float64) @ unit.T
        scores[~inside] = 0.0
        return (scores[:, :1] - scores[:, 1:]).astype(np.float32)  # type: ignore[no-any-return]

    def _state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.vectors_ = state["vectors"]
