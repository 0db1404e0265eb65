"""Explanations for a ranked list, read off the scoring itself (see `lmrec.ranking.explain`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lmrec.models.base import Attribution, Recommender
from lmrec.models.multi_interest import MultiInterest, interest_label
from lmrec.pipeline._items import ItemSpace
from lmrec.ranking.explain import (
    Explanation,
    history_tokens,
    profile_terms,
    shared_attributes,
    top_contributions,
)

__all__ = ["explain"]


def _interest_model(model: Recommender, space: ItemSpace) -> MultiInterest | None:
    """The user's interests are found in text space, with the model's settings if it has them."""
    if space.vectors is None:
        return None
    found = space._cache.get("interests")
    if found is None:
        config = model.config if isinstance(model, MultiInterest) else None
        found = MultiInterest.over(space.vectors, config)  # type: ignore[arg-type]
        space._cache["interests"] = found
    return found  # type: ignore[no-any-return]


def explain(
    model: Recommender,
    strategy: str,
    space: ItemSpace,
    top: np.ndarray,
    history: np.ndarray,
    content_only: np.ndarray,
    used_query: bool,
    cold: bool,
    moved: Mapping[int, dict[str, int]],
) -> list[Explanation]:
    """One `Explanation` per item of `top` (a user's final list, best first)."""
    m = space.n_trained
    trained = top[(top < m) & ~content_only[top]]
    rows: dict[int, np.ndarray] = {}
    attributions: dict[int, Attribution] = {}
    if not cold and len(trained):
        contrib = model.contributions(history, trained)
        rows = {int(i): contrib[r] for r, i in enumerate(trained)}
        found = model.attribute(history, trained)
        if found is not None:
            attributions = dict(zip(trained.tolist(), found, strict=True))
    new_items = top[content_only[top]]
    if len(new_items) and space.vectors is not None and len(history):
        terms = profile_terms(space.vectors, history, new_items, 0.0, len(history))
        rows.update({int(i): terms[r] for r, i in enumerate(new_items)})
    vec_history = history[space.has_vector[history]] if space.vectors is not None else history
    interests = _interest_model(model, space) if len(vec_history) else None
    found_interests = interests.interests(vec_history) if interests is not None else []
    serving: list[int] = []
    if interests is not None and found_interests:
        # A multi-interest model's items came from one interest each: name that one. Any
        # other strategy's item is named after the interest it is closest to.
        serving = (
            interests.serving_interest(vec_history, top, found_interests)
            if isinstance(model, MultiInterest)
            else interests.nearest_interest(top, found_interests)
        )
    labels: dict[int, str] = {}
    tokens = history_tokens(space.catalog, history)

    def name(item_id: str) -> str:
        return space.name(space.ids.get(item_id))

    explained = [i for i in top.tolist() if i in rows]
    cited = top_contributions(history, np.array([rows[i] for i in explained])) if explained else []
    cited_by = dict(zip(explained, cited, strict=True))
    out = []
    for pos, i in enumerate(top.tolist()):
        att = attributions.get(i)
        if content_only[i]:
            proposer = contributor = "content"
        elif cold:
            proposer = contributor = "popular"
        else:
            proposer = contributor = att.strategy if att is not None else strategy
        interest = None
        if pos < len(serving) and serving[pos] >= 0:
            c = serving[pos]
            if c not in labels:
                labels[c] = interest_label(space.catalog, found_interests[c].members)
            interest = labels[c]
        explanation = Explanation.composed(
            name,
            strategy=proposer,
            contributor=contributor,
            contributions=[(space.ids.id(j), round(w, 6)) for j, w in cited_by.get(i, [])],
            strategy_ranks=dict(att.ranks) if att is not None else {},
            interest=interest,
            shared_attributes=shared_attributes(space.catalog, i, tokens),
            rank_changes=dict(moved.get(i, {})),
            query_match=1.0 if used_query else None,
        )
        out.append(explanation)
    return out
