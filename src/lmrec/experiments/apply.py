"""Rank one query under a unit's experiment assignments and say what to log.

The server calls this for every request (and a simulation can too), so a variant
is served exactly as it is defined: its knobs over the request's, its model if it
names one, and for interleaving the two arms' lists drafted into one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lmrec.experiments.assignment import Assignment, team_draft
from lmrec.experiments.design import Exposure
from lmrec.pipeline import Pipeline, Query, Recommendation

__all__ = ["Served", "rank_assigned"]


@dataclass(frozen=True)
class Served:
    """The list to answer with, each item's team (interleaving) and the exposures to log first."""

    items: list[Recommendation]
    teams: list[str] | None
    exposures: list[Exposure]
    #: The version of the model that ranked the list (the first arm's when interleaving).
    model_version: str


def rank_assigned(
    query: Query,
    assignments: Sequence[Assignment],
    pipeline_for: Callable[[str | None], Pipeline],
    *,
    unit: str | None,
    request_id: str,
    now: float,
    rank: Callable[[Pipeline, Query], list[Recommendation]] = Pipeline.recommend,
) -> Served:
    """Rank `query` as the unit's variants say; `pipeline_for(model_path)` gives each arm's pipeline.

    A/B assignments (one per layer) apply in layer order: each variant's knobs
    override the request's and the earlier layers'; the last variant naming a
    model ranks with it. An interleaving assignment then ranks the query once per
    arm (each arm's knobs and model on top of the rest) and drafts one list of `k`
    from the two (`team_draft`, seeded by the request id, so a retry is the same).
    `rank(pipeline, query)` makes each list (the server's ranking queue).
    """
    knobs = dict(query.knobs)
    model_path: str | None = None
    interleaving: Assignment | None = None
    for a in assignments:
        if a.experiment.type == "interleaving":
            interleaving = a
            continue
        variant = a.experiment.variant(a.variant)
        knobs.update(variant.knobs)
        model_path = variant.model_path or model_path
    teams: list[str] | None = None
    if interleaving is None:
        pipeline = pipeline_for(model_path)
        items = rank(pipeline, dataclasses.replace(query, knobs=knobs))
    else:
        arms = []
        for variant in interleaving.experiment.variants:
            pipeline_arm = pipeline_for(variant.model_path or model_path)
            arm_query = dataclasses.replace(query, knobs={**knobs, **variant.knobs})
            arms.append((pipeline_arm, rank(pipeline_arm, arm_query)))
        pipeline = arms[0][0]
        ids, teams = team_draft(
            [r.item_id for r in arms[0][1]], [r.item_id for r in arms[1][1]], query.k, request_id
        )
        by_team = {
            team: {r.item_id: r for r in recs} for team, (_, recs) in zip("ab", arms, strict=True)
        }
        items = [by_team[t][i] for i, t in zip(ids, teams, strict=True)]
    shown = tuple(r.item_id for r in items)
    exposures = (
        []
        if unit is None
        else [
            Exposure(
                request_id,
                a.experiment.id,
                a.variant,
                unit,
                now,
                shown,
                tuple(teams) if a is interleaving and teams is not None else None,
            )
            for a in assignments
        ]
    )
    return Served(items, teams, exposures, pipeline.version)
