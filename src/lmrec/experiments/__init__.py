"""A/B tests and interleaving: definitions, sticky assignment, exposure attribution, statistics.

- `design`: `ExperimentSpec` / `Experiment` (variants are pipeline configs), layers.
- `assignment`: deterministic hashing of units into layers and variants; team draft.
- `apply`: rank a query as a unit's assignments say (the server's one path).
- `stats`: Welch, two proportions, ratio metrics, CUPED, confidence sequences, SRM, BH.
- `analysis`: exposure and event logs to a report (`experiment_report`).
- `report`: that report as a self-contained HTML page.
"""

from lmrec.experiments.analysis import experiment_report
from lmrec.experiments.assignment import Assignment, assign, bucket, team_draft
from lmrec.experiments.design import Experiment, ExperimentSpec, Exposure, Variant

__all__ = [
    "Assignment",
    "Experiment",
    "ExperimentSpec",
    "Exposure",
    "Variant",
    "assign",
    "bucket",
    "experiment_report",
    "team_draft",
]
