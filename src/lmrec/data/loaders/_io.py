"""Shared parsing helpers: fast vectorised reads, and exact error locations when they fail.

Every reader first parses a whole file with pandas (fast). Only when that fails or
the result does not validate does it walk the file line by line, to name the first
bad line in the `DataError` it raises.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.errors import DataError

__all__ = [
    "parse_token_list",
    "read_delimited",
    "read_text",
    "require_file",
    "year_from_title",
]

_YEAR = re.compile(r"\((\d{4})\)\s*$")
# One quoted token of a Python-style list: 'Beauty' or "Women's" (backslash escapes allowed).
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_ESCAPE = re.compile(r"\\(.)")


def require_file(path: Path, what: str) -> Path:
    """`path` if it is a file, else a `DataError` saying what was expected there."""
    if not path.is_file():
        raise DataError(f"{what} not found: expected the file {path}")
    return path


def read_text(path: Path, encoding: str) -> str:
    """The whole file as text; `encoding="auto"` tries UTF-8 and falls back to Latin-1."""
    raw = path.read_bytes()
    if encoding == "auto":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"cannot decode the file as {encoding}: {exc.reason}", path, line) from None


def year_from_title(titles: pd.Series) -> pd.Series:
    """The year in a trailing "(1995)" of each title, as a nullable integer."""
    return titles.str.extract(_YEAR, expand=False).astype("Int64")


def parse_token_list(value: object) -> list[str]:
    """A list of tokens from a RecBole `token_seq` cell.

    RecBole separates tokens with spaces; some files (Amazon_Beauty.item) instead
    hold a Python-style list without brackets, like `'Beauty', "Women's"`, whose
    tokens may contain spaces and commas. Both forms are understood.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if not isinstance(value, str):
        return [str(v).strip() for v in value if str(v).strip()]  # type: ignore[attr-defined]
    text = value.strip()
    if not text:
        return []
    if text[0] in "'\"":
        tokens = [_ESCAPE.sub(r"\1", a or b) for a, b in _QUOTED.findall(text)]
        return [t.strip() for t in tokens if t.strip()]
    return text.split()


def _check_line(
    fields: list[str],
    n_fields: int,
    names: Sequence[str],
    numeric: Sequence[str],
    sep_name: str,
    allow_empty: bool = False,
) -> str | None:
    """Why one split line is bad, or None when it is fine."""
    if len(fields) != n_fields:
        return f"expected {n_fields} {sep_name}-separated fields ({', '.join(names)}), found {len(fields)}"
    for name, value in zip(names, fields, strict=True):
        if name in numeric and not (allow_empty and not value.strip()):
            try:
                float(value)
            except ValueError:
                return f"{name} {value!r} is not a number"
    return None


def locate_bad_line(
    text: str,
    sep: str,
    names: Sequence[str],
    numeric: Sequence[str],
    header: bool,
    quoted: bool = False,
    allow_empty: bool = False,
) -> tuple[int, str] | None:
    """The first bad line (1-based) and why, by a plain line-by-line pass."""
    sep_name = {"\t": "tab", ",": "comma", "|": "'|'", "::": "'::'"}.get(sep, repr(sep))
    if quoted:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        rows = ((reader.line_num, fields) for fields in reader)
    else:
        rows = ((n, line.split(sep)) for n, line in enumerate(text.splitlines(), start=1))
    for number, fields in rows:
        if (header and number == 1) or not fields or fields == [""]:
            continue
        problem = _check_line(fields, len(names), names, numeric, sep_name, allow_empty)
        if problem:
            return number, problem
    return None


def read_delimited(
    path: Path,
    sep: str,
    names: Sequence[str],
    numeric: Sequence[str] = (),
    encoding: str = "utf-8",
    header: bool = False,
    quoted: bool = False,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Read a delimited file of exactly `len(names)` columns as strings.

    `numeric` columns are converted to numbers. `sep` may have several characters
    (MovieLens `::`); it is rewritten to a tab so the fast C parser can read it.
    With `quoted`, fields may be double-quoted (CSV style). A `header` line is
    skipped and `names` used instead. On any problem a `DataError` names the file
    and the first bad line. With `allow_empty`, empty numeric cells become NaN.
    """
    text = read_text(path, encoding)
    parse_sep = sep
    parse_text = text
    if len(sep) > 1:
        parse_text = text.replace(sep, "\t")
        parse_sep = "\t"
    problem: str | None = None
    frame: pd.DataFrame | None = None
    try:
        frame = pd.read_csv(
            io.StringIO(parse_text),
            sep=parse_sep,
            header=None,
            skiprows=1 if header else 0,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quoting=0 if quoted else 3,  # csv.QUOTE_MINIMAL / csv.QUOTE_NONE
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        problem = str(exc).strip().splitlines()[-1]
    if frame is not None:
        if frame.shape[1] != len(names):
            problem = f"expected {len(names)} fields per line, found {frame.shape[1]}"
        elif frame.isna().any(axis=None):  # short lines are padded with NaN
            problem = "a line has too few fields"
        else:
            frame.columns = list(names)
            for column in numeric:
                values = frame[column]
                converted = pd.to_numeric(values, errors="coerce")
                bad = converted.isna()
                if allow_empty:
                    bad &= values.str.strip() != ""
                if bad.any():
                    problem = f"a {column} value is not a number"
                    break
                frame[column] = converted
        if problem is None:
            return frame
    found = locate_bad_line(text, sep, names, numeric, header, quoted, allow_empty)
    if found is not None:
        raise DataError(found[1], path, found[0])
    line = _line_from_pandas_message(problem or "")
    raise DataError(f"cannot parse the file: {problem}", path, line)


def _line_from_pandas_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
