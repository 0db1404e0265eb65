"""Data layer: vocabularies, interaction logs, catalogues, datasets, loaders and splits."""

from lmrec.data.catalog import Catalog
from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.events import EVENT_TYPES, EventPolicy
from lmrec.data.interactions import Histories, Interactions
from lmrec.data.splitting import (
    PROTOCOLS,
    Split,
    cold_items,
    leave_one_out,
    random_holdout,
    split,
    temporal,
)
from lmrec.data.vocabulary import Vocabulary

__all__ = [
    "EVENT_TYPES",
    "PROTOCOLS",
    "Catalog",
    "CleaningOptions",
    "Dataset",
    "EventPolicy",
    "Histories",
    "Interactions",
    "Split",
    "Vocabulary",
    "cold_items",
    "leave_one_out",
    "random_holdout",
    "split",
    "temporal",
]
