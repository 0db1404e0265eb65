"""Full-ranking validation of a scorer: what strategies early-stop and tune on.

It sits below the models on purpose. A strategy gets its validator from
`TrainingData.validator` (by default `full_ranking_ndcg`) and never imports
`lmrec.evaluation`, which imports the models.

The lists are made the way the pipeline makes a plain query's list (see
`lmrec.pipeline`): every item is ranked for the user's history, the history's
items are excluded, a user with no history gets training popularity, and equal
scores go to the lower item index. So for a fitted model on index ids,
`full_ranking_ndcg(model.score, history, targets).ndcg` is the `ndcg@10` that
`lmrec.evaluation.evaluate_model` reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lmrec.data.interactions import Histories, Interactions
from lmrec.ranking.metrics import accuracy_metrics, head_items
from lmrec.ranking.topk import exclude, top_k

__all__ = ["Scorer", "ValidationScore", "Validator", "full_ranking_ndcg"]

#: Scores of every item for a batch of histories: (queries x items), higher is better.
Scorer = Callable[[Histories], np.ndarray]

#: Scores held at once (users x items), about 64 MB of float32, as in the pipeline.
_BATCH_CELLS = 16_000_000
#: Most users scored at once.
_MAX_BATCH = 4096
#: Candidates taken before the top k is kept, as deep as the pipeline's re-ranking
#: depth, so equal scores at the k-th place go where they go in served lists.
_DEPTH = 100


@dataclass(frozen=True)
class ValidationScore:
    """Mean NDCG@k on validation targets: over all users with targets (`ndcg`), and
    over tail-item targets only (`tail_ndcg`, users with such a target; NaN if none)."""

    ndcg: float
    tail_ndcg: float


#: What a strategy calls to measure itself: (its scorer, the input history, the targets).
Validator = Callable[[Scorer, Interactions, Interactions], ValidationScore]


def full_ranking_ndcg(
    score: Scorer,
    history: Interactions,
    targets: Interactions,
    k: int = 10,
    head_share: float = 0.2,
) -> ValidationScore:
    """NDCG@`k` of `score`'s full rankings against `targets` (same user and item indexes).

    Each user with targets has every item ranked from their `history`, the history's
    items excluded. Tail items are those outside the top `head_share` of items by
    `history` popularity.
    """
    n_items = max(history.n_items, targets.n_items)
    log = history.with_sizes(max(history.n_users, targets.n_users), n_items)
    truth = targets.with_sizes(targets.n_users, n_items).matrix(binary=True)
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if not len(users):
        return ValidationScore(float("nan"), float("nan"))
    popularity = np.bincount(log.items, minlength=n_items).astype(np.float32)
    tail = ~head_items(popularity, head_share)
    batch = max(1, min(_MAX_BATCH, _BATCH_CELLS // max(1, n_items)))
    rankings = np.full((len(users), k), -1, dtype=np.int64)
    hits = np.zeros((len(users), k), dtype=bool)
    n_tail = np.zeros(len(users), dtype=np.int64)
    for lo in range(0, len(users), batch):
        rows = users[lo : lo + batch]
        top = _rank(score, log.histories(rows), popularity, k)
        rankings[lo : lo + len(rows), : top.shape[1]] = top  # fewer than k items: -1 pads
        ranked = rankings[lo : lo + len(rows)]
        relevant = truth[rows].toarray() > 0
        found = np.take_along_axis(relevant, np.maximum(ranked, 0), axis=1)
        hits[lo : lo + len(rows)] = found & (ranked >= 0)
        n_tail[lo : lo + len(rows)] = (relevant & tail).sum(axis=1)
    n_rel = np.diff(truth[users].indptr)
    ndcg = accuracy_metrics(hits, n_rel, k)["ndcg"]
    tail_hits = hits & tail[np.maximum(rankings, 0)]
    with_tail = n_tail > 0
    tail_ndcg = accuracy_metrics(tail_hits[with_tail], n_tail[with_tail], k)["ndcg"]
    return ValidationScore(float(ndcg.mean()), _mean(tail_ndcg))


def _rank(score: Scorer, hist: Histories, popularity: np.ndarray, k: int) -> np.ndarray:
    """Top `k` items (-1 pads) of each history: model scores, or popularity when empty."""
    hist = Histories(hist.indptr, hist.items)  # the pipeline scores without weights
    n_items = len(popularity)
    scores = np.full((len(hist), n_items), -np.inf, dtype=np.float32)
    warm = hist.lengths > 0
    scores[~warm] = popularity
    if warm.any():
        s = score(hist.select(np.flatnonzero(warm)))
        width = min(n_items, s.shape[1])
        scores[np.flatnonzero(warm), :width] = s[:, :width]
    exclude(scores, hist.to_csr(n_items))
    return top_k(scores, max(k, _DEPTH))[:, :k]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
