"""faiss vs usearch for lmrec's ANN candidates: build time, query latency, recall@100, memory.

Both libraries build an HNSW graph over the same item vectors (inner product) and
answer the same queries one at a time, as a server does. Vectors are synthetic with
the structure of real embeddings (a mixture of topics of uneven size, unit rows); a
query is the normalised mean of a few items of one topic, as a user profile is.
Recall@100 is against exact inner-product search over all items.

    python benchmarks/ann_choice.py --items 200000 --dims 64,384 --queries 500
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def synthetic_vectors(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows from `n // 200` topics with Zipf-sized membership plus noise, and each
    row's topic."""
    rng = np.random.default_rng(seed)
    topics = max(8, n // 200)
    centres = rng.standard_normal((topics, d)).astype(np.float32)
    sizes = 1.0 / np.arange(1, topics + 1) ** 0.8
    member = rng.choice(topics, size=n, p=sizes / sizes.sum())
    x = centres[member] + 0.9 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, member


def profile_queries(x: np.ndarray, member: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    """Normalised means of 5 items, 4 from one topic and one from anywhere."""
    rng = np.random.default_rng(seed)
    order = np.argsort(member, kind="stable")
    starts = np.searchsorted(member[order], member[order], side="left")
    ends = np.searchsorted(member[order], member[order], side="right")
    seeds = rng.integers(0, len(x), size=n)
    where = np.empty(len(x), dtype=np.int64)
    where[order] = np.arange(len(x))
    lo, hi = starts[where[seeds]], ends[where[seeds]]
    same = order[lo[:, None] + (rng.random((n, 4)) * (hi - lo)[:, None]).astype(np.int64)]
    picks = np.concatenate([same, rng.integers(0, len(x), size=(n, 1))], axis=1)
    q = x[picks].mean(axis=1)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(q), k), dtype=np.int64)
    for lo in range(0, len(q), 64):
        s = q[lo : lo + 64] @ x.T
        part = np.argpartition(-s, k, axis=1)[:, :k]
        out[lo : lo + 64] = part
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def timed_queries(search, q: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found, ms = [], []
    for row in q:
        t = time.perf_counter()
        found.append(search(row))
        ms.append((time.perf_counter() - t) * 1000)
    return np.array(found), ms


def run_faiss(x, q, k, m, ef_build, ef_search, storage):
    import faiss

    d = x.shape[1]
    t = time.perf_counter()
    if storage == "f32":
        index = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_fp16, m, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
    index.hnsw.efConstruction = ef_build
    index.add(x)
    build = time.perf_counter() - t
    index.hnsw.efSearch = ef_search

    def search(row):
        return index.search(row[None, :], k)[1][0]

    return build, search


def run_faiss_ivf(x, q, k, m, ef_build, ef_search, storage):
    import faiss

    d = x.shape[1]
    nlist = int(4 * np.sqrt(len(x)))
    t = time.perf_counter()
    quantizer = faiss.IndexFlatIP(d)
    if storage == "f32":
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, d, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
    rng = np.random.default_rng(0)
    index.train(x[rng.choice(len(x), min(len(x), 50 * nlist), replace=False)])
    index.add(x)
    build = time.perf_counter() - t
    index.nprobe = max(1, ef_search // 4)

    def search(row):
        return index.search(row[None, :], k)[1][0]

    return build, search


def run_usearch(x, q, k, m, ef_build, ef_search, storage):
    from usearch.index import Index

    d = x.shape[1]
    t = time.perf_counter()
    index = Index(
        ndim=d,
        metric="ip",
        dtype=storage,
        connectivity=m,
        expansion_add=ef_build,
        expansion_search=ef_search,
    )
    index.add(np.arange(len(x)), x, log=False)
    build = time.perf_counter() - t

    def search(row):
        return index.search(row, k).keys

    return build, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dims", default="64,384")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--m", type=int, default=16, help="HNSW links per node.")
    parser.add_argument("--ef-build", type=int, default=100)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for d in map(int, args.dims.split(",")):
        x, member = synthetic_vectors(args.items, d)
        q = profile_queries(x, member, args.queries)
        truth = exact_top(x, q, args.k)
        libs = (("faiss-hnsw", run_faiss), ("faiss-ivf", run_faiss_ivf), ("usearch", run_usearch))
        for lib, run in libs:
            for storage in ("f32", "f16"):
                build, search = run(x, q, args.k, args.m, args.ef_build, args.ef_search, storage)
                found, ms = timed_queries(search, q)
                row = {
                    "library": lib,
                    "dims": d,
                    "storage": storage,
                    "build_s": round(build, 2),
                    "p50_ms": round(statistics.median(ms), 3),
                    "p99_ms": round(float(np.percentile(ms, 99)), 3),
                    "recall_at_k": round(recall(found, truth), 4),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
