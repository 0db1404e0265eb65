"""ANN candidates: the faiss index finds what exact scoring finds, and the pipeline uses it
above its size threshold without changing what it returns."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import split
from lmrec.models import TrainingData
from lmrec.models.content import ContentProfile
from lmrec.models.factorization import ALS
from lmrec.pipeline import Pipeline, PipelineConfig, Query, UserHistories
from lmrec.ranking.ann import AnnOptions, ItemIndex
from lmrec.serving.encoders import HashingEncoder


def clustered(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows around 50 topic centres, and profile queries (means of 4 same-topic rows)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d)).astype(np.float32)
    topic = rng.integers(0, 50, n)
    x = centres[topic] + 0.8 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    picks = [rng.choice(np.flatnonzero(topic == t), 4) for t in rng.integers(0, 50, 100)]
    q = np.stack([x[p].mean(axis=0) for p in picks])
    return x, q / np.linalg.norm(q, axis=1, keepdims=True)


def recall_at(found: np.ndarray, x: np.ndarray, q: np.ndarray, k: int) -> float:
    exact = np.argsort(-(q @ x.T), axis=1)[:, :k]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact, strict=True)]))


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.parametrize("storage", ["f32", "f16"])
def test_index_recall_at_100_is_at_least_095(kind: str, storage: str) -> None:
    x, q = clustered(20_000, 32)
    index = ItemIndex(x, AnnOptions(kind=kind, storage=storage))
    assert len(index) == 20_000 and index.dims == 32
    assert recall_at(index.search(q, 100), x, q, 100) >= 0.95


def test_exact_scores_of_candidates_and_live_inserts() -> None:
    x, q = clustered(5_000, 16)
    index = ItemIndex(x[:4_000])
    ids, values = index.top(q[:1], 50)[0]
    np.testing.assert_allclose(values, x[ids] @ q[0], rtol=1e-6)
    assert (np.diff(values) <= 1e-6).all()  # best first
    # Rows added later are found at once, numbered after the first ones.
    index.add(x[4_000:])
    assert len(index) == 5_000
    found = index.search(x[4_000:4_050], 1)[:, 0]
    assert (found == np.arange(4_000, 4_050)).mean() >= 0.96
    with pytest.raises(ValueError, match="width 16"):
        index.add(np.zeros((2, 8), np.float32))


@pytest.fixture(scope="module")
def sample():  # type: ignore[no-untyped-def]
    ds = load_dataset("sample")
    s = split(ds.interactions, "loo", seed=0)
    return ds, s


def _pipeline(ds, s, model, ann: AnnOptions, vectors=None) -> Pipeline:  # type: ignore[no-untyped-def]
    return Pipeline(
        model,
        ds.items,
        ds.catalog,
        histories=UserHistories.from_interactions(ds.users, s.test_history),
        item_vectors=vectors,
        config=PipelineConfig(ann=ann),
    )


def test_pipeline_uses_the_index_above_its_threshold_and_answers_alike(sample) -> None:  # type: ignore[no-untyped-def]
    ds, s = sample
    model = ALS(embedding_dim=16, epochs=5).fit(TrainingData(s.train))
    exact = _pipeline(ds, s, model, AnnOptions())  # 200 items < min_items: exact
    approx = _pipeline(ds, s, model, AnnOptions(min_items=0, candidates=40))
    assert exact.candidate_index() is None and approx.candidate_index() is not None
    queries = [Query(user_id=ds.users.id(u), k=10, explain=False) for u in range(60)]
    same = [
        len(set(a.item_ids()) & set(e.item_ids())) / 10
        for a, e in zip(approx.rank(queries), exact.rank(queries), strict=True)
    ]
    assert np.mean(same) >= 0.95
    # A filter that leaves fewer items than the list needs among the candidates falls back
    # to scoring every item, so the list is the exact one.
    narrow = [Query(user_id=ds.users.id(u), k=10, filters={"brand": "Luxe Lab"}) for u in range(5)]
    for a, e in zip(approx.rank(narrow), exact.rank(narrow), strict=True):
        assert a.item_ids() == e.item_ids()


def test_items_a_model_gains_are_inserted_into_the_index(sample) -> None:  # type: ignore[no-untyped-def]
    ds, s = sample
    encoder = HashingEncoder(dim=32)
    vectors = encoder(ds.catalog.texts())
    model = ContentProfile().fit(TrainingData(s.train, item_vectors=vectors))
    pipeline = _pipeline(ds, s, model, AnnOptions(min_items=0), vectors)
    index = pipeline.candidate_index()
    assert index is not None and len(index) == ds.n_items
    model.add_items(vectors[:3] * 1.0)
    again = pipeline.candidate_index()
    assert again is index and len(index) == ds.n_items + 3
    np.testing.assert_array_equal(index.rows[-3:], vectors[:3])
