"""Matrix factorisation through `implicit`: ALS (Hu et al. 2008) and BPR (Rendle et al. 2009).

Both score a fresh history by folding the user in against the learned item
factors, each with its own objective: ALS takes the exact least-squares solution
(implicit's own solver), BPR a few gradient steps on the pairwise loss. A known
user whose history did not change gets the same answer as a user seen for the
first time with that history, which is what real-time serving needs.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.sparse as sp
from implicit.cpu import _als
from pydantic import Field
from threadpoolctl import threadpool_limits

from lmrec._cpu import usable_cores
from lmrec.data.interactions import Histories
from lmrec.models.base import (
    ModelConfig,
    Recommender,
    TrainingData,
    inner_products,
    last_occurrence,
)
from lmrec.tuning.space import Tunable

__all__ = ["ALS", "BPR", "ALSConfig", "BPRConfig", "fold_in"]


def fold_in(
    item_factors: np.ndarray,
    history: sp.csr_matrix,
    reg: float,
    alpha: float,
    gram: np.ndarray | None = None,
) -> np.ndarray:
    """User vectors minimising the weighted implicit least-squares loss, items fixed.

    `history` is (queries x items) with confidences; returns (queries x factors).
    `gram` is `item_factors.T @ item_factors` when the caller keeps it (it costs a pass
    over every item, too much per request in a large catalogue).
    """
    factors = np.ascontiguousarray(item_factors, dtype=np.float32)
    yty = factors.T @ factors if gram is None else gram
    h = sp.csr_matrix(history, dtype=np.float32)
    h.sort_indices()
    out = np.zeros((h.shape[0], factors.shape[1]), dtype=np.float32)
    _als._least_squares(
        yty,
        h.indptr,
        h.indices,
        (alpha * h.data).astype(np.float32),
        out,
        factors,
        reg,
        # Threads cost more than they save for a request's few users (5 ms vs 0.2 ms).
        num_threads=usable_cores() if h.shape[0] >= 64 else 1,
    )
    return out


class ALSConfig(ModelConfig):
    """`embedding_dim` factors, `reg` L2 penalty, `alpha` confidence of an observed
    interaction, `epochs` ALS sweeps, `seed` for the initial factors."""

    embedding_dim: Annotated[int, Tunable(16, 512, log=True)] = Field(128, ge=1)
    reg: Annotated[float, Tunable(1e-3, 10.0, log=True)] = Field(0.05, ge=0.0)
    alpha: Annotated[float, Tunable(0.5, 50.0, log=True)] = Field(10.0, gt=0.0)
    epochs: Annotated[int, Tunable(5, 50)] = Field(15, ge=1)
    seed: int = 0


class ALS(Recommender):
    """Weighted matrix factorisation for implicit feedback, via `implicit`."""

    Config = ALSConfig
    config: ALSConfig
    #: item_factors_.T @ item_factors_, kept for folding users in.
    _gram: np.ndarray | None = None

    def _fit(self, data: TrainingData) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        x = data.matrix()
        with threadpool_limits(1, "blas"):  # implicit runs its own threads
            model = AlternatingLeastSquares(
                factors=cfg.embedding_dim,
                regularization=cfg.reg,
                alpha=cfg.alpha,
                iterations=cfg.epochs,
                random_state=cfg.seed,
                num_threads=usable_cores(),
            )
            model.fit(x, show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self._gram = None

    def _score(self, histories: Histories) -> np.ndarray:
        return inner_products(self.query_embeddings(histories), self.item_factors_)

    def item_embeddings(self) -> np.ndarray:
        self._require_fitted()
        return self.item_factors_

    def query_embeddings(self, histories: Histories) -> np.ndarray:
        h = histories.to_csr(self.n_items, binary=True)
        return fold_in(self.item_factors_, h, self.config.reg, self.config.alpha, self._item_gram())

    def _item_gram(self) -> np.ndarray:
        """`Y'Y` of the item factors, computed once (a pass over every item)."""
        if self._gram is None:
            self._gram = self.item_factors_.T @ self.item_factors_
        return self._gram

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Each history item's exact term of the score (Hu, Koren and Volinsky 2008, 5).

        The folded-in user is `A^-1 b`, with `A = Y'Y + (alpha - 1) Yh'Yh + reg I` fixed by
        the history and `b = alpha * sum_j y_j` a sum over it, so a score `y_i'A^-1 b` is
        the sum of `alpha * y_i'A^-1 y_j` over history items `j`: one solve, not one fold-in
        per history position. An item repeated in the history counts once (the last time).
        """
        self._require_fitted()
        h, it = np.asarray(history, dtype=np.int64), np.asarray(items, dtype=np.int64)
        cfg, y = self.config, self.item_factors_
        known = last_occurrence(h) & (h >= 0) & (h < self.n_items)
        yh = y[h[known]].astype(np.float64)
        a = self._item_gram() + (cfg.alpha - 1.0) * (yh.T @ yh) + cfg.reg * np.eye(y.shape[1])
        inside = (it >= 0) & (it < self.n_items)
        out = np.zeros((len(it), len(h)), dtype=np.float32)
        out[:, known] = y[np.where(inside, it, 0)] @ (cfg.alpha * np.linalg.solve(a, yh.T))
        out[~inside] = 0.0
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_factors_ = state["item_factors"]
        self._gram = None


class BPRConfig(ModelConfig):
    """`embedding_dim` factors, `learning_rate`, `reg`, `epochs` of SGD, `seed`.

    Fresh histories are folded in with BPR's own objective: the user vector starts
    at the mean of the history's item factors and takes `fold_in_steps` gradient
    steps (step size `learning_rate`) against `fold_in_negatives` negative items
    drawn once at fit time, so the answer is deterministic for a given history.
    """

    embedding_dim: Annotated[int, Tunable(16, 256, log=True)] = Field(128, ge=1)
    learning_rate: Annotated[float, Tunable(1e-3, 0.2, log=True)] = Field(0.05, gt=0.0)
    reg: Annotated[float, Tunable(1e-5, 0.1, log=True)] = Field(0.01, ge=0.0)
    epochs: Annotated[int, Tunable(50, 600, log=True)] = Field(300, ge=1)
    seed: int = 0
    fold_in_steps: int = Field(10, ge=0)
    fold_in_negatives: int = Field(32, ge=1)


class BPR(Recommender):
    """Bayesian personalised ranking matrix factorisation, via `implicit`."""

    Config = BPRConfig
    config: BPRConfig

    def _fit(self, data: TrainingData) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        cfg = self.config
        x = data.matrix()
        with threadpool_limits(1, "blas"):  # implicit runs its own threads
            model = BayesianPersonalizedRanking(
                factors=cfg.embedding_dim,
                learning_rate=cfg.learning_rate,
                regularization=cfg.reg,
                iterations=cfg.epochs,
                random_state=cfg.seed,
                num_threads=usable_cores(),
            )
            model.fit(x, show_progress=False)
        # implicit appends an item-bias column (the user side holds a constant 1 there).
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        rng = np.random.default_rng(cfg.seed)
        self.negatives_ = rng.integers(0, self.n_items, cfg.fold_in_negatives).astype(np.int64)

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """User vectors for (queries x items) binary histories, by BPR's objective."""
        cfg = self.config
        factors, bias = self.item_factors_[:, :-1], self.item_factors_[:, -1]
        counts = np.maximum(np.diff(history.indptr), 1)[:, None]
        users = np.asarray(history @ factors) / counts
        rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
        # Sums each user's per-entry gradients: (queries x entries) with one 1 per entry.
        gather = sp.csr_matrix(
            (np.ones(len(rows), np.float32), np.arange(len(rows)), history.indptr),
            shape=(history.shape[0], len(rows)),
        )
        pos_v, pos_b = factors[history.indices], bias[history.indices]
        neg_v, neg_b = factors[self.negatives_], bias[self.negatives_]
        for _ in range(cfg.fold_in_steps):
            up = np.einsum("ed,ed->e", users[rows], pos_v) + pos_b
            un = users[rows] @ neg_v.T + neg_b
            # d/du log sigmoid(u.(v_pos - v_neg) + b_pos - b_neg) = (1 - sigmoid) (v_pos - v_neg)
            weight = 1.0 / (1.0 + np.exp(np.clip(up[:, None] - un, -30, 30)))
            grad_e = weight.sum(axis=1, keepdims=True) * pos_v - weight @ neg_v
            grad = np.asarray(gather @ grad_e) / len(self.negatives_)
            users += cfg.learning_rate * (grad - cfg.reg * users)
        return users

    def _score(self, histories: Histories) -> np.ndarray:
        users = self.fold_in(histories.to_csr(self.n_items, binary=True))
        return inner_products(users, self.item_factors_[:, :-1]) + self.item_factors_[:, -1]

    def item_embeddings(self) -> np.ndarray:
        """The item factors with the bias last (the query side holds a 1 there)."""
        self._require_fitted()
        return self.item_factors_

    def query_embeddings(self, histories: Histories) -> np.ndarray:
        users = self.fold_in(histories.to_csr(self.n_items, binary=True))
        return np.hstack([users, np.ones((len(users), 1), dtype=users.dtype)])

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "negatives": self.negatives_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_factors_ = state["item_factors"]
        self.negatives_ = state["negatives"]
