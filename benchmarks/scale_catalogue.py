"""Large synthetic catalogues: fit time, peak memory, index build, and p50/p99 with ANN vs exact.

For each catalogue size (10k -> 100k -> 1M items by default) a synthetic world is made
once: item text vectors (384-d, stored fp16) around topics of uneven size, a long-tailed
popularity (Zipf over a random order of items), and users with one to three interests
whose histories (lognormal lengths, mean about 20) mix their interests with the global
popularity, `--per-item` interactions per item in all (10 -> 10M at 1M items).

Each strategy then runs in its own process, so its peak memory is its own:
fit (timed), then one `Pipeline` scoring every item and one taking candidates from the
ANN index (`PipelineConfig.ann`), each answering the same `--queries` requests for known
users one at a time (k=10, explanations on, the user's history excluded), after a
warm-up. `recall@100` compares the index's 100 nearest rows with the exact top 100 of
the same query vector; `top100_in_candidates` is the share of the exact top 100 among
the 400 candidates the pipeline asks for. item-kNN does not score by an inner product: exact only.

    python benchmarks/scale_catalogue.py --sizes 10000,100000,1000000 \\
        --out benchmarks/results/scale-catalogue.json --plot docs/scale-catalogue.png
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIMS = 384
MODELS = {
    "als": ("lmrec.models.factorization:ALS", {}, "hnsw"),
    "itemknn": ("lmrec.models.itemknn:ItemKNN", {}, None),
    "content": ("lmrec.models.content:ContentProfile", {}, "ivf"),
}


def make_world(n_items: int, per_item: int, out: Path, seed: int = 0) -> dict[str, int]:
    """Write items' vectors and an interaction log with real-world shape under `out`."""
    rng = np.random.default_rng(seed)
    n_topics = max(20, n_items // 500)
    sizes = 1.0 / np.arange(1, n_topics + 1) ** 0.7
    topic = rng.choice(n_topics, size=n_items, p=sizes / sizes.sum())
    centres = rng.standard_normal((n_topics, DIMS)).astype(np.float32)
    vectors = np.empty((n_items, DIMS), dtype=np.float16)
    for lo in range(0, n_items, 65_536):
        hi = min(n_items, lo + 65_536)
        x = centres[topic[lo:hi]] + 0.8 * rng.standard_normal((hi - lo, DIMS)).astype(np.float32)
        vectors[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    # Long-tailed popularity: Zipf over a random order of the items.
    weight = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.9
    by_topic = np.argsort(topic, kind="stable")
    cum = np.cumsum(weight[by_topic])
    ends = np.searchsorted(topic[by_topic], np.arange(n_topics), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    topic_mass = cum[ends - 1] - before
    n_events = per_item * n_items
    lengths = np.maximum(3, rng.lognormal(np.log(14), 0.8, size=n_events // 12).astype(np.int64))
    lengths = lengths[np.cumsum(lengths) <= n_events]
    n_users = len(lengths)
    users = np.repeat(np.arange(n_users), lengths)
    interests = rng.choice(n_topics, size=(n_users, 3), p=topic_mass / topic_mass.sum())
    n_interests = rng.integers(1, 4, size=n_users)
    pick = (rng.random(len(users)) * n_interests[users]).astype(np.int64)
    t = interests[users, pick]
    within = before[t] + rng.random(len(users)) * topic_mass[t]
    items = by_topic[np.minimum(np.searchsorted(cum, within), n_items - 1)]
    anywhere = rng.random(len(users)) < 0.2
    items[anywhere] = np.minimum(
        np.searchsorted(np.cumsum(weight), rng.random(anywhere.sum()) * weight.sum()),
        n_items - 1,
    )
    np.save(out / "vectors.npy", vectors)
    np.save(out / "users.npy", users.astype(np.int32))
    np.save(out / "items.npy", items.astype(np.int32))
    return {"items": n_items, "users": n_users, "interactions": len(users)}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def latency(pipeline, queries, warmup: int = 20) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for q in queries[:warmup]:
        pipeline.recommend(q)
    ms = []
    for q in queries:
        t = time.perf_counter()
        pipeline.recommend(q)
        ms.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def child(world: Path, name: str, n_queries: int) -> dict[str, object]:
    """One strategy on one world (run in its own process)."""
    from lmrec.data import Histories, Interactions
    from lmrec.data.catalog import Catalog
    from lmrec.data.vocabulary import Vocabulary
    from lmrec.models.base import TrainingData, import_class
    from lmrec.pipeline import Pipeline, PipelineConfig, Query, UserHistories
    from lmrec.ranking.ann import AnnOptions
    from lmrec.ranking.topk import top_k

    path, params, kind = MODELS[name]
    users, items = np.load(world / "users.npy"), np.load(world / "items.npy")
    n_items = len(np.load(world / "vectors.npy", mmap_mode="r"))
    n_users = int(users.max()) + 1
    log = Interactions.build(users, items, n_users, n_items)
    cls = import_class(path)
    vectors = np.load(world / "vectors.npy").astype(np.float32) if cls.uses_text else None
    data_gb = peak_rss_gb()
    t = time.perf_counter()
    model = cls(params).fit(TrainingData(log, item_vectors=vectors))
    out: dict[str, object] = {
        "model": name,
        "fit_s": round(time.perf_counter() - t, 1),
        "data_rss_gb": round(data_gb, 2),
        "fit_peak_rss_gb": round(peak_rss_gb(), 2),
    }
    ids = Vocabulary(f"i{i}" for i in range(n_items))
    user_ids = Vocabulary(f"u{u}" for u in range(n_users))
    catalog = Catalog.empty(n_items)
    histories = UserHistories.from_interactions(user_ids, log)
    rng = np.random.default_rng(7)
    sample = rng.choice(n_users, size=n_queries, replace=False)
    queries = [Query(user_id=f"u{u}", k=10) for u in sample]

    def pipeline(ann: AnnOptions) -> Pipeline:
        return Pipeline(model, ids, catalog, histories, config=PipelineConfig(ann=ann))

    exact = pipeline(AnnOptions(min_items=n_items + 1))
    out["exact"] = latency(exact, queries)
    del exact
    if kind is not None:
        approx = pipeline(AnnOptions(min_items=0, kind=kind, storage="f16"))
        t = time.perf_counter()
        index = approx.candidate_index()
        assert index is not None
        out["index"] = {
            "kind": kind,
            "storage": "f16",
            "build_s": round(time.perf_counter() - t, 1),
        }
        out["ann"] = latency(approx, queries)
        hist = Histories.from_lists([histories.get(f"u{u}") for u in sample])
        embedded = model.query_embeddings(hist)
        truth = top_k(model.score(hist), 100)

        def recall(found: np.ndarray) -> float:
            pairs = zip(found, truth, strict=True)
            return round(float(np.mean([len(set(f) & set(e)) / 100 for f, e in pairs])), 4)

        out["recall_at_100"] = recall(index.search(embedded, 100))
        # What the pipeline asks for: `candidates` (400) more than the history it bans.
        out["top100_in_candidates"] = recall(index.search(embedded, AnnOptions().candidates))
    out["peak_rss_gb"] = round(peak_rss_gb(), 2)
    return out


def plot(results: list[dict], path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for colour, name in enumerate(MODELS):
        rows = [r for r in results if r["model"] == name]
        if not rows:
            continue
        sizes = [r["items"] for r in rows]
        left.plot(sizes, [r["peak_rss_gb"] for r in rows], marker="o", c=f"C{colour}", label=name)
        right.plot(
            sizes,
            [r["exact"]["p99_ms"] for r in rows],
            marker="o",
            c=f"C{colour}",
            label=f"{name} exact",
        )
        if "ann" in rows[0]:
            right.plot(
                sizes,
                [r["ann"]["p99_ms"] for r in rows],
                marker="s",
                ls="--",
                c=f"C{colour}",
                label=f"{name} ANN",
            )
    for ax, label in ((left, "peak memory (GB)"), (right, "recommendation p99 (ms)")):
        ax.set_xscale("log")
        ax.set_xlabel("items in the catalogue")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    right.axhline(50, color="grey", lw=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--per-item", type=int, default=10, help="Interactions per item.")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument(
        "--replot", action="store_true", help="Only draw --plot from the runs saved in --out."
    )
    parser.add_argument("--child", nargs=2, metavar=("WORLD", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1], args.queries)))
        return
    if args.replot:
        plot([r for r in json.loads(args.out.read_text())["runs"] if "error" not in r], args.plot)
        return
    results = []
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            world = make_world(n, args.per_item, Path(tmp))
            world["generate_s"] = round(time.perf_counter() - t, 1)
            print(json.dumps({"world": world}), flush=True)
            for name in args.models.split(","):
                run = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        tmp,
                        name,
                        "--queries",
                        str(args.queries),
                    ],
                    capture_output=True,
                    text=True,
                )
                if run.returncode != 0:
                    row = {"model": name, "error": run.stderr.strip().splitlines()[-1:]}
                else:
                    row = json.loads(run.stdout.strip().splitlines()[-1])
                row = {**world, **row}
                results.append(row)
                print(json.dumps(row), flush=True)
                if args.out:
                    args.out.write_text(
                        json.dumps(
                            {
                                "args": vars(args) | {"out": str(args.out), "plot": str(args.plot)},
                                "runs": results,
                            },
                            indent=2,
                        )
                    )
    if args.plot:
        plot([r for r in results if "error" not in r], args.plot)


if __name__ == "__main__":
    main()
