"""Any CSV or Parquet interaction file, with a column mapping, plus an optional catalogue file."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.catalog import LIST_FIELDS
from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.events import EVENT_TYPES
from lmrec.data.loaders._io import parse_token_list
from lmrec.errors import ConfigError, DataError

__all__ = [
    "CATALOG_COLUMNS",
    "INTERACTION_COLUMNS",
    "TABULAR_SUFFIXES",
    "load_tabular",
    "read_table",
]

#: Default source column of each interaction column (timestamp, rating and event optional;
#: an `event_type` or `event` column holds one of `lmrec.data.events.EVENT_TYPES`).
INTERACTION_COLUMNS: dict[str, str] = {
    "user": "user_id",
    "item": "item_id",
    "timestamp": "timestamp",
    "rating": "rating",
    "event": "event_type",
}
#: Catalogue columns a mapping may name; unmapped file columns are kept as attributes.
CATALOG_COLUMNS: tuple[str, ...] = (
    "item",
    "title",
    "description",
    "summary",
    "brand",
    "categories",
    "tags",
)
#: File name endings read as tables.
TABULAR_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".parquet", ".pq")


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (`.csv`, `.tsv`) or Parquet (`.parquet`, `.pq`) file as a frame."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"table not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(
                path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False, na_values=[""]
            )
    except pd.errors.ParserError as exc:
        line = None
        message = str(exc).strip()
        if "line " in message:
            try:
                line = int(message.split("line ")[1].split(",")[0])
            except ValueError:
                line = None
        raise DataError(f"cannot parse the table: {message}", path, line) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the table: {exc}", path) from None
    raise DataError(
        f"unknown table format {suffix!r}; use one of {', '.join(TABULAR_SUFFIXES)}", path
    )


def _line_of_row(path: Path, row: int) -> int | None:
    """The line (1-based) where data row `row` (0-based) of a CSV file starts; None for Parquet."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv"):
        return None
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ",")
        start, seen = 1, -1  # the header is record -1
        for fields in reader:
            if fields:
                if seen == row:
                    return start
                seen += 1
            start = reader.line_num + 1
    return None


def _bad_row(path: Path, mask: pd.Series, message: str) -> DataError:
    """A `DataError` for the first row where `mask` holds, naming its line when known."""
    row = int(np.flatnonzero(mask.to_numpy())[0])
    line = _line_of_row(path, row)
    where = "" if line is not None else f" (data row {row + 1})"
    return DataError(message + where, path, line)


def _timestamps(values: pd.Series, path: Path) -> pd.Series:
    """Numbers as they are; dates and date strings as Unix seconds."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64)
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all():
            return numeric.astype(np.float64)
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        if parsed.isna().any():
            bad = parsed.isna()
            first = values[bad].iloc[0]
            raise _bad_row(path, bad, f"timestamp {first!r} is neither a number nor a date")
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize("UTC")
    return (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _mapped(
    frame: pd.DataFrame,
    defaults: Mapping[str, str],
    columns: Mapping[str, str] | None,
    required: tuple[str, ...],
    path: Path,
    what: str,
) -> dict[str, str]:
    """Target -> source columns that exist; raises for a missing required or named column."""
    allowed = tuple(defaults) if what == "interaction" else CATALOG_COLUMNS
    unknown = set(columns or ()) - set(allowed)
    if unknown:
        raise ConfigError(
            f"unknown {what} column mapping key(s) {sorted(unknown)}; use {', '.join(allowed)}"
        )
    out: dict[str, str] = {}
    for target in allowed:
        if columns and target in columns:
            source = columns[target]
            if source not in frame:
                raise DataError(
                    f"{what} column {source!r} (mapped to {target!r}) is not in the file; "
                    f"it has columns {list(frame.columns)}",
                    path,
                )
            out[target] = source
            continue
        for candidate in (defaults.get(target), target):
            if candidate is not None and candidate in frame:
                out[target] = candidate
                break
        else:
            if target in required:
                raise DataError(
                    f"no {what} column for {target!r} (looked for {defaults.get(target, target)!r}); "
                    f"the file has columns {list(frame.columns)}; pass a column mapping",
                    path,
                )
    return out


def load_tabular(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    catalog: str | Path | None = None,
    catalog_columns: Mapping[str, str] | None = None,
    cleaning: CleaningOptions | None = None,
    name: str | None = None,
    list_separator: str = "|",
) -> Dataset:
    """Load interactions from a CSV/Parquet file, optionally with a catalogue file.

    `columns` maps our columns (user, item, timestamp, rating, event) to the file's,
    e.g. `{"user": "uid", "item": "iid", "timestamp": "ts", "rating": "stars"}`; by
    default they are read from `user_id`, `item_id`, `timestamp`, `rating`,
    `event_type` (or the bare names), and all but user and item are optional.
    Timestamps may be numbers or dates. With an event column, the cleaning's event
    policy decides which rows are positive and what each weighs (`lmrec.data.events`). `catalog_columns` maps catalogue fields (item, title, description,
    summary, brand, categories, tags) to the catalogue file's columns; its other
    columns are kept as attributes. List fields given as text are split on
    `list_separator` (or parsed as `'a', 'b'` when quoted).
    """
    path = Path(path)
    frame = read_table(path)
    mapping = _mapped(frame, INTERACTION_COLUMNS, columns, ("user", "item"), path, "interaction")
    interactions = pd.DataFrame({target: frame[source] for target, source in mapping.items()})
    for column in ("user", "item"):
        if interactions[column].isna().any():
            raise _bad_row(path, interactions[column].isna(), f"empty {column} id")
        interactions[column] = _id_text(interactions[column])
    if "timestamp" in interactions:
        interactions["timestamp"] = _timestamps(interactions["timestamp"], path)
    if "event" in interactions:
        unknown = ~interactions["event"].isin(EVENT_TYPES)
        if unknown.any():
            first = interactions["event"][unknown].iloc[0]
            raise _bad_row(
                path, unknown, f"event type {first!r} is not one of {', '.join(EVENT_TYPES)}"
            )
    if "rating" in interactions:
        rating = pd.to_numeric(interactions["rating"], errors="coerce")
        bad = rating.isna()
        if "event" in interactions:
            # An event log may leave the value empty (a click; a rating without stars,
            # positive as it is in the server's store); only text that is not a number fails.
            bad &= interactions["rating"].notna()
        if bad.any():
            first = interactions["rating"][bad].iloc[0]
            raise _bad_row(path, bad, f"rating {first!r} is not a number")
        interactions["rating"] = rating
    items = None
    if catalog is not None:
        catalog_path = Path(catalog)
        table = read_table(catalog_path)
        cat_map = _mapped(
            table, {"item": "item_id"}, catalog_columns, ("item",), catalog_path, "catalogue"
        )
        renamed = {source: target for target, source in cat_map.items()}
        items = table.rename(columns=renamed)
        items = items.loc[:, ~items.columns.duplicated()]
        items["item"] = _id_text(items["item"])
        for field in LIST_FIELDS:
            if field in items:
                items[field] = [_as_list(v, list_separator) for v in items[field]]
    return Dataset.from_frames(name or path.stem, interactions, items, cleaning)


def _id_text(values: pd.Series) -> pd.Series:
    """Ids as strings; whole floats (a CSV column with gaps) lose their `.0`."""
    if pd.api.types.is_float_dtype(values) and bool((values == values.round()).all()):
        return values.astype(np.int64).astype(str)
    return values.astype(str)


def _as_list(value: object, separator: str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("'", '"')):
            return parse_token_list(text)
        return [t.strip() for t in text.split(separator) if t.strip()]
    return parse_token_list(value)
