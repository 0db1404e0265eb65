"""lmrec: a recommender engine that understands items through language models.

The public entry points are re-exported here; implementation lives in the
sub-packages (`lmrec.data`, `lmrec.models`, `lmrec.evaluation`, ...).
"""

from lmrec.errors import DataError, LmrecError

__version__ = "0.1.0"
__all__ = ["DataError", "LmrecError", "__version__"]
