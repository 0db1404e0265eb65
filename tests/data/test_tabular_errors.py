"""CSV interaction files: each problem is reported at its own line, as what it is.

Lines are 1-based file lines (the header is line 1). Every file is written to tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lmrec.data import CleaningOptions
from lmrec.data.loaders import load_dataset, load_tabular
from lmrec.data.loaders._io import parse_token_list
from lmrec.errors import DataError

HEADER = "user_id,item_id,rating,timestamp\n"


def good_rows(n: int) -> list[str]:
    return [f"u{i % 50},i{i % 70},4,{964980499 + i}\n" for i in range(n)]


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_one_bad_timestamp_among_numbers_is_named_at_its_own_line(tmp_path: Path) -> None:
    rows = good_rows(6000)
    rows[4999] = "u1,i2,4,yesterday-ish\n"  # data row 5000 = file line 5001
    message = error_of(write(tmp_path, HEADER + "".join(rows)))
    assert message.endswith(
        "log.csv, line 5001: timestamp 'yesterday-ish' is neither a number nor a date "
        "(the column holds numbers, like '964980499')"
    )


def test_a_date_among_numbers_and_a_number_among_dates_say_so(tmp_path: Path) -> None:
    rows = good_rows(10)
    rows[6] = "u1,i2,4,2024-01-01\n"
    message = error_of(write(tmp_path, HEADER + "".join(rows)))
    assert "line 8: timestamp '2024-01-01' is a date, but the column holds numbers" in message
    dates = "user_id,item_id,timestamp\na,1,2024-01-01\nb,2,964980499\nc,3,2024-01-03\n"
    message = error_of(write(tmp_path, dates))
    assert (
        "line 3: timestamp '964980499' is a number, but the column holds dates "
        "(like '2024-01-01'); use one form"
    ) in message


def test_a_short_line_is_reported_as_too_few_fields(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, HEADER + "u1,i1,4,5\nu1,i2\nu2,i3,4,6\n"))
    assert message.endswith(
        "line 3: expected 4 comma-separated fields (user_id, item_id, rating, timestamp), found 2"
    )
    assert "nan" not in message


def test_a_long_line_is_reported_even_as_the_first_data_line(tmp_path: Path) -> None:
    # pandas would take a first row with one field too many for an index, shifting columns.
    message = error_of(write(tmp_path, HEADER + "u1,i1,4,5,9\nu2,i3,4,6\n"))
    assert message.endswith(
        "line 2: expected 4 comma-separated fields (user_id, item_id, rating, timestamp), found 5"
    )
    message = error_of(write(tmp_path, HEADER + "u1,i1,4,5\nu2,i3,4,6\nu3,i3,4,6,7\n"))
    assert "line 4: expected 4 comma-separated fields" in message


def test_trailing_separators_are_read_not_shifted(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path, HEADER + "u1,i1,4,5,\nu2,i3,2,6,\n"))
    assert ds.users.to_list() == ["u1", "u2"] and ds.items.to_list() == ["i1", "i3"]
    assert list(ds.interactions.weights) == [4.0, 2.0]


def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    text = HEADER + 'u1,i1,4,5\nu1,"i2,4,6\nu2,i3,4,6\nu3,i3,4,7\n'
    message = error_of(write(tmp_path, text))
    assert 'line 3: a quote (") opened on this line is never closed' in message
    assert "found 2" in message


def test_a_quote_closed_lines_later_names_both_lines(tmp_path: Path) -> None:
    text = HEADER + 'u1,i1,4,5\nu1,"i2,4,6\nu2,i3,4,6\nu3,i3",4,7,8\nu4,i5,3,3\n'
    message = error_of(write(tmp_path, text))
    assert message.endswith(
        "line 3: expected 4 comma-separated fields (user_id, item_id, rating, timestamp), "
        'found 5: a quote (") opened on this line is only closed on line 5 (an unbalanced quote?)'
    )


def test_empty_values_are_called_empty(tmp_path: Path) -> None:
    assert error_of(write(tmp_path, HEADER + "u1,i1,4,\nu2,i3,4,6\n")).endswith(
        "line 2: empty timestamp"
    )
    assert error_of(write(tmp_path, HEADER + "u1,i1,4,5\nu2,i3,,6\n")).endswith(
        "line 3: empty rating"
    )
    events = "user_id,item_id,event_type,rating\nu1,i1,click,\nu2,i2,,\n"
    assert error_of(write(tmp_path, events)).endswith("line 3: empty event type")


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, HEADER))
    assert message.endswith(
        "log.csv: holds no interactions: only the header line (user_id, item_id, rating, timestamp)"
    )
    assert "cleaning" not in message
    assert "the file is empty; expected a header line" in error_of(write(tmp_path, ""))


def test_cleaning_that_leaves_nothing_says_which_step(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "u1,i1,2,1\nu2,i2,3,2\n")
    message = error_of(path, cleaning=CleaningOptions(min_rating=4))
    assert message.endswith(
        "no interactions left after cleaning: 2 read; 0 after the event policy (min_rating=4)"
    )


def test_parquet_problems_name_the_data_row(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": ["a", None, "c"], "item_id": ["x", "y", "z"]}).to_parquet(path)
    assert error_of(path).endswith("log.parquet: empty user id (data row 2)")


def test_a_good_file_with_dates_and_a_multiline_id_still_loads(tmp_path: Path) -> None:
    text = 'user_id,item_id,timestamp\na,"multi\nline",2024-01-02\na,b,2024-01-01\n'
    ds = load_dataset(write(tmp_path, text))
    assert [ds.items.id(int(i)) for i in ds.interactions.history(0)] == ["b", "multi\nline"]


# --- catalogue list cells ---------------------------------------------------------------------


def test_a_pipe_list_whose_first_entry_is_quoted_keeps_every_entry(tmp_path: Path) -> None:
    log = write(tmp_path, "user_id,item_id\nu,a\nu,b\nu,c\n")
    items = tmp_path / "items.parquet"
    pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "tags": ['"artsy"|atmospheric|gritty', "'Noir', 'Crime, Drama'", "plain|one"],
        }
    ).to_parquet(items)
    frame = load_tabular(log, catalog=items).catalog.frame.set_index("item")
    assert frame.at["a", "tags"] == ["artsy", "atmospheric", "gritty"]
    assert frame.at["b", "tags"] == ["Noir", "Crime, Drama"]  # a whole quoted list
    assert frame.at["c", "tags"] == ["plain", "one"]


def test_token_lists_read_the_quoted_form_only_for_a_whole_cell() -> None:
    assert parse_token_list('"artsy" atmospheric gritty') == ["artsy", "atmospheric", "gritty"]
    assert parse_token_list("'Beauty', \"Women's\"") == ["Beauty", "Women's"]
    assert parse_token_list("'Beauty', 'Skin Care',") == ["Beauty", "Skin Care"]
