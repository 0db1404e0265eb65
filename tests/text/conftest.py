"""Fixtures for the text tests: one real encoder per session, and a counting wrapper."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from lmrec.text import SentenceTransformerEncoder


class CountingEncoder:
    """A real encoder that counts the texts it is asked to encode."""

    def __init__(self, inner: SentenceTransformerEncoder):
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size=batch_size, show_progress=show_progress)


@pytest.fixture(scope="session")
def encoder() -> SentenceTransformerEncoder:
    """The bundled all-MiniLM-L6-v2 on torch, loaded once per session."""
    return SentenceTransformerEncoder().load()


@pytest.fixture()
def counting(encoder: SentenceTransformerEncoder) -> CountingEncoder:
    return CountingEncoder(encoder)


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session's ONNX exports go (exported once, shared by the ONNX tests)."""
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random sentence-transformers model (BERT, 2 layers of 32, mean pooling) with
    MiniLM's tokenizer: a real model of the same family that exports to ONNX in a second."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from lmrec.text import bundled_model_path

    root = tmp_path_factory.mktemp("tiny-model")
    tokenizer = BertTokenizerFast.from_pretrained(str(bundled_model_path()), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(root / "bert"))
    tokenizer.save_pretrained(str(root / "bert"))
    modules = [Transformer(str(root / "bert"), max_seq_length=64), Pooling(32, "mean")]
    SentenceTransformer(modules=modules, device="cpu").save(str(root / "model"))
    return root / "model"
