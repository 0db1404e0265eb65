"""Re-rankers on hand examples: MMR at both ends of lambda, exposure cap, boosts, suppression."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lmrec.ranking.rerank import (
    RerankOptions,
    exposure_cap,
    mmr,
    rerank,
    scale_relevance,
    suppress_similar,
)

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


def test_mmr_fills_the_k_places_then_keeps_the_relevance_order() -> None:
    # Six items: 0, 1, 2 alike, 3 different; MMR fills 2 places, the rest stay in relevance order.
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    items = np.arange(6)
    rel = np.array([6.0, 5.0, 4.0, 1.0, 3.0, 2.0])
    res = rerank(items, rel, RerankOptions(mmr_lambda=0.5), 2, vectors=vectors)
    np.testing.assert_array_equal(res.items, [0, 3])
    np.testing.assert_array_equal(list(res.positions["mmr"]), [0, 3, 1, 2, 4, 5])


def test_mmr_mean_penalty_weighs_every_picked_item_not_just_the_closest() -> None:
    # Picked so far (by relevance): 0 and 1 along different axes. Candidate 2 is a copy of
    # 0 (max sim 1, mean sim 0.5); candidate 3 is half-way (cos 0.71 to both: max 0.71,
    # mean 0.71). `max` prefers 3, `mean` prefers 2: it counts the whole list's redundancy.
    # Item 4 (irrelevant, a copy of 1) only anchors the min-max scaling of relevance.
    vectors = np.array([[1, 0], [0, 1], [1, 0], [0.7071, 0.7071], [0, 1]], dtype=np.float32)
    items = np.arange(5)
    rel = np.array([10.0, 9.9, 9.0, 8.9, 0.0])  # 0 and 1 are picked first at lambda 0.8
    assert mmr(items, rel, vectors, 0.8, 3, "max")[2] == 3
    assert mmr(items, rel, vectors, 0.8, 3, "mean")[2] == 2


def test_scale_relevance_by_hand() -> None:
    r = np.array([4.0, 3.0, 3.0, 1.0])
    np.testing.assert_allclose(scale_relevance(r, "minmax"), [1.0, 2 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(scale_relevance(np.log([1.0, 0.5, 0.25]), "exp"), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(scale_relevance(np.array([2.0, 2.0]), "minmax"), [1.0, 1.0])


# Items 0 and 1 alike, 2 and 3 alike and orthogonal to them.
PAIRS = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)


def test_mmr_exp_scale_keeps_a_strong_second_item_over_a_flat_tail() -> None:
    # Logits 0, -0.5, -1, -10. Min-max (1, 0.95, 0.9, 0): the outlier squeezes the top,
    # 0.85 * 0.95 - 0.15 = 0.658 < 0.85 * 0.9 = 0.765, so item 2. Exp (1, 0.607, 0.368, 0):
    # 0.85 * 0.607 - 0.15 = 0.366 > 0.85 * 0.368 = 0.313, so item 1 stays.
    rel = np.array([0.0, -0.5, -1.0, -10.0])
    np.testing.assert_array_equal(mmr(ITEMS, rel, PAIRS, 0.85, 2, "max", "minmax"), [0, 2])
    np.testing.assert_array_equal(mmr(ITEMS, rel, PAIRS, 0.85, 2, "max", "exp"), [0, 1])
    # The exp scale ignores the weakest candidate: dropping item 3 changes nothing.
    np.testing.assert_array_equal(mmr(ITEMS[:3], rel[:3], PAIRS[:3], 0.85, 2, "max", "exp"), [0, 1])
    # Lambda 1 is the relevance order on either scale.
    np.testing.assert_array_equal(mmr(ITEMS, rel, PAIRS, 1.0, 4, "mean", "exp"), [0, 1, 2, 3])


def test_rerank_passes_the_relevance_scale_to_mmr() -> None:
    rel = np.array([0.0, -0.5, -1.0, -10.0])
    for scale, second in (("minmax", 2), ("exp", 1)):
        opts = RerankOptions(mmr_lambda=0.85, mmr_relevance=scale)  # type: ignore[arg-type]
        np.testing.assert_array_equal(rerank(ITEMS, rel, opts, 2, vectors=PAIRS).items, [0, second])
