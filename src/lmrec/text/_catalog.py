"""Encode a whole catalogue: compose item texts, then encode them through the cache."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmrec.data.catalog import Catalog
from lmrec.text._cache import EmbeddingCache
from lmrec.text._encoder import TextEncoder
from lmrec.text._template import ItemTextConfig, TextStats, item_texts

__all__ = ["EncodeStats", "encode_catalog"]


@dataclass(frozen=True)
class EncodeStats:
    """Outcome of `encode_catalog`: text composition (`text`) and encoding work.

    `n_cached` distinct texts came from the cache and `n_encoded` were run
    through the encoder; `seconds` is the wall time of the whole call.
    """

    text: TextStats
    identity: str
    n_cached: int
    n_encoded: int
    seconds: float


def encode_catalog(
    catalog: Catalog,
    encoder: TextEncoder,
    cache: EmbeddingCache | None = None,
    text_config: ItemTextConfig | None = None,
    *,
    item_ids: Sequence[str] | None = None,
    batch_size: int | None = None,
    show_progress: bool = False,
) -> tuple[np.ndarray, EncodeStats]:
    """Item vectors (row `i` = catalogue item `i`, float32, unit length) and stats.

    Texts come from `text_config` (see `item_texts`; empty items fall back and
    are counted in `stats.text`). With a `cache`, only texts not cached under
    the encoder's identity are encoded; without one, every distinct text is.
    """
    start = time.perf_counter()
    texts, text_stats = item_texts(catalog, text_config, item_ids)
    store = cache if cache is not None else _NoCache()
    vectors, cache_stats = store.encode(encoder, texts, batch_size, show_progress)
    stats = EncodeStats(
        text=text_stats,
        identity=encoder.identity,
        n_cached=cache_stats.n_cached,
        n_encoded=cache_stats.n_encoded,
        seconds=time.perf_counter() - start,
    )
    return vectors, stats


class _NoCache(EmbeddingCache):
    """A cache that remembers nothing (dedupes texts within one call only)."""

    def lookup(self, identity: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(keys), 0), np.float32), np.zeros(len(keys), dtype=bool)

    def put(self, identity: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        return None
