"""Cleaning steps on a raw interaction frame (columns user, item, timestamp, rating, event)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmrec.data.events import EVENT_TYPES, EventPolicy
from lmrec.errors import DataError

__all__ = [
    "deduplicate",
    "event_types",
    "event_weights",
    "k_core",
    "positive_events",
    "rating_threshold",
]


def deduplicate(frame: pd.DataFrame, keep: str = "last") -> pd.DataFrame:
    """Keep one row per (user, item): the `last` (newest) or `first` by time."""
    if keep not in ("first", "last"):
        raise ValueError("keep must be 'first' or 'last'")
    ordered = frame.sort_values("timestamp", kind="stable") if "timestamp" in frame else frame
    return ordered.drop_duplicates(["user", "item"], keep=keep).sort_index()


def event_types(frame: pd.DataFrame) -> pd.Series:
    """The event type of every row: its `event` column, else `rating` when the log has
    ratings, else `interaction`. Raises `DataError` for a type lmrec does not know."""
    if "event" not in frame:
        kind = "rating" if "rating" in frame else "interaction"
        return pd.Series(kind, index=frame.index, dtype=object)
    types = frame["event"].astype(str)
    unknown = set(types.unique()) - set(EVENT_TYPES)
    if unknown:
        raise DataError(
            f"unknown event types {sorted(unknown)[:5]}; known: {', '.join(EVENT_TYPES)}"
        )
    return types


def _values(frame: pd.DataFrame) -> np.ndarray | None:
    """Each row's rating (NaN where it has none), or None for a log without ratings."""
    if "rating" not in frame:
        return None
    return pd.to_numeric(frame["rating"], errors="coerce").to_numpy(np.float64)


def positive_events(frame: pd.DataFrame, policy: EventPolicy) -> pd.DataFrame:
    """Keep the rows `policy` counts as positive, in their order (the same test the server's
    store applies): ratings below `min_rating`, zero-weight types, `search` and
    `not_interested` rows are dropped."""
    mask = policy.positive_mask(event_types(frame).to_numpy(), _values(frame))
    return frame if mask.all() else frame[mask]


def event_weights(frame: pd.DataFrame, policy: EventPolicy) -> np.ndarray:
    """Each row's weight under `policy` (a rating's scales with its value)."""
    return policy.weights(event_types(frame).to_numpy(), _values(frame))


def rating_threshold(frame: pd.DataFrame, min_rating: float | None) -> pd.DataFrame:
    """Keep rows whose rating is at least `min_rating` (implicit feedback from ratings).

    Shorthand for `positive_events` with the default policy and that `min_rating`.
    """
    return positive_events(frame, EventPolicy(min_rating=min_rating))


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
