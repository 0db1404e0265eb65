"""Two-way map between external ids (strings) and dense integer indexes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lmrec.errors import LmrecError

__all__ = ["Vocabulary"]


class Vocabulary:
    """A map from external ids to indexes `0..n-1`, and back.

    Ids are kept as strings so that any id a user has (numbers, ASINs, UUIDs) is
    valid. A vocabulary can grow with `extend` (new items arriving online), but
    existing ids never change index, so models trained on a prefix stay valid.
    """

    __slots__ = ("_ids", "_index")

    def __init__(self, ids: Iterable[object] = ()):
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self.extend(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._ids == other._ids

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids)"

    @property
    def ids(self) -> list[str]:
        """The ids in index order (a copy)."""
        return list(self._ids)

    def extend(self, ids: Iterable[object]) -> np.ndarray:
        """Add ids not seen before; return the indexes of all given ids."""
        out = []
        for raw in ids:
            key = str(raw)
            index = self._index.get(key)
            if index is None:
                index = len(self._ids)
                self._index[key] = index
                self._ids.append(key)
            out.append(index)
        return np.asarray(out, dtype=np.int64)

    def index(self, item_id: object) -> int:
        """The index of one id; raises `LmrecError` naming it when unknown."""
        try:
            return self._index[str(item_id)]
        except KeyError:
            raise LmrecError(f"unknown id {str(item_id)!r}") from None

    def get(self, item_id: object, default: int = -1) -> int:
        """The index of one id, or `default` when unknown."""
        return self._index.get(str(item_id), default)

    def indexes(self, ids: Iterable[object], missing: str = "raise") -> np.ndarray:
        """Indexes of many ids. `missing` is "raise", "drop" or "mark" (-1)."""
        if missing not in ("raise", "drop", "mark"):
            raise ValueError(f"missing must be 'raise', 'drop' or 'mark', not {missing!r}")
        keys = [str(i) for i in ids]
        out = np.fromiter((self._index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        if missing == "raise" and (out < 0).any():
            bad = [k for k, j in zip(keys, out, strict=True) if j < 0]
            raise LmrecError(f"{len(bad)} unknown ids, e.g. {', '.join(map(repr, bad[:5]))}")
        if missing == "drop":
            out = out[out >= 0]
        return out

    def id(self, index: int) -> str:
        """The external id at an index."""
        return self._ids[index]

    def lookup(self, indexes: Iterable[int]) -> list[str]:
        """External ids for many indexes."""
        ids = self._ids
        return [ids[int(i)] for i in indexes]

    def copy(self) -> Vocabulary:
        """An independent copy (extending it leaves this one unchanged)."""
        return Vocabulary(self._ids)

    def to_list(self) -> list[str]:
        """A JSON-friendly form; `Vocabulary(v.to_list()) == v`."""
        return list(self._ids)
