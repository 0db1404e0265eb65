"""Vocabulary, Interactions, Histories and splits on small logs with known answers."""

import numpy as np
import pandas as pd
import pytest

from lmrec.data import (
    Dataset,
    Histories,
    Interactions,
    Vocabulary,
    cold_items,
    leave_one_out,
    random_holdout,
    temporal,
)
from lmrec.errors import ConfigError, LmrecError


def test_vocabulary_round_trip_and_growth():
    v = Vocabulary(["b", "a", 7])
    assert v.index("7") == 2 and v.id(0) == "b"
    assert v.indexes(["a", "x"], missing="mark").tolist() == [1, -1]
    with pytest.raises(LmrecError, match="unknown"):
        v.indexes(["zz"])
    grown = v.copy()
    grown.extend(["c", "a"])
    assert len(grown) == 4 and len(v) == 3 and grown.index("a") == 1
    assert Vocabulary(v.to_list()) == v


def test_interactions_sorted_by_time_with_file_order_on_ties():
    # user 0: items 5 (t=2), 3 (t=1), 4 (t=1, later line) -> time order 3, 4, 5
    log = Interactions.build(
        np.array([0, 0, 0, 1]), np.array([5, 3, 4, 1]), 2, 6, timestamps=np.array([2, 1, 1, 0])
    )
    assert log.history(0).tolist() == [3, 4, 5]
    assert log.history(1).tolist() == [1]
    h = log.histories([1, 0])
    assert [h[0].tolist(), h[1].tolist()] == [[1], [3, 4, 5]]
    assert log.matrix().toarray().sum() == 4


def test_histories_padding_and_csr():
    h = Histories.from_lists([[1, 2, 3], [], [7]])
    assert h.padded(2, pad=0, offset=1).tolist() == [[3, 4], [0, 0], [0, 8]]
    m = h.to_csr(5)  # item 7 is beyond the 5 known items and is dropped
    assert m.shape == (3, 5) and m.nnz == 3
    repeated = Histories.from_lists([[1, 1, 3], [2]])
    assert repeated.to_csr(4).toarray().tolist() == [[0, 1, 0, 1], [0, 0, 1, 0]]
    summed = repeated.to_csr(4, binary=False, values=np.array([0.5, 2.0, 1.0, 3.0]))
    assert summed.toarray().tolist() == [[0, 2.5, 0, 1.0], [0, 0, 3.0, 0]]


def tied_dataset() -> Dataset:
    frame = pd.DataFrame(
        {"user": ["a", "a", "a", "a"], "item": ["10", "9", "2", "7"], "timestamp": [1, 2, 2, 2]}
    )
    return Dataset.from_frames("tied", frame)


@pytest.mark.parametrize("many", [False, True])
def test_weighted_rows_sums_each_querys_weighted_table_rows(many: bool) -> None:
    table = np.arange(12, dtype=np.float32).reshape(4, 3)  # row i = [3i, 3i+1, 3i+2]
    lists = [[1, 1, 3], [], [9, 0], [2]]  # a repeat, an empty history, an item past the table
    if many:  # past the dense path: the sparse one must give the same sums
        lists = lists * 1500
    h = Histories.from_lists(lists)
    values = np.tile(np.array([1.0, 2.0, 0.5, 4.0, 3.0, 1.0], np.float32), len(lists) // 4)
    got = h.weighted_rows(table, values)
    expected = np.array([[3 * 3 + 4.5, 3 * 4 + 5, 3 * 5 + 5.5], [0, 0, 0], [0, 3, 6], [6, 7, 8]])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.tile(expected, (len(lists) // 4, 1)))


def test_tie_break_decides_which_of_tied_items_is_held_out():
    ds = tied_dataset()

    def test_item(tie_break: str, seed: int = 0) -> str:
        d = ds.with_tie_break(tie_break, seed)
        return d.items.id(int(leave_one_out(d.interactions).test.items[0]))

    assert test_item("file") == "7"  # the last line
    assert test_item("item") == "9"  # numeric ids: 2 < 7 < 9, not "10" < "2" as strings
    shuffled = {test_item("random", s) for s in range(20)}
    assert shuffled == {"2", "7", "9"}  # any tied item, never the earlier "10"
    d = ds.with_tie_break("item")
    assert d.tie_break == "item" and len(d.interactions) == 4
    assert d.items.id(int(d.interactions.items[0])) == "10"  # the untied first row stays first
    with pytest.raises(ConfigError, match="choose one of file, item, random"):
        ds.with_tie_break("time")


def test_leave_one_out_holds_out_last_two():
    log = Interactions.build(
        np.array([0, 0, 0, 0, 1, 1]),
        np.array([0, 1, 2, 3, 0, 1]),
        2,
        4,
        timestamps=np.array([1, 2, 3, 4, 1, 2]),
    )
    s = leave_one_out(log)
    assert s.test.history(0).tolist() == [3]
    assert s.valid.history(0).tolist() == [2]
    assert s.train.history(0).tolist() == [0, 1]
    assert s.train.history(1).tolist() == [0, 1]  # fewer than 3: all in training
    assert s.test_history.history(0).tolist() == [0, 1, 2]


def test_temporal_split_uses_a_global_cutoff():
    log = Interactions.build(
        np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3]), 2, 4, timestamps=np.array([1, 10, 2, 3])
    )
    s = temporal(log, cutoff=5, valid_fraction=0.0)
    assert s.test.history(0).tolist() == [1]
    assert len(s.test) == 1 and len(s.train) == 3


def test_random_and_cold_splits_are_deterministic(parity):
    a, b = random_holdout(parity, seed=3), random_holdout(parity, seed=3)
    assert np.array_equal(a.test.items, b.test.items)
    c = cold_items(parity, test_fraction=0.2, seed=1)
    assert len(c.cold_items) == 6
    assert not np.isin(c.train.items, c.cold_items).any()
    assert np.isin(c.test.items, c.cold_items).all()


def test_catalog_says_which_text_fields_hold_something() -> None:
    import pandas as pd

    from lmrec.data.catalog import Catalog

    frame = pd.DataFrame(
        {
            "title": [f"Item {i}" for i in range(40)],
            "brand": ["Acme"] + [""] * 39,  # 1 in 40: under the 5% share
            "categories": [["x"]] * 2 + [[]] * 38,  # 2 in 40: exactly 5%
        }
    )
    catalog = Catalog(frame)
    assert catalog.has_titles
    assert catalog.text_fields_present() == ("title", "categories")
    assert not Catalog.empty(3).has_titles and Catalog.empty(3).text_fields_present() == ()
