"""Fusion: reciprocal rank fusion by hand, the logistic ranker and the candidate features."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lmrec.ranking.fusion import (
    ITEM_FEATURES,
    FeatureContext,
    LogisticFusion,
    candidate_features,
    feature_names,
    ranks_within,
    reciprocal_rank_fusion,
)


def test_rrf_by_hand() -> None:
    a = np.array([[2, 0, 1]])
    b = np.array([[0, 3, -1]])
    got = reciprocal_rank_fusion([a, b], n_items=5, k=60)
    expected = np.zeros((1, 5))
    expected[0, 2] = 1 / 61
    expected[0, 0] = 1 / 62 + 1 / 61
    expected[0, 1] = 1 / 63
    expected[0, 3] = 1 / 62
    np.testing.assert_allclose(got, expected)
    weighted = reciprocal_rank_fusion([a, b], n_items=5, k=60, weights=[2.0, 0.0])
    np.testing.assert_allclose(weighted[0, 0], 2 / 62)


def test_ranks_within_depth() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    got = ranks_within(scores, np.array([[1, 3, 0, -1]]), depth=2)
    np.testing.assert_array_equal(got, [[0, 1, 2, 2]])


def test_logistic_fusion_learns_the_informative_feature_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 3))
    x[:, 2] = 5.0  # constant: gets no weight
    y = (x[:, 0] + 0.1 * rng.standard_normal(2000) > 1.0).astype(float)
    model = LogisticFusion(reg=1.0).fit(x, y)
    assert model.coef is not None
    assert model.coef[0] > 1.0 and abs(model.coef[1]) < 0.3 and model.coef[2] == 0.0
    again = LogisticFusion.from_state(model.state())
    np.testing.assert_allclose(again.score(x), model.score(x))


def test_candidate_features_shape_and_values() -> None:
    scores = [np.array([[3.0, 2.0, 1.0, 0.0]]), np.array([[0.0, 1.0, 2.0, 3.0]])]
    cands = np.array([[0, 3, -1]])
    attrs = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32))
    vectors = np.eye(4, dtype=np.float32)
    ctx = FeatureContext(np.array([10, 0, 5, 1]), np.array([0.0, 0.5, 1.0, 1.0]), attrs, vectors)
    f = candidate_features(
        scores,
        cands,
        2,
        ctx,
        [np.array([1])],
        query_vectors=np.array([[0, 0, 0, 1.0]]),
    )
    names = feature_names(["a", "b"])
    assert f.shape == (1, 3, len(names)) and len(names) == 4 + len(ITEM_FEATURES)
    col = {n: j for j, n in enumerate(names)}
    assert f[0, 0, col["a:rrank"]] == 1.0 and f[0, 1, col["a:rrank"]] == 1 / 3  # rank 3 >= depth
    assert f[0, 1, col["b:rrank"]] == 1.0
    assert f[0, 0, col["attribute_match"]] == 1.0 and f[0, 1, col["attribute_match"]] == 0.5
    assert f[0, 1, col["text_query"]] == 1.0 and f[0, 0, col["text_query"]] == 0.0
    # Context (hour, device) is not a feature: logs carry none, so its weights would be 0.
    assert not {"hour_sin", "hour_cos", "mobile"} & set(names)


def test_ranks_within_treat_rounding_noise_as_a_tie_broken_by_index() -> None:
    """Item 3 scores 1.0 plus rounding noise (what a product over a different batch size
    gives), item 1 exactly 1.0: they tie, and the lower index ranks first either way;
    a real gap (item 0 at 0.99) still ranks below them."""
    from lmrec.ranking.fusion import ranks_within

    cands = np.array([[0, 1, 2, 3]])
    one = np.float32(1.0)
    for twin in (np.nextafter(one, np.float32(2)), np.nextafter(one, np.float32(0))):
        scores = np.array([[0.99, 1.0, 0.2, twin]], dtype=np.float32)
        assert scores[0, 3] != scores[0, 1]
        assert ranks_within(scores, cands, depth=3).tolist() == [[2, 0, 3, 1]]
