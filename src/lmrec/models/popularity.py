"""Most-popular baseline."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.models.base import ModelConfig, Recommender, TrainingData

__all__ = ["Popularity", "PopularityConfig", "Random", "RandomConfig"]


class PopularityConfig(ModelConfig):
    """`recent_fraction`: count only the newest share of training interactions (1 = all)."""

    recent_fraction: float = Field(1.0, gt=0.0, le=1.0)


class Popularity(Recommender):
    """Scores every item by how many training interactions it has; the same for everyone."""

    Config = PopularityConfig
    config: PopularityConfig

    def _fit(self, data: TrainingData) -> None:
        log = data.interactions
        items = log.items
        if self.config.recent_fraction < 1.0:
            cut = np.quantile(log.timestamps, 1.0 - self.config.recent_fraction)
            items = items[log.timestamps >= cut]
        counts = np.bincount(items, minlength=self.n_items).astype(np.float32)
        # A tiny tie-breaker by overall count keeps the order deterministic.
        self.counts_ = counts + np.bincount(log.items, minlength=self.n_items) * 1e-6

    def _score(self, histories: Histories) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(histories), self.n_items)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.counts_ = state["counts"]


class RandomConfig(ModelConfig):
    """`seed` for the item scores."""

    seed: int = 0


class Random(Recommender):
    """A floor for comparisons: every history gets an independent uniform random ranking.

    Scores are a deterministic function of the seed and the history, so the same
    history gets the same answer (batch and one-by-one agree).
    """

    Config = RandomConfig
    config: RandomConfig

    def _fit(self, data: TrainingData) -> None:
        self.seed_ = np.array([self.config.seed], dtype=np.int64)

    def _score(self, histories: Histories) -> np.ndarray:
        out = np.empty((len(histories), self.n_items), dtype=np.float32)
        for q in range(len(histories)):
            key = [int(self.seed_[0]), *histories[q].tolist()]
            out[q] = np.random.default_rng(key).random(self.n_items, dtype=np.float32)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"seed": self.seed_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.seed_ = state["seed"]
