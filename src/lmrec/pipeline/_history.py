"""Known users' histories: the log a pipeline was built with, looked up by user id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lmrec.data.interactions import Interactions
from lmrec.data.vocabulary import Vocabulary

__all__ = ["UserHistories"]


@dataclass(frozen=True, eq=False)
class UserHistories:
    """Each known user's time-ordered items: user `u` has `items[indptr[u]:indptr[u + 1]]`."""

    users: Vocabulary
    indptr: np.ndarray
    items: np.ndarray

    @classmethod
    def empty(cls) -> UserHistories:
        """No known users."""
        return cls(Vocabulary(), np.zeros(1, np.int64), np.zeros(0, np.int32))

    @classmethod
    def from_interactions(cls, users: Vocabulary, log: Interactions) -> UserHistories:
        """The histories of `log` (user indexes are `users`' indexes)."""
        log = log.with_sizes(max(log.n_users, len(users)), log.n_items)
        return cls(users, log.user_indptr.astype(np.int64), log.items)

    def __contains__(self, user_id: str) -> bool:
        return user_id in self.users

    def get(self, user_id: str) -> np.ndarray:
        """A user's items (indexes, oldest first); empty when unknown."""
        u = self.users.get(user_id)
        if u < 0:
            return np.zeros(0, dtype=np.int64)
        return self.items[self.indptr[u] : self.indptr[u + 1]].astype(np.int64)

    def without(self, user_ids: Iterable[str]) -> UserHistories:
        """These histories with the given users' items removed (they become users with none)."""
        rows = [u for u in (self.users.get(i) for i in user_ids) if u >= 0]
        if not rows:
            return self
        lengths = np.diff(self.indptr)
        keep = np.ones(len(self.items), dtype=bool)
        for u in rows:
            keep[self.indptr[u] : self.indptr[u + 1]] = False
            lengths[u] = 0
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return UserHistories(self.users, indptr, self.items[keep])

    def item_counts(self, n_items: int) -> np.ndarray:
        """Interactions per item over every history (float32): cold-start popularity."""
        counts = np.bincount(self.items, minlength=n_items)[:n_items]
        return counts.astype(np.float32)
