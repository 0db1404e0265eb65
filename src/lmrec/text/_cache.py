"""On-disk embedding cache keyed by encoder identity and the sha256 of each text.

Layout: `<directory>/<sha256(identity)[:24]>/` holds `identity.json` and
shards `shard-*.npz`, each with `keys` (uint8, n x 32: sha256 digests) and
either `vectors` (float32) or `q` (int8) + `scale` (float32 per vector). Every
file is written to a temporary name and renamed into place, so concurrent
writers never leave a half-written shard; readers skip shards that vanish or
fail to parse (their texts are simply encoded again). No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from lmrec.errors import ConfigError, LmrecError
from lmrec.text._encoder import TextEncoder, cache_root

__all__ = ["CacheStats", "EmbeddingCache", "text_key"]

logger = logging.getLogger("lmrec.text")


def text_key(text: str) -> bytes:
    """The cache key of a text: its sha256 digest (32 bytes) of the UTF-8 encoding."""
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass(frozen=True)
class CacheStats:
    """Outcome of one `EmbeddingCache.encode` call.

    `n_unique` distinct texts among `n_texts`; `n_cached` of those came from
    disk and `n_encoded` were run through the encoder.
    """

    n_texts: int
    n_unique: int
    n_cached: int
    n_encoded: int
    seconds: float


def _quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0
    q = np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _dequantise(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    v = q.astype(np.float32) * scale[:, None]
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}.npz")
    try:
        with tmp.open("wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class EmbeddingCache:
    """Vectors of texts already encoded, on disk, per encoder identity.

    `directory` defaults to `$XDG_CACHE_HOME/lmrec/embeddings` (else
    `~/.cache/lmrec/embeddings`). `dtype="int8"` stores each vector as int8
    with a float32 scale (4x smaller; cosine to the original about 0.9999);
    vectors read back are float32 and L2-normalised either way. Shards beyond
    `max_shards` are merged into one on the next write.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        dtype: Literal["float32", "int8"] = "float32",
        max_shards: int = 16,
    ):
        if dtype not in ("float32", "int8"):
            raise ConfigError(f"cache dtype must be 'float32' or 'int8', not {dtype!r}")
        self._directory = None if directory is None else Path(directory)
        self.dtype = dtype
        self.max_shards = max(int(max_shards), 1)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.directory)!r}, dtype={self.dtype!r})"

    @property
    def directory(self) -> Path:
        """Root directory of the cache."""
        if self._directory is None:
            return cache_root() / "embeddings"
        return self._directory

    def _dir(self, identity: str) -> Path:
        return self.directory / hashlib.sha256(identity.encode("utf-8")).hexdigest()[:24]

    def _shards(self, identity: str) -> list[Path]:
        folder = self._dir(identity)
        return sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []

    def _read(self, shards: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        keys: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        for shard in shards:
            try:
                with np.load(shard, allow_pickle=False) as npz:
                    k = npz["keys"]
                    v = (
                        npz["vectors"]
                        if "vectors" in npz.files
                        else _dequantise(npz["q"], npz["scale"])
                    )
            except FileNotFoundError:
                continue  # merged away by a concurrent writer
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("embedding cache: skipping unreadable %s (%s)", shard, exc)
                continue
            if vectors and v.shape[1] != vectors[0].shape[1]:
                raise LmrecError(
                    f"embedding cache {shard.parent} mixes vector sizes; delete that directory"
                )
            keys.append(k)
            vectors.append(np.asarray(v, dtype=np.float32))
        if not keys:
            return np.zeros((0, 32), np.uint8), np.zeros((0, 0), np.float32)
        return np.concatenate(keys), np.concatenate(vectors)

    def load(self, identity: str) -> dict[bytes, np.ndarray]:
        """Every cached vector of `identity`, by text key (see `text_key`)."""
        keys, vectors = self._read(self._shards(identity))
        return {bytes(k): vectors[i] for i, k in enumerate(keys)}

    def lookup(self, identity: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for `keys` and a boolean mask of which were found (others are zero)."""
        stored_keys, vectors = self._read(self._shards(identity))
        index = {bytes(k): i for i, k in enumerate(stored_keys)}
        rows = np.array([index.get(bytes(k), -1) for k in keys], dtype=np.int64)
        found = rows >= 0
        dim = vectors.shape[1] if len(vectors) else 0
        out = np.zeros((len(keys), dim), dtype=np.float32)
        if found.any():
            out[found] = vectors[rows[found]]
        return out, found

    def put(self, identity: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store `vectors` (row `i` for `keys[i]`) as one new shard."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors) or vectors.ndim != 2:
            raise LmrecError(f"put: {len(keys)} keys for vectors of shape {vectors.shape}")
        if not len(keys):
            return
        folder = self._dir(identity)
        folder.mkdir(parents=True, exist_ok=True)
        meta = folder / "identity.json"
        if not meta.is_file():
            tmp = folder / f".tmp-{uuid.uuid4().hex}.json"
            tmp.write_text(json.dumps({"identity": identity, "dim": int(vectors.shape[1])}))
            os.replace(tmp, meta)
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        self._write_shard(folder / name, key_array, vectors)
        shards = self._shards(identity)
        if len(shards) > self.max_shards:
            self._compact(folder, shards)

    def _write_shard(self, path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
        if self.dtype == "int8":
            q, scale = _quantise(vectors)
            _write_npz(path, keys=keys, q=q, scale=scale)
        else:
            _write_npz(path, keys=keys, vectors=vectors)

    def _compact(self, folder: Path, shards: list[Path]) -> None:
        keys, vectors = self._read(shards)
        # Keep the last copy of each key (later shards are newer).
        _, first_from_end = np.unique(keys[::-1], axis=0, return_index=True)
        keep = np.sort(len(keys) - 1 - first_from_end)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
        self._write_shard(folder / name, keys[keep], vectors[keep])
        for shard in shards:
            shard.unlink(missing_ok=True)

    def clear(self, identity: str | None = None) -> None:
        """Delete the cached vectors of `identity`, or of every identity."""
        target = self.directory if identity is None else self._dir(identity)
        shutil.rmtree(target, ignore_errors=True)

    def encode(
        self,
        encoder: TextEncoder,
        texts: Sequence[str],
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> tuple[np.ndarray, CacheStats]:
        """Vectors of `texts`, encoding only those not cached yet (and caching them).

        Each distinct text is encoded once. With `dtype="int8"` freshly encoded
        vectors are returned as they will read back from disk, so a re-run gives
        the same numbers.
        """
        start = time.perf_counter()
        identity = encoder.identity
        keys = [text_key(t) for t in texts]
        unique: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            unique.setdefault(k, i)
        unique_keys = list(unique)
        vectors, found = self.lookup(identity, unique_keys)
        missing = [k for k, hit in zip(unique_keys, found, strict=True) if not hit]
        if missing:
            fresh = encoder.encode(
                [texts[unique[k]] for k in missing],
                batch_size=batch_size,
                show_progress=show_progress,
            )
            if self.dtype == "int8":
                fresh = _dequantise(*_quantise(fresh))
            if not found.any():
                vectors = np.zeros((len(unique_keys), fresh.shape[1]), dtype=np.float32)
            elif vectors.shape[1] != fresh.shape[1]:
                raise LmrecError(
                    f"embedding cache {self._dir(identity)} holds {vectors.shape[1]}-d vectors but "
                    f"the encoder gives {fresh.shape[1]}-d; delete that directory"
                )
            vectors[~found] = fresh
            self.put(identity, missing, fresh)
        if not unique_keys:
            vectors = np.zeros((0, encoder.dim), dtype=np.float32)
        row = {k: j for j, k in enumerate(unique_keys)}
        out = vectors[[row[k] for k in keys]] if keys else vectors[:0]
        stats = CacheStats(
            n_texts=len(texts),
            n_unique=len(unique_keys),
            n_cached=int(found.sum()),
            n_encoded=len(missing),
            seconds=time.perf_counter() - start,
        )
        return np.ascontiguousarray(out, dtype=np.float32), stats
