"""Hyperparameter, pipeline-knob and feature search on validation (`lmrec tune`).

`space` (what is searchable, declared on the configs) imports nothing heavy, since
every config imports it; `study` runs an Optuna study, `protocol` keeps the test
split out of it, `outputs` writes best.json, trials.csv and the HTML report.
"""

from __future__ import annotations

from lmrec.tuning.space import Dimension, SearchSpace, Tunable, space_for

__all__ = ["Dimension", "SearchSpace", "Tunable", "space_for"]
