"""Free-text steering: a typed query moves the ranking towards what it asks for and away
from what it rules out.

"light sci-fi, nothing scary" asks for light science fiction and rules out scary
things. Encoding the whole sentence would pull scary items *up* (the vector of
"nothing scary" is close to "scary"), so the query is split first: negated
phrases ("no X", "nothing X", "without X", "not X", "avoid X", "X-free", "free
of X") are encoded on their own and lower the items that match them; the rest is
encoded as the positive request and blended with the user's profile.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SteeringQuery", "parse_query", "steer", "steering_vectors"]

_NEGATORS = r"(?:nothing|no|not|without|avoid|never|free of|minus|except|but not|no more)"
# A negated phrase runs to the next clause boundary or the next negator.
_NEG = re.compile(
    rf"\b{_NEGATORS}\s+(?:too\s+|very\s+|any\s+|more\s+)?(?P<phrase>[^,;.!?]+?)(?=\s*(?:[,;.!?]|\band\b|\bbut\b|$))",
    re.IGNORECASE,
)
_FREE = re.compile(r"\b(?P<phrase>\w+)-free\b", re.IGNORECASE)
_CONJ = re.compile(r"^(?:and|but|or|with)\b\s*|\s*\b(?:and|but|or|with)$", re.IGNORECASE)


@dataclass(frozen=True)
class SteeringQuery:
    """A query split into what it asks for (`positive`) and what it rules out (`negative`)."""

    text: str
    positive: str
    negative: tuple[str, ...]


def parse_query(text: str) -> SteeringQuery:
    """Split `text` into a positive request and negated phrases.

    `"gentle fragrance-free moisturiser"` -> positive `"gentle moisturiser"`,
    negative `("fragrance",)`; `"light sci-fi, nothing scary"` -> `"light sci-fi"`,
    `("scary",)`.
    """
    negative: list[str] = []

    def take(match: re.Match[str]) -> str:
        phrase = match.group("phrase").strip()
        if phrase:
            negative.append(phrase)
        return " "

    rest = _FREE.sub(lambda m: take(m), text)
    rest = _NEG.sub(take, rest)
    clauses = []
    for part in re.split(r"[,;.!?]", rest):
        part = re.sub(r"\s+", " ", part).strip()
        while (cleaned := _CONJ.sub("", part).strip()) != part:
            part = cleaned
        if part:
            clauses.append(part)
    positive = ", ".join(clauses)
    return SteeringQuery(text, positive, tuple(dict.fromkeys(negative)))


def steering_vectors(
    query: SteeringQuery, encode: Callable[[Sequence[str]], np.ndarray]
) -> tuple[np.ndarray | None, np.ndarray]:
    """Unit vectors of the positive request (None when empty) and of each negated phrase."""
    texts = ([query.positive] if query.positive else []) + list(query.negative)
    if not texts:
        return None, np.zeros((0, 0), dtype=np.float32)
    v = np.asarray(encode(texts), dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    if query.positive:
        return v[0], v[1:]
    return None, v


def steer(
    scores: np.ndarray,
    vectors: np.ndarray,
    positive: np.ndarray | None,
    negative: np.ndarray,
    scale: float,
    weight: float = 1.0,
    negative_weight: float = 2.0,
) -> np.ndarray:
    """Scores moved by a query: `+ weight * scale * cos(item, positive)` and
    `- negative_weight * scale * max(0, cos(item, negative) - mean cos)` per negated phrase.

    `vectors` are unit item vectors row-aligned with `scores` (zero rows for items
    without one: those are not moved); `scale` is the size of the scores being
    steered (their largest absolute value or spread), so the knob means the same
    for every strategy. The negative term is measured against the phrase's mean
    similarity over items, so only items that match the phrase more than the
    catalogue does are lowered.
    """
    out = np.asarray(scores, dtype=np.float32).copy()
    if positive is not None:
        out += weight * scale * (vectors @ positive)
    for neg in negative:
        sim = vectors @ neg
        has = np.abs(vectors).sum(axis=1) > 0
        base = float(sim[has].mean()) if has.any() else 0.0
        out -= negative_weight * scale * np.clip(sim - base, 0.0, None)
    return out
