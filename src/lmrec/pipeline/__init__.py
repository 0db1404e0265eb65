"""The one object that turns a query into recommendations, offline and online.

A `Pipeline` holds a fitted strategy (one model, or `Fused` for several), the item
space around it (ids, catalogue, text vectors, items added or removed since
training), the known users' histories and its `PipelineConfig` (the default
re-ranking knobs). The HTTP server, `lmrec evaluate`, `lmrec recommend`, the
benchmarks and the simulator all rank through `Pipeline.rank`, so what is measured
offline is what is served.
"""

from lmrec.pipeline._history import UserHistories
from lmrec.pipeline._pipeline import Encoder, Pipeline, TrainingSource
from lmrec.pipeline._query import PipelineConfig, Query, RankedList, Recommendation
from lmrec.ranking.explain import Explanation

__all__ = [
    "Encoder",
    "Explanation",
    "Pipeline",
    "PipelineConfig",
    "Query",
    "RankedList",
    "Recommendation",
    "TrainingSource",
    "UserHistories",
]
