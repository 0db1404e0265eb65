"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.linalg.lapack
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.errors import LmrecError
from lmrec.models.base import (
    ModelConfig,
    Recommender,
    TrainingData,
    item_item_terms,
    last_occurrence,
)
from lmrec.tuning.space import Tunable

__all__ = ["EASE", "EASEConfig"]


class EASEConfig(ModelConfig):
    """`reg`: L2 penalty on the item-item weights (larger = smoother). The default is the
    best of {50, 150, 500, 1500} on Amazon Beauty validation (`lmrec tune` searches more);
    denser data (MovieLens) prefers a few hundred."""

    reg: Annotated[float, Tunable(1.0, 1e5, log=True)] = Field(50.0, gt=0.0)


def _weights_from_upper(p: np.ndarray, step: int = 1024) -> np.ndarray:
    """B = P / -diag(P) with a zero diagonal, as float32, from P's upper triangle (what
    potri leaves). Built a block of rows at a time, so the symmetric P and B in float64
    (two more items^2 copies) never exist."""
    n = len(p)
    neg_diag = -np.diag(p).copy()
    b = np.empty((n, n), dtype=np.float32)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        rows = p[lo:hi].copy()
        below = np.arange(hi)[None, :] < np.arange(lo, hi)[:, None]  # column < row
        rows[:, :hi][below] = p[:hi, lo:hi].T[below]
        b[lo:hi] = rows / neg_diag
    b[np.diag_indices_from(b)] = 0.0
    return b


class EASE(Recommender):
    """Closed-form item-item linear model with a zero diagonal.

    B = I - P / diag(P) with P = (X^T X + reg I)^-1; score = history @ B.
    Memory and time grow with items^2 and items^3 (about 1 minute for 12k items on 2 cores).
    """

    Config = EASEConfig
    config: EASEConfig

    def _fit(self, data: TrainingData) -> None:
        x = data.matrix()
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.config.reg
        # Inverse through the Cholesky factor (potrf + potri): ~3x cheaper than solve(I).
        chol, info = scipy.linalg.lapack.dpotrf(gram, lower=False, overwrite_a=True)
        if info == 0:
            p, info = scipy.linalg.lapack.dpotri(chol, lower=False, overwrite_c=True)
        if info != 0:
            raise LmrecError(
                f"EASE: Gram matrix is not positive definite (LAPACK info {info}); raise reg"
            )
        self.weights_ = _weights_from_upper(p)

    def _score(self, histories: Histories) -> np.ndarray:
        h = histories.to_csr(self.n_items, binary=True)
        return np.asarray(h @ self.weights_)

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The learned item-item weight of each history item, the terms of the score."""
        self._require_fitted()
        h = np.asarray(history, dtype=np.int64)
        w = last_occurrence(h).astype(np.float64)  # the binary history counts an item once
        weights = self.weights_
        return item_item_terms(lambda r, c: weights[r][:, c], h, items, w, self.n_items)

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.weights_ = state["weights"]
