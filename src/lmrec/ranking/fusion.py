"""Fusion: one relevance per candidate from several strategies' scores.

- `reciprocal_rank_fusion`: sum of `weight / (k + rank)` over the strategies that
  ranked the item in their top `depth` (Cormack et al., SIGIR 2009); needs no
  training and no common score scale, so it is the fallback.
- `LogisticFusion`: a logistic ranker over per-candidate features (`FEATURES`:
  every strategy's standardised score and reciprocal rank, item popularity and
  age, attribute match and text similarity to the history, text similarity to
  the query), trained on the validation
  split (history = training log, positives = validation targets, negatives =
  the other candidates). Its weights are plain arrays, saved without pickle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse as sp

__all__ = [
    "ITEM_FEATURES",
    "FeatureContext",
    "LogisticFusion",
    "candidate_features",
    "feature_names",
    "ranks_within",
    "reciprocal_rank_fusion",
]

#: Features that do not depend on a strategy, in column order after the strategy ones.
ITEM_FEATURES: tuple[str, ...] = (
    "log_popularity",
    "age",
    "attribute_match",
    "text_history",
    "text_query",
)


def feature_names(strategies: Sequence[str]) -> list[str]:
    """Column names: `NAME:score`, `NAME:rrank` per strategy, then `ITEM_FEATURES`."""
    return [f"{s}:{kind}" for s in strategies for kind in ("score", "rrank")] + list(ITEM_FEATURES)


#: Scores closer than this (relative to the row's largest) rank as ties, by item index.
TIE_TOLERANCE = 1e-5


def ranks_within(scores: np.ndarray, candidates: np.ndarray, depth: int) -> np.ndarray:
    """0-based rank of each candidate in its row's score order, or `depth` when it is not
    among the row's top `depth`.

    `scores` (queries x items), `candidates` (queries x c) item indexes, -1 = none.
    Scores within `TIE_TOLERANCE` of each other (relative to the row's largest) are
    ties, ranked by item index: a matrix product's rounding depends on how many rows
    it multiplies at once (about 1e-7 here), so without the tolerance two items with
    equal scores (an item and its text twin) could swap ranks between a batch and a
    single request, and the rank features with them.
    """
    from lmrec.ranking.topk import top_k

    top = top_k(scores, depth)
    out = np.full(candidates.shape, depth, dtype=np.int64)
    for q in range(len(candidates)):
        row = top[q][top[q] >= 0]
        s = scores[q, row].astype(np.float64)
        if len(row) > 1:
            tol = TIE_TOLERANCE * max(float(np.abs(s).max()), 1e-30)
            group = np.concatenate([[0], np.cumsum(np.diff(s) < -tol)])
            row = row[np.lexsort((row, group))]
        pos = {int(i): r for r, i in enumerate(row)}
        out[q] = [pos.get(int(i), depth) for i in candidates[q]]
    return out


def reciprocal_rank_fusion(
    rankings: Sequence[np.ndarray],
    n_items: int,
    k: float = 60.0,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Fused scores (queries x n_items): `sum_s weights[s] / (k + rank_s + 1)`.

    `rankings[s]` is strategy `s`'s (queries x depth) ranked item indexes, best
    first, -1 for empty slots; `rank_s` is 0-based. Items no strategy ranked get 0.
    """
    if not rankings:
        raise ValueError("reciprocal_rank_fusion needs at least one ranking")
    w = list(weights) if weights is not None else [1.0] * len(rankings)
    out = np.zeros((len(rankings[0]), n_items), dtype=np.float64)
    for ranking, weight in zip(rankings, w, strict=True):
        depth = ranking.shape[1]
        contrib = weight / (k + np.arange(1, depth + 1, dtype=np.float64))
        rows = np.repeat(np.arange(len(ranking)), depth)
        cols = ranking.ravel()
        keep = cols >= 0
        np.add.at(out, (rows[keep], cols[keep]), np.tile(contrib, len(ranking))[keep])
    return out


@dataclass(frozen=True, eq=False)
class FeatureContext:
    """Item-side arrays the features read (row `i` = item `i`).

    `popularity` training counts; `first_seen` each item's first interaction
    time scaled to [0, 1] (1 = newest; items never seen count as the oldest: without
    an interaction an item earns no recency credit, where counting it as the newest
    let a refit's kept weights fill slates with items nobody had clicked);
    `attributes` binary item x token matrix; `vectors` unit text vectors.
    """

    popularity: np.ndarray
    first_seen: np.ndarray
    attributes: sp.csr_matrix
    vectors: np.ndarray | None


def _standardise_rows(scores: np.ndarray) -> np.ndarray:
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-12)


def candidate_features(
    strategy_scores: Sequence[np.ndarray],
    candidates: np.ndarray,
    depth: int,
    ctx: FeatureContext,
    histories_items: Sequence[np.ndarray],
    query_vectors: np.ndarray | None = None,
) -> np.ndarray:
    """Features (queries x c x n_features) of candidates (queries x c, -1 = padding).

    Columns follow `feature_names`. `strategy_scores[s]` is (queries x n_items);
    `histories_items[q]` the items of query `q`'s history; `query_vectors[q]` a
    unit query vector (zero row = no query).
    """
    nq, nc = candidates.shape
    safe = np.maximum(candidates, 0)
    cols: list[np.ndarray] = []
    for scores in strategy_scores:
        z = _standardise_rows(np.asarray(scores, dtype=np.float64))
        cols.append(np.take_along_axis(z, safe, axis=1))
        cols.append(1.0 / (1.0 + ranks_within(scores, candidates, depth)))
    pop = np.log1p(ctx.popularity.astype(np.float64))
    pop = pop / max(float(pop.max()), 1e-12)
    n_known = len(ctx.popularity)
    cols.append(np.where(safe < n_known, pop[np.minimum(safe, n_known - 1)], 0.0))
    cols.append(np.where(safe < n_known, ctx.first_seen[np.minimum(safe, n_known - 1)], 0.0))
    attr = ctx.attributes
    match = np.zeros((nq, nc))
    text_hist = np.zeros((nq, nc))
    text_query = np.zeros((nq, nc))
    for q in range(nq):
        h = np.asarray(histories_items[q], dtype=np.int64)
        h = h[(h >= 0) & (h < attr.shape[0])]
        cand = safe[q]
        inside = cand < attr.shape[0]
        if len(h) and attr.shape[1]:
            profile = np.asarray(attr[h].sum(axis=0)).ravel()
            profile = profile / max(float(profile.max()), 1e-12)
            rows = attr[np.minimum(cand, attr.shape[0] - 1)]
            n_tokens = np.maximum(np.asarray(rows.sum(axis=1)).ravel(), 1.0)
            match[q] = np.where(inside, np.asarray(rows @ profile).ravel() / n_tokens, 0.0)
        if ctx.vectors is not None:
            v = ctx.vectors
            in_v = cand < len(v)
            cv = v[np.minimum(cand, len(v) - 1)]
            hv = h[h < len(v)]
            if len(hv):
                p = v[hv].mean(axis=0)
                p = p / max(float(np.linalg.norm(p)), 1e-12)
                text_hist[q] = np.where(in_v, cv @ p, 0.0)
            if query_vectors is not None and np.any(query_vectors[q]):
                text_query[q] = np.where(in_v, cv @ query_vectors[q], 0.0)
    cols += [match, text_hist, text_query]
    return np.stack(cols, axis=-1).astype(np.float32)


class LogisticFusion:
    """L2-regularised logistic regression over standardised candidate features.

    `fit(x, y)` learns `coef`/`intercept` (plus the feature means and scales);
    `score(x)` returns the logit, which orders candidates. Constant features get
    weight 0. `reg` is the L2 penalty.
    """

    def __init__(self, reg: float = 1.0):
        self.reg = reg
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogisticFusion:
        """Fit on rows `x` (n x f) with 0/1 labels `y`; returns self."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 1e-9, std, np.inf)
        z = (x - self.mean) / self.scale
        n, f = z.shape
        # Positives are rare; weigh the classes equally so the logit is not all intercept.
        pos = max(float(y.sum()), 1.0)
        w = np.where(y > 0, n / (2 * pos), n / (2 * max(n - pos, 1.0)))

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            logit = z @ theta[:f] + theta[f]
            p = 1.0 / (1.0 + np.exp(-logit))
            ll = w * (np.logaddexp(0.0, logit) - y * logit)
            g = w * (p - y)
            value = ll.sum() / n + 0.5 * self.reg * (theta[:f] ** 2).sum() / n
            grad = np.concatenate([z.T @ g / n + self.reg * theta[:f] / n, [g.sum() / n]])
            return float(value), grad

        res = scipy.optimize.minimize(
            loss, np.zeros(f + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500}
        )
        self.coef = res.x[:f]
        self.intercept = float(res.x[f])
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """The logit of each row (any leading shape; last axis = features)."""
        if self.coef is None or self.mean is None or self.scale is None:
            raise ValueError("LogisticFusion is not fitted")
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return z @ self.coef + self.intercept  # type: ignore[no-any-return]

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays (for safetensors)."""
        assert self.coef is not None and self.mean is not None and self.scale is not None
        return {
            "coef": self.coef,
            "intercept": np.array([self.intercept]),
            "mean": self.mean,
            "scale": np.where(np.isinf(self.scale), 0.0, self.scale),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray]) -> LogisticFusion:
        """Rebuild from `state()`."""
        out = cls()
        out.coef = np.asarray(state["coef"], dtype=np.float64)
        out.intercept = float(state["intercept"][0])
        out.mean = np.asarray(state["mean"], dtype=np.float64)
        scale = np.asarray(state["scale"], dtype=np.float64)
        out.scale = np.where(scale == 0.0, np.inf, scale)
        return out
