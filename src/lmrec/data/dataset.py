"""A dataset: interactions, catalogue and the vocabularies that tie them together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmrec.data.catalog import Catalog
from lmrec.data.cleaning import deduplicate, event_types, event_weights, k_core, positive_events
from lmrec.data.events import EVENT_TYPES, EventPolicy
from lmrec.data.interactions import Interactions
from lmrec.data.vocabulary import Vocabulary
from lmrec.errors import ConfigError, DataError

__all__ = ["TIE_BREAKS", "CleaningOptions", "Dataset"]

#: How `Dataset.with_tie_break` orders interactions that share a timestamp.
TIE_BREAKS = ("file", "item", "random")


@dataclass(frozen=True)
class CleaningOptions:
    """How raw logs are cleaned before use.

    `event_policy` says which rows are positive (the others are dropped) and what each
    weighs: the same policy the server's store applies to live events. `min_rating` is
    shorthand for `event_policy.min_rating` (ratings below it are dropped; both always
    agree after construction). `dedupe` keeps one row per (user, item) ("last", "first"
    or None to keep all); `user_k`/`item_k` apply a k-core filter (1 disables it).
    """

    min_rating: float | None = None
    dedupe: str | None = None
    user_k: int = 1
    item_k: int = 1
    event_policy: EventPolicy = field(default_factory=EventPolicy)

    def __post_init__(self) -> None:
        policy = self.event_policy
        if self.min_rating is None:
            object.__setattr__(self, "min_rating", policy.min_rating)
        elif policy.min_rating is None:
            update = {**policy.model_dump(), "min_rating": self.min_rating}
            object.__setattr__(self, "event_policy", EventPolicy.model_validate(update))
        elif policy.min_rating != self.min_rating:
            raise ValueError(
                f"CleaningOptions: min_rating={self.min_rating} disagrees with "
                f"event_policy.min_rating={policy.min_rating}; give one of them"
            )

    def with_policy(self, policy: EventPolicy) -> CleaningOptions:
        """The same options under another event policy (its `min_rating` wins)."""
        return replace(self, min_rating=policy.min_rating, event_policy=policy)


def _policy_step(policy: EventPolicy) -> str:
    """The event policy as a cleaning step's name: what it drops."""
    if policy.min_rating is not None:
        return f"the event policy (min_rating={policy.min_rating:g})"
    return "the event policy (negative and zero-weight events dropped)"


@dataclass(eq=False)
class Dataset:
    """Interactions plus the catalogue, with external ids mapped to indexes.

    `catalog` row `i` describes item index `i`; items in the catalogue without
    interactions are kept (they matter for cold-start) unless the loader drops them.
    """

    name: str
    interactions: Interactions
    users: Vocabulary
    items: Vocabulary
    catalog: Catalog
    notes: list[str] = field(default_factory=list)
    #: How interactions sharing a timestamp are ordered (`with_tie_break`).
    tie_break: str = "file"

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items, "
            f"{len(self.interactions)} interactions)"
        )

    def without_users(self, user_ids: Iterable[str]) -> Dataset:
        """This dataset with these users and all their interactions gone (ids too)."""
        drop = {u for u in (self.users.get(i) for i in user_ids) if u >= 0}
        if not drop:
            return self
        keep_users = np.array([u for u in range(self.n_users) if u not in drop], dtype=np.int64)
        remap = np.full(self.n_users, -1, dtype=np.int64)
        remap[keep_users] = np.arange(len(keep_users))
        log = self.interactions
        rows = remap[log.users] >= 0
        kept = Interactions.build(
            remap[log.users[rows]],
            log.items[rows],
            len(keep_users),
            log.n_items,
            timestamps=log.timestamps[rows],
            weights=log.weights[rows],
            events=log.events[rows],
        )
        users = Vocabulary(self.users.id(int(u)) for u in keep_users)
        note = f"left out {len(drop)} erased users"
        return replace(self, interactions=kept, users=users, notes=[*self.notes, note])

    def with_tie_break(self, mode: str, seed: int = 0) -> Dataset:
        """This dataset with interactions at the same timestamp ordered by `mode`.

        "file" (the default everywhere) keeps file order, a later line counting as later;
        "item" orders ties by item id (numerically when every id is an integer, as
        RecBole's splits do); "random" shuffles them under `seed`. Leave-one-out holds out
        a different item wherever a user's last timestamp is shared, so figures from
        different tie-breaks are not comparable.
        """
        if mode == self.tie_break == "file":
            return self
        if self.tie_break != "file":
            raise ConfigError(f"ties are already ordered by {self.tie_break}")
        log = self.interactions
        if mode == "item":
            ids = self.items.ids
            numeric = all(i.lstrip("-").isdigit() for i in ids)
            order = np.argsort(np.array([int(i) for i in ids] if numeric else ids), kind="stable")
            rank = np.empty(len(ids), dtype=np.int64)
            rank[order] = np.arange(len(ids))
            key = rank[log.items]
        elif mode == "random":
            key = np.random.default_rng(seed).permutation(len(log))
        else:
            raise ConfigError(f"unknown tie-break {mode!r}; choose one of {', '.join(TIE_BREAKS)}")
        note = f"timestamp ties ordered by {mode}" + (f" (seed {seed})" if mode == "random" else "")
        return replace(
            self, interactions=log.reorder_ties(key), notes=[*self.notes, note], tie_break=mode
        )

    def summary(self) -> dict[str, object]:
        """Headline counts for reports."""
        n = len(self.interactions)
        return {
            "name": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": n,
            "density": n / max(1, self.n_users * self.n_items),
        }

    @classmethod
    def from_frames(
        cls,
        name: str,
        interactions: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        cleaning: CleaningOptions | None = None,
        keep_catalog_only_items: bool = False,
    ) -> Dataset:
        """Build from a raw log and an optional catalogue frame.

        `interactions` needs columns `user`, `item`; optional `timestamp`, `rating`,
        `weight`, `event`. Rows the cleaning's event policy does not count as positive
        are dropped; a row's type is its `event`, else `rating` when the log has ratings,
        else `interaction`. Its weight is the `weight` column when there is one, else the
        policy's (a rating weighs `rating * value`, so ratings keep their value by
        default). `catalog` needs `item` plus any text/attribute columns. Rows keep their
        file order on equal timestamps.
        """
        for column in ("user", "item"):
            if column not in interactions:
                raise DataError(
                    f"interaction data has no {column!r} column (has: {list(interactions.columns)})"
                )
        cleaning = cleaning or CleaningOptions()
        frame = interactions.reset_index(drop=True)
        frame["user"] = frame["user"].astype(str)
        frame["item"] = frame["item"].astype(str)
        if "timestamp" not in frame:
            frame["timestamp"] = np.arange(len(frame), dtype=np.float64)
        notes: list[str] = []
        before = len(frame)
        if frame.empty:
            raise DataError(f"dataset {name!r} has no interactions")
        frame["event"] = event_types(frame)  # checked before any row is dropped
        steps = []  # (what, rows left) of each step that ran, for the message when none are
        frame = positive_events(frame, cleaning.event_policy)
        steps.append((_policy_step(cleaning.event_policy), len(frame)))
        if cleaning.dedupe:
            frame = deduplicate(frame, keep=cleaning.dedupe)
            steps.append((f"dedupe={cleaning.dedupe}", len(frame)))
        if cleaning.user_k > 1 or cleaning.item_k > 1:
            frame = k_core(frame, cleaning.user_k, cleaning.item_k)
            steps.append((f"k-core (users {cleaning.user_k}, items {cleaning.item_k})", len(frame)))
        if len(frame) != before:
            notes.append(f"cleaning kept {len(frame):,} of {before:,} interactions")
        if frame.empty:
            kept = "; ".join(f"{n:,} after {what}" for what, n in steps)
            raise DataError(
                f"dataset {name!r} has no interactions left after cleaning: {before:,} read; {kept}"
            )

        users = Vocabulary(pd.unique(frame["user"]))
        items = Vocabulary(pd.unique(frame["item"]))
        cat_frame = None
        if catalog is not None:
            if "item" not in catalog:
                raise DataError("catalogue data has no 'item' column")
            catalog = catalog.drop_duplicates("item", keep="last").copy()
            catalog["item"] = catalog["item"].astype(str)
            if keep_catalog_only_items:
                items.extend(catalog["item"])
            cat_frame = catalog.set_index("item").reindex(items.ids).reset_index()
        cat = Catalog(cat_frame) if cat_frame is not None else Catalog.empty(len(items))

        if "weight" in frame:
            weights = frame["weight"].to_numpy(np.float32)
        else:
            weights = event_weights(frame, cleaning.event_policy)
        codes = {e: i for i, e in enumerate(EVENT_TYPES)}
        events = frame["event"].map(codes).to_numpy(np.int8)
        log = Interactions.build(
            users.indexes(frame["user"]),
            items.indexes(frame["item"]),
            len(users),
            len(items),
            timestamps=pd.to_numeric(frame["timestamp"]).to_numpy(np.float64),
            weights=weights,
            events=events,
        )
        return cls(name=name, interactions=log, users=users, items=items, catalog=cat, notes=notes)
