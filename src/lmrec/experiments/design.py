"""What an experiment is: variants (a pipeline config each), traffic, metrics, schedule.

An `Experiment` is a typed definition (unknown keys fail) that the server stores
durably and every worker reads back. A variant is a pipeline config: re-ranking
`knobs` over the serving pipeline, and optionally another artefact (`model_path`)
loaded beside it. An `ab` experiment shows each unit (a user, or an anonymous
client's stable session id) one variant; an `interleaving` experiment has exactly
two variants and shows every unit one list drafted from both (`team_draft`).

Experiments share traffic through layers: units hash into 10,000 buckets per
layer, and each experiment owns a contiguous range of its layer's buckets
(`traffic` of them), so experiments in one layer never share a unit while
experiments in different layers are independent (orthogonal hashes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lmrec.errors import ConfigError
from lmrec.ranking.rerank import RerankOptions

__all__ = [
    "BUCKETS",
    "METRICS",
    "Experiment",
    "ExperimentSpec",
    "Exposure",
    "LayerFull",
    "Metric",
    "Status",
    "Variant",
    "allocate",
]

#: Buckets per layer: traffic is allocated in steps of 0.01%.
BUCKETS = 10_000
#: Metrics a report computes (per unit; see `lmrec.experiments.analysis`).
METRICS = ("ctr", "conversion", "revenue_per_user", "events_per_user")
Status = Literal["scheduled", "running", "stopped"]
Metric = Literal["ctr", "conversion", "revenue_per_user", "events_per_user"]


def _default_secondary() -> list[Metric]:
    return ["conversion", "revenue_per_user", "events_per_user"]


_Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Variant(BaseModel):
    """One arm: a share of the experiment's units and the pipeline config they get.

    `knobs`: re-ranking options (`RerankOptions` fields) set for this arm; they
    override the same knobs of a request. `model_path`: an artefact directory to
    rank with instead of the serving model (loaded when the experiment is created;
    under the server's model root when one is set).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Name
    share: float = Field(gt=0.0, le=1.0)
    knobs: dict[str, Any] = Field(default_factory=dict)
    model_path: str | None = Field(None, min_length=1, max_length=4096)

    @field_validator("knobs")
    @classmethod
    def _known_knobs(cls, knobs: dict[str, Any]) -> dict[str, Any]:
        # Validated once here, so a bad knob fails at creation, not on live traffic.
        try:
            RerankOptions().updated(knobs)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return knobs


class ExperimentSpec(BaseModel):
    """What a user defines: an A/B test or an interleaving experiment.

    `traffic`: the share of the layer's units enrolled; `layer`: experiments in one
    layer are mutually exclusive; `salt`: hashes units into variants (default: the
    id; a new salt reshuffles units). `primary_metric`/`secondary_metrics`: from
    `METRICS` (interleaving reports its preference test first).
    `attribution_window_s`: how long after a list an event without a `request_id`
    still counts for it. `start_at`/`stop_at`: epoch seconds (None: now / never).
    `expected_units`: the number of units the confidence sequence is tuned to be
    tightest at (default: the statistics engine's).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: _Name
    type: Literal["ab", "interleaving"] = "ab"
    variants: list[Variant] = Field(min_length=2, max_length=20)
    traffic: float = Field(1.0, gt=0.0, le=1.0)
    layer: _Name = "default"
    salt: str | None = Field(None, min_length=1, max_length=128)
    primary_metric: Metric = "ctr"
    secondary_metrics: list[Metric] = Field(default_factory=_default_secondary)
    attribution_window_s: float = Field(86_400.0, gt=0.0, le=90 * 86_400.0)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    start_at: float | None = None
    stop_at: float | None = None
    expected_units: int | None = Field(None, ge=100)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        total = sum(v.share for v in self.variants)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"variant shares must sum to 1, got {total:g}")
        if self.type == "interleaving" and len(self.variants) != 2:
            raise ValueError("an interleaving experiment has exactly two variants")
        if self.start_at is not None and self.stop_at is not None and self.stop_at <= self.start_at:
            raise ValueError("stop_at must be after start_at")
        return self


class Experiment(ExperimentSpec):
    """An experiment as stored: the spec plus what the server set.

    `created_at`/`stopped_at`: epoch seconds; `buckets`: the layer's bucket range
    `[first, last)`, set by `allocate`.
    """

    created_at: float | None = None
    stopped_at: float | None = None
    buckets: tuple[int, int] | None = None

    @property
    def unit_salt(self) -> str:
        """The salt that hashes units into this experiment's variants."""
        return self.salt if self.salt is not None else self.id

    @property
    def metrics(self) -> list[str]:
        """The primary metric, then the secondary ones (no repeats)."""
        return list(dict.fromkeys([self.primary_metric, *self.secondary_metrics]))

    def status_at(self, now: float) -> Status:
        """Where the experiment stands at time `now`."""
        if self.stopped_at is not None or (self.stop_at is not None and now >= self.stop_at):
            return "stopped"
        if self.start_at is not None and now < self.start_at:
            return "scheduled"
        return "running"

    def started_at(self) -> float:
        """When it began taking traffic (its schedule, else its creation)."""
        if self.start_at is not None:
            return self.start_at
        return self.created_at if self.created_at is not None else 0.0

    def ended_at(self) -> float | None:
        """When it stopped (by the admin or its schedule); None while it runs."""
        ends = [t for t in (self.stopped_at, self.stop_at) if t is not None]
        return min(ends) if ends else None

    def variant(self, name: str) -> Variant:
        """The variant called `name`."""
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


class LayerFull(ConfigError):
    """A layer has no free bucket range as large as an experiment's traffic."""


def allocate(experiment: Experiment, others: Sequence[Experiment], now: float) -> Experiment:
    """`experiment` with the first free bucket range of its layer that fits its traffic.

    `others` are the stored experiments; those in the same layer that have not
    stopped hold their ranges. Raises `ConfigError` when the layer has no room,
    saying how much is free.
    """
    size = max(1, round(experiment.traffic * BUCKETS))
    taken = sorted(
        e.buckets
        for e in others
        if e.layer == experiment.layer and e.buckets is not None and e.status_at(now) != "stopped"
    )
    start, widest = 0, 0
    for first, last in [*taken, (BUCKETS, BUCKETS)]:
        if first - start >= size:
            return experiment.model_copy(update={"buckets": (start, start + size)})
        widest = max(widest, first - start)
        start = max(start, last)
    raise LayerFull(
        f"layer {experiment.layer!r} has at most {widest / BUCKETS:.2%} of its traffic free in "
        f"one range; experiment {experiment.id!r} asks for {experiment.traffic:.2%}: stop one, "
        "lower `traffic`, or use another `layer`"
    )


@dataclass(frozen=True)
class Exposure:
    """One list served to a unit in an experiment, logged before the answer is sent.

    `items` in the order shown; `teams` (interleaving only) the arm, "a" or "b",
    that contributed each item.
    """

    request_id: str
    experiment_id: str
    variant: str
    unit: str
    timestamp: float
    items: tuple[str, ...]
    teams: tuple[str, ...] | None = None
