"""Long-term effects: users fitted from a log meeting the served pipeline for many rounds.

`run_simulation(dataset, specs, SimulationConfig(...))` fits ground-truth users
(`fit_truth`: EASE or ALS on all interactions, a calibrated multinomial-logit choice
with position bias, a no-click option, satiation and taste drift), a return/churn
model (`fit_returns`), holds out the newest items to arrive during the run, and runs
each strategy (`StrategySpec`: `MODEL[+KNOB[=VALUE]]...`) through its `Pipeline`'s
batch path round after round (`simulate`), refitting it every `refit_every` rounds on
the log plus the simulated events. Per-round metrics (`round_metrics`) are aggregated
over seeds with bootstrap intervals; `write_report` draws them. `lmrec simulate` is
the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmrec.simulation.config import (
        ArrivalConfig,
        ChoiceConfig,
        ReturnConfig,
        SimulationConfig,
        TruthFamily,
    )
    from lmrec.simulation.metrics import RoundRecord, jaccard_homogenisation, round_metrics
    from lmrec.simulation.report import write_report
    from lmrec.simulation.returns import ReturnModel, fit_returns
    from lmrec.simulation.runner import aggregate, run_simulation, write_json
    from lmrec.simulation.strategies import StrategySpec, parse_strategies
    from lmrec.simulation.users import (
        GroundTruth,
        choice_probabilities,
        fit_truth,
        position_weights,
    )
    from lmrec.simulation.world import SimulationRun, World, build_world, simulate

__all__ = [
    "ArrivalConfig",
    "ChoiceConfig",
    "GroundTruth",
    "ReturnConfig",
    "ReturnModel",
    "RoundRecord",
    "SimulationConfig",
    "SimulationRun",
    "StrategySpec",
    "TruthFamily",
    "World",
    "aggregate",
    "build_world",
    "choice_probabilities",
    "fit_returns",
    "fit_truth",
    "jaccard_homogenisation",
    "parse_strategies",
    "position_weights",
    "round_metrics",
    "run_simulation",
    "simulate",
    "write_json",
    "write_report",
]

#: Where each public name lives; the package imports it on first use, so that
#: `lmrec --help` (which registers the command) does not pay for numpy and scipy.
_HOME = {
    **dict.fromkeys(
        ("ArrivalConfig", "ChoiceConfig", "ReturnConfig", "SimulationConfig", "TruthFamily"),
        "config",
    ),
    **dict.fromkeys(("RoundRecord", "jaccard_homogenisation", "round_metrics"), "metrics"),
    "write_report": "report",
    **dict.fromkeys(("ReturnModel", "fit_returns"), "returns"),
    **dict.fromkeys(("aggregate", "run_simulation", "write_json"), "runner"),
    **dict.fromkeys(("StrategySpec", "parse_strategies"), "strategies"),
    **dict.fromkeys(
        ("GroundTruth", "choice_probabilities", "fit_truth", "position_weights"), "users"
    ),
    **dict.fromkeys(("SimulationRun", "World", "build_world", "simulate"), "world"),
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'lmrec.simulation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lmrec.simulation.{_HOME[name]}"), name)
