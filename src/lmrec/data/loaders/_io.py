"""Shared parsing helpers: fast vectorised reads, and exact error locations when they fail.

Every reader first parses a whole file with pandas (fast). Only when that fails or
the result does not validate does it walk the file line by line, to name the first
bad line in the `DataError` it raises.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.errors import DataError

__all__ = [
    "CsvRecord",
    "csv_records",
    "field_count_problem",
    "parse_token_list",
    "quoted_list",
    "read_delimited",
    "read_text",
    "require_file",
    "unquote",
    "year_from_title",
]

_YEAR = re.compile(r"\((\d{4})\)\s*$")
# One quoted token of a Python-style list: 'Beauty' or "Women's" (backslash escapes allowed).
_QUOTED_TOKEN = r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\""
_QUOTED = re.compile(_QUOTED_TOKEN)
# A whole cell that is such a list: quoted tokens separated by commas, nothing else.
_QUOTED_LIST = re.compile(rf"(?:{_QUOTED_TOKEN})(?:\s*,\s*(?:{_QUOTED_TOKEN}))*\s*,?")
_ESCAPE = re.compile(r"\\(.)")
_SEP_NAMES = {"\t": "tab", ",": "comma", "|": "'|'", "::": "'::'"}


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
    tokens may contain spaces and commas. Both forms are understood; a cell is read
    as the quoted form only when the whole cell is one (`"artsy" gritty` is two
    space-separated tokens, the first in quotes).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if not isinstance(value, str):
        return [str(v).strip() for v in value if str(v).strip()]  # type: ignore[attr-defined]
    quoted = quoted_list(value)
    if quoted is not None:
        return quoted
    return [unquote(t) for t in value.split() if unquote(t)]


def quoted_list(text: str) -> list[str] | None:
    """The tokens of a cell that is wholly a quoted list (`'a', "b c"`), else None."""
    text = text.strip()
    if not text or text[0] not in "'\"" or _QUOTED_LIST.fullmatch(text) is None:
        return None
    tokens = [_ESCAPE.sub(r"\1", a or b) for a, b in _QUOTED.findall(text)]
    return [t.strip() for t in tokens if t.strip()]


def unquote(token: str) -> str:
    """A token without surrounding whitespace and one pair of matching quotes."""
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        token = token[1:-1].strip()
    return token


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
    sep_name = _SEP_NAMES.get(sep, repr(sep))
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


@dataclass(frozen=True)
class CsvRecord:
    """One CSV record: the 1-based lines it starts and ends on, its fields, and whether
    its lines hold an odd number of quote characters (a quote opened and never closed)."""

    start: int
    end: int
    fields: list[str]
    unclosed: bool


def csv_records(path: Path, sep: str, encoding: str = "utf-8") -> Generator[CsvRecord, None, None]:
    """The non-blank records of a CSV file with their line numbers, as pandas counts rows.

    Only for locating a problem after a fast read failed: it walks the file in Python.
    """
    raw: list[str] = []

    def lines(handle: Iterable[str]) -> Iterator[str]:
        for line in handle:
            raw.append(line)
            yield line

    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # an unclosed quote makes one huge field
    try:
        with open(path, newline="", encoding=encoding, errors="replace") as handle:
            reader = csv.reader(lines(handle), delimiter=sep)
            start = 1
            for fields in reader:
                end = reader.line_num
                if fields:
                    unclosed = sum(line.count('"') for line in raw) % 2 == 1
                    yield CsvRecord(start, end, fields, unclosed)
                raw.clear()
                start = end + 1
    finally:
        csv.field_size_limit(limit)


def field_count_problem(record: CsvRecord, names: Sequence[str], sep: str) -> str | None:
    """Why `record` does not have one field per name (None when it does), saying where
    a quote that swallowed the following lines was opened."""
    if len(record.fields) == len(names):
        return None
    sep_name = _SEP_NAMES.get(sep, repr(sep))
    problem = (
        f"expected {len(names)} {sep_name}-separated fields ({', '.join(map(str, names))}), "
        f"found {len(record.fields)}"
    )
    if record.end > record.start and record.unclosed:
        return (
            f'a quote (") opened on this line is never closed, so the {record.end - record.start} '
            f"lines after it read as part of one field; {problem}"
        )
    if record.end > record.start:
        return (
            f'{problem}: a quote (") opened on this line is only closed on line {record.end} '
            "(an unbalanced quote?)"
        )
    return problem
