"""The embedding cache: hits encode nothing, changes re-encode only what changed."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.data.catalog import Catalog
from lmrec.text import EmbeddingCache, ItemTextConfig, encode_catalog, text_key

from .conftest import CountingEncoder

TEXTS = ["red lipstick", "lip colour makeup", "garden hose", "argan oil shampoo"]


def test_second_run_encodes_nothing(tmp_path: Path, counting: CountingEncoder) -> None:
    cache = EmbeddingCache(tmp_path)
    first, stats = cache.encode(counting, TEXTS)
    assert (stats.n_encoded, stats.n_cached) == (4, 0)
    again, stats = cache.encode(counting, TEXTS)
    assert (stats.n_encoded, stats.n_cached) == (0, 4)
    assert counting.n_encoded == 4
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, counting.inner.encode(TEXTS), atol=1e-6)


def test_changed_text_re_encodes_only_that_text(tmp_path: Path, counting: CountingEncoder) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.encode(counting, TEXTS)
    changed = [*TEXTS[:2], "garden hose, 50 ft", TEXTS[3]]
    vectors, stats = cache.encode(counting, changed)
    assert counting.calls[-1] == ["garden hose, 50 ft"]
    assert (stats.n_encoded, stats.n_cached) == (1, 3)
    np.testing.assert_allclose(
        vectors[2], counting.inner.encode(["garden hose, 50 ft"])[0], atol=1e-6
    )


def test_duplicates_are_encoded_once(tmp_path: Path, counting: CountingEncoder) -> None:
    vectors, stats = EmbeddingCache(tmp_path).encode(counting, ["soap", "soap", "nail polish"])
    assert counting.calls == [["soap", "nail polish"]]
    assert stats.n_unique == 2
    np.testing.assert_array_equal(vectors[0], vectors[1])


def test_identities_do_not_share_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put("model-a", [text_key("x")], np.ones((1, 3), np.float32))
    _, found = cache.lookup("model-b", [text_key("x")])
    assert not found.any()
    _, found = cache.lookup("model-a", [text_key("x")])
    assert found.all()


def test_int8_storage_round_trips(tmp_path: Path, counting: CountingEncoder) -> None:
    cache = EmbeddingCache(tmp_path, dtype="int8")
    fresh, _ = cache.encode(counting, TEXTS)
    cached, stats = cache.encode(counting, TEXTS)
    assert stats.n_encoded == 0
    np.testing.assert_allclose(fresh, cached, atol=1e-6)
    exact = counting.inner.encode(TEXTS)
    assert np.min(np.sum(cached * exact, axis=1)) > 0.999
    shard = next((tmp_path).rglob("shard-*.npz"))
    with np.load(shard, allow_pickle=False) as npz:
        assert npz["q"].dtype == np.int8


def test_shards_are_merged_and_nothing_is_lost(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, max_shards=3)
    rng = np.random.default_rng(0)
    keys = [text_key(str(i)) for i in range(10)]
    vectors = rng.normal(size=(10, 4)).astype(np.float32)
    for i in range(10):
        cache.put("m", [keys[i]], vectors[i : i + 1])
    assert len(list(tmp_path.rglob("shard-*.npz"))) <= 3
    got, found = cache.lookup("m", keys)
    assert found.all()
    np.testing.assert_array_equal(got, vectors)


def test_concurrent_writers_and_a_corrupt_shard(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, max_shards=4)
    keys = [text_key(str(i)) for i in range(40)]
    vectors = np.eye(40, dtype=np.float32)

    def write(part: int) -> None:
        for i in range(part, 40, 4):
            EmbeddingCache(tmp_path, max_shards=4).put("m", [keys[i]], vectors[i : i + 1])

    threads = [threading.Thread(target=write, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    folder = next(tmp_path.iterdir())
    (folder / "shard-99999999999999999999-0-broken.npz").write_bytes(b"not a zip")
    got, found = cache.lookup("m", keys)
    assert found.all()
    np.testing.assert_array_equal(got, vectors)
    assert not list(folder.glob(".tmp-*"))


def test_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert EmbeddingCache().directory == tmp_path / "lmrec" / "embeddings"


def test_encode_catalog_end_to_end(tmp_path: Path, counting: CountingEncoder) -> None:
    catalog = Catalog(
        pd.DataFrame(
            {
                "item": ["a", "b", "c"],
                "title": ["Red Lipstick", "Garden Hose", ""],
                "categories": [["Makeup"], ["Garden"], []],
            }
        )
    )
    cache = EmbeddingCache(tmp_path)
    config = ItemTextConfig(fields=("title", "categories"))
    vectors, stats = encode_catalog(catalog, counting, cache, config)
    assert vectors.shape == (3, 384)
    assert stats.text.id_only_items == (2,)
    assert (stats.n_encoded, stats.n_cached) == (3, 0)
    again, stats = encode_catalog(catalog, counting, cache, config)
    assert (stats.n_encoded, stats.n_cached) == (0, 3)
    np.testing.assert_array_equal(vectors, again)
    assert stats.identity == counting.identity
    uncached, stats = encode_catalog(catalog, counting)
    assert stats.n_encoded == 3
    np.testing.assert_allclose(uncached, vectors, atol=1e-6)


def test_fully_cached_texts_never_load_the_model(tmp_path: Path, counting: CountingEncoder) -> None:
    from lmrec.text import SentenceTransformerEncoder

    cache = EmbeddingCache(tmp_path)
    expected, _ = cache.encode(counting, TEXTS)
    fresh = SentenceTransformerEncoder()
    assert fresh.identity == counting.identity
    vectors, stats = cache.encode(fresh, TEXTS)
    assert stats.n_encoded == 0
    assert not fresh.loaded
    np.testing.assert_array_equal(vectors, expected)
