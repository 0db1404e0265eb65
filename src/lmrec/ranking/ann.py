"""Approximate nearest-neighbour candidates for inner-product strategies (faiss).

A strategy whose score is `query_embeddings(h) @ item_embeddings().T` (ALS, BPR,
content, the LM adapter, SASRec) can have its best items found without scoring the
whole catalogue: an index over the item rows returns a few hundred candidates, which
are then scored exactly. Below `AnnOptions.min_items` every item is scored (the
default for catalogues of usual size); above it the pipeline asks this index.

faiss was chosen over usearch by measurement (`benchmarks/ann_choice.py`, in
BENCHMARKS.md): on the same HNSW graph it built faster and answered in about half
the time at equal recall. Two index kinds:

- `hnsw` (default): a graph, no training, items added live at the same quality;
- `ivf`: `4 * sqrt(n)` inverted lists from k-means, builds several times faster,
  searched `nprobe` lists deep; items added later join their nearest list.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lmrec._cpu import usable_cores

__all__ = ["AnnOptions", "ItemIndex"]


class AnnOptions(BaseModel):
    """When and how the pipeline retrieves candidates approximately.

    `min_items`: catalogues with fewer items are scored exactly (0 = always approximate);
    `candidates`: items the index returns per query (each then scored exactly; at least
    the list's re-ranking depth is asked for); `kind`, `links` (HNSW neighbours per node),
    `ef_construction` and `ef_search` (HNSW build and search breadth), `nprobe` (IVF lists
    searched) tune the index; `storage` `f16` halves its memory. The HNSW defaults are
    set on ALS factors, the hardest rows measured (unequal norms, 9% zero rows): at 100k
    items recall@100 was 0.87 with 32 links and 0.98 with 48 (`ef_construction` 64 beat
    128); at 1M, 0.927 / 0.948 / 0.967 with `ef_search` 256 / 512 / 1024 (0.7 / 1.3 /
    2.3 ms a query).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_items: int = Field(default=200_000, ge=0)
    candidates: int = Field(default=400, ge=1)
    kind: Literal["hnsw", "ivf"] = "hnsw"
    links: int = Field(default=48, ge=4, le=256)
    ef_construction: int = Field(default=64, ge=1)
    ef_search: int = Field(default=1024, ge=1)
    nprobe: int = Field(default=48, ge=1)
    storage: Literal["f32", "f16"] = "f32"


class ItemIndex:
    """An inner-product index over item rows: `search` returns row numbers, best first.

    Rows are numbered in the order they were added; `add` appends live. `top` scores
    the candidates exactly against the rows (kept by reference, not copied).
    """

    def __init__(self, rows: np.ndarray, options: AnnOptions | None = None):
        import faiss

        self.options = options or AnnOptions()
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self.rows = rows
        d = rows.shape[1]
        faiss.omp_set_num_threads(usable_cores())
        o = self.options
        ip = faiss.METRIC_INNER_PRODUCT
        fp16: Any = faiss.ScalarQuantizer.QT_fp16
        index: Any
        if o.kind == "hnsw":
            index = (
                faiss.IndexHNSWFlat(d, o.links, ip)
                if o.storage == "f32"
                else faiss.IndexHNSWSQ(d, fp16, o.links, ip)
            )
            index.hnsw.efConstruction = o.ef_construction  # efSearch goes with each search
        else:
            lists = max(1, min(len(rows) // 39, int(4 * np.sqrt(len(rows)))))
            quantizer = faiss.IndexFlatIP(d)
            index = (
                faiss.IndexIVFFlat(quantizer, d, lists, ip)
                if o.storage == "f32"
                else faiss.IndexIVFScalarQuantizer(quantizer, d, lists, fp16, ip)
            )
            self._quantizer = quantizer  # keep it alive beside the index
            index.nprobe = min(o.nprobe, lists)
        if not index.is_trained:
            sample = np.random.default_rng(0).permutation(len(rows))[: 64 * 1024]
            index.train(rows[np.sort(sample)])
        index.add(rows)
        self._index = index
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def dims(self) -> int:
        return int(self._index.d)

    def add(self, rows: np.ndarray) -> None:
        """Append rows (their numbers continue from `len(self)`)."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.dims:
            raise ValueError(f"rows of width {self.dims} expected, got shape {rows.shape}")
        with self._lock:
            self._index.add(rows)
            self.rows = np.vstack([self.rows, rows])

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """The `k` rows of largest inner product per query (queries x k, -1 pads)."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, len(self)))
        params = (
            # A breadth below k cannot return k results.
            faiss.SearchParametersHNSW(efSearch=max(self.options.ef_search, k))  # type: ignore[attr-defined]
            if self.options.kind == "hnsw"
            else None
        )
        with self._lock:
            _, found = self._index.search(queries, k, params=params)
        return found.astype(np.int64)  # type: ignore[no-any-return]

    def top(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: up to `k` candidate rows and their exact inner products."""
        found = self.search(queries, k)
        rows = self.rows
        out = []
        for q, ids in zip(queries, found, strict=True):
            ids = ids[ids >= 0]
            out.append((ids, (rows[ids] @ q).astype(np.float32)))
        return out
