"""MultiInterest: conformance, adaptive K, quotas that keep a minority interest, exact contributions."""

from __future__ import annotations

import numpy as np
from tests.models.conformance import PersonalisedBehaviour, StrategyConformance

from lmrec.data import Catalog, Histories, Interactions
from lmrec.models import TrainingData
from lmrec.models.multi_interest import (
    MultiInterest,
    interest_label,
    n_interests,
    spherical_kmeans,
)


class TestMultiInterest(StrategyConformance, PersonalisedBehaviour):
    strategy = MultiInterest


def two_topics(n_per_topic: int = 40, seed: int = 0) -> np.ndarray:
    """Items 0..n-1 point along axis 0 (topic A), items n..2n-1 along axis 1 (topic B)."""
    rng = np.random.default_rng(seed)
    v = np.zeros((2 * n_per_topic, 16), dtype=np.float32)
    v[:n_per_topic, 0] = 1.0
    v[n_per_topic:, 1] = 1.0
    v += 0.15 * rng.standard_normal(v.shape).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fit(vectors: np.ndarray, **params: object) -> MultiInterest:
    log = Interactions.build(np.zeros(0), np.zeros(0), 1, len(vectors))
    return MultiInterest(params).fit(TrainingData(log, item_vectors=vectors))


def test_number_of_interests_adapts_to_the_history() -> None:
    assert [n_interests(n, 4) for n in (0, 1, 2, 3, 8, 9, 18, 19, 200)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]


def test_kmeans_separates_two_directions() -> None:
    v = two_topics(5)
    labels, centres = spherical_kmeans(v.astype(np.float64), np.ones(10), 2)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, rtol=1e-5)


def test_quota_keeps_the_minority_interest_a_single_profile_drowns() -> None:
    v = two_topics(40)
    history = [*range(8), 40, 41]  # 8 items of topic A, 2 of topic B
    quota = fit(v, merge="quota", quota_depth=10, min_share=0.2, recency=0.0)
    single = fit(v, merge="weighted", recency=0.0)
    found = quota.interests(history)
    assert (
        sum(i.weight for i in found) == np.float32(1.0)
        or abs(sum(i.weight for i in found) - 1) < 1e-6
    )
    minority = [i for i in found if set(i.members.tolist()) == {40, 41}]
    assert minority and abs(minority[0].weight - 0.2) < 1e-6
    h = Histories.from_lists([history])
    for model, expected_b in ((quota, 2), (single, 0)):
        s = model.score(h)[0]
        s[history] = -np.inf
        top = np.argsort(-s, kind="stable")[:10]
        n_b = int((top >= 40).sum())
        if expected_b:
            assert n_b >= expected_b, top
            assert int((top < 40).sum()) >= 6, top  # the majority keeps most of the list
        else:
            assert n_b == 0, top


def test_contributions_sum_to_the_interest_similarity() -> None:
    v = two_topics(10)
    model = fit(v, merge="max", recency=0.1)
    history = np.array([0, 1, 2, 10, 11])
    items = np.array([3, 12])
    c = model.contributions(history, items)
    s = model.score(Histories.from_lists([history]))[0]
    np.testing.assert_allclose(c.sum(axis=1), s[items], rtol=1e-4, atol=1e-5)
    # Item 3 (topic A) is explained by the A members only, item 12 by the B members only.
    assert (c[0, 3:] == 0).all() and (c[0, :3] > 0).all()
    assert (c[1, :3] == 0).all() and (c[1, 3:] > 0).all()


def test_interest_label_prefers_the_shared_specific_category() -> None:
    import pandas as pd

    catalog = Catalog(
        pd.DataFrame(
            {
                "title": ["a", "b", "c"],
                "categories": [
                    ["Beauty", "Makeup", "Mascara"],
                    ["Beauty", "Makeup", "Mascara"],
                    ["Beauty", "Skin Care"],
                ],
                "brand": ["Acme", "Acme", "Other"],
            }
        )
    )
    assert interest_label(catalog, [0, 1]) == "Mascara / Acme"
    assert interest_label(catalog, [0, 1, 2]).startswith("Beauty")


def test_weighted_merge_is_the_cosine_to_the_single_profile() -> None:
    v = two_topics(20)
    model = fit(v, merge="weighted", recency=0.1)
    history = [0, 1, 2, 25, 26]
    got = model.score(Histories.from_lists([history]))[0]
    np.testing.assert_allclose(got, v @ model.profile(history), atol=1e-5)


def test_batched_scores_equal_one_user_at_a_time() -> None:
    # _score computes every interest of a batch in one product; one user alone must agree.
    v = two_topics(40)
    model = fit(v, merge="quota", quota_depth=10)
    hists = [[*range(8), 40, 41], [45, 46, 47], [3], [], [5, 50, 6, 51, 7, 52]] * 15
    batch = model.score(Histories.from_lists(hists))
    for q in (0, 1, 3, 4, 73):
        alone = model.score(Histories.from_lists([hists[q]]))[0]
        np.testing.assert_allclose(batch[q], alone, atol=1e-6)
