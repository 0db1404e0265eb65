"""What a simulated strategy is: a pipeline config written as `MODEL[+KNOB[=VALUE]]...`.

`MODEL` is a strategy short name (`pop`, `ease`, `fused`, ...) or an import path;
each `+KNOB=VALUE` sets a re-ranking knob of that strategy's pipeline (any
`RerankOptions` field: `+mmr_lambda=0.5`, `+exposure_cap=2`, `+mmr_space=attributes`).
Shorthands: `+mmr` is `mmr_lambda=0.7`, `+mmr=X` is `mmr_lambda=X`, `+cap` is
`exposure_cap=2`, `+cap=N` is `exposure_cap=N`. The whole text is the strategy's label
in results, so `fused` and `fused+mmr` are two strategies sharing one model.
Model hyperparameters come from `--param MODEL.KEY=VALUE` (every strategy of that
model) and pipeline-wide knobs from `--param rerank.KEY=VALUE`; a strategy's own
knobs win.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lmrec.errors import ConfigError, first_problem
from lmrec.evaluation.runner import coerce
from lmrec.models.base import Recommender
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import PipelineConfig
from lmrec.ranking.rerank import RerankOptions

__all__ = ["SHORTHANDS", "StrategySpec", "parse_strategies"]

#: Knob shorthands: name -> (RerankOptions field, value when none is given).
SHORTHANDS: dict[str, tuple[str, Any]] = {
    "mmr": ("mmr_lambda", 0.7),
    "cap": ("exposure_cap", 2),
}


@dataclass(frozen=True)
class StrategySpec:
    """A strategy under test: its label, model class and parameters, and pipeline config."""

    label: str
    model: str
    cls: type[Recommender]
    params: dict[str, Any] = field(default_factory=dict)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    @classmethod
    def parse(
        cls,
        text: str,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        rerank: Mapping[str, Any] | None = None,
    ) -> StrategySpec:
        """Parse `MODEL[+KNOB[=VALUE]]...` with `params[MODEL]` and default `rerank` knobs."""
        label = text.strip()
        model, *parts = [p.strip() for p in label.split("+")]
        if not model:
            raise ConfigError(
                f"strategy {text!r}: expected MODEL[+KNOB[=VALUE]]..., e.g. fused+mmr"
            )
        knobs: dict[str, Any] = dict(rerank or {})
        for part in parts:
            name, eq, value = part.partition("=")
            name = name.strip()
            if name in SHORTHANDS:
                target, default = SHORTHANDS[name]
                knobs[target] = coerce(value.strip()) if eq else default
            elif name in RerankOptions.model_fields and eq:
                knobs[name] = coerce(value.strip())
            else:
                raise ConfigError(
                    f"strategy {label!r}: unknown knob {name!r} (use +mmr, +mmr=0.5, +cap, "
                    f"+cap=3 or +FIELD=VALUE with a field of: {', '.join(RerankOptions.model_fields)})"
                )
        try:
            pipeline = PipelineConfig(rerank=RerankOptions.model_validate(knobs))
        except ValidationError as exc:
            raise ConfigError(f"strategy {label!r}: knob {first_problem(exc)}") from None
        return cls(
            label, model, resolve_strategy(model), dict((params or {}).get(model, {})), pipeline
        )

    def build(self) -> Recommender:
        """A fresh, unfitted model of this strategy."""
        return self.cls(dict(self.params))


def parse_strategies(
    text: str,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    rerank: Mapping[str, Any] | None = None,
) -> list[StrategySpec]:
    """A comma-separated list of strategies; labels must be distinct."""
    specs = [StrategySpec.parse(t, params, rerank) for t in text.split(",") if t.strip()]
    if not specs:
        raise ConfigError("--strategies is empty; name at least one, e.g. pop,ease,fused+mmr")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--strategies names a strategy twice: {', '.join(labels)}")
    return specs
