"""Ray vs one process for lmrec's batch work: encoding N item texts, and 3 seeds of a model.

    LMREC_DATA_DIR=/path/to/datasets python benchmarks/ray_batch.py \\
        [--texts 100000] [--dataset ml-100k] [--model sasrec] [--param epochs=10] \\
        [--seeds 0,1,2] [--repeats 1] [--ray-cpus N] [--out FILE.json]

(a) Encoding: `--texts` product titles (default 100,000) through the bundled MiniLM
(torch fp32, no embedding cache), once by `make_encoder().encode` in this process and
once by `lmrec.distributed.RayEncoder` on a local Ray cluster of `--ray-cpus` CPUs
(default: every usable core). No catalogue in the shared datasets is that large (the
biggest, Amazon Beauty, has 12,101 titles), so the titles are synthesised
deterministically (`titles(n)`: brand, line, product, variant, size and pack from fixed
word lists, 6 to 20 words). Each time includes loading the model (Ray: on every worker);
starting the cluster is timed once, apart. The vectors must be equal bit for bit.

(b) Seeds: `run_experiment` (leave-one-out, full ranking) of `--model` with each of
`--seeds`, in this process with its default threads, and on the cluster (one worker per
seed while CPUs last, each pinned to its share of them). Strategies whose floats depend
on the thread count (SASRec, ALS) are then also run in this process pinned to a Ray
worker's cores, the reference the Ray results must equal (rankings and metrics, bit
for bit); against the default-thread run the share of equal top-10 lists is reported.

With `--repeats` > 1 every timing is repeated, the order alternating, and medians are
reported. Prints one JSON document (also written to `--out`). The ratio is Ray's wall
time over the single process's (below 1: Ray is faster). Run it with nothing else on the
machine. A tiny check: python benchmarks/ray_batch.py --texts 2000 --param epochs=1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._cpu import share_cores, usable_cores
from lmrec.distributed import Cluster, RayEncoder, connect
from lmrec.evaluation import ModelSpec, parse_params, run_experiment
from lmrec.text import make_encoder

BRANDS = (
    "Acme", "Lumina", "Nordic Home", "Verde", "Solara", "Kinetic", "Aurora", "Bellwether",
    "Cobalt", "Driftwood", "Evergreen", "Fable & Co", "Granite", "Halcyon", "Ironleaf",
    "Juniper", "Kestrel", "Larkspur", "Meridian", "Northwind", "Oakridge", "Pinnacle",
    "Quillon", "Redfern", "Sable", "Tidewater", "Umber", "Vantage", "Willow & Wren", "Zephyr",
)  # fmt: skip
LINES = (
    "Pro", "Essentials", "Signature", "Classic", "Ultra", "Everyday", "Studio", "Outdoor",
    "Kids", "Travel", "Organic", "Max", "Lite", "Heritage", "Urban", "Sport",
)  # fmt: skip
ADJECTIVES = (
    "Stainless Steel", "Waterproof", "Rechargeable", "Lightweight", "Ergonomic", "Non-Stick",
    "Fragrance-Free", "Hypoallergenic", "Wireless", "Foldable", "Insulated", "Matte",
    "Moisturizing", "Quick-Dry", "Heavy Duty", "Compact", "Adjustable", "Cordless",
    "Vitamin C", "Hyaluronic Acid", "Bamboo", "Ceramic", "Memory Foam", "LED",
)  # fmt: skip
PRODUCTS = (
    "Face Serum", "Hand Cream", "Shampoo", "Conditioner", "Body Wash", "Lip Balm", "Sunscreen",
    "Eye Shadow Palette", "Nail Polish", "Hair Dryer", "Electric Toothbrush", "Water Bottle",
    "Travel Mug", "Backpack", "Yoga Mat", "Desk Lamp", "Bluetooth Speaker", "Headphones",
    "Frying Pan", "Chef's Knife", "Cutting Board", "Throw Pillow", "Bath Towel", "Candle",
    "Phone Case", "Wall Clock", "Running Shoes", "Rain Jacket", "Wool Socks", "Sunglasses",
)  # fmt: skip
VARIANTS = (
    "for Sensitive Skin", "for Dry Hair", "with Aloe Vera", "with Carry Case", "in Midnight Blue",
    "in Rose Gold", "Unscented", "SPF 50", "with USB-C Charging", "Dishwasher Safe",
    "for Men", "for Women", "Extra Large", "Travel Size", "with Lid", "2nd Generation",
    "Limited Edition", "Gift Set", "with Built-in Timer", "BPA Free",
)  # fmt: skip
SIZES = ("1.7 oz", "3.4 fl oz", "8 oz", "16 oz", "500 ml", "1 L", "12 inch", "10.5 in", "Queen")
PACKS = ("", "", "", "Pack of 2", "Pack of 3", "Set of 4", "6 Count", "12 Count")


def titles(n: int, seed: int = 0) -> list[str]:
    """`n` product titles, the same for the same `n` and `seed`."""
    rng = np.random.default_rng(seed)

    def pick(words: tuple[str, ...], size: int) -> np.ndarray:
        return np.asarray(words, dtype=object)[rng.integers(0, len(words), size)]

    brand, line, adj = pick(BRANDS, n), pick(LINES, n), pick(ADJECTIVES, n)
    adj2, product, variant = pick(ADJECTIVES, n), pick(PRODUCTS, n), pick(VARIANTS, n)
    size, pack, shape = pick(SIZES, n), pick(PACKS, n), rng.integers(0, 4, n)
    out = []
    for i in range(n):
        parts = [brand[i], line[i], adj[i]]
        if shape[i] >= 2:
            parts.append(adj2[i])
        parts.append(product[i])
        if shape[i] != 1:
            parts.append(variant[i])
        title = " ".join(parts) + f", {size[i]}"
        out.append(f"{title} ({pack[i]})" if pack[i] else title)
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def alternate(repeats: int, runs: dict[str, Callable[[], Any]]) -> tuple[dict, dict]:
    """Each run `repeats` times, the order alternating; (last value, seconds) per name."""
    values: dict[str, Any] = {}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            values[name], s = timed(runs[name])
            seconds[name].append(round(s, 2))
    return values, seconds


def ratio(seconds: dict[str, list[float]]) -> dict[str, Any]:
    single, ray = statistics.median(seconds["single"]), statistics.median(seconds["ray"])
    return {
        "seconds": seconds,
        "median_single_s": single,
        "median_ray_s": ray,
        "ray_over_single": round(ray / single, 3),
    }


def bench_encoding(n: int, repeats: int) -> dict[str, Any]:
    texts = titles(n)
    values, seconds = alternate(
        repeats,
        {
            "single": lambda: make_encoder().encode(texts),
            "ray": lambda: RayEncoder().encode(texts),
        },
    )
    return {
        "n_texts": n,
        "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
        "identical": bool(np.array_equal(values["single"], values["ray"])),
        **ratio(seconds),
    }


def bench_seeds(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    from lmrec.data.loaders import load_dataset

    dataset = load_dataset(args.dataset)
    params = parse_params([f"{args.model}.{p}" for p in args.param]).get(args.model, {})
    seeds = [int(s) for s in args.seeds.split(",")]
    specs = [ModelSpec.parse(args.model, params).seeded(s) for s in seeds]
    values, seconds = alternate(
        args.repeats,
        {
            "single": lambda: run_experiment(dataset, "loo", specs),
            "ray": lambda: run_experiment(dataset, "loo", specs, cluster=cluster),
        },
    )
    per = max(
        1, min(cluster.node_cpus, cluster.cpus // len(specs))
    )  # the cores each Ray worker holds (map_ordered's default)
    with share_cores(0, 1, per):
        pinned, pinned_s = timed(lambda: run_experiment(dataset, "loo", specs))
    ray, single = values["ray"].results, values["single"].results

    def same(a: Any, b: Any) -> bool:
        return all(
            np.array_equal(a[s.name].rankings, b[s.name].rankings)
            and a[s.name].summary == b[s.name].summary
            for s in specs
        )

    top10 = [
        float((ray[s.name].rankings[:, :10] == single[s.name].rankings[:, :10]).all(axis=1).mean())
        for s in specs
    ]
    return {
        "dataset": args.dataset,
        "model": args.model,
        "params": params,
        "seeds": seeds,
        "threads_per_ray_worker": per,
        "identical_to_single_process_on_the_workers_cores": same(ray, pinned.results),
        "identical_to_single_process_default_threads": same(ray, single),
        "top10_lists_equal_share_vs_default_threads": [round(t, 4) for t in top10],
        "single_process_on_the_workers_cores_s": round(pinned_s, 2),
        "ndcg@10": {s.name: round(ray[s.name].summary["ndcg@10"], 6) for s in specs},
        "fit_seconds": {s.name: round(ray[s.name].fit_seconds, 1) for s in specs},
        **ratio(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=100_000, help="Titles to encode (0: skip).")
    parser.add_argument("--dataset", default="ml-100k", help="Dataset of the seeds run.")
    parser.add_argument("--model", default="sasrec", help="Strategy of the seeds run.")
    parser.add_argument(
        "--param",
        action="append",
        default=None,
        help="KEY=VALUE of the model, repeatable (default: epochs=10).",
    )
    parser.add_argument("--seeds", default="0,1,2", help="Model seeds ('' skips the seeds run).")
    parser.add_argument("--repeats", type=int, default=1, help="Timings per setting (medians).")
    parser.add_argument("--ray-cpus", type=int, default=None, help="Local cluster CPUs.")
    parser.add_argument("--out", type=Path, default=None, help="Write the JSON here too.")
    args = parser.parse_args()
    args.param = args.param if args.param is not None else ["epochs=10"]
    cluster, start_s = timed(lambda: connect(num_cpus=args.ray_cpus))
    doc: dict[str, Any] = {
        "machine": {
            "cpus_usable": usable_cores(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "ray": __import__("ray").__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "ray_cluster": {"cpus": cluster.cpus, "start_s": round(start_s, 2)},
    }
    if args.texts:
        doc["encoding"] = bench_encoding(args.texts, args.repeats)
        print(json.dumps({"encoding": doc["encoding"]}), flush=True)
    if args.seeds:
        doc["seeds"] = bench_seeds(args, cluster)
        print(json.dumps({"seeds": doc["seeds"]}), flush=True)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
