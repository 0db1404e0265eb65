"""Cleaning steps on a raw interaction frame (columns user, item, timestamp, rating)."""

from __future__ import annotations

import pandas as pd

__all__ = ["deduplicate", "k_core", "rating_threshold"]


def deduplicate(frame: pd.DataFrame, keep: str = "last") -> pd.DataFrame:
    """Keep one row per (user, item): the `last` (newest) or `first` by time."""
    if keep not in ("first", "last"):
        raise ValueError("keep must be 'first' or 'last'")
    ordered = frame.sort_values("timestamp", kind="stable") if "timestamp" in frame else frame
    return ordered.drop_duplicates(["user", "item"], keep=keep).sort_index()


def rating_threshold(frame: pd.DataFrame, min_rating: float | None) -> pd.DataFrame:
    """Keep rows whose rating is at least `min_rating` (implicit feedback from ratings)."""
    if min_rating is None or "rating" not in frame:
        return frame
    return frame[frame["rating"] >= min_rating]


def k_core(
    frame: pd.DataFrame, user_k: int = 5, item_k: int = 5, max_rounds: int = 100
) -> pd.DataFrame:
    """Repeatedly drop users with < `user_k` and items with < `item_k` interactions.

    Stops when both conditions hold for every remaining row (a true k-core).
    """
    if user_k <= 1 and item_k <= 1:
        return frame
    for _ in range(max_rounds):
        user_n = frame.groupby("user")["item"].transform("size")
        item_n = frame.groupby("item")["user"].transform("size")
        keep = (user_n >= user_k) & (item_n >= item_k)
        if keep.all():
            return frame
        frame = frame[keep]
    return frame
