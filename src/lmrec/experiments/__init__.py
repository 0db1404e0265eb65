"""A/B tests and interleaving: definitions, sticky assignment, exposure attribution, statistics.

- `design`: `ExperimentSpec` / `Experiment` (variants are pipeline configs), layers.
- `assignment`: deterministic hashing of units into layers and variants; team draft.
- `apply`: rank a query as a unit's assignments say (the server's one path).
- `stats`: Welch, two proportions, ratio metrics, CUPED, confidence sequences, SRM, BH.
- `analysis`: exposure and event logs to a report (`experiment_report`).
- `report`: that report as a self-contained HTML page; `cli`: `lmrec experiments`.

Names are imported on first use, so `lmrec --help` does not load scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "experiment_report": "analysis",
    "Assignment": "assignment",
    "assign": "assignment",
    "bucket": "assignment",
    "team_draft": "assignment",
    "Experiment": "design",
    "ExperimentSpec": "design",
    "Exposure": "design",
    "Variant": "design",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"lmrec.experiments.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lmrec.experiments' has no attribute {name!r}")
