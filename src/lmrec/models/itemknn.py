"""Item-based k-nearest-neighbours with cosine similarity and shrinkage."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.models.base import (
    ModelConfig,
    Recommender,
    TrainingData,
    item_item_terms,
    last_occurrence,
)
from lmrec.tuning.space import Tunable

__all__ = ["ItemKNN", "ItemKNNConfig", "history_weights", "recent_weights", "top_k_per_column"]


class ItemKNNConfig(ModelConfig):
    """`k` neighbours kept per item; `shrink` damps similarities built on few co-occurrences
    (sim = dot / (|a||b| + shrink)); `recency` > 0 weighs recent history items up
    (weight = exp(-recency * steps_back))."""

    k: Annotated[int, Tunable(10, 1000, log=True)] = Field(200, ge=1)
    shrink: Annotated[float, Tunable(0.0, 200.0)] = Field(50.0, ge=0.0)
    recency: Annotated[float, Tunable(0.0, 1.0)] = Field(0.0, ge=0.0)


def top_k_per_column(m: sp.csr_matrix | sp.csc_matrix, k: int) -> sp.csr_matrix:
    """Keep the `k` largest entries of each column (ties broken by row index)."""
    m = sp.csc_matrix(m)
    m.sort_indices()
    rows, cols, vals = [], [], []
    for j in range(m.shape[1]):
        start, end = m.indptr[j], m.indptr[j + 1]
        if end == start:
            continue
        data = m.data[start:end]
        idx = m.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, idx = data[keep], idx[keep]
        rows.append(idx)
        cols.append(np.full(len(idx), j))
        vals.append(data)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=m.shape,
        dtype=np.float32,
    )


def history_weights(histories: Histories, recency: float) -> np.ndarray:
    """Per stored history item: exp(-recency * positions back from the newest)."""
    if recency == 0.0:
        return np.ones(len(histories.items), dtype=np.float32)
    ends = np.repeat(histories.indptr[1:], histories.lengths)
    back = ends - 1 - np.arange(len(histories.items))
    return np.exp(-recency * back).astype(np.float32)


def recent_weights(histories: Histories, recency: float, max_history: int) -> np.ndarray:
    """`history_weights`, with items older than the newest `max_history` weighted 0."""
    weights = history_weights(histories, recency)
    ends = np.repeat(histories.indptr[1:], histories.lengths)
    weights[(ends - np.arange(len(histories.items))) > max_history] = 0.0
    return weights


class ItemKNN(Recommender):
    """Score = sum over history items of their similarity to the candidate.

    Similarities are cosine over the binary user x item matrix, shrunk towards 0
    for pairs with little support, and pruned to each item's `k` nearest neighbours.
    """

    Config = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, data: TrainingData) -> None:
        x = data.matrix()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        co = (x.T @ x).tocsr().astype(np.float32)
        co.setdiag(0.0)
        co.eliminate_zeros()
        coo = co.tocoo()
        denom = norms[coo.row] * norms[coo.col] + self.config.shrink
        sim = sp.csr_matrix(
            (coo.data / denom, (coo.row, coo.col)), shape=co.shape, dtype=np.float32
        )
        # Column j holds the neighbours that vote for candidate j.
        self.similarity_ = top_k_per_column(sim, self.config.k)

    def _score(self, histories: Histories) -> np.ndarray:
        h = histories.to_csr(self.n_items, binary=True)
        if self.config.recency:
            w = history_weights(histories, self.config.recency)
            keep = (histories.items >= 0) & (histories.items < self.n_items)
            h = sp.csr_matrix(
                (w[keep], (histories.row_ids()[keep], histories.items[keep])), shape=h.shape
            )
        return np.asarray((h @ self.similarity_).todense())

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The neighbour similarity of each history item (recency-weighted), the terms of the score."""
        self._require_fitted()
        h = np.asarray(history, dtype=np.int64)
        if self.config.recency:
            w = np.exp(-self.config.recency * np.arange(len(h))[::-1])
        else:
            w = last_occurrence(h).astype(np.float64)  # the binary history counts an item once
        sim = self.similarity_
        return item_item_terms(lambda r, c: sim[r][:, c].toarray(), h, items, w, self.n_items)

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity_
        return {"data": s.data, "indices": s.indices, "indptr": s.indptr}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.similarity_ = sp.csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=(self.n_items, self.n_items)
        )
