"""Scores for a batch of queries over the whole item space, before masks and re-ranking.

- Users with a history: the model scores it (`score_queries`, with the query vector
  when the model is query-aware).
- Users with no history yet (cold start): training popularity, until their first event.
- Items added after training (index >= the model's range): scored from their text, on
  the model's own scale. The item's cosine to the user's text profile (history plus
  query) is mapped to the model score at the same quantile among the trained items'
  cosines to that profile (the user's history left out), so a new item ranks where a
  trained candidate of equal text similarity would, whatever the model's scale (an RRF
  score, a logit, a dot product).
- A free-text query steers every trained item with a vector (`lmrec.ranking.steer`),
  by a scale read from the query's own top candidates.
- With an `ItemIndex` (large catalogues, inner-product strategies), a warm query's
  trained items are only its index candidates, scored exactly; the rest stay -inf.
  The query vector of a query-aware strategy is not in its embeddings, so such a
  query is scored whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmrec.data.interactions import Histories
from lmrec.models.base import Recommender
from lmrec.pipeline._items import ItemSpace
from lmrec.ranking.ann import ItemIndex
from lmrec.ranking.steer import steer

__all__ = ["ScoredBatch", "score_batch"]


@dataclass(frozen=True, eq=False)
class ScoredBatch:
    """Relevance of every item for each query (queries x items; -inf = not scorable).

    `unsteered[q]` is row `q` before the query steered it (None when nothing did);
    `content_only` marks items scored from text alone (added after training);
    `cold[q]` says query `q` had no history (popularity); `approximate[q]` that its
    trained items are an index's candidates only.
    """

    scores: np.ndarray
    unsteered: list[np.ndarray | None]
    content_only: np.ndarray
    cold: np.ndarray
    approximate: np.ndarray


def _profile(space: ItemSpace, history: np.ndarray, query: np.ndarray | None) -> np.ndarray | None:
    """Unit text profile of a history (mean of its item vectors) plus the query vector."""
    assert space.vectors is not None
    h = history[space.has_vector[history]] if len(history) else history
    profile = space.vectors[h].mean(axis=0) if len(h) else None
    if profile is not None:
        profile = profile / max(float(np.linalg.norm(profile)), 1e-12)
        if query is not None:
            profile = profile + query
    else:
        profile = query
    if profile is None:
        return None
    return profile / max(float(np.linalg.norm(profile)), 1e-12)  # type: ignore[no-any-return]


def _new_item_scores(
    space: ItemSpace, row: np.ndarray, cosines: np.ndarray, history: np.ndarray, new: np.ndarray
) -> np.ndarray:
    """Scores of the items `new` (added after training, with text), by quantile-matching
    text cosine to `row`.

    `cosines`: every item's cosine to the user's profile. The reference is the trained
    items the user could be shown (history items left out: they are the closest to the
    profile and would hand new items the top scores).
    """
    m = space.n_trained
    candidate = space.has_vector[:m] & np.isfinite(row[:m])
    candidate[history[history < m]] = False
    trained = np.flatnonzero(candidate)
    if not len(new) or not len(trained):
        return np.full(len(new), -np.inf, dtype=np.float32)
    cos_trained = np.sort(cosines[trained])
    model_scores = np.sort(row[trained])
    return np.interp(cosines[new], cos_trained, model_scores).astype(np.float32)


def _score_new_items(
    space: ItemSpace,
    scores: np.ndarray,
    histories: Sequence[np.ndarray],
    queries: Sequence[np.ndarray | None],
    width: int = 8,
) -> None:
    """Fill in the scores of items added after training (`_new_item_scores`), in place.

    The profiles' cosines to every item come from one product per `width` queries
    (a product per query reads every item vector once per query, which cost more than
    the rest of the scoring on a 12k-item catalogue). Every product is exactly `width`
    wide, a short one padded: BLAS rounds a product's columns alike only at one width,
    and a query must score the same alone (an HTTP request) as in a batch.
    """
    assert space.vectors is not None
    m = space.n_trained
    new = m + np.flatnonzero(space.has_vector[m:])
    found = [(q, _profile(space, histories[q], queries[q])) for q in range(len(histories))]
    profiles = {q: p for q, p in found if p is not None}
    rows = list(profiles)
    for lo in range(0, len(rows), width):
        batch = rows[lo : lo + width]
        block = [profiles[q] for q in batch]
        stacked = np.stack(block + block[-1:] * (width - len(block)), axis=1)
        cosines = space.vectors @ stacked.astype(space.vectors.dtype, copy=False)
        for c, q in enumerate(batch):
            scores[q, new] = _new_item_scores(space, scores[q], cosines[:, c], histories[q], new)


def _steering_scale(row: np.ndarray, depth: int) -> float:
    """The size of a row's scores where the list is made: largest |score| in its top `depth`."""
    finite = row[np.isfinite(row)]
    if not len(finite):
        return 1.0
    top = np.partition(finite, len(finite) - min(depth, len(finite)))[-depth:]
    scale = float(np.abs(top).max())
    return scale if scale > 0 else 1.0


def score_batch(
    model: Recommender,
    space: ItemSpace,
    popularity: np.ndarray,
    histories: Sequence[np.ndarray],
    queries: Sequence[np.ndarray | None],
    negatives: Sequence[np.ndarray],
    depth: int,
    index: ItemIndex | None = None,
    candidates: int = 0,
) -> ScoredBatch:
    """Score every item of `space` for each (history, query vector, negated-phrase vectors).

    With `index`, warm queries get `candidates` items from it instead (see the module).
    """
    b, n, m = len(histories), len(space), space.n_trained
    scores = np.full((b, n), -np.inf, dtype=np.float32)
    cold = np.array([len(h) == 0 for h in histories], dtype=bool)
    approximate = np.zeros(b, dtype=bool)
    scores[np.ix_(cold, np.arange(m))] = popularity[:m]
    warm = np.flatnonzero(~cold).tolist()
    if len(warm):
        hist = Histories.from_lists([histories[q] for q in warm])
        wants_query = model.query_aware and any(queries[q] is not None for q in warm)
        if index is not None and not wants_query:
            found = index.top(model.query_embeddings(hist), candidates)
            for q, (ids, values) in zip(warm, found, strict=True):
                inside = ids < m
                scores[q, ids[inside]] = values[inside]
            approximate[warm] = True
        else:
            if wants_query and space.vectors is not None:
                qv = np.zeros((len(warm), space.vectors.shape[1]), dtype=np.float32)
                for r, q in enumerate(warm):
                    v = queries[q]
                    if v is not None:
                        qv[r] = v
                s = model.score_queries(hist, qv)
            else:
                s = model.score(hist)
            width = min(m, s.shape[1])
            scores[warm, :width] = s[:, :width]
    content_only = np.zeros(n, dtype=bool)
    unsteered: list[np.ndarray | None] = [None] * b
    if space.vectors is None:
        return ScoredBatch(scores, unsteered, content_only, cold, approximate)
    content_only[m:] = space.has_vector[m:]
    if n > m:
        _score_new_items(space, scores, histories, queries)
    for q in range(b):
        query, neg = queries[q], negatives[q]
        if query is not None or len(neg):
            unsteered[q] = scores[q].copy()
            scale = _steering_scale(scores[q, :m], depth)
            scores[q, :m] = steer(scores[q, :m], space.vectors[:m], query, neg, scale)
    return ScoredBatch(scores, unsteered, content_only, cold, approximate)
