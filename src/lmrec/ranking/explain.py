"""Faithful explanations: which history items made an item's score, read off the scoring itself.

Each strategy answers `Recommender.contributions(history, items)`: one number per
history position whose sum is (or, for drop-one, approximates) the part of the
item's score that the history produced:

- item-kNN: the neighbour similarity of each history item; EASE: the learned
  item-item weight of each history item; multi-interest: the terms of the
  interest the item serves; fused: read from the part that ranked the item best;
- content and LM-adapter (a recency-weighted mean profile, normalised) and anything
  else (SASRec, ALS, ...): drop-one, exactly. The profile's cosine splits linearly
  into one term per history item, but those terms are not what removing the item
  would cost (the profile's norm and the other items' recency weights move too; on
  ml-100k the largest term's item lowered the score when removed in only 82% of
  cases). The loss itself is what the explanation claims ("because you liked X").

The facts (contributing items, strategy, interest, shared attributes, how a knob
moved the item) are kept as data in `Explanation`, the one explanation type from
the ranking layer to the HTTP response; `Explanation.sentence` composes the
plain-language text from them and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmrec.data.catalog import Catalog

__all__ = [
    "Explanation",
    "history_tokens",
    "profile_terms",
    "shared_attributes",
    "top_contributions",
]


def profile_terms(
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


def top_contributions(
    history: np.ndarray, weights: np.ndarray, n: int = 3
) -> list[list[tuple[int, float]]]:
    """Per row of `weights` (items x history positions): the `n` history items with the
    largest positive contribution (summed over repeats), largest first, ties by item."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[1] == 0:
        return [[] for _ in range(len(w))]
    ids, inverse = np.unique(np.asarray(history, dtype=np.int64), return_inverse=True)
    summed = w @ (inverse[:, None] == np.arange(len(ids))).astype(np.float64)
    order = np.argsort(-summed, axis=1, kind="stable")[:, :n]  # ids ascend: ties by id
    best = np.take_along_axis(summed, order, axis=1)
    return [
        [(int(ids[j]), v) for j, v in zip(cols, values, strict=True) if v > 0]
        for cols, values in zip(order.tolist(), best.tolist(), strict=True)
    ]


def history_tokens(catalog: Catalog, history: Sequence[int] | np.ndarray) -> Counter[str]:
    """How many distinct history items carry each attribute token (see `shared_attributes`)."""
    counts: Counter[str] = Counter()
    for h in dict.fromkeys(int(x) for x in history):
        if 0 <= h < len(catalog):
            counts.update(catalog.attributes(h))
    return counts


def shared_attributes(
    catalog: Catalog, item: int, history_counts: Counter[str], limit: int = 3
) -> list[str]:
    """Attribute tokens of `item` that history items also have, most shared first.

    `history_counts` is `history_tokens(catalog, history)`, counted once per list.
    """
    if not 0 <= item < len(catalog):
        return []
    mine = catalog.attributes(item)
    shared = [t for t in dict.fromkeys(mine) if history_counts[t] > 0]
    return sorted(shared, key=lambda t: (-history_counts[t], mine.index(t)))[:limit]


_KNOB_WORDS = {
    "mmr": "the diversity setting",
    "exposure_cap": "the exposure cap",
    "boosts": "a boost",
    "not_interested": "your not-interested feedback",
    "query": "your query",
}


@dataclass(frozen=True)
class Explanation:
    """The facts behind one recommended item, and the sentence composed from them.

    The one explanation type, from the ranking layer to the HTTP response.
    `contributions`: (history item id, weight) pairs, largest first, from the scoring
    computation of `contributor` (the strategy whose scores they come from);
    `strategy`: the strategy that proposed the item (best rank), with every
    strategy's rank in `strategy_ranks` (0-based; absent = not in its candidates);
    `interest`: the label of the user's interest the item serves; `shared_attributes`
    with the history; `rank_changes`: places gained (+) or lost (-) per knob (`query`,
    `mmr`, `exposure_cap`, `boosts`, `not_interested`); `query_match`: whether a
    free-text query steered the item (1.0) or not (None); `text`: plain language,
    composed by `sentence` from the other fields only.
    """

    strategy: str
    contributor: str
    contributions: list[tuple[str, float]] = field(default_factory=list)
    strategy_ranks: dict[str, int] = field(default_factory=dict)
    interest: str | None = None
    shared_attributes: list[str] = field(default_factory=list)
    rank_changes: dict[str, int] = field(default_factory=dict)
    query_match: float | None = None
    text: str = ""

    @classmethod
    def composed(cls, name: Callable[[str], str], **facts: Any) -> Explanation:
        """The explanation of `facts` (every field but `text`), with `text` composed
        from them by `sentence(name)`."""
        return cls(**facts, text=cls(**facts).sentence(name))

    def sentence(self, name: Callable[[str], str]) -> str:
        """Plain-language text composed only from the fields; `name(item_id)` titles an item."""
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
