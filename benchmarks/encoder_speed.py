"""Encoder speed: fp32 torch vs int8 (and fp32) ONNX on the Amazon Beauty item titles.

Reads the 12,101 titles from `$LMREC_DATA_DIR/amazon-beauty-2014-5core/Amazon_Beauty.item`
(RecBole atomic file), then measures, in one run:

- the cold fp32 encode of every title through an empty cache (model load included);
- the time to read every title's vector back from the cache (the model never loads);
- the ONNX export + int8 quantisation time (once; cached on disk afterwards);
- throughput (texts/s), interleaved and repeated `--repeats` times, reported as
  medians and as ratios to torch fp32, of: sentence-transformers' own `encode`
  (fp32 torch, batches sorted by characters: the baseline of the targets),
  lmrec's torch backend (the same model and runtime, batches sorted by token
  count), ONNX int8 and (unless `--no-onnx-fp32`) ONNX fp32;
- mean and minimum cosine between each backend's vectors and the baseline's.

With `--sweep`, it also times int8 variants (per-channel, reduce-range, one
batch at a time over all threads), batch sizes and unsorted batching on a
subset. Prints one JSON blob.

    python benchmarks/encoder_speed.py --threads 2 [--sweep] [--out FILE.json]

Targets (2 cores): int8/fp32 >= 2.0 with mean cosine >= 0.99; cold fp32 <= 60 s;
from cache <= 2 s.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lmrec.text import EmbeddingCache, OnnxEncoder, SentenceTransformerEncoder, export_onnx
from lmrec.text._encoder import load_sentence_transformer


class PlainSentenceTransformers:
    """sentence-transformers' own `encode` (it sorts each call's texts by characters)."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.model, _ = load_sentence_transformer(None)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.model.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )


def read_titles(data_dir: Path) -> list[str]:
    """Titles of Amazon_Beauty.item, in file order (tab-separated, typed header)."""
    path = data_dir / "amazon-beauty-2014-5core" / "Amazon_Beauty.item"
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        col = header.index("title")
        return [row[col] if col < len(row) else "" for row in reader]


def machine() -> dict[str, object]:
    """Where the figures were taken."""
    import onnxruntime
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = next(
            line
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
        isa = sorted({f for f in flags.split() if f.startswith(("avx2", "avx512", "avx_vnni"))})
    except (OSError, StopIteration):
        isa = []
    return {
        "cpu": cpu,
        "isa": isa,
        "cpus_visible": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "platform": platform.platform(),
    }


def timed_encode(encoder, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size)
    return vectors, time.perf_counter() - start


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cosine = np.sum(a * b, axis=1)
    return {"mean": round(float(cosine.mean()), 5), "min": round(float(cosine.min()), 5)}


def sweep(
    titles: list[str], onnx_dir: Path, threads: int, batch_size: int, repeats: int
) -> dict[str, object]:
    """Int8 variants, batch sizes, sorting and threads on a subset, each vs torch fp32."""
    rng = np.random.default_rng(0)
    subset = [
        titles[i] for i in rng.choice(len(titles), size=min(3000, len(titles)), replace=False)
    ]
    variants: dict[str, object] = {
        "torch-fp32": SentenceTransformerEncoder(threads=threads),
        "torch-fp32-unsorted": SentenceTransformerEncoder(threads=threads, sort_by_length=False),
        "int8-pc1-rr0": OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir, threads=threads),
        "int8-pc1-rr1": OnnxEncoder(
            backend="onnx-int8", onnx_dir=onnx_dir, threads=threads, reduce_range=True
        ),
        "int8-pc0-rr0": OnnxEncoder(
            backend="onnx-int8", onnx_dir=onnx_dir, threads=threads, per_channel=False
        ),
        "int8-unsorted": OnnxEncoder(
            backend="onnx-int8", onnx_dir=onnx_dir, threads=threads, sort_by_length=False
        ),
        "int8-one-batch-at-a-time": OnnxEncoder(
            backend="onnx-int8", onnx_dir=onnx_dir, threads=threads, parallel_batches=False
        ),
        "onnx-fp32": OnnxEncoder(backend="onnx", onnx_dir=onnx_dir, threads=threads),
    }
    runs: dict[str, list[float]] = {name: [] for name in variants}
    batch_runs: dict[int, list[float]] = {b: [] for b in (16, 32, 128, 256)}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, enc in variants.items():
            vectors[name], seconds = timed_encode(enc, subset, batch_size)
            runs[name].append(len(subset) / seconds)
        for b in batch_runs:
            _, seconds = timed_encode(variants["int8-pc1-rr0"], subset, b)
            batch_runs[b].append(len(subset) / seconds)
    base = statistics.median(runs["torch-fp32"])
    out: dict[str, object] = {"n_texts": len(subset), "batch_size": batch_size}
    for name in variants:
        med = statistics.median(runs[name])
        out[name] = {
            "texts_per_s": round(med, 1),
            "ratio_to_torch_fp32": round(med / base, 2),
            "cosine_to_torch_fp32": agreement(vectors[name], vectors["torch-fp32"]),
        }
    out["int8-pc1-rr0 by batch size"] = {
        str(b): {
            "texts_per_s": round(statistics.median(r), 1),
            "ratio_to_torch_fp32": round(statistics.median(r) / base, 2),
        }
        for b, r in batch_runs.items()
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N titles")
    parser.add_argument("--onnx-dir", type=Path, default=None, help="reuse exports from here")
    parser.add_argument("--no-onnx-fp32", action="store_true", help="skip the ONNX fp32 backend")
    parser.add_argument("--sweep", action="store_true", help="also time variants on a subset")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    data_dir = os.environ.get("LMREC_DATA_DIR")
    if not data_dir:
        print("skipped: set LMREC_DATA_DIR to the datasets folder (with amazon-beauty-2014-5core/)")
        return 0
    titles = read_titles(Path(data_dir))[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="lmrec-encoder-bench-"))
    onnx_dir = args.onnx_dir or work / "onnx"
    bs, threads = args.batch_size, args.threads
    try:
        # Cold fp32: load the model and encode every title through an empty cache.
        cache_dir = work / "embeddings"
        start = time.perf_counter()
        torch_enc = SentenceTransformerEncoder(threads=threads, batch_size=bs).load()
        load_seconds = time.perf_counter() - start
        _, cold_stats = EmbeddingCache(cache_dir).encode(torch_enc, titles)
        cold_seconds = time.perf_counter() - start
        assert cold_stats.n_encoded == cold_stats.n_unique

        # Warm: a fresh encoder (never loaded) and a fresh cache object read every vector back.
        cache_runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fresh = SentenceTransformerEncoder(threads=threads, batch_size=bs)
            _, warm = EmbeddingCache(cache_dir).encode(fresh, titles)
            cache_runs.append(time.perf_counter() - start)
            assert warm.n_encoded == 0 and not fresh.loaded

        start = time.perf_counter()
        export_onnx(None, onnx_dir)
        int8 = OnnxEncoder(backend="onnx-int8", onnx_dir=onnx_dir, threads=threads).load()
        export_seconds = time.perf_counter() - start

        encoders: dict[str, object] = {
            "fp32_torch_sentence_transformers": PlainSentenceTransformers(threads),
            "fp32_torch": torch_enc,
            "int8_onnx": int8,
        }
        if not args.no_onnx_fp32:
            encoders["fp32_onnx"] = OnnxEncoder(
                backend="onnx", onnx_dir=onnx_dir, threads=threads
            ).load()
        runs: dict[str, list[float]] = {name: [] for name in encoders}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for name, enc in encoders.items():  # interleaved, so load noise hits all alike
                vectors[name], seconds = timed_encode(enc, titles, bs)
                runs[name].append(len(titles) / seconds)
        median = {name: statistics.median(r) for name, r in runs.items()}
        base = "fp32_torch_sentence_transformers"

        result: dict[str, object] = {
            "benchmark": "encoder_speed",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(),
            "dataset": "amazon-beauty-2014-5core item titles",
            "n_texts": len(titles),
            "threads": threads,
            "batch_size": bs,
            "repeats": args.repeats,
            "baseline": f"{base}: SentenceTransformer.encode, {threads} torch threads",
            "throughput_texts_per_s": {
                name: {"median": round(m, 1), "runs": [round(r, 1) for r in runs[name]]}
                for name, m in median.items()
            },
            "ratio_to_baseline": {
                name: round(m / median[base], 2) for name, m in median.items() if name != base
            },
            "int8_over_fp32_torch": round(median["int8_onnx"] / median[base], 2),
            "int8_over_lmrec_fp32_torch": round(median["int8_onnx"] / median["fp32_torch"], 2),
            "cosine_to_baseline": {
                name: agreement(vectors[name], vectors[base]) for name in encoders if name != base
            },
            "cold_fp32_seconds": round(cold_seconds, 2),
            "cold_fp32_model_load_seconds": round(load_seconds, 2),
            "cache_load_seconds": {
                "median": round(statistics.median(cache_runs), 3),
                "runs": [round(r, 3) for r in cache_runs],
            },
            "onnx_export_and_int8_quantise_seconds": round(export_seconds, 2),
        }
        int8_cosine = result["cosine_to_baseline"]["int8_onnx"]["mean"]  # type: ignore[index]
        result["targets"] = {
            "int8_ratio>=2.0": result["int8_over_fp32_torch"] >= 2.0,  # type: ignore[operator]
            "int8_over_lmrec_fp32_torch>=2.0": result["int8_over_lmrec_fp32_torch"] >= 2.0,  # type: ignore[operator]
            "int8_mean_cosine>=0.99": int8_cosine >= 0.99,
            "cold_fp32<=60s": cold_seconds <= 60,
            "cache_load<=2s": statistics.median(cache_runs) <= 2,
        }
        if args.sweep:
            result["sweep"] = sweep(titles, onnx_dir, threads, bs, max(2, args.repeats - 1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
