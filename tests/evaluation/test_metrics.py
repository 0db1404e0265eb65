"""Metrics against values computed by hand."""

import math

import numpy as np
import pytest

from lmrec.evaluation.metrics import accuracy_metrics, gini, intra_list_diversity, novelty


def test_single_relevant_item_at_rank_three():
    hits = np.array([[False, False, True, False, False]])
    m = accuracy_metrics(hits, np.array([1]), k=5)
    assert m["hr"][0] == 1.0
    assert m["recall"][0] == 1.0
    assert m["precision"][0] == pytest.approx(1 / 5)
    assert m["ndcg"][0] == pytest.approx(1 / math.log2(4))  # ideal DCG = 1
    assert m["mrr"][0] == pytest.approx(1 / 3)
    assert m["map"][0] == pytest.approx(1 / 3)  # precision@3 = 1/3, one relevant
    p, r = 0.2, 1.0
    assert m["f1"][0] == pytest.approx(2 * p * r / (p + r))


def test_two_relevant_items_one_found():
    # relevant items at ranks 1 and (outside the list); K = 3
    hits = np.array([[True, False, False]])
    m = accuracy_metrics(hits, np.array([2]), k=3)
    assert m["recall"][0] == pytest.approx(0.5)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg"][0] == pytest.approx(1 / idcg)
    assert m["map"][0] == pytest.approx(1 / 2)  # (1/1) / min(2, 3)
    assert m["mrr"][0] == 1.0


def test_two_hits_ranks_two_and_three():
    hits = np.array([[False, True, True, False]])
    m = accuracy_metrics(hits, np.array([2]), k=4)
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg"][0] == pytest.approx(dcg / idcg)
    assert m["map"][0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m["precision"][0] == pytest.approx(0.5)


def test_miss_and_cutoff():
    hits = np.array([[False, False, False, True]])
    m = accuracy_metrics(hits, np.array([1]), k=3)  # the hit is at rank 4, beyond K
    assert all(
        m[name][0] == 0.0 for name in ("hr", "recall", "ndcg", "mrr", "precision", "map", "f1")
    )


def test_many_relevant_ideal_capped_at_k():
    hits = np.ones((1, 2), dtype=bool)
    m = accuracy_metrics(hits, np.array([5]), k=2)
    assert m["ndcg"][0] == pytest.approx(1.0)  # ideal DCG uses min(5, 2) items
    assert m["recall"][0] == pytest.approx(2 / 5)


def test_gini_known_values():
    assert gini(np.array([1, 1, 1, 1])) == pytest.approx(0.0)
    # all exposure on one of 4 items: (n - 1) / n
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(3 / 4)


def test_novelty_and_diversity_by_hand():
    counts = np.array([3, 1, 0])
    top = np.array([[0, 1]])
    expected = (-math.log2(4 / 4) - math.log2(2 / 4)) / 2  # (count + 1) / (users + 1), users = 3
    assert novelty(top, counts, n_users=3)[0] == pytest.approx(expected)
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert intra_list_diversity(np.array([[0, 1]]), vectors)[0] == pytest.approx(1.0)
    assert intra_list_diversity(np.array([[0, 2]]), vectors)[0] == pytest.approx(0.0)
