"""Top-K selection with exclusions, shared by evaluation and serving."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["exclude", "top_k"]


def exclude(scores: np.ndarray, mask: sp.csr_matrix | None) -> np.ndarray:
    """Set the scores of masked (row, item) pairs to -inf, in place; returns `scores`.

    Mask columns beyond the score width (items the model does not know) are ignored.
    """
    if mask is None or mask.nnz == 0:
        return scores
    coo = mask.tocoo()
    keep = coo.col < scores.shape[1]
    scores[coo.row[keep], coo.col[keep]] = -np.inf
    return scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the `k` highest scores per row, best first.

    Deterministic: within the top K, equal scores go to the lower item index.
    Rows with fewer than `k` usable scores (not -inf or NaN) are padded with -1.
    """
    n, m = scores.shape
    k = min(k, m)
    if k == 0:
        return np.zeros((n, 0), dtype=np.int64)
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(m), (n, m)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    top_vals = np.take_along_axis(vals, order, axis=1)
    top[np.isnan(top_vals) | (top_vals == -np.inf)] = -1
    return top.astype(np.int64)
