"""Evaluation: full-ranking metrics, beyond-accuracy, segments, significance, reports."""

from lmrec.evaluation.evaluator import (
    EvalOptions,
    ModelEvaluation,
    evaluate_model,
    evaluate_pipeline,
)
from lmrec.evaluation.metrics import accuracy_metrics, gini, intra_list_diversity, novelty
from lmrec.evaluation.report import write_report
from lmrec.evaluation.runner import Experiment, ModelSpec, parse_params, run_experiment
from lmrec.evaluation.significance import Interval, PairedTest, bootstrap_ci, paired_test

__all__ = [
    "EvalOptions",
    "Experiment",
    "Interval",
    "ModelEvaluation",
    "ModelSpec",
    "PairedTest",
    "accuracy_metrics",
    "bootstrap_ci",
    "evaluate_model",
    "evaluate_pipeline",
    "gini",
    "intra_list_diversity",
    "novelty",
    "paired_test",
    "parse_params",
    "run_experiment",
    "write_report",
]
