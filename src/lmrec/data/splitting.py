"""Train / validation / test splits, deterministic under a seed.

Every split returns a `Split`. At test time a user's history is `test_history`
(training plus validation interactions: the validation item joins the input and
is removed from the candidates), and the targets are `test`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmrec.data.interactions import Interactions

__all__ = [
    "PROTOCOLS",
    "Split",
    "cold_items",
    "leave_one_out",
    "random_holdout",
    "split",
    "temporal",
]

PROTOCOLS = ("loo", "temporal", "random", "cold-items")


@dataclass(frozen=True, eq=False)
class Split:
    """One evaluation split over a dataset's index spaces."""

    protocol: str
    train: Interactions
    valid: Interactions
    test: Interactions
    #: Items held out with all their interactions (cold-items protocol), else empty.
    cold_items: np.ndarray

    @property
    def test_history(self) -> Interactions:
        """The input at test time: training plus validation interactions."""
        return self.train.concat(self.valid)

    def describe(self) -> str:
        """One line for logs and reports."""
        return (
            f"{self.protocol}: train {len(self.train):,}, valid {len(self.valid):,}, "
            f"test {len(self.test):,} interactions"
        )


def _empty(log: Interactions) -> np.ndarray:
    return np.zeros(len(log), dtype=bool)


def leave_one_out(log: Interactions) -> Split:
    """Per user: the last interaction is the test target, the one before it validation.

    "Last" is by timestamp; ties keep file order (a later line is later). Users
    with fewer than three interactions stay wholly in training.
    """
    counts = log.user_counts
    ends = log.user_indptr[1:]
    eligible = counts >= 3
    test = _empty(log)
    valid = _empty(log)
    test[ends[eligible] - 1] = True
    valid[ends[eligible] - 2] = True
    train = ~(test | valid)
    return Split(
        "loo", log.select(train), log.select(valid), log.select(test), np.zeros(0, np.int64)
    )


def temporal(
    log: Interactions,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    cutoff: float | None = None,
) -> Split:
    """A global cut-off in time: later interactions are test.

    The cut-off is `cutoff` when given, else the time quantile that leaves
    `test_fraction` of interactions after it. Validation is the last
    `valid_fraction` (of all interactions) before the cut-off. Test and validation
    keep only users who have training history.
    """
    ts = log.timestamps
    test_cut = cutoff if cutoff is not None else float(np.quantile(ts, 1 - test_fraction))
    valid_cut = float(np.quantile(ts, max(0.0, 1 - test_fraction - valid_fraction)))
    if cutoff is not None:
        valid_cut = min(valid_cut, test_cut)
    train = ts < valid_cut
    valid = (ts >= valid_cut) & (ts < test_cut)
    test = ts >= test_cut
    has_train = np.bincount(log.users[train], minlength=log.n_users) > 0
    valid &= has_train[log.users]
    test &= has_train[log.users]
    return Split(
        "temporal", log.select(train), log.select(valid), log.select(test), np.zeros(0, np.int64)
    )


def random_holdout(
    log: Interactions, test_fraction: float = 0.2, valid_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Each interaction goes to test/validation at random (per user, at least one stays in training)."""
    rng = np.random.default_rng(seed)
    u = rng.random(len(log))
    test = u < test_fraction
    valid = (u >= test_fraction) & (u < test_fraction + valid_fraction)
    # Keep each user's first interaction in training so every test user has history.
    test[log.user_indptr[:-1][log.user_counts > 0]] = False
    valid[log.user_indptr[:-1][log.user_counts > 0]] = False
    train = ~(test | valid)
    return Split(
        "random", log.select(train), log.select(valid), log.select(test), np.zeros(0, np.int64)
    )


def cold_items(
    log: Interactions, test_fraction: float = 0.2, valid_fraction: float = 0.05, seed: int = 0
) -> Split:
    """Hold out a share of items with all their interactions.

    `test_fraction` of items (among those with interactions) become cold test
    items, another `valid_fraction` cold validation items. Models train on the
    rest; targets are the held-out items' interactions of users who have
    training history, ranked against all items.
    """
    rng = np.random.default_rng(seed)
    present = np.flatnonzero(log.item_counts > 0)
    shuffled = rng.permutation(present)
    n_test = round(test_fraction * len(present))
    n_valid = round(valid_fraction * len(present))
    test_items = np.sort(shuffled[:n_test])
    valid_items = np.sort(shuffled[n_test : n_test + n_valid])
    test = np.isin(log.items, test_items)
    valid = np.isin(log.items, valid_items)
    train = ~(test | valid)
    has_train = np.bincount(log.users[train], minlength=log.n_users) > 0
    return Split(
        "cold-items",
        log.select(train),
        log.select(valid & has_train[log.users]),
        log.select(test & has_train[log.users]),
        test_items.astype(np.int64),
    )


def hold_out_last(log: Interactions, min_count: int = 2) -> tuple[Interactions, Interactions]:
    """(training, validation): each user's last interaction held out, for users with at
    least `min_count` (the others stay wholly in training). What a model fitted for
    serving tunes on (`lmrec.artifacts.fit_for_artifact`)."""
    last = log.user_indptr[1:][log.user_counts >= min_count] - 1
    held = np.zeros(len(log), dtype=bool)
    held[last] = True
    return log.select(~held), log.select(held)


def split(log: Interactions, protocol: str, seed: int = 0) -> Split:
    """The split for a protocol name (one of `PROTOCOLS`)."""
    if protocol == "loo":
        return leave_one_out(log)
    if protocol == "temporal":
        return temporal(log)
    if protocol == "random":
        return random_holdout(log, seed=seed)
    if protocol == "cold-items":
        return cold_items(log, seed=seed)
    from lmrec.errors import ConfigError

    raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
