"""Any CSV or Parquet interaction file, with a column mapping, plus an optional catalogue file."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.catalog import LIST_FIELDS
from lmrec.data.dataset import CleaningOptions, Dataset
from lmrec.data.events import EVENT_TYPES
from lmrec.data.loaders._io import (
    CsvRecord,
    csv_records,
    field_count_problem,
    parse_token_list,
    quoted_list,
    unquote,
)
from lmrec.errors import ConfigError, DataError

__all__ = [
    "CATALOG_COLUMNS",
    "INTERACTION_COLUMNS",
    "TABULAR_SUFFIXES",
    "load_tabular",
    "read_table",
    "table_columns",
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


def _sep(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".tsv")


def _check_format(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"table not found: {path}")
    if path.suffix.lower() not in TABULAR_SUFFIXES:
        raise DataError(
            f"unknown table format {path.suffix.lower()!r}; use one of {', '.join(TABULAR_SUFFIXES)}",
            path,
        )


def table_columns(path: str | Path) -> list[str]:
    """The column names of a CSV or Parquet table, read from its header (cheap)."""
    path = Path(path)
    _check_format(path)
    if not _is_csv(path):
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the table: {exc}", path) from None
        index = (schema.pandas_metadata or {}).get("index_columns", [])
        return [n for n in schema.names if n not in index]
    return list(_read_csv(path, nrows=0).columns)


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV (`.csv`, `.tsv`) or Parquet (`.parquet`, `.pq`) file as a frame.

    A CSV problem (a line with too many fields, an unclosed quote) is a `DataError`
    naming its line; finding it walks the file only after the fast read failed.
    """
    path = Path(path)
    _check_format(path)
    if _is_csv(path):
        return _read_csv(path)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the table: {exc}", path) from None


def _read_csv(path: Path, nrows: int | None = None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # A first data row with more fields than the header warns (and would drop data).
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path,
                sep=_sep(path),
                index_col=False,  # never take the first column for an index
                keep_default_na=False,
                na_values=[""],
                nrows=nrows,
            )
    except pd.errors.EmptyDataError:
        raise DataError(
            "the file is empty; expected a header line naming the columns, then one row per line",
            path,
        ) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise _parse_error(path, str(exc).strip().splitlines()[-1]) from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise DataError(f"cannot read the table: {exc}", path) from None


def _field_problem(record: CsvRecord, header: list[str], sep: str) -> str | None:
    fields = record.fields
    if len(fields) == len(header) + 1 and fields[-1] == "":
        return None  # a trailing separator, which pandas reads as no field
    return field_count_problem(record, header, sep)


def _parse_error(path: Path, message: str) -> DataError:
    """The first record whose field count differs from the header's, else pandas' message."""
    sep = _sep(path)
    records = csv_records(path, sep)
    try:
        header = next(records, None)
        for record in records:
            problem = _field_problem(record, header.fields if header else [], sep)
            if problem:
                return DataError(problem, path, record.start)
    finally:
        records.close()
    match = re.search(r"line (\d+)", message)
    return DataError(
        f"cannot parse the table: {message}", path, int(match.group(1)) if match else None
    )


def _bad_row(path: Path, row: int, message: str) -> DataError:
    """A `DataError` for data row `row` (0-based), naming its line when the file has lines.

    A row with too few fields (pandas pads it with empty values) is reported as that.
    """
    if not _is_csv(path):
        return DataError(f"{message} (data row {row + 1})", path)
    sep = _sep(path)
    records = csv_records(path, sep)
    try:
        header = next(records, None)
        for index, record in enumerate(records):
            if index == row:
                problem = _field_problem(record, header.fields if header else [], sep)
                return DataError(problem or message, path, record.start)
    finally:
        records.close()
    return DataError(f"{message} (data row {row + 1})", path)


def _first(mask: pd.Series | np.ndarray) -> int | None:
    rows = np.flatnonzero(np.asarray(mask))
    return int(rows[0]) if len(rows) else None


def _shown(value: object) -> str:
    return repr(str(value))


def _seconds(parsed: pd.Series) -> pd.Series:
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize("UTC")
    return (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _timestamps(values: pd.Series) -> tuple[pd.Series, tuple[int, str] | None]:
    """Unix seconds from numbers or dates (one form a column), and the first bad row if any.

    Text timestamps are read as numbers when at least half of them are numbers, else as
    dates; a value of the other form is reported as such, not the column as a whole.
    """
    missing = values.isna()
    typed = None
    if pd.api.types.is_numeric_dtype(values):
        typed = values.astype(np.float64)
    elif pd.api.types.is_datetime64_any_dtype(values):
        typed = _seconds(values)
    if typed is not None:  # Parquet, or a CSV column pandas read as numbers
        row = _first(missing)
        return typed, None if row is None else (row, "empty timestamp")
    numbers = pd.to_numeric(values, errors="coerce")
    is_number = numbers.notna()
    if is_number.all():
        return numbers.astype(np.float64), None
    if 2 * int(is_number.sum()) >= int((~missing).sum()):
        row = _first(~is_number)
        assert row is not None
        value = values.iloc[row]
        if pd.isna(value):
            return numbers, (row, "empty timestamp")
        example = _shown(values[is_number].iloc[0])
        is_date = pd.notna(pd.to_datetime(pd.Series([value]), errors="coerce", format="mixed")[0])
        if is_date:
            why = f"is a date, but the column holds numbers (like {example}); use one form"
        else:
            why = f"is neither a number nor a date (the column holds numbers, like {example})"
        return numbers, (row, f"timestamp {_shown(value)} {why}")
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    row = _first(parsed.isna())
    if row is None:
        return _seconds(parsed), None
    value = values.iloc[row]
    if pd.isna(value):
        return parsed, (row, "empty timestamp")
    if is_number.iloc[row] and parsed.notna().any():
        example = _shown(values[parsed.notna()].iloc[0])
        why = f"is a number, but the column holds dates (like {example}); use one form"
    else:
        why = "is neither a number nor a date"
    return parsed, (row, f"timestamp {_shown(value)} {why}")


def _check_roles(
    columns: Mapping[str, str] | None, allowed: tuple[str, ...], what: str, present: list[str]
) -> None:
    unknown = sorted(set(columns or ()) - set(allowed))
    if unknown:
        named = ", ".join(f"{k}={columns[k]}" for k in unknown) if columns else ""
        raise ConfigError(
            f"unknown {what} column mapping key(s) {unknown} ({named}); use {', '.join(allowed)} "
            f"(the file has columns {present})"
        )


def _mapped(
    present: list[str],
    defaults: Mapping[str, str],
    columns: Mapping[str, str] | None,
    required: tuple[str, ...],
    path: Path,
    what: str,
) -> dict[str, str]:
    """Target -> source columns that exist; raises for a missing required or named column."""
    allowed = tuple(defaults) if what == "interaction" else CATALOG_COLUMNS
    _check_roles(columns, allowed, what, present)
    out: dict[str, str] = {}
    for target in allowed:
        if columns and target in columns:
            source = columns[target]
            if source not in present:
                raise DataError(
                    f"{what} column {source!r} (mapped to {target!r}) is not in the file; "
                    f"it has columns {present}",
                    path,
                )
            out[target] = source
            continue
        for candidate in (defaults.get(target), target):
            if candidate is not None and candidate in present:
                out[target] = candidate
                break
        else:
            if target in required:
                flag = "--columns" if what == "interaction" else "--item-columns"
                raise DataError(
                    f"no {what} column for {target!r} (looked for {defaults.get(target, target)!r}); "
                    f"the file has columns {present}; pass a column mapping "
                    f"(on the command line {flag} {target}=COLUMN,...)",
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
    mapping = _mapped(
        table_columns(path), INTERACTION_COLUMNS, columns, ("user", "item"), path, "interaction"
    )
    frame = read_table(path)
    if frame.empty:
        raise DataError(
            f"holds no interactions: only the header line ({', '.join(map(str, frame.columns))})",
            path,
        )
    interactions = pd.DataFrame({target: frame[source] for target, source in mapping.items()})
    interactions = _checked_interactions(interactions, path)
    items = None
    if catalog is not None:
        items = _catalog_frame(Path(catalog), catalog_columns, list_separator)
    return Dataset.from_frames(name or path.stem, interactions, items, cleaning)


def _checked_interactions(interactions: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Ids as text, timestamps as seconds, ratings as numbers; raises for the first bad row.

    Every check is vectorised; the file is walked (to name the line) only when one fails.
    """
    problems: list[tuple[int, str]] = []

    def note(mask: pd.Series | np.ndarray, message: str) -> None:
        row = _first(mask)
        if row is not None:
            problems.append((row, message))

    for column in ("user", "item"):
        note(interactions[column].isna(), f"empty {column} id")
    if "timestamp" in interactions:
        seconds, problem = _timestamps(interactions["timestamp"])
        if problem is not None:
            problems.append(problem)
        interactions["timestamp"] = seconds
    if "event" in interactions:
        events = interactions["event"]
        note(events.isna(), "empty event type")
        unknown = ~events.isin(EVENT_TYPES) & events.notna()
        if unknown.any():
            first = _shown(events[unknown].iloc[0])
            note(unknown, f"event type {first} is not one of {', '.join(EVENT_TYPES)}")
    if "rating" in interactions:
        raw = interactions["rating"]
        rating = pd.to_numeric(raw, errors="coerce")
        # An event log may leave the value empty (a click; a rating without stars,
        # positive as it is in the server's store); only text that is not a number fails.
        if "event" not in interactions:
            note(raw.isna(), "empty rating")
        text = rating.isna() & raw.notna()
        if text.any():
            note(text, f"rating {_shown(raw[text].iloc[0])} is not a number")
        interactions["rating"] = rating
    if problems:
        row, message = min(problems)
        raise _bad_row(path, row, message)
    for column in ("user", "item"):
        interactions[column] = _id_text(interactions[column])
    return interactions


def _catalog_frame(
    path: Path, columns: Mapping[str, str] | None, list_separator: str
) -> pd.DataFrame:
    """The catalogue file with our field names; list fields given as text split."""
    cat_map = _mapped(
        table_columns(path), {"item": "item_id"}, columns, ("item",), path, "catalogue"
    )
    table = read_table(path)
    renamed = {source: target for target, source in cat_map.items()}
    items = table.rename(columns=renamed)
    items = items.loc[:, ~items.columns.duplicated()]
    missing = _first(items["item"].isna())
    if missing is not None:
        raise _bad_row(path, missing, "empty item id")
    items["item"] = _id_text(items["item"])
    for field in LIST_FIELDS:
        if field in items:
            items[field] = [_as_list(v, list_separator) for v in items[field]]
    return items


def _id_text(values: pd.Series) -> pd.Series:
    """Ids as strings; whole floats (a CSV column with gaps) lose their `.0`."""
    if pd.api.types.is_float_dtype(values) and bool((values == values.round()).all()):
        return values.astype(np.int64).astype(str)
    return values.astype(str)


def _as_list(value: object, separator: str) -> list[str]:
    """A list cell: `separator`-separated text, or a whole cell in the quoted form `'a', 'b'`."""
    if isinstance(value, str):
        quoted = quoted_list(value)
        if quoted is not None:
            return quoted
        return [unquote(t) for t in value.split(separator) if unquote(t)]
    return parse_token_list(value)
