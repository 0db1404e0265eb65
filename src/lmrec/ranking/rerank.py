"""Re-rankers: the last stage between scored candidates and the list a user sees.

Every re-ranker takes candidate item indexes (best first) with their relevance
and returns a new order; `rerank` runs the configured ones in a fixed order
(score adjustments first, then list-wise selection) and records each item's
position after every step, so explanations can say how a knob moved an item.

- `suppress_similar`: lower items close (in text space) to items the user said
  they are not interested in.
- `boost`: add business boosts to items with given attribute tokens.
- `mmr`: maximal marginal relevance, `lambda * relevance - (1 - lambda) * max
  similarity to what is already chosen`; lambda 1 is the relevance order. Options:
  the redundancy term (`max` or `mean` similarity) and how relevance is put on a
  [0, 1] scale before mixing (`minmax` over the candidates, or `exp`).
- `exposure_cap`: at most `cap` items per group (brand, provider) in the list.

Attribute filters and exclusions are masks applied before any of these (the
`lmrec.pipeline` does that); `RerankOptions` is the one place the knobs exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lmrec.errors import ConfigError, first_problem
from lmrec.tuning.space import Tunable

__all__ = [
    "MmrPenalty",
    "MmrRelevance",
    "MmrSpace",
    "RerankOptions",
    "RerankResult",
    "boost",
    "exposure_cap",
    "mmr",
    "rerank",
    "scale_relevance",
    "suppress_similar",
]

#: MMR's redundancy term (see `mmr`).
MmrPenalty = Literal["max", "mean"]
#: How MMR scales relevance to [0, 1] before mixing (see `mmr`).
MmrRelevance = Literal["minmax", "exp"]
#: The item space MMR measures similarity in: text vectors or attribute tokens.
MmrSpace = Literal["text", "attributes"]


class RerankOptions(BaseModel):
    """Re-ranking knobs, settable per request and per evaluation run.

    `mmr_lambda` (1 = relevance only, 0 = diversity only); `exposure_field` the
    attribute whose values are capped (`brand`, or any attribute field);
    `exposure_cap` the most items per value in the final list (None = no cap);
    `boosts` attribute token -> added relevance in standard deviations of the
    candidates' relevance (e.g. `{"brand=Acme": 1.0}`); `negative_penalty`
    standard deviations taken off an item fully similar to a not-interested item
    (`negative_threshold` is the cosine below which nothing is taken off);
    `depth` how many top candidates the list-wise re-rankers consider; `mmr_penalty`
    how MMR measures redundancy with the items already picked: `max` similarity (the
    classic MMR) or `mean` similarity (the greedy step of intra-list diversity itself,
    which is a mean over pairs, so it buys more of that diversity per relevance lost);
    `mmr_relevance` how relevance is scaled to [0, 1] before it is mixed with the
    redundancy term: `minmax` over the candidates (the default) or `exp`
    (`exp(relevance - max)`: relevance read as a logit, each candidate's odds against
    the best one; the scale no longer depends on the weakest candidate in the pool,
    and a few strong items stay far above a flat tail; meant for logits such as the
    learned fusion's, since scores of a small range, like RRF's, all map near 1);
    `mmr_space` the item space MMR measures similarity in: `text` vectors, or
    `attributes` (the items' attribute tokens, e.g. genres, where the text vectors of
    one domain are all alike). `boosts` also accept the string form
    `brand=Acme:0.5,tags=vegan:1` (for `--param rerank.boosts=...`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mmr_lambda: Annotated[float, Tunable(0.0, 1.0)] = Field(default=1.0, ge=0.0, le=1.0)
    exposure_field: str = "brand"
    exposure_cap: Annotated[int | None, Tunable(choices=(None, 1, 2, 3, 5))] = Field(
        default=None, ge=1
    )
    boosts: dict[str, float] = Field(default_factory=dict)
    negative_penalty: float = Field(default=2.0, ge=0.0)
    negative_threshold: float = Field(default=0.5, ge=-1.0, le=1.0)
    depth: Annotated[int, Tunable(20, 300, log=True)] = Field(default=100, ge=1)
    mmr_penalty: Annotated[MmrPenalty, Tunable()] = "max"
    mmr_relevance: Annotated[MmrRelevance, Tunable()] = "minmax"
    mmr_space: Annotated[MmrSpace, Tunable()] = "text"

    @field_validator("boosts", mode="before")
    @classmethod
    def _parse_boosts(cls, value: object) -> object:
        if isinstance(value, str):
            out: dict[str, float] = {}
            for part in filter(None, (p.strip() for p in value.split(","))):
                token, _, amount = part.rpartition(":")
                if not token:
                    raise ValueError(f"boost {part!r}: expected field=value:amount")
                out[token] = float(amount)
            return out
        return value

    def updated(self, knobs: Mapping[str, object]) -> RerankOptions:
        """These options with `knobs` (field -> value; None = keep) applied and validated.

        Raises `ConfigError` naming the knob when one is unknown or out of range.
        """
        changes = {k: v for k, v in knobs.items() if v is not None}
        if not changes:
            return self
        try:
            return RerankOptions.model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigError(
                f"re-ranking knob {first_problem(exc)} (knobs: {', '.join(RerankOptions.model_fields)})"
            ) from None

    @property
    def list_wise(self) -> bool:
        """Whether a list-wise re-ranker (MMR or a cap) changes the order."""
        return self.mmr_lambda < 1.0 or self.exposure_cap is not None


@dataclass(frozen=True)
class RerankResult:
    """The re-ranked list and how each step moved its items.

    `items`/`scores`: the final order (best first) and the relevance each item
    had after score adjustments. `positions[step][item]`: 0-based position of
    the item after `step` (`relevance` is the order before any knob).
    """

    items: np.ndarray
    scores: np.ndarray
    positions: dict[str, dict[int, int]] = field(default_factory=dict)

    def moved(self, item: int) -> dict[str, int]:
        """Positions gained (positive) or lost at each step for one item."""
        out: dict[str, int] = {}
        prev = self.positions.get("relevance", {}).get(item)
        for step, pos in self.positions.items():
            if step == "relevance":
                continue
            now = pos.get(item)
            if prev is not None and now is not None and now != prev:
                out[step] = prev - now
            prev = now if now is not None else prev
        return out


def _order(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((items, -scores))
    return items[order], scores[order]


def suppress_similar(
    scores: np.ndarray,
    vectors: np.ndarray,
    negative_vectors: np.ndarray,
    penalty: float,
    threshold: float = 0.5,
) -> np.ndarray:
    """`scores - penalty * max(0, (max cos to any negative - threshold) / (1 - threshold))`.

    `vectors` are the candidates' unit vectors (rows aligned with `scores`);
    `negative_vectors` those of the not-interested items (or encoded phrases).
    """
    if not len(negative_vectors) or penalty == 0:
        return scores
    sim = (vectors @ np.asarray(negative_vectors, dtype=np.float32).T).max(axis=1)
    drop = np.clip((sim - threshold) / max(1e-6, 1.0 - threshold), 0.0, None)
    return scores - penalty * drop  # type: ignore[no-any-return]


def boost(
    scores: np.ndarray,
    attributes: sp.csr_matrix,
    tokens: Sequence[str],
    boosts: Mapping[str, float],
) -> np.ndarray:
    """Add `boosts[token]` to each candidate having that attribute token.

    `attributes` is the candidates' binary item x token matrix with column names `tokens`.
    """
    if not boosts:
        return scores
    index = {t: j for j, t in enumerate(tokens)}
    w = np.zeros(len(tokens), dtype=np.float32)
    for token, value in boosts.items():
        if token in index:
            w[index[token]] += value
    return scores + np.asarray(attributes @ w).ravel()


def scale_relevance(relevance: np.ndarray, how: MmrRelevance = "minmax") -> np.ndarray:
    """Relevance on a [0, 1] scale with the best candidate at 1 (any order in and out).

    `minmax`: `(r - min) / (max - min)` (all 1 when equal); `exp`: `exp(r - max)`, the
    odds against the best candidate when `r` is a logit.
    """
    r = np.asarray(relevance, dtype=np.float64)
    if not len(r):
        return r
    if how == "exp":
        return np.exp(r - r.max())  # type: ignore[no-any-return]
    span = r.max() - r.min()
    return (r - r.min()) / span if span > 0 else np.ones_like(r)  # type: ignore[no-any-return]


def mmr(
    items: np.ndarray,
    relevance: np.ndarray,
    vectors: np.ndarray,
    lam: float,
    k: int,
    penalty: MmrPenalty = "max",
    scale: MmrRelevance = "minmax",
) -> np.ndarray:
    """Greedy maximal marginal relevance over candidates `items` (any order; `vectors` row-aligned).

    Picks, `k` times, the candidate maximising `lam * rel - (1 - lam) * sim`, where
    `rel` is relevance scaled to [0, 1] by `scale` (see `scale_relevance`) and `sim`
    the largest (`penalty="max"`) or mean (`"mean"`) cosine to the items already
    picked (0 for the first pick). Ties go to the earlier candidate in relevance order.
    `lam = 1` returns the relevance order.
    """
    items = np.asarray(items)
    relevance = np.asarray(relevance, dtype=np.float64)
    order = np.lexsort((items, -relevance))
    items, relevance = items[order], relevance[order]
    k = min(k, len(items))
    if lam >= 1.0 or k == 0:
        return items[:k]
    rel = scale_relevance(relevance, scale)
    v = np.asarray(vectors, dtype=np.float64)[order]
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    max_sim = np.zeros(len(items))
    sum_sim = np.zeros(len(items))
    taken = np.zeros(len(items), dtype=bool)
    picked: list[int] = []
    for step in range(k):
        sim = max_sim if penalty == "max" else sum_sim / max(step, 1)
        value = lam * rel - (1.0 - lam) * (sim if step else 0.0)
        value[taken] = -np.inf
        j = int(np.argmax(value))
        picked.append(j)
        taken[j] = True
        col = v @ v[j]
        max_sim = np.maximum(max_sim, col)
        sum_sim += col
    return items[picked]


def exposure_cap(items: np.ndarray, groups: np.ndarray, cap: int, k: int) -> np.ndarray:
    """The first `k` of `items` (best first) with at most `cap` per group.

    `groups[j]` is item `items[j]`'s group id (-1 = no group, never capped). When the
    cap leaves fewer than `k` items, the list is shorter than `k`.
    """
    counts: dict[int, int] = {}
    out: list[int] = []
    for item, g in zip(items, groups, strict=True):
        g = int(g)
        if g >= 0:
            if counts.get(g, 0) >= cap:
                continue
            counts[g] = counts.get(g, 0) + 1
        out.append(int(item))
        if len(out) == k:
            break
    return np.asarray(out, dtype=np.int64)


def rerank(
    items: np.ndarray,
    relevance: np.ndarray,
    options: RerankOptions,
    k: int,
    vectors: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    attributes: sp.csr_matrix | None = None,
    tokens: Sequence[str] = (),
    negative_vectors: np.ndarray | None = None,
    mmr_vectors: np.ndarray | None = None,
) -> RerankResult:
    """Apply the knobs of `options` to candidates `items` with `relevance`; top `k` out.

    `vectors`, `groups` and `attributes` are row-aligned with `items` (the
    candidates' unit text vectors, exposure-group ids, attribute tokens). Score
    adjustments (negative suppression, boosts) are in standard deviations of the
    candidates' relevance, so they mean the same for every strategy's scale.
    Re-rankers whose inputs are missing are skipped. `mmr_vectors` (row-aligned) give
    MMR another similarity space than `vectors` (e.g. attribute tokens); default `vectors`.
    """
    items = np.asarray(items, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    positions: dict[str, dict[int, int]] = {}

    def record(step: str, order: np.ndarray) -> None:
        positions[step] = {int(i): p for p, i in enumerate(order)}

    ordered, _ = _order(items, rel)
    record("relevance", ordered)
    std = float(rel.std()) if len(rel) > 1 else 1.0
    std = std if std > 0 else 1.0
    adjusted = rel.copy()
    if negative_vectors is not None and len(negative_vectors) and vectors is not None:
        adjusted = rel + std * (
            suppress_similar(
                np.zeros_like(rel),
                vectors,
                negative_vectors,
                options.negative_penalty,
                options.negative_threshold,
            )
        )
        record("not_interested", _order(items, adjusted)[0])
    if options.boosts and attributes is not None:
        adjusted = adjusted + std * boost(np.zeros_like(rel), attributes, tokens, options.boosts)
        record("boosts", _order(items, adjusted)[0])
    pos_of = {int(i): j for j, i in enumerate(items)}
    ordered, ordered_scores = _order(items, adjusted)
    depth = min(len(ordered), max(options.depth, k))
    top = ordered[:depth]
    sim_vectors = vectors if mmr_vectors is None else mmr_vectors
    if options.mmr_lambda < 1.0 and sim_vectors is not None:
        rows = np.array([pos_of[int(i)] for i in top], dtype=np.int64)
        # MMR fills the k visible places; the rest of the pool follows in relevance order.
        # A cap needs the whole pool diversified, since it may skip any of the first k.
        n_pick = depth if options.exposure_cap is not None else k
        picked = mmr(
            top,
            adjusted[rows],
            sim_vectors[rows],
            options.mmr_lambda,
            n_pick,
            options.mmr_penalty,
            options.mmr_relevance,
        )
        top = np.concatenate([picked, top[~np.isin(top, picked)]])
        record("mmr", top)
    if options.exposure_cap is not None and groups is not None:
        rows = np.array([pos_of[int(i)] for i in top], dtype=np.int64)
        top = exposure_cap(top, groups[rows], options.exposure_cap, depth)
        record("exposure_cap", top)
    final = top[:k]
    score_of = dict(zip(ordered.tolist(), ordered_scores.tolist(), strict=True))
    return RerankResult(
        items=final,
        scores=np.array([score_of[int(i)] for i in final], dtype=np.float32),
        positions=positions,
    )
