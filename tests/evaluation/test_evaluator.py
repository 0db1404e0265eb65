"""Full-ranking evaluation on tiny logs where every number can be worked out by hand."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from lmrec.data import Interactions, leave_one_out
from lmrec.evaluation import EvalOptions, ModelSpec, evaluate_model, run_experiment
from lmrec.models import Popularity, TrainingData


def test_popularity_full_ranking_by_hand():
    # Items by training popularity: 0 (3 users), 1 (2), 2 (1), 3 (0).
    train = Interactions.build(np.array([0, 1, 2, 0, 1, 2]), np.array([0, 0, 0, 1, 1, 2]), 3, 4)
    # user 0 has seen 0,1 -> ranking [2, 3]; target 2 at rank 1.
    # user 2 has seen 0,2 -> ranking [1, 3]; target 3 at rank 2.
    test = Interactions.build(np.array([0, 2]), np.array([2, 3]), 3, 4)
    model = Popularity().fit(TrainingData(train))
    res = evaluate_model(model, train, test, options=EvalOptions(ks=(1, 2), save_top=2))
    assert res.users.tolist() == [0, 2]
    assert res.rankings.tolist() == [[2, 3], [1, 3]]
    assert res.summary["hr@1"] == pytest.approx(0.5)
    assert res.summary["ndcg@2"] == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    assert res.summary["mrr@2"] == pytest.approx((1.0 + 0.5) / 2)
    assert res.summary["coverage@1"] == pytest.approx(2 / 4)


def test_training_items_never_ranked(parity):
    split = leave_one_out(parity)
    model = Popularity().fit(TrainingData(split.train))
    res = evaluate_model(
        model, split.test_history, split.test, options=EvalOptions(ks=(10,), save_top=15)
    )
    hist = split.test_history
    for row, user in enumerate(res.users):
        assert not set(res.rankings[row].tolist()) & set(hist.history(user).tolist())


def test_experiment_json_contract_and_rankings(tiny_dataset, tmp_path):
    exp = run_experiment(
        tiny_dataset, "loo", [ModelSpec.parse("pop"), ModelSpec.parse("itemknn")], reference="pop"
    )
    doc = exp.to_json()
    assert doc["dataset"] == "tiny" and doc["protocol"] == "loo"
    assert doc["n_users"] == 6 and doc["n_items"] == 8
    row = doc["results"]["itemknn"]
    for key in (
        "ndcg@10",
        "recall@10",
        "hr@10",
        "mrr@10",
        "coverage@10",
        "fit_seconds",
        "eval_seconds",
    ):
        assert key in row
    assert "vs_reference" in row and "ci95" in row
    paths = exp.write_rankings(tmp_path)
    import json

    lines = [json.loads(x) for x in paths[0].read_text().splitlines()]
    assert {"user", "truth", "ranked"} <= set(lines[0])
    assert len(lines) == doc["n_test_users"]


def test_json_is_strict_when_a_segment_is_empty(parity):
    # Every parity user has 15 items: nobody has a short history, so that segment is empty.
    from lmrec.data import Dataset

    log = parity
    frame = pd.DataFrame({"user": log.users, "item": log.items, "timestamp": log.timestamps})
    doc = run_experiment(
        Dataset.from_frames("parity", frame), "loo", [ModelSpec.parse("pop")]
    ).to_json()
    seg = doc["results"]["pop"]["segments"]["short_history"]
    assert seg["n_users"] == 0 and seg["ndcg@10"] is None
    json.dumps(doc, allow_nan=False)  # valid JSON: no NaN
