"""Ranking and beyond-accuracy metrics: re-exported from `lmrec.ranking.metrics`.

The implementation lives in the ranking layer so that models, which must not
import the evaluation package, tune on validation with the same NDCG.
"""

from __future__ import annotations

from lmrec.ranking.metrics import (
    ACCURACY_METRICS,
    accuracy_metrics,
    gini,
    head_items,
    intra_list_diversity,
    novelty,
)

__all__ = [
    "ACCURACY_METRICS",
    "accuracy_metrics",
    "gini",
    "head_items",
    "intra_list_diversity",
    "novelty",
]
