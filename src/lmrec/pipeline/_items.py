"""The item side of a pipeline: ids, catalogue, liveness and text vectors, as one snapshot.

An `ItemSpace` is immutable: adding or removing items builds a new one, which the
pipeline swaps in whole, so a query in flight always sees one consistent item side.
Items `0..n_trained-1` are the model's; items added later are scored from text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.data.catalog import LIST_FIELDS, Catalog
from lmrec.data.vocabulary import Vocabulary
from lmrec.errors import LmrecError

__all__ = ["ItemSpace", "normalise"]


def normalise(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)  # type: ignore[no-any-return]


def _token(value: object) -> str | None:
    """A catalogue or filter value as the string filters compare (2025.0 and 2025 are "2025")."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, eq=False)
class ItemSpace:
    """An immutable snapshot of the item side; replaced whole when items change.

    `active` is False for deleted items; `vectors` (unit rows, zero where unknown,
    `has_vector` says which) are None when the pipeline has no text vectors.
    """

    ids: Vocabulary
    catalog: Catalog
    active: np.ndarray
    vectors: np.ndarray | None
    has_vector: np.ndarray
    n_trained: int
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, ids: Vocabulary, catalog: Catalog, vectors: np.ndarray | None, n_trained: int
    ) -> ItemSpace:
        """The space of a freshly loaded model: every item active."""
        n = len(ids)
        vecs = None if vectors is None else normalise(vectors)
        has = np.full(n, vecs is not None, dtype=bool)
        return cls(ids.copy(), catalog, np.ones(n, dtype=bool), vecs, has, n_trained)

    def __len__(self) -> int:
        return len(self.ids)

    def name(self, i: int) -> str:
        """An item's title, or its id when it has none."""
        return self.catalog.title(i) or self.ids.id(i)

    # -- masks and item groups ------------------------------------------------------------

    def filter_mask(self, filters: Mapping[str, Any]) -> np.ndarray:
        """Items whose field equals a wanted value (list fields: contains one)."""
        keep = np.ones(len(self), dtype=bool)
        frame = self.catalog.frame
        for name, wanted in filters.items():
            raw = [wanted] if isinstance(wanted, (str, int, float)) else list(wanted)
            values = frozenset(t for t in map(_token, raw) if t is not None)
            key = ("filter", name, values)
            mask = self._cache.get(key)
            if mask is None:
                if name not in frame.columns or name == "item":
                    known = sorted(
                        c for c in frame.columns if c not in ("item", "description", "summary")
                    )
                    raise LmrecError(f"unknown filter field {name!r}; known: {', '.join(known)}")
                column = frame[name]
                if name in LIST_FIELDS or column.map(lambda v: isinstance(v, list)).any():
                    mask = np.fromiter(
                        (
                            bool(values.intersection(map(_token, v)))
                            if isinstance(v, list)
                            else _token(v) in values
                            for v in column
                        ),
                        dtype=bool,
                        count=len(column),
                    )
                else:
                    mask = np.fromiter(
                        (_token(v) in values for v in column), dtype=bool, count=len(column)
                    )
                self._cache[key] = mask
            keep &= mask
        return keep

    def groups(self, items: np.ndarray, field_name: str) -> np.ndarray:
        """Exposure group per item: an id for the first value of `field_name` (-1 = none)."""
        frame = self.catalog.frame
        if field_name not in frame.columns:
            raise LmrecError(f"unknown exposure field {field_name!r}")
        ids: dict[str, int] = {}
        out = np.full(len(items), -1, dtype=np.int64)
        for r, i in enumerate(items):
            if not 0 <= int(i) < len(frame):
                continue
            value = frame.at[int(i), field_name]
            if isinstance(value, list):
                value = value[0] if value else None
            token = _token(value)
            if token:
                out[r] = ids.setdefault(token, len(ids))
        return out

    def attributes(self, items: np.ndarray) -> tuple[sp.csr_matrix, list[str]]:
        """The binary attribute-token matrix of some items and its column names."""
        index: dict[str, int] = {}
        rows, cols = [], []
        for r, i in enumerate(items):
            if 0 <= int(i) < len(self.catalog):
                for token in self.catalog.attributes(int(i)):
                    rows.append(r)
                    cols.append(index.setdefault(token, len(index)))
        m = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(items), len(index))
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m, list(index)

    def similarity_rows(self, items: np.ndarray, space: str) -> np.ndarray | None:
        """Rows of `items` in an MMR similarity space (`text` or `attributes`); None = none."""
        if space == "attributes":
            attrs, tokens = self.attributes(items)
            return np.asarray(attrs.toarray(), dtype=np.float32) if tokens else None
        return None if self.vectors is None else self.vectors[items]

    # -- changes (each returns a new space) ------------------------------------------------

    def with_items(
        self, ids: Sequence[str], frame: pd.DataFrame, vectors: np.ndarray | None
    ) -> ItemSpace:
        """Items added or replaced (`frame`: one catalogue row per id, without the id)."""
        vocab = self.ids.copy()
        idx = vocab.extend(ids)
        n_old, n_new = len(self.ids), len(vocab)
        updated = self.catalog.frame.copy()
        is_new = idx >= n_old
        for pos in np.flatnonzero(~is_new):
            row = frame.iloc[int(pos)]
            for column, value in row.items():
                if column not in updated:
                    updated[column] = pd.Series([None] * len(updated), dtype=object)
                elif updated[column].dtype != object:
                    updated[column] = updated[column].astype(object)
                updated.at[int(idx[pos]), column] = value
        # Only the last occurrence of a repeated new id counts.
        new_rows = frame.iloc[np.flatnonzero(is_new)]
        new_rows = (
            new_rows.assign(_idx=idx[is_new])
            .drop_duplicates("_idx", keep="last")
            .drop(columns="_idx")
        )
        catalog = Catalog(updated).extend(new_rows) if len(new_rows) else Catalog(updated)
        active = np.concatenate([self.active, np.ones(n_new - n_old, dtype=bool)])
        active[idx] = True
        has_vector = np.concatenate([self.has_vector, np.zeros(n_new - n_old, dtype=bool)])
        vecs = self.vectors
        if vecs is not None:
            vecs = np.concatenate([vecs, np.zeros((n_new - n_old, vecs.shape[1]), np.float32)])
            if vectors is not None:
                vectors = np.asarray(vectors, dtype=np.float32)
                if vectors.shape != (len(ids), vecs.shape[1]):
                    raise LmrecError(
                        f"item vectors have shape {vectors.shape}, expected ({len(ids)}, {vecs.shape[1]}) "
                        "(was the encoder the one the artefact was built with?)"
                    )
                vecs[idx] = normalise(vectors)
                has_vector[idx] = True
        return ItemSpace(vocab, catalog, active, vecs, has_vector, self.n_trained)

    def without(self, idx: np.ndarray) -> ItemSpace:
        """These item indexes deactivated."""
        active = self.active.copy()
        active[idx] = False
        return ItemSpace(
            self.ids, self.catalog, active, self.vectors, self.has_vector, self.n_trained
        )
