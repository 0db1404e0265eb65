"""Faithful explanations: which history items made an item's score, read off the scoring itself.

`contributions(model, history, items)` returns, for each item, one number per
history position whose sum is (or, for the drop-one fallback, approximates)
the part of the item's score that the history produced:

- a strategy with a `contributions(history, items)` method answers itself
  (`MultiInterest`, `Fused`);
- item-kNN (`similarity_`): the neighbour similarity of each history item;
- EASE (`weights_`): the learned item-item weight of each history item;
- content and LM-adapter (a recency-weighted mean profile, normalised): drop-one,
  exactly. The profile's cosine splits linearly into one term per history item,
  but those terms are not what removing the item would cost: the profile's norm
  and the other items' recency weights move too, so on ml-100k the largest term's
  item lowered the score when removed in only 82% of cases. The loss itself is
  what the explanation claims ("because you liked X"), and it is cheap here (one
  batched scoring of the history with each position left out);
- anything else (SASRec, ALS, ...): drop-one, the score lost when that history
  position is removed (one batched `score` call per explained query).

The facts (contributing items, strategy, interest, shared attributes, how a
knob moved the item) are kept as data in `Explanation`; `Explanation.sentence`
composes the plain-language text from them and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lmrec.data.catalog import Catalog
from lmrec.data.interactions import Histories
from lmrec.models.base import Recommender

__all__ = [
    "Explanation",
    "contributions",
    "drop_one_contributions",
    "shared_attributes",
    "top_contributions",
]


def _last_occurrence(history: np.ndarray) -> np.ndarray:
    """Mask of each position that is the last occurrence of its item."""
    mask = np.zeros(len(history), dtype=bool)
    seen: set[int] = set()
    for p in range(len(history) - 1, -1, -1):
        if int(history[p]) not in seen:
            seen.add(int(history[p]))
            mask[p] = True
    return mask


def _profile_terms(
    vectors: np.ndarray,
    history: np.ndarray,
    items: np.ndarray,
    recency: float,
    max_history: int,
    scale: float = 1.0,
) -> np.ndarray:
    """Cosine terms of a recency-weighted mean profile (as in `content.profiles`)."""
    n = len(history)
    back = np.arange(n)[::-1]
    w = np.exp(-recency * back)
    use = (back < max_history) & (history >= 0) & (history < len(vectors))
    w = np.where(use, w, 0.0)
    hv = vectors[np.where(use, history, 0)] * w[:, None]
    norm = max(float(np.linalg.norm(hv.sum(axis=0))), 1e-12)
    inside = (items >= 0) & (items < len(vectors))
    iv = vectors[np.where(inside, items, 0)]
    out = (iv @ hv.T) / norm * scale
    out[~inside] = 0.0
    return out.astype(np.float32)  # type: ignore[no-any-return]


def drop_one_contributions(
    model: Recommender, history: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """Score of each item minus its score with one history position removed."""
    n = len(history)
    if n == 0:
        return np.zeros((len(items), 0), dtype=np.float32)
    variants = [history] + [np.delete(history, p) for p in range(n)]
    scores = model.score(Histories.from_lists(variants))
    inside = (items >= 0) & (items < scores.shape[1])
    cols = np.where(inside, items, 0)
    base = scores[0, cols]
    out = base[:, None] - scores[1:, cols].T
    out[~inside] = 0.0
    return out.astype(np.float32)  # type: ignore[no-any-return]


def contributions(
    model: Recommender, history: Sequence[int] | np.ndarray, items: Sequence[int] | np.ndarray
) -> np.ndarray:
    """(len(items) x len(history)) contribution of each history position to each item's score.

    See the module docstring for how each kind of strategy is read.
    """
    h = np.asarray(history, dtype=np.int64)
    it = np.asarray(items, dtype=np.int64)
    own = getattr(model, "contributions", None)
    if callable(own):
        return np.asarray(own(h, it), dtype=np.float32)
    n = model.n_items
    inside_h = (h >= 0) & (h < n)
    inside_i = (it >= 0) & (it < n)
    cfg = model.config
    sim = getattr(model, "similarity_", None)
    if sim is not None:  # item-kNN: score = history (binary or recency-weighted) @ S
        recency = float(getattr(cfg, "recency", 0.0))
        if recency:
            w = np.exp(-recency * np.arange(len(h))[::-1])
        else:
            w = _last_occurrence(h).astype(np.float64)
        w = np.where(inside_h, w, 0.0)
        sub = sim[np.where(inside_h, h, 0)][:, np.where(inside_i, it, 0)].toarray()
        out = (sub * w[:, None]).T
        out[~inside_i] = 0.0
        return out.astype(np.float32)  # type: ignore[no-any-return]
    weights = getattr(model, "weights_", None)
    if isinstance(weights, np.ndarray) and weights.ndim == 2:  # EASE: binary history @ B
        w = (_last_occurrence(h) & inside_h).astype(np.float64)
        out = (weights[np.where(inside_h, h, 0)][:, np.where(inside_i, it, 0)] * w[:, None]).T
        out[~inside_i] = 0.0
        return out.astype(np.float32)  # type: ignore[no-any-return]
    return drop_one_contributions(model, h, it)


def top_contributions(
    history: np.ndarray, weights: np.ndarray, n: int = 3
) -> list[tuple[int, float]]:
    """The `n` history items with the largest positive contribution (summed over repeats)."""
    total: dict[int, float] = {}
    for item, w in zip(np.asarray(history).tolist(), np.asarray(weights).tolist(), strict=True):
        total[int(item)] = total.get(int(item), 0.0) + float(w)
    ranked = sorted(((i, w) for i, w in total.items() if w > 0), key=lambda t: (-t[1], t[0]))
    return ranked[:n]


def shared_attributes(
    catalog: Catalog, item: int, history: Sequence[int] | np.ndarray, limit: int = 3
) -> list[str]:
    """Attribute tokens of `item` that history items also have, most shared first."""
    if not 0 <= item < len(catalog):
        return []
    mine = catalog.attributes(item)
    counts = dict.fromkeys(mine, 0)
    for h in dict.fromkeys(int(x) for x in history):
        if 0 <= h < len(catalog):
            for token in catalog.attributes(h):
                if token in counts:
                    counts[token] += 1
    ranked = sorted(
        (t for t, c in counts.items() if c > 0), key=lambda t: (-counts[t], mine.index(t))
    )
    return ranked[:limit]


_KNOB_WORDS = {
    "mmr": "the diversity setting",
    "exposure_cap": "the exposure cap",
    "boosts": "a boost",
    "not_interested": "your not-interested feedback",
    "query": "your query",
}


@dataclass(frozen=True)
class Explanation:
    """The facts behind one recommended item (indexes; the pipeline maps them to ids).

    `contributions`: (history item, weight) pairs, largest first, from the scoring
    computation of `contributor` (the strategy whose scores they come from);
    `strategy`: the strategy that proposed the item (best rank), with every
    strategy's rank in `strategy_ranks` (0-based; absent = not in its candidates);
    `interest`: the label of the user's interest the item serves; `shared_attributes`
    with the history; `rank_changes`: positions gained (+) or lost (-) per knob;
    `query_match`: cosine of the item to the free-text query, when there was one.
    """

    item: int
    strategy: str
    contributor: str
    contributions: list[tuple[int, float]] = field(default_factory=list)
    strategy_ranks: dict[str, int] = field(default_factory=dict)
    interest: str | None = None
    shared_attributes: list[str] = field(default_factory=list)
    rank_changes: dict[str, int] = field(default_factory=dict)
    query_match: float | None = None

    def sentence(self, name: Callable[[int], str]) -> str:
        """Plain-language text composed only from the fields; `name(i)` titles an item."""
        parts: list[str] = []
        if self.contributions:
            total = sum(w for _, w in self.contributions) or 1.0
            cited = ", ".join(f"{name(i)} ({100 * w / total:.0f}%)" for i, w in self.contributions)
            parts.append(f"Because you liked {cited}")
        else:
            parts.append("Recommended")
        parts[-1] += f", found by {self.strategy}"
        if len(self.strategy_ranks) > 1:
            others = [s for s in self.strategy_ranks if s != self.strategy]
            if others:
                parts[-1] += f" (also ranked by {', '.join(others)})"
        text = parts[0] + "."
        if self.interest:
            text += f" It fits your interest in {self.interest}."
        if self.shared_attributes:
            text += (
                " Shares " + ", ".join(a.split("=", 1)[-1] for a in self.shared_attributes) + "."
            )
        if self.query_match is not None:
            text += " Matches your query."
        for knob, moved in self.rank_changes.items():
            what = _KNOB_WORDS.get(knob, knob)
            direction = "up" if moved > 0 else "down"
            text += (
                f" Moved {direction} {abs(moved)} place{'s' if abs(moved) != 1 else ''} by {what}."
            )
        return text
