"""The interaction log and the ragged per-user histories derived from it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from lmrec.data.events import EVENT_TYPES

# EVENT_TYPES is re-exported: event codes in `Interactions.events` index into it.
__all__ = ["EVENT_TYPES", "Histories", "Interactions"]

#: Up to this many stored items, `Histories.weighted_rows` gathers rows densely.
_DENSE_ROWS = 4096


@dataclass(frozen=True, eq=False)
class Histories:
    """Time-ordered item histories for a batch of queries, oldest item first.

    Stored ragged (like a CSR row set): the history of query `q` is
    `items[indptr[q]:indptr[q + 1]]`. This is the one input every strategy scores
    from, offline and online, so a fresh history always gives a fresh answer.
    Item indexes outside a model's trained range (items added later) are allowed;
    models that cannot use them ignore them.
    """

    indptr: np.ndarray
    items: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or self.indptr[0] != 0 or self.indptr[-1] != len(self.items):
            raise ValueError("Histories: indptr must start at 0 and end at len(items)")

    @classmethod
    def from_lists(
        cls,
        histories: Iterable[Sequence[int] | np.ndarray],
        weights: Iterable[Sequence[float]] | None = None,
    ) -> Histories:
        """Build from one sequence of item indexes per query."""
        arrays = [np.asarray(h, dtype=np.int64).reshape(-1) for h in histories]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        indptr = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        w = None
        if weights is not None:
            w = (
                np.concatenate([np.asarray(x, dtype=np.float32).reshape(-1) for x in weights])
                if arrays
                else None
            )
            if w is not None and len(w) != len(items):
                raise ValueError("Histories: weights must have one value per history item")
        return cls(indptr, items, w)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, q: int) -> np.ndarray:
        return self.items[self.indptr[q] : self.indptr[q + 1]]

    @property
    def lengths(self) -> np.ndarray:
        """Number of items in each history."""
        return np.diff(self.indptr)

    def row_ids(self) -> np.ndarray:
        """For every stored item, the query (row) it belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)

    def to_csr(
        self, n_items: int, binary: bool = True, values: np.ndarray | None = None
    ) -> sp.csr_matrix:
        """A (queries x n_items) matrix; items at or beyond `n_items` are dropped.

        With `binary`, repeated items count once (value 1); otherwise values are
        summed `values` (one per stored item; default the weights, else 1 per event).
        Built straight from the ragged rows: serving calls this for one query at a time.
        """
        keep = (self.items >= 0) & (self.items < n_items)
        kept = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(keep, out=kept[1:])
        if binary:
            vals = np.ones(int(kept[-1]), dtype=np.float32)
        else:
            given = values if values is not None else self.weights
            vals = np.ones(int(kept[-1]), np.float32) if given is None else given[keep]
        m = sp.csr_matrix(
            (vals.astype(np.float32, copy=False), self.items[keep], kept[self.indptr]),
            shape=(len(self), n_items),
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def weighted_rows(self, table: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per query, the sum of `values[p] * table[items[p]]` over its stored items
        (queries x table width, float32); items beyond `table` count nothing.

        The same as `to_csr(len(table), binary=False, values=values) @ table`, without
        building a sparse matrix for the few histories serving and explanations pass.
        """
        if len(self.items) > _DENSE_ROWS:
            mix = self.to_csr(len(table), binary=False, values=values)
            return np.asarray(mix @ table, dtype=np.float32)
        inside = (self.items >= 0) & (self.items < len(table))
        w = np.where(inside, values, 0.0).astype(np.float32)
        rows = table[np.where(inside, self.items, 0)] * w[:, None]
        out = np.zeros((len(self), table.shape[1]), dtype=np.float32)
        filled = self.lengths > 0
        if filled.any():
            out[filled] = np.add.reduceat(rows, self.indptr[:-1][filled], axis=0)
        return out

    def padded(self, max_len: int, pad: int = 0, offset: int = 0) -> np.ndarray:
        """The last `max_len` items of each history, left-padded with `pad`.

        `offset` is added to item indexes (sequence models often reserve 0 for padding).
        """
        out = np.full((len(self), max_len), pad, dtype=np.int64)
        for q in range(len(self)):
            h = self[q][-max_len:]
            if len(h):
                out[q, max_len - len(h) :] = h + offset
        return out

    def concat(self, other: Histories) -> Histories:
        """Append `other`'s items to each history (same number of queries)."""
        if len(other) != len(self):
            raise ValueError("Histories.concat: both must have the same number of queries")
        return Histories.from_lists([np.concatenate([self[q], other[q]]) for q in range(len(self))])

    def select(self, rows: np.ndarray) -> Histories:
        """The histories of the given query rows, in that order."""
        return Histories.from_lists([self[int(q)] for q in rows])


@dataclass(frozen=True, eq=False)
class Interactions:
    """An immutable interaction log over dense user and item indexes.

    Rows are kept sorted by user, then time, then the order they were given in
    (so ties in time keep file order: the later line counts as later). The
    time-ordered history of user `u` is therefore the slice
    `items[user_indptr[u]:user_indptr[u + 1]]`.

    Use `Interactions.build` to construct; the fields are the sorted arrays.
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    weights: np.ndarray
    events: np.ndarray
    n_users: int
    n_items: int

    @classmethod
    def build(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        n_users: int,
        n_items: int,
        timestamps: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        events: np.ndarray | None = None,
    ) -> Interactions:
        """Sort and validate arrays into an `Interactions`.

        `timestamps` default to the row order; `weights` to 1; `events` (codes into
        `EVENT_TYPES`) to 0 ("interaction").
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        n = len(users)
        if len(items) != n:
            raise ValueError("users and items must have the same length")
        ts = (
            np.arange(n, dtype=np.float64)
            if timestamps is None
            else np.asarray(timestamps, dtype=np.float64)
        )
        w = (
            np.ones(n, dtype=np.float32)
            if weights is None
            else np.asarray(weights, dtype=np.float32)
        )
        ev = np.zeros(n, dtype=np.int8) if events is None else np.asarray(events, dtype=np.int8)
        if not (len(ts) == len(w) == len(ev) == n):
            raise ValueError("timestamps, weights and events must match users in length")
        if n and (users.min() < 0 or users.max() >= n_users):
            raise ValueError("user index out of range")
        if n and (items.min() < 0 or items.max() >= n_items):
            raise ValueError("item index out of range")
        order = np.lexsort((np.arange(n), ts, users))
        return cls(
            users=users[order].astype(np.int32),
            items=items[order].astype(np.int32),
            timestamps=ts[order],
            weights=w[order],
            events=ev[order],
            n_users=int(n_users),
            n_items=int(n_items),
        )

    def __len__(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        return f"Interactions({len(self)} rows, {self.n_users} users, {self.n_items} items)"

    @cached_property
    def user_indptr(self) -> np.ndarray:
        """Offsets of each user's rows (length n_users + 1)."""
        counts = np.bincount(self.users, minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr

    def history(self, user: int) -> np.ndarray:
        """Time-ordered item indexes of one user."""
        p = self.user_indptr
        return self.items[p[user] : p[user + 1]]

    def histories(self, users: np.ndarray | Sequence[int] | None = None) -> Histories:
        """Time-ordered histories of the given users (all users by default)."""
        p = self.user_indptr
        if users is None:
            return Histories(p.copy(), self.items.astype(np.int64), self.weights)
        users = np.asarray(users, dtype=np.int64)
        starts, ends = p[users], p[users + 1]
        lengths = ends - starts
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Gather the slices without a Python loop: position of each output element.
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return Histories(indptr, self.items[pos].astype(np.int64), self.weights[pos])

    @cached_property
    def user_counts(self) -> np.ndarray:
        """Interactions per user."""
        return np.diff(self.user_indptr)

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Interactions per item (popularity)."""
        return np.bincount(self.items, minlength=self.n_items)

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """The user x item matrix: 1 per seen pair (binary) or summed weights."""
        vals = np.ones(len(self), dtype=np.float32) if binary else self.weights
        m = sp.csr_matrix(
            (vals, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def select(self, mask: np.ndarray) -> Interactions:
        """The rows where `mask` is true (same index spaces)."""
        return Interactions(
            users=self.users[mask],
            items=self.items[mask],
            timestamps=self.timestamps[mask],
            weights=self.weights[mask],
            events=self.events[mask],
            n_users=self.n_users,
            n_items=self.n_items,
        )

    def reorder_ties(self, key: np.ndarray) -> Interactions:
        """The same rows, with each user's equal-timestamp runs ordered by `key` (one value
        per row; equal keys keep the current order). The split's "last" item follows it."""
        key = np.asarray(key)
        if key.shape != self.users.shape:
            raise ValueError(f"reorder_ties needs one key per row ({len(self)}), got {key.shape}")
        order = np.lexsort((np.arange(len(self)), key, self.timestamps, self.users))
        return self.select(order)

    def concat(self, other: Interactions) -> Interactions:
        """Both logs together, re-sorted; `other`'s rows count as later on ties."""
        return Interactions.build(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            max(self.n_users, other.n_users),
            max(self.n_items, other.n_items),
            timestamps=np.concatenate([self.timestamps, other.timestamps]),
            weights=np.concatenate([self.weights, other.weights]),
            events=np.concatenate([self.events, other.events]),
        )

    def with_sizes(self, n_users: int, n_items: int) -> Interactions:
        """The same rows in larger index spaces (after vocabularies grew)."""
        if n_users < self.n_users or n_items < self.n_items:
            raise ValueError("with_sizes can only grow the index spaces")
        return Interactions(
            self.users, self.items, self.timestamps, self.weights, self.events, n_users, n_items
        )
