"""What goes into a pipeline and what comes out: `Query`, `RankedList`, `Recommendation`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lmrec.ranking.ann import AnnOptions
from lmrec.ranking.explain import Explanation
from lmrec.ranking.rerank import RerankOptions

__all__ = ["PipelineConfig", "Query", "RankedList", "Recommendation"]


class PipelineConfig(BaseModel):
    """A pipeline's own settings (the model has its own config).

    `rerank`: the default re-ranking knobs (a `Query`'s `knobs` override them per
    request); `explain_limit`: how many items at the top of a list get an explanation
    (explaining costs a scoring pass per history item for some strategies, so a
    500-item list explains its first 50; the rest come without); `ann`: when a large
    catalogue's candidates come from an approximate nearest-neighbour index (strategies
    that score by an inner product only; exact below `ann.min_items` items). Saved in
    the artefact's manifest.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rerank: RerankOptions = Field(default_factory=RerankOptions)
    explain_limit: int = Field(default=50, ge=0)
    ann: AnnOptions = Field(default_factory=AnnOptions)


@dataclass(frozen=True)
class Query:
    """Who to recommend for and under which constraints.

    `history` (external item ids, oldest first) is appended to the known user's
    training history; `negative` items (not interested) and `exclude` ids are never
    returned; with `exclude_seen`, nor is anything in the combined history.
    `filters` keep items whose field equals the value (or, for list fields like
    `categories`, contains it); a list of values means any of them.
    `use_trained_history=False` ignores the pipeline's copy of the user's history
    (after the user asked to be erased). `text` is a free-text query, used when an
    encoder is available; negated phrases in it ("nothing scary", "fragrance-free")
    lower the items that match them. `knobs` override the pipeline's re-ranking
    options (`RerankOptions` field -> value, e.g. `{"mmr_lambda": 0.7}`; None keeps
    the default). `explain=False` skips explanations.
    """

    user_id: str | None = None
    history: Sequence[str] = ()
    k: int = 10
    exclude: Sequence[str] = ()
    negative: Sequence[str] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    exclude_seen: bool = True
    use_trained_history: bool = True
    text: str | None = None
    knobs: Mapping[str, Any] = field(default_factory=dict)
    explain: bool = True


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score, the reasons it was chosen and their facts."""

    item_id: str
    score: float
    reasons: list[str]
    explanation: Explanation | None = None


@dataclass(frozen=True, eq=False)
class RankedList:
    """One query's answer: item indexes best first, their scores, and how to describe them.

    `items` index the pipeline's item space at the time of the query (`ids`);
    `explanations` (row-aligned) are present when the query asked for them.
    `recommendations()` turns the list into `Recommendation`s with reasons.
    """

    items: np.ndarray
    scores: np.ndarray
    ids: Callable[[int], str]
    reasons: Callable[[int, Explanation | None], list[str]]
    explanations: list[Explanation | None] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def item_ids(self) -> list[str]:
        """External ids of the items, best first."""
        return [self.ids(int(i)) for i in self.items]

    def recommendations(self) -> list[Recommendation]:
        """The list as `Recommendation`s (item id, score, reasons, explanation)."""
        out = []
        for pos, (i, score) in enumerate(
            zip(self.items.tolist(), self.scores.tolist(), strict=True)
        ):
            explanation = self.explanations[pos] if self.explanations is not None else None
            out.append(
                Recommendation(self.ids(i), float(score), self.reasons(i, explanation), explanation)
            )
        return out
