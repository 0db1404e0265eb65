"""Who sees which variant: sticky hashing into layers and variants, and team-draft interleaving.

Assignment is a pure function of the stored definitions and the unit id, so every
worker, and the same worker after a restart, puts a unit in the same variant with
no shared state beyond the definitions. Buckets come from SHA-256 of
`salt \\x00 unit`: uniform, and independent between salts (layers and
experiments hash with different salts, so layers are orthogonal).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lmrec.experiments.design import BUCKETS, Experiment

__all__ = [
    "HOLDOUT_SALT",
    "INTERLEAVED",
    "Assignment",
    "assign",
    "bucket",
    "in_holdout",
    "team_draft",
]

#: The salt of the global holdout: units below the holdout share see no experiment.
HOLDOUT_SALT = "lmrec-holdout"
#: The variant name logged for a list drafted from both arms of an interleaving experiment.
INTERLEAVED = "interleaved"


def bucket(salt: str, unit: str) -> int:
    """The unit's bucket in `[0, BUCKETS)` under `salt` (stable across processes and versions)."""
    digest = hashlib.sha256(f"{salt}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_holdout(unit: str, holdout: float) -> bool:
    """Whether the unit is in the global holdout of share `holdout` (kept out of every experiment)."""
    return holdout > 0 and bucket(HOLDOUT_SALT, unit) < round(holdout * BUCKETS)


@dataclass(frozen=True)
class Assignment:
    """A unit's place in one experiment: the variant it sees (`INTERLEAVED` for interleaving)."""

    experiment: Experiment
    variant: str


def _variant(experiment: Experiment, unit: str) -> str:
    if experiment.type == "interleaving":
        return INTERLEAVED
    b = bucket(experiment.unit_salt, unit)
    edge = 0.0
    for v in experiment.variants:
        edge += v.share * BUCKETS
        if b < round(edge):
            return v.name
    return experiment.variants[-1].name  # shares sum to 1 up to rounding


def assign(
    experiments: Iterable[Experiment], unit: str, now: float, holdout: float = 0.0
) -> list[Assignment]:
    """The running experiments `unit` is enrolled in (at most one per layer), by layer name."""
    if in_holdout(unit, holdout):
        return []
    found = []
    for e in experiments:
        if e.buckets is None or e.status_at(now) != "running":
            continue
        first, last = e.buckets
        if first <= bucket(f"layer\x00{e.layer}", unit) < last:
            found.append(Assignment(e, _variant(e, unit)))
    return sorted(found, key=lambda a: a.experiment.layer)


def team_draft(
    a: Sequence[str], b: Sequence[str], k: int, seed: str
) -> tuple[list[str], list[str]]:
    """Team-draft interleaving (Radlinski, Kurup and Joachims, 2008) of rankings `a` and `b`.

    The team with fewer picks so far (a coin toss, seeded by `seed`, on a tie) adds
    its best item not yet in the list; a team whose ranking is used up leaves the
    rest to the other. Returns the list (at most `k`) and each item's team, "a" or "b".
    """
    rng = random.Random(seed)
    items: list[str] = []
    teams: list[str] = []
    chosen: set[str] = set()
    picks = {"a": 0, "b": 0}
    rest = {"a": list(reversed(a)), "b": list(reversed(b))}  # pop() takes the best

    def next_of(team: str) -> str | None:
        stack = rest[team]
        while stack and stack[-1] in chosen:
            stack.pop()
        return stack.pop() if stack else None

    while len(items) < k:
        if picks["a"] != picks["b"]:
            first = "a" if picks["a"] < picks["b"] else "b"
        else:
            first = "a" if rng.random() < 0.5 else "b"
        second = "b" if first == "a" else "a"
        team, item = first, next_of(first)
        if item is None:
            team, item = second, next_of(second)
        if item is None:
            break
        items.append(item)
        teams.append(team)
        chosen.add(item)
        picks[team] += 1
    return items, teams
