"""The ONNX backends agree with torch; the export is made once and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmrec.text import OnnxEncoder, SentenceTransformerEncoder, export_onnx

SENTENCES = [
    "red lipstick",
    "lip colour makeup",
    "garden hose",
    "Moisturising shampoo for dry, curly hair with argan oil",
    "WAWO 15 Color Professional Makeup Eyeshadow Camouflage Facial Concealer Palette",
    " ".join(f"word{i}" for i in range(1000)),
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(encoder: SentenceTransformerEncoder) -> np.ndarray:
    return encoder.encode(SENTENCES)


@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.9999), ("onnx-int8", 0.98)])
def test_onnx_agrees_with_torch(
    backend: str, floor: float, onnx_dir: Path, reference: np.ndarray
) -> None:
    enc = OnnxEncoder(backend=backend, onnx_dir=onnx_dir)
    v = enc.encode(SENTENCES, batch_size=3)
    assert v.shape == (len(SENTENCES), 384)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(v * reference, axis=1)
    assert cosine.min() >= floor
    assert cosine.mean() >= max(floor, 0.99)
    assert ("onnx-fp32" if backend == "onnx" else "onnx-int8") in enc.identity


def test_int8_keeps_the_semantic_order(onnx_dir: Path) -> None:
    lipstick, lip_colour, hose = OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir).encode(
        ["red lipstick", "lip colour makeup", "garden hose"]
    )
    assert lipstick @ lip_colour > lipstick @ hose + 0.3


def test_export_happens_once(onnx_dir: Path) -> None:
    first = export_onnx(None, onnx_dir)
    stamp = (first / "model.onnx").stat().st_mtime_ns
    again = OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir).load()
    assert again.model_path.parent == first
    assert (first / "model.onnx").stat().st_mtime_ns == stamp
    assert not list(onnx_dir.glob(".tmp-*"))


def test_batch_size_does_not_change_vectors(onnx_dir: Path) -> None:
    enc = OnnxEncoder(backend="onnx", onnx_dir=onnx_dir)
    np.testing.assert_allclose(
        enc.encode(SENTENCES, batch_size=1), enc.encode(SENTENCES, batch_size=7), atol=1e-5
    )


def test_identities_differ_by_backend(onnx_dir: Path, encoder: SentenceTransformerEncoder) -> None:
    ids = {
        encoder.identity,
        OnnxEncoder(backend="onnx", onnx_dir=onnx_dir).identity,
        OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir).identity,
        OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir, reduce_range=True).identity,
    }
    assert len(ids) == 4


# Character counts and token counts disagree here: sorted by characters, each batch of two
# would mix a 3-token text with an 8-token one; sorted by tokens, no batch is padded.
BY_TOKENS = ["professional", "a b c d e f", "information", "g h i j k l"]


class RecordingOnnxEncoder(OnnxEncoder):
    """Records the token count of every text in every batch it runs."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[list[int]] = []

    def _encode_batch(self, items: list[Any]) -> np.ndarray:
        self.batches.append([len(e.ids) for e in items])
        return super()._encode_batch(items)


def test_batches_are_sorted_by_token_count(onnx_dir: Path) -> None:
    enc = RecordingOnnxEncoder(backend="onnx", onnx_dir=onnx_dir, parallel_batches=False)
    together = enc.encode(BY_TOKENS, batch_size=2)
    # [CLS] + one token per letter + [SEP]; [CLS] + one word piece + [SEP]
    assert enc.batches == [[8, 8], [3, 3]]
    alone = np.vstack([enc.encode([t]) for t in BY_TOKENS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_parallel_batches_give_the_same_vectors_in_order(onnx_dir: Path) -> None:
    one_at_a_time = OnnxEncoder(
        backend="onnx-int8", onnx_dir=onnx_dir, threads=2, parallel_batches=False
    )
    parallel = OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir, threads=2)
    assert parallel.config.parallel_batches  # the default
    texts = SENTENCES + BY_TOKENS
    np.testing.assert_allclose(
        parallel.encode(texts, batch_size=2), one_at_a_time.encode(texts, batch_size=2), atol=1e-5
    )
    assert parallel.identity == one_at_a_time.identity  # same vectors, same cache entries
