"""Candidate selection, fusion, re-ranking and explanations."""

from lmrec.ranking.topk import exclude, top_k

__all__ = ["exclude", "top_k"]
