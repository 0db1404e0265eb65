"""Ranking and beyond-accuracy metrics, per user, from top-K hit matrices.

They live in the ranking layer, below the models, so a strategy that tunes on
validation (`lmrec.ranking.validation`) measures with the same code as
`lmrec.evaluation`, which re-exports them.

Every function returns one value per user (so confidence intervals and paired
tests come for free); the reported figure is the mean over users.

Conventions (the common full-ranking ones, as in RecBole and LensKit):
- recall@K = hits in top K / number of relevant items;
- hr@K = 1 if any relevant item is in the top K;
- precision@K = hits / K;
- ndcg@K = DCG / ideal DCG, gains 1/log2(rank + 1), ideal over min(relevant, K) items;
- mrr@K = 1 / rank of the first hit (0 when none in the top K);
- map@K = sum of precision@i at each hit i <= K / min(relevant, K);
- f1@K = harmonic mean of precision@K and recall@K.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACCURACY_METRICS",
    "accuracy_metrics",
    "gini",
    "head_items",
    "intra_list_diversity",
    "novelty",
]

ACCURACY_METRICS = ("recall", "hr", "ndcg", "mrr", "precision", "map", "f1")


def accuracy_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user accuracy metrics at `k`.

    `hits` is a boolean (users x >=k) matrix: whether the item at each rank is
    relevant; `n_relevant` the number of relevant items per user (> 0).
    """
    h = np.asarray(hits[:, :k], dtype=np.float64)
    n_rel = np.asarray(n_relevant, dtype=np.float64)
    if h.shape[1] < k:  # fewer candidates than k: pad with misses
        h = np.pad(h, ((0, 0), (0, k - h.shape[1])))
    ranks = np.arange(1, k + 1, dtype=np.float64)
    n_hits = h.sum(axis=1)
    recall = n_hits / n_rel
    precision = n_hits / k
    discounts = 1.0 / np.log2(ranks + 1.0)
    dcg = h @ discounts
    ideal_n = np.minimum(n_rel, k).astype(np.int64)
    idcg = np.concatenate([[0.0], np.cumsum(discounts)])[ideal_n]
    first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, 0)
    mrr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    prec_at_i = np.cumsum(h, axis=1) / ranks
    ap = (prec_at_i * h).sum(axis=1) / np.minimum(n_rel, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "recall": recall,
        "hr": (n_hits > 0).astype(np.float64),
        "ndcg": dcg / idcg,
        "mrr": mrr,
        "precision": precision,
        "map": ap,
        "f1": f1,
    }


def head_items(item_counts: np.ndarray, head_share: float) -> np.ndarray:
    """Boolean mask of head items: the top `head_share` of items by count (ties by index)."""
    n_head = round(head_share * len(item_counts))
    order = np.lexsort((np.arange(len(item_counts)), -item_counts))
    mask = np.zeros(len(item_counts), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def novelty(top: np.ndarray, item_counts: np.ndarray, n_users: int) -> np.ndarray:
    """Mean self-information -log2(p(item)) of each list; p = (count + 1) / (users + 1)."""
    p = (item_counts.astype(np.float64) + 1.0) / (n_users + 1.0)
    info = -np.log2(p)
    return info[top].mean(axis=1)


def intra_list_diversity(top: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cos) between the items of each list.

    `vectors` must be L2-normalised rows (dense array or scipy sparse matrix).
    """
    n, k = top.shape
    if k < 2:
        return np.zeros(n)
    flat = vectors[top.ravel()]
    emb = (flat.toarray() if hasattr(flat, "toarray") else np.asarray(flat)).reshape(n, k, -1)
    gram = np.einsum("nkd,njd->nkj", emb, emb)
    off = gram.sum(axis=(1, 2)) - np.trace(gram, axis1=1, axis2=2)
    return 1.0 - off / (k * (k - 1))


def gini(exposure: np.ndarray) -> float:
    """Gini coefficient of exposure counts over all items (0 = equal, ->1 = concentrated)."""
    x = np.sort(np.asarray(exposure, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)
