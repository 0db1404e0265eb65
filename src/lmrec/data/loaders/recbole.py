"""RecBole atomic files: `NAME.inter`, `NAME.item` (and `NAME.user`) with typed headers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.loaders._io import parse_token_list, read_delimited, read_text
from lmrec.errors import ConfigError, DataError

__all__ = ["ATOMIC_TYPES", "INTERACTION_FIELDS", "load_recbole", "read_atomic"]

#: Field types of the RecBole atomic format.
ATOMIC_TYPES: tuple[str, ...] = ("token", "token_seq", "float", "float_seq")
#: Interaction columns a loader fills, with their RecBole field names by default.
INTERACTION_FIELDS: dict[str, str] = {
    "user": "user_id",
    "item": "item_id",
    "timestamp": "timestamp",
    "rating": "rating",
}
# Item-file fields of common RecBole datasets that mean one of our catalogue fields.
_ITEM_ALIASES: dict[str, str] = {
    "item_id": "item",
    "movie_title": "title",
    "book_title": "title",
    "name": "title",
    "class": "categories",
    "genre": "categories",
    "genres": "categories",
    "release_year": "year",
    "year": "year",
    "desc": "description",
}
_TEXT_FIELDS = ("title", "description", "summary", "brand")


def read_atomic(path: str | Path) -> pd.DataFrame:
    """Read one atomic file into a frame whose columns are the bare field names.

    `token` fields stay strings; `float` fields become numbers (empty -> NaN);
    `token_seq` fields become lists of strings (space-separated, or the quoted
    comma form `'a', 'b c'` some files use); `float_seq` become lists of floats.
    Fields may be double-quoted and then hold tabs or newlines.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"atomic file not found: {path}")
    first = read_text(path, "utf-8").split("\n", 1)[0].rstrip("\r")
    names: list[str] = []
    types: list[str] = []
    for column in first.split("\t"):
        field, _, kind = column.strip().rpartition(":")
        if not field or kind not in ATOMIC_TYPES:
            raise DataError(
                f"header field {column!r} is not 'name:type' with type one of {', '.join(ATOMIC_TYPES)}",
                path,
                1,
            )
        names.append(field)
        types.append(kind)
    numeric = [n for n, t in zip(names, types, strict=True) if t == "float"]
    frame = read_delimited(
        path, "\t", names, numeric=numeric, header=True, quoted=True, allow_empty=True
    )
    for field, kind in zip(names, types, strict=True):
        if kind == "token_seq":
            frame[field] = [parse_token_list(v) for v in frame[field]]
        elif kind == "float_seq":
            frame[field] = [_floats(v, path, field) for v in frame[field]]
    return frame


def _floats(value: str, path: Path, field: str) -> list[float]:
    try:
        return [float(v) for v in value.split()]
    except ValueError:
        raise DataError(
            f"{field} value {value!r} is not a space-separated list of numbers", path
        ) from None


def _check_mapping(columns: Mapping[str, str] | None, allowed: Mapping[str, str]) -> dict[str, str]:
    mapping = dict(allowed)
    if columns:
        unknown = set(columns) - set(allowed)
        if unknown:
            raise ConfigError(
                f"unknown column mapping key(s) {sorted(unknown)}; use {', '.join(allowed)}"
            )
        mapping.update(columns)
    return mapping


def _select(
    frame: pd.DataFrame,
    mapping: Mapping[str, str],
    required: tuple[str, ...],
    path: Path,
    explicit: set[str],
) -> pd.DataFrame:
    """Columns renamed to our names; a required or explicitly mapped column must exist."""
    out = {}
    for target, source in mapping.items():
        if source in frame:
            out[target] = frame[source]
        elif target in required or target in explicit:
            raise DataError(
                f"no column {source!r} for {target!r}; the file has columns {list(frame.columns)}",
                path,
            )
    return pd.DataFrame(out)


def _catalog_frame(items: pd.DataFrame) -> pd.DataFrame:
    """An item frame with our field names: known aliases renamed, lists joined for text."""
    renamed = {c: _ITEM_ALIASES.get(c, c) for c in items.columns}
    catalog = items.rename(columns=renamed)
    catalog = catalog.loc[:, ~catalog.columns.duplicated()]
    for field in _TEXT_FIELDS:
        if field in catalog:
            catalog[field] = [" ".join(v) if isinstance(v, list) else v for v in catalog[field]]
    if "categories" in catalog:
        catalog["categories"] = [v if isinstance(v, list) else [v] for v in catalog["categories"]]
    return catalog


def load_recbole(
    path: str | Path,
    cleaning: CleaningOptions | None = None,
    name: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> Dataset:
    """Load a RecBole dataset: a folder holding `NAME.inter` (or that file itself).

    `columns` maps our interaction columns (user, item, timestamp, rating) to the
    file's field names when they differ from RecBole's defaults (user_id, item_id,
    timestamp, rating). `NAME.item`, when present, becomes the catalogue; fields
    like `movie_title` or `class` are understood as title and categories.
    `NAME.user` is not read (datasets carry no user features).
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.inter"))
        if not found:
            raise DataError(f"{path} holds no RecBole .inter file")
        if len(found) > 1:
            raise DataError(
                f"{path} holds several .inter files ({', '.join(f.name for f in found)}); pass one file"
            )
        inter_path = found[0]
    else:
        inter_path = path
    mapping = _check_mapping(columns, INTERACTION_FIELDS)
    raw = read_atomic(inter_path)
    frame = _select(raw, mapping, ("user", "item"), inter_path, set(columns or ()))
    item_path = inter_path.with_suffix(".item")
    catalog = None
    if item_path.is_file():
        items = read_atomic(item_path)
        items = items.rename(columns={mapping["item"]: "item"})
        catalog = _catalog_frame(items)
        if "item" not in catalog:
            raise DataError(
                f"item file has no item_id field; it has {list(catalog.columns)}", item_path
            )
    return Dataset.from_frames(name or inter_path.stem, frame, catalog, cleaning)
