"""Every setting of a simulation in one typed, seeded config (unknown keys fail).

The defaults are documented where they are declared; `SimulationConfig.from_params`
builds one from `--param sim.KEY=VALUE` assignments (nested keys with dots, e.g.
`sim.choice.satiation=0`), naming the offending key when one is wrong.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmrec.errors import ConfigError, first_problem

__all__ = [
    "ArrivalConfig",
    "ChoiceConfig",
    "ReturnConfig",
    "SimulationConfig",
    "TruthFamily",
]

#: Ground-truth preference families: a linear item-item autoencoder (EASE) or a
#: low-rank matrix factorisation (ALS). Different families, so a strategy of one
#: family can be checked against users drawn from the other.
TruthFamily = Literal["ease", "als"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoiceConfig(_Strict):
    """How a user picks at most one item from a shown slate (a multinomial logit).

    A shown item at position p (0-based) is chosen with probability proportional to
    `(1 / (p + 1)) ** position_bias * exp(utility / temperature)`, against a no-click
    option of utility `no_click`. `temperature` None: fitted by maximum likelihood of
    each user's held-out last item among all unseen items (calibrated choice
    probabilities); `no_click` None: set so that a slate of each user's own top `k`
    items is clicked with probability `oracle_ctr`. `satiation` utility (in
    temperature units) taken off an item fully similar to the user's recent exposure,
    which decays by `satiation_decay` per round; `drift` the share of a user's taste
    that moves towards each consumed item; a click converts (a purchase) with
    probability `sigmoid(z - conversion_threshold)`, `z` the item's standardised utility.
    """

    position_bias: float = Field(default=1.0, ge=0.0)
    temperature: float | None = Field(default=None, gt=0.0)
    no_click: float | None = None
    oracle_ctr: float = Field(default=0.5, gt=0.0, lt=1.0)
    satiation: float = Field(default=1.0, ge=0.0)
    satiation_decay: float = Field(default=0.7, ge=0.0, lt=1.0)
    drift: float = Field(default=0.05, ge=0.0, le=1.0)
    conversion_threshold: float = 2.0


class ReturnConfig(_Strict):
    """When a user comes back (one round is `round_seconds` of real time).

    Each round an active user returns with probability
    `sigmoid(logit(return_rate) + sensitivity * (s - reference))` and, after a visit,
    leaves for good with probability `sigmoid(logit(leave_hazard) - sensitivity * (s - reference))`;
    `s` is the user's recent satisfaction (the standardised utility of what they chose,
    0 for a visit without a click, smoothed with `memory`). `return_rate` and
    `leave_hazard` None: fitted to the log's inter-session gaps (sessions split at gaps
    over `session_gap_seconds`; a user whose last session ends more than `churn_seconds`
    before the log does has left) when it has real timestamps, else 0.5 and 0.02.
    """

    round_seconds: float = Field(default=7 * 86400.0, gt=0.0)
    session_gap_seconds: float = Field(default=3600.0, gt=0.0)
    churn_seconds: float = Field(default=30 * 86400.0, gt=0.0)
    return_rate: float | None = Field(default=None, gt=0.0, lt=1.0)
    leave_hazard: float | None = Field(default=None, ge=0.0, lt=1.0)
    sensitivity: float = Field(default=1.0, ge=0.0)
    reference: float = 1.0
    memory: float = Field(default=0.5, ge=0.0, lt=1.0)


class ArrivalConfig(_Strict):
    """New items: the `share` of the catalogue that entered the log last is held out
    (with all its interactions) and arrives evenly over the first `spread` of the rounds,
    added through `Pipeline.add_items` with its text vectors."""

    share: float = Field(default=0.05, ge=0.0, lt=1.0)
    spread: float = Field(default=0.8, gt=0.0, le=1.0)


class SimulationConfig(_Strict):
    """A whole simulation: users, rounds, slate length, refits, the user model, seed.

    `users` simulated users sampled from the log (None: all); `k` slate length;
    `refit_every` rounds between refits of the pipeline's model on the log plus the
    simulated events (0: never); `warm_refit`: a refit of a strategy that can
    warm-start continues from the served model, as a production retrain would (a
    sequential transformer from its weights, stopping after its `warm_patience` epochs
    without a gain; `fused` refits its parts once and keeps its learned fusion; False:
    every refit from scratch); `truth` the ground-truth
    family with `truth_params`;
    `head_share` the share of items (by log popularity) that counts as the head;
    `niche_share` the least mainstream share of users reported as the niche segment;
    `history_limit` the most recent events a query carries (as the server's state store
    does); `max_pairs_users` users sampled to measure homogenisation.
    """

    rounds: int = Field(default=50, ge=1)
    users: int | None = Field(default=None, ge=1)
    k: int = Field(default=10, ge=1)
    refit_every: int = Field(default=10, ge=0)
    warm_refit: bool = True
    seed: int = 0
    truth: TruthFamily = "ease"
    truth_params: dict[str, Any] = Field(default_factory=dict)
    head_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    niche_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    history_limit: int = Field(default=200, ge=1)
    max_pairs_users: int = Field(default=1000, ge=2)
    choice: ChoiceConfig = ChoiceConfig()
    returns: ReturnConfig = ReturnConfig()
    arrivals: ArrivalConfig = ArrivalConfig()

    @classmethod
    def from_params(cls, params: dict[str, Any], **fields: Any) -> SimulationConfig:
        """Validate `fields` updated by dotted `params` (`{"choice.satiation": 0}`)."""
        data: dict[str, Any] = dict(fields)
        for key, value in params.items():
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"sim.{key}: {p} is not a group of settings")
            node[leaf] = value
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"simulation setting {first_problem(exc)}") from None
