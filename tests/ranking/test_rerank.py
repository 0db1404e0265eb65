"""Re-rankers on hand examples: MMR at both ends of lambda, exposure cap, boosts, suppression."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lmrec.ranking.rerank import RerankOptions, exposure_cap, mmr, rerank, suppress_similar

# Items 0 and 1 point the same way; 2 is orthogonal to both; 3 is between.
VECTORS = np.array([[1, 0], [1, 0], [0, 1], [0.7071, 0.7071]], dtype=np.float32)
ITEMS = np.array([0, 1, 2, 3])
RELEVANCE = np.array([4.0, 3.0, 1.0, 2.0])


def test_mmr_lambda_one_is_the_relevance_order() -> None:
    np.testing.assert_array_equal(mmr(ITEMS, RELEVANCE, VECTORS, 1.0, 4), [0, 1, 3, 2])


def test_mmr_lambda_zero_picks_the_most_diverse_items() -> None:
    # First pick: a tie at 0, so the most relevant (0); then the item least like it (2),
    # then 3 (cos 0.71 to both) before 1 (a copy of 0).
    np.testing.assert_array_equal(mmr(ITEMS, RELEVANCE, VECTORS, 0.0, 4), [0, 2, 3, 1])


def test_mmr_in_between_trades_relevance_for_novelty() -> None:
    got = mmr(ITEMS, RELEVANCE, VECTORS, 0.5, 2)
    # After item 0: item 1 has 0.5*0.667 - 0.5*1 < 0; item 3 has 0.5*0.333 - 0.5*0.707 < item 2's 0 - 0.
    np.testing.assert_array_equal(got, [0, 2])


def test_exposure_cap_holds() -> None:
    items = np.arange(6)
    groups = np.array([0, 0, 0, 1, -1, 1])
    got = exposure_cap(items, groups, cap=1, k=4)
    np.testing.assert_array_equal(got, [0, 3, 4])
    assert max(np.bincount(groups[got][groups[got] >= 0])) <= 1


def test_suppress_similar_lowers_only_items_like_the_negative() -> None:
    s = suppress_similar(np.zeros(4), VECTORS, np.array([[1.0, 0.0]]), penalty=2.0, threshold=0.5)
    assert s[0] == s[1] == -2.0 and s[2] == 0.0 and -1.0 < s[3] < 0.0


def test_rerank_records_how_each_knob_moved_items() -> None:
    attrs = sp.csr_matrix(np.array([[0], [0], [1], [0]], dtype=np.float32))
    opts = RerankOptions(boosts={"brand=B": 10.0}, mmr_lambda=1.0)
    res = rerank(ITEMS, RELEVANCE, opts, 4, vectors=VECTORS, attributes=attrs, tokens=["brand=B"])
    assert res.items[0] == 2
    assert res.moved(2) == {"boosts": 3}
    capped = rerank(
        ITEMS, RELEVANCE, RerankOptions(exposure_cap=1), 3, groups=np.array([0, 0, 1, 1])
    )
    np.testing.assert_array_equal(capped.items, [0, 3])
    assert capped.moved(3) == {"exposure_cap": 1}
