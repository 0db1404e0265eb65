"""lmrec: a recommender engine that understands items through language models.

The public entry points are re-exported here; implementation lives in the
sub-packages (`lmrec.data`, `lmrec.models`, `lmrec.evaluation`, ...).
"""

from typing import TYPE_CHECKING, Any

from lmrec.errors import DataError, LmrecError

if TYPE_CHECKING:
    from lmrec.api import fit, load
    from lmrec.pipeline import Pipeline, Query

__version__ = "0.1.0"
__all__ = ["DataError", "LmrecError", "Pipeline", "Query", "__version__", "fit", "load"]


def __getattr__(name: str) -> Any:
    """`lmrec.fit`, `lmrec.load`, `lmrec.Pipeline`, `lmrec.Query`, imported on first use."""
    if name in ("fit", "load"):
        from lmrec import api

        return getattr(api, name)
    if name in ("Pipeline", "Query"):
        from lmrec import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'lmrec' has no attribute {name!r}")
