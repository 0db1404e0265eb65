"""Retrieval strategies behind one protocol (`Recommender`)."""

from lmrec.models.base import ModelConfig, Recommender, TrainingData, load_model
from lmrec.models.ease import EASE
from lmrec.models.factorization import ALS, BPR
from lmrec.models.itemknn import ItemKNN
from lmrec.models.popularity import Popularity

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "ItemKNN",
    "ModelConfig",
    "Popularity",
    "Recommender",
    "TrainingData",
    "load_model",
]
