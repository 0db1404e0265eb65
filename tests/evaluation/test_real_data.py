"""Full-ranking evaluation on the real datasets against published anchors (DESIGN §4)."""

import pytest

from lmrec.data.loaders import load_dataset
from lmrec.evaluation import ModelSpec, run_experiment

pytestmark = pytest.mark.realdata


def test_beauty_popularity_matches_the_published_anchor(data_dir):
    ds = load_dataset("amazon-beauty", data_dir=data_dir)
    # The anchor was measured with models fit on the training split only.
    exp = run_experiment(
        ds, "loo", [ModelSpec.parse("pop"), ModelSpec.parse("itemknn")], refit=False
    )
    doc = exp.to_json()
    assert doc["n_test_users"] == 22_363
    pop = doc["results"]["pop"]
    # DESIGN §4: popularity NDCG@10 0.0054 on this protocol; our 95% interval must hold it.
    low, high = pop["ci95"]["ndcg@10"]
    assert low <= 0.0054 <= high
    # Collaborative filtering lands far above popularity (DESIGN: CF 0.034-0.045).
    assert doc["results"]["itemknn"]["ndcg@10"] > 0.03


def test_ml100k_cf_beats_popularity(data_dir):
    ds = load_dataset("ml-100k", data_dir=data_dir)
    doc = run_experiment(
        ds, "loo", [ModelSpec.parse("pop"), ModelSpec.parse("ease")], reference="pop"
    ).to_json()
    ease = doc["results"]["ease"]
    assert ease["vs_reference"]["ndcg@10"]["ci95"][0] > 0  # significantly better than popularity
