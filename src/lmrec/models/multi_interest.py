"""Multi-interest strategy: a user's history clustered in text space, one retrieval per interest.

A single profile vector (the mean of a user's item vectors) sits between the
user's tastes and, for someone who buys both mascara and dog shampoo, points at
neither. Here each user's (recent, recency-weighted) history is clustered with
spherical K-means over the items' text vectors; the number of clusters adapts to
the history (`k = min(max_interests, ceil(sqrt(n / 2)))`, so 1 for up to 2 items,
2 up to 8, 3 up to 18, ...). Each cluster is an *interest*: a unit centre, a
weight (its share of the history's weight) and its member items.

Items are then scored per interest and merged (`merge`):

- `quota` (default): each interest gets a share of the top `quota_depth` list,
  proportional to its weight but at least `min_share`; an item's score is its
  similarity to the interest minus that interest's cut-off (the similarity of its
  quota-th best item), maximised over interests. The top `quota_depth` of the
  merged list therefore holds each interest's quota, so a minority interest is
  not drowned by the majority.
- `max`: the best similarity to any interest centre.
- `weighted`: similarity to the weighted sum of centres (one profile vector; the
  baseline the other two are compared with).

Explanations are exact: an interest centre is the normalised weighted sum of its
members' vectors, so an item's similarity to it splits into one cosine term per
member (`contributions`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from lmrec.data.catalog import Catalog
from lmrec.data.interactions import Histories, Interactions
from lmrec.models.base import ModelConfig, Recommender, TrainingData, inner_products
from lmrec.tuning.space import Tunable

__all__ = [
    "Interest",
    "MultiInterest",
    "MultiInterestConfig",
    "interest_label",
    "n_interests",
    "spherical_kmeans",
]


#: Users whose interests are scored with one matrix product (bounded memory: ~4 x 64 x items).
_BATCH = 64


class MultiInterestConfig(ModelConfig):
    """`max_interests` caps the clusters per user; `merge` is `quota`, `max` or `weighted`
    (see the module docstring); `quota_depth` the list length quotas are measured on;
    `min_share` the smallest share an interest gets; `recency` and `max_history` weigh
    and cut the history as in `content`; `iterations` of K-means."""

    max_interests: Annotated[int, Tunable(1, 8)] = Field(4, ge=1)
    merge: Annotated[Literal["quota", "max", "weighted"], Tunable()] = "quota"
    quota_depth: int = Field(50, ge=1)
    min_share: Annotated[float, Tunable(0.0, 0.5)] = Field(0.2, ge=0.0, le=1.0)
    recency: Annotated[float, Tunable(0.0, 0.5)] = Field(0.05, ge=0.0)
    max_history: int = Field(50, ge=1)
    iterations: int = Field(10, ge=1)


@dataclass(frozen=True, eq=False)
class Interest:
    """One interest of a user.

    `centre` is a unit vector in text space; `weight` the interest's share of the
    history weight (weights sum to 1); `members` the history item indexes in the
    cluster (oldest first) and `member_weights` their recency weights; `share` the
    fraction of the top `quota_depth` list reserved for it (`quota` merge).
    """

    centre: np.ndarray
    weight: float
    members: np.ndarray
    member_weights: np.ndarray
    share: float


def n_interests(n_history: int, max_interests: int) -> int:
    """How many interests a history of `n_history` items is split into."""
    if n_history <= 0:
        return 0
    return max(1, min(max_interests, n_history, math.ceil(math.sqrt(n_history / 2))))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def spherical_kmeans(
    x: np.ndarray, weights: np.ndarray, k: int, iterations: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster unit rows `x` (weighted) into at most `k` groups by cosine; deterministic.

    Seeds with the most central row, then repeatedly the row least similar to the
    chosen seeds (farthest-point), then runs Lloyd steps. Returns `(labels,
    centres)` with unit centres; empty clusters are dropped and labels renumbered.
    """
    n = len(x)
    k = max(1, min(k, n))
    mean = _unit((x * weights[:, None]).sum(axis=0))
    seeds = [int(np.argmax(x @ mean))]
    best_sim = x @ x[seeds[0]]
    while len(seeds) < k:
        nxt = int(np.argmin(best_sim))
        if best_sim[nxt] > 1.0 - 1e-6:  # every row is already a seed's duplicate
            break
        seeds.append(nxt)
        best_sim = np.maximum(best_sim, x @ x[nxt])
    centres = x[seeds].copy()
    labels = np.argmax(x @ centres.T, axis=1)
    weighted = x * weights[:, None]
    for _ in range(iterations):
        # Each centre's weighted member sum, as one product (`np.add.at` costs ~10x more here).
        sums = (labels == np.arange(len(centres))[:, None]).astype(x.dtype) @ weighted
        used = np.bincount(labels, minlength=len(centres)) > 0
        centres = _unit(sums[used])
        new = np.argmax(x @ centres.T, axis=1)
        if len(centres) == len(used) and np.array_equal(new, labels):
            break
        labels = new
    used_ids = np.unique(labels)
    remap = np.full(labels.max() + 1, -1)
    remap[used_ids] = np.arange(len(used_ids))
    labels = remap[labels]
    sums = (labels == np.arange(len(used_ids))[:, None]).astype(np.float64) @ weighted
    return labels, _unit(sums).astype(np.float32)


def interest_label(catalog: Catalog, members: Sequence[int] | np.ndarray, top: int = 2) -> str:
    """A short name for an interest from its members' attributes.

    The most specific category most members share (deepest on ties), then the
    most frequent tag or brand when it is shared by more than one member.
    """
    members = [int(m) for m in members if 0 <= int(m) < len(catalog)]
    if not members:
        return "interest"
    cats: Counter[tuple[int, str]] = Counter()
    extra: Counter[str] = Counter()
    for m in members:  # the catalogue's cached tokens: a pandas row read costs ~0.1 ms
        values: dict[str, list[str]] = {"categories": [], "tags": [], "brand": []}
        for token in catalog.attributes(m):
            name, _, value = token.partition("=")
            if name in values:
                values[name].append(value)
        for depth, c in enumerate(dict.fromkeys(values["categories"])):
            cats[(depth, c)] += 1
        for t in dict.fromkeys(values["tags"] + values["brand"][:1]):
            extra[t] += 1
    parts: list[str] = []
    if cats:
        # Most members first, then the deepest category: "Mascara" beats "Beauty" on a tie.
        (_, name), _count = max(cats.items(), key=lambda kv: (kv[1], kv[0][0]))
        parts.append(name)
    for word, count in extra.most_common(top):
        if count > 1 and word not in parts and len(parts) < top:
            parts.append(word)
    if not parts:
        parts.append(catalog.title(members[0]) or "interest")
    return " / ".join(parts)


class MultiInterest(Recommender):
    """Per-user K-means interests in text space, merged with quotas (see module docstring)."""

    Config = MultiInterestConfig
    config: MultiInterestConfig
    uses_text = True

    def _fit(self, data: TrainingData) -> None:
        assert data.item_vectors is not None
        self.vectors_ = np.ascontiguousarray(_unit(data.item_vectors), dtype=np.float32)
        self.n_items = len(self.vectors_)

    @classmethod
    def over(cls, vectors: np.ndarray, config: MultiInterestConfig | None = None) -> MultiInterest:
        """A multi-interest model fitted to item vectors alone (it learns nothing else)."""
        n = len(vectors)
        log = Interactions.build(np.zeros(0), np.zeros(0), 0, n)
        return cls(config).fit(TrainingData(log, item_vectors=vectors))

    def add_items(self, vectors: np.ndarray) -> None:
        """Append text vectors of new items; they are scored from the next call on."""
        self._require_fitted()
        self.vectors_ = np.vstack([self.vectors_, _unit(np.asarray(vectors, dtype=np.float32))])
        self.n_items = len(self.vectors_)

    # -- interests -----------------------------------------------------------------

    def _recent(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """History items with vectors, newest `max_history`, and their recency weights."""
        h = np.asarray(history, dtype=np.int64)
        h = h[(h >= 0) & (h < len(self.vectors_))][-self.config.max_history :]
        back = np.arange(len(h))[::-1]
        return h, np.exp(-self.config.recency * back).astype(np.float64)

    def interests(self, history: Sequence[int] | np.ndarray) -> list[Interest]:
        """The interests of one history (oldest item first), largest weight first."""
        self._require_fitted()
        h, w = self._recent(np.asarray(history))
        if not len(h):
            return []
        cfg = self.config
        x = self.vectors_[h].astype(np.float64)
        labels, centres = spherical_kmeans(
            x, w, n_interests(len(h), cfg.max_interests), cfg.iterations
        )
        total = float(w.sum())
        weights = np.array([w[labels == c].sum() / total for c in range(len(centres))])
        shares = np.maximum(weights, cfg.min_share)
        shares = shares / shares.sum()
        order = np.lexsort((np.arange(len(centres)), -weights))
        return [
            Interest(
                centre=centres[c],
                weight=float(weights[c]),
                members=h[labels == c],
                member_weights=w[labels == c].astype(np.float32),
                share=float(shares[c]),
            )
            for c in order
        ]

    def profile(self, history: Sequence[int] | np.ndarray) -> np.ndarray:
        """The single interest vector: the weight-weighted sum of centres, unit length."""
        found = self.interests(history)
        if not found:
            return np.zeros(self.vectors_.shape[1], dtype=np.float32)
        return _unit(np.sum([i.weight * i.centre for i in found], axis=0)).astype(np.float32)

    def _interest_scores(
        self,
        found: list[Interest],
        history: np.ndarray | None = None,
        sims: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per item: the merged score and the index of the interest that gave it.

        Quotas are counted over items outside `history` (those are not recommended).
        `sims` (interests x items) are the centres' cosines to every item when the
        caller has computed them for a whole batch (one matrix product for many
        users is ~20x faster than one thin product per user).
        """
        n = len(self.vectors_)
        if not found:
            return np.zeros(n, dtype=np.float32), np.full(n, -1, dtype=np.int64)
        if sims is None:
            sims = self._centre_sims([found])
        merge = self.config.merge
        if merge == "weighted":
            # Cosine to the unit weighted sum of centres, which is linear in the sims.
            w = np.array([i.weight for i in found])
            norm = max(float(np.linalg.norm(w @ np.stack([i.centre for i in found]))), 1e-12)
            scores = (w @ sims) / norm
            return scores.astype(np.float32), np.argmax(sims, axis=0)
        if merge == "max":
            best = np.argmax(sims, axis=0)
            return sims[best, np.arange(n)], best
        open_ = np.ones(n, dtype=bool)
        if history is not None:
            h = np.asarray(history, dtype=np.int64)
            open_[h[(h >= 0) & (h < n)]] = False
        n_open = int(open_.sum())
        depth = min(self.config.quota_depth, n_open)
        adjusted = np.empty_like(sims)
        for c, interest in enumerate(found):
            quota = max(1, min(n_open, round(interest.share * depth)))
            pool = sims[c][open_] if n_open else sims[c]
            cut = np.partition(pool, len(pool) - quota)[len(pool) - quota]
            adjusted[c] = sims[c] - cut
        best = np.argmax(adjusted, axis=0)
        return adjusted[best, np.arange(n)], best

    def _centre_sims(self, batch: list[list[Interest]]) -> np.ndarray:
        """Cosines (all interests of the batch, stacked x items) in one matrix product."""
        centres = [i.centre for found in batch for i in found]
        if not centres:
            return np.zeros((0, len(self.vectors_)), dtype=np.float32)
        c = np.ascontiguousarray(np.stack(centres), dtype=np.float32)
        return inner_products(c, self.vectors_)

    def serving_interest(
        self,
        history: Sequence[int] | np.ndarray,
        items: np.ndarray,
        found: list[Interest] | None = None,
    ) -> list[int]:
        """For each item, the position in `interests(history)` (or `found`, when the caller
        has them already) of the interest that scored it."""
        found = self.interests(history) if found is None else found
        _, best = self._interest_scores(found, np.asarray(history))
        return [int(best[int(i)]) if 0 <= int(i) < len(best) else -1 for i in items]

    def nearest_interest(self, items: np.ndarray, found: list[Interest]) -> list[int]:
        """For each item, the position in `found` of the interest whose centre is closest
        (cosine); -1 for items without a vector. It reads only these items' vectors: what
        explaining another strategy's list needs, where no interest did the scoring."""
        it = np.asarray(items, dtype=np.int64)
        inside = (it >= 0) & (it < len(self.vectors_))
        if not found or not len(it):
            return [-1] * len(it)
        sims = self.vectors_[np.where(inside, it, 0)] @ np.stack([i.centre for i in found]).T
        return np.where(inside, np.argmax(sims, axis=1), -1).tolist()  # type: ignore[no-any-return]

    def contributions(self, history: Sequence[int] | np.ndarray, items: np.ndarray) -> np.ndarray:
        """(len(items) x len(history)) cosine contribution of each history position to each item.

        An item's score comes from one interest; its centre is the normalised weighted
        sum of the members' vectors, so cos(centre, item) = sum over members of
        weight * (member . item) / |sum|. Non-members and items beyond the model get 0.
        """
        hist = np.asarray(history, dtype=np.int64)
        out = np.zeros((len(items), len(hist)), dtype=np.float32)
        found = self.interests(hist)
        if not found:
            return out
        _, best = self._interest_scores(found, hist)
        h, w = self._recent(hist)
        # Positions in `hist` of the recent window, which `interests` used.
        valid = np.flatnonzero((hist >= 0) & (hist < len(self.vectors_)))[
            -self.config.max_history :
        ]
        for row, item in enumerate(np.asarray(items, dtype=np.int64)):
            if not 0 <= item < len(self.vectors_):
                continue
            interest = found[int(best[item])]
            member_mask = np.isin(h, interest.members)
            vec_sum = (self.vectors_[h[member_mask]] * w[member_mask, None]).sum(axis=0)
            norm = max(float(np.linalg.norm(vec_sum)), 1e-12)
            terms = w * (self.vectors_[h] @ self.vectors_[item]) / norm
            out[row, valid] = np.where(member_mask, terms, 0.0)
        return out

    # -- Recommender -----------------------------------------------------------------

    def _score(self, histories: Histories) -> np.ndarray:
        out = np.zeros((len(histories), len(self.vectors_)), dtype=np.float32)
        for lo in range(0, len(histories), _BATCH):
            hists = [histories[q] for q in range(lo, min(lo + _BATCH, len(histories)))]
            found = [self.interests(h) for h in hists]
            sims = self._centre_sims(found)
            start = 0
            for q, (h, f) in enumerate(zip(hists, found, strict=True)):
                rows = sims[start : start + len(f)]
                start += len(f)
                if f:
                    out[lo + q] = self._interest_scores(f, h, rows)[0]
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.vectors_ = state["vectors"]
