"""Item catalogue: text fields and attributes, row-aligned with the item vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["LIST_FIELDS", "TEXT_FIELDS", "Catalog"]

#: Fields the default item text is composed from, in this order.
TEXT_FIELDS: tuple[str, ...] = ("title", "brand", "categories", "tags", "description", "summary")
#: Fields that hold lists of strings.
LIST_FIELDS: tuple[str, ...] = ("categories", "tags")
#: Fields whose values become attribute tokens (for filters, diversity and explanations).
ATTRIBUTE_FIELDS: tuple[str, ...] = ("brand", "categories", "tags")


def _clean(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _as_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    return [str(v).strip() for v in value if str(v).strip()]  # type: ignore[attr-defined]


class Catalog:
    """Items' text fields and attributes; row `i` describes item index `i`.

    Known fields are `title`, `description`, `summary`, `brand` (strings) and
    `categories`, `tags` (lists of strings); any other column is kept as an
    attribute (price, year, ...). Missing values are empty, never NaN.
    """

    def __init__(self, frame: pd.DataFrame):
        frame = frame.reset_index(drop=True).copy()
        for field in ("title", "description", "summary", "brand"):
            if field not in frame:
                frame[field] = ""
            frame[field] = [_clean(v) for v in frame[field]]
        for field in LIST_FIELDS:
            if field not in frame:
                frame[field] = [[] for _ in range(len(frame))]
            frame[field] = [_as_list(v) for v in frame[field]]
        self.frame = frame

    @classmethod
    def empty(cls, n_items: int) -> Catalog:
        """A catalogue with no text for `n_items` items."""
        return cls(pd.DataFrame(index=range(n_items)))

    # A catalogue is never changed in place (changes build a new one), so what is derived
    # from its frame is computed once: explanations read titles and attributes of every
    # history item for every recommended item, and pandas' per-row access costs ~0.1 ms.

    @cached_property
    def _length(self) -> int:
        return len(self.frame)

    @cached_property
    def _titles(self) -> list[str]:
        return [str(t) for t in self.frame["title"].tolist()]

    @cached_property
    def _all_attributes(self) -> list[tuple[str, ...]]:
        """Every item's attribute tokens."""
        columns = [(field, self.frame[field].tolist()) for field in ATTRIBUTE_FIELDS]
        return [
            tuple(
                f"{field}={v}"
                for field, values in columns
                for v in (values[i] if isinstance(values[i], list) else [values[i]])
                if v
            )
            for i in range(self._length)
        ]

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"Catalog({len(self)} items)"

    def title(self, index: int) -> str:
        """The title of one item ("" when unknown)."""
        return self._titles[index] if index < self._length else ""

    @property
    def has_titles(self) -> bool:
        """Whether items have titles (judged on the first 50): text worth encoding."""
        return any(self.title(i) for i in range(min(len(self), 50)))

    def text_fields_present(self, min_share: float = 0.05) -> tuple[str, ...]:
        """The text fields that hold something for at least `min_share` of the items."""
        if not len(self):
            return ()
        return tuple(
            name
            for name in TEXT_FIELDS
            if name in self.frame and self.frame[name].map(bool).mean() >= min_share
        )

    def text(self, index: int, fields: Sequence[str] = TEXT_FIELDS) -> str:
        """The text of one item, composed from the given fields."""
        row = self.frame.iloc[index]
        parts = []
        for field in fields:
            if field not in self.frame:
                continue
            value = row[field]
            if isinstance(value, list):
                if value:
                    parts.append(", ".join(value))
            elif _clean(value):
                parts.append(_clean(value))
        return ". ".join(parts)

    def texts(self, fields: Sequence[str] = TEXT_FIELDS) -> list[str]:
        """The text of every item, in index order."""
        return [self.text(i, fields) for i in range(len(self))]

    def attributes(self, index: int) -> list[str]:
        """Attribute tokens of one item, like `brand=Prada` or `categories=Fragrance`."""
        return list(self._all_attributes[index])

    def attribute_matrix(self) -> tuple[sp.csr_matrix, list[str]]:
        """A binary item x attribute-token matrix and the token names."""
        token_index: dict[str, int] = {}
        rows, cols = [], []
        for i in range(len(self)):
            for token in self.attributes(i):
                rows.append(i)
                cols.append(token_index.setdefault(token, len(token_index)))
        m = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(len(self), len(token_index)),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m, list(token_index)

    def attribute_vectors(self) -> sp.csr_matrix:
        """L2-normalised sparse attribute vectors (used before text vectors exist)."""
        m, _ = self.attribute_matrix()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m)

    def extend(self, frame: pd.DataFrame) -> Catalog:
        """A catalogue with `frame`'s rows appended (new items)."""
        return Catalog(pd.concat([self.frame, Catalog(frame).frame], ignore_index=True))
