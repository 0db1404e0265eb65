"""Text encoding on Ray: a catalogue's batches spread over workers, the same vectors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmrec.distributed._cluster import map_ordered
from lmrec.errors import ConfigError
from lmrec.text import BatchEncoder, EncoderConfig, OnnxEncoder, make_encoder

__all__ = ["RayEncoder"]

#: Batches in one unit of work: big enough that a round trip is noise, small enough to
#: balance (the first batches hold the longest texts) and to move the progress bar.
CHUNK_BATCHES = 8


class RayEncoder:
    """A `TextEncoder` whose batches run on Ray workers, each loading the model once.

    A local encoder (`config`: one, or its config) plans the work as `encode` would (texts sorted by token
    count, cut into batches); runs of `chunk` consecutive batches go to the workers,
    which encode exactly those batches (`BatchEncoder.encode_batches`), and their rows go
    back in place. The vectors are `make_encoder(config).encode`'s, bit for bit: the same
    batches through the same model, and a batch's vectors depend neither on the process
    nor on its thread count (`tests/test_distributed.py` checks it). `identity` is the
    local encoder's, so the embedding cache serves both alike. Connect first
    (`lmrec.distributed.connect`), or a local cluster is started.
    """

    def __init__(
        self,
        config: BatchEncoder | EncoderConfig | dict[str, Any] | None = None,
        *,
        chunk: int = CHUNK_BATCHES,
        threads: int | None = None,
    ):
        self._local = config if isinstance(config, BatchEncoder) else make_encoder(config)
        if isinstance(self._local, OnnxEncoder) and self._local.runtime_dir is not None:
            raise ConfigError(
                "RayEncoder: workers build their encoder from its config; an exported runtime "
                "directory (OnnxEncoder.from_runtime) has none"
            )
        self.config = self._local.config
        self.chunk = chunk
        self.threads = threads

    def __repr__(self) -> str:
        return f"RayEncoder(model={self.config.model!r}, backend={self.config.backend!r})"

    @property
    def dim(self) -> int:
        """Length of each vector (loads the local model)."""
        return self._local.dim

    @property
    def identity(self) -> str:
        """The local encoder's identity: the vectors are the same."""
        return self._local.identity

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """`encode(texts)`, as every lmrec encoder."""
        return self.encode(texts)

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Vectors of `texts`: float32, shape (len(texts), dim), each row of unit length."""
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = self._local.plan(texts, batch_size)
        runs = [batches[lo : lo + self.chunk] for lo in range(0, len(batches), self.chunk)]
        shards = [([texts[i] for i in np.concatenate(run)], [len(b) for b in run]) for run in runs]
        vectors = map_ordered(
            _encode_shard,
            shards,
            self.config,
            setup=_load_encoder,
            threads=self.threads,
            desc="encoding (ray)" if show_progress else None,
        )
        for run, rows in zip(runs, vectors, strict=True):
            out[np.concatenate(run)] = rows
        return out


def _load_encoder(config: EncoderConfig) -> BatchEncoder:
    """A worker's encoder, loaded once for every shard it runs."""
    return make_encoder(config).load()


def _encode_shard(encoder: BatchEncoder, shard: tuple[list[str], list[int]]) -> np.ndarray:
    """One run of consecutive batches: their texts in order and each batch's size."""
    texts, sizes = shard
    bounds = np.cumsum([0, *sizes])
    batches = [np.arange(lo, hi) for lo, hi in itertools.pairwise(bounds)]
    return encoder.encode_batches(texts, batches)
