"""SASRec (ID-only and text-enhanced), leave-one-out, full ranking over all items.

Usage:
    LMREC_DATA_DIR=/path/to/datasets python benchmarks/sasrec_loo.py \
        --dataset amazon-beauty --variants sasrec,sasrec-text-fuse --seeds 0,1,2

Loads the dataset through lmrec (`$LMREC_DATA_DIR`), encodes item text through lmrec's
embedding cache, and writes the `lmrec evaluate` JSON schema (plus training logs) to
`benchmarks/results/<dataset>-loo-sasrec.json`, merging with results already there.
With several seeds, each run is stored as `<variant>-seed<k>` and `<variant>` holds the
mean and standard deviation over the seeds stored so far.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lmrec.data import Dataset
from lmrec.data.interactions import Histories
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import leave_one_out
from lmrec.evaluation.evaluator import EvalOptions, evaluate_model
from lmrec.models.base import TrainingData
from lmrec.models.sasrec import SASRec, TextSASRec


def text_vectors(ds: Dataset) -> np.ndarray:
    """Item text vectors (bundled all-MiniLM-L6-v2 over lmrec's default item text), via the cache."""
    from lmrec.text import EmbeddingCache, encode_catalog, make_encoder

    vectors, stats = encode_catalog(
        ds.catalog, make_encoder(), EmbeddingCache(), show_progress=True
    )
    print(
        f"text vectors: {stats.n_encoded} encoded, {stats.n_cached} cached, {stats.seconds:.1f} s",
        flush=True,
    )
    return vectors


def latency_ms(model: SASRec, histories: Histories, n: int = 1000) -> float:
    """Median milliseconds to score one fresh history against all items."""
    times = []
    for q in range(n):
        one = Histories.from_lists([histories[q % len(histories)]])
        t0 = time.perf_counter()
        model.score(one)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def to_best(log: list[dict[str, float]], best: int, field: str) -> float | None:
    """Minutes spent up to and including the best validation epoch (the last view's best)."""
    if not log:
        return None
    return round(sum(r[field] for r in log if r["epoch"] <= best) / 60, 1)


def over_seeds(results: dict[str, dict], name: str) -> dict:
    """Mean and standard deviation of every metric over the stored `<name>-seed<k>` runs."""
    runs = {k: v for k, v in results.items() if k.startswith(f"{name}-seed")}
    metrics = [k for k, v in next(iter(runs.values())).items() if "@" in k and isinstance(v, float)]
    out: dict = {"seeds": sorted(runs)}
    for m in [*metrics, "minutes_to_best", "cpu_minutes_to_best", "latency_ms_median"]:
        values = [float(r[m]) for r in runs.values() if r.get(m) is not None]
        if values:
            out[m] = round(float(np.mean(values)), 6)
            out[f"{m}_std"] = round(float(np.std(values, ddof=1)), 6) if len(values) > 1 else 0.0
    for seg in ("tail_items", "short_history"):
        out.setdefault("segments", {})[seg] = {
            m: round(float(np.mean([r["segments"][seg][m] for r in runs.values()])), 6)
            for m in next(iter(runs.values()))["segments"][seg]
        }
    return out


VARIANTS = {
    "sasrec": (SASRec, {}),
    "sasrec-text-fuse": (TextSASRec, {"text": "fuse"}),
    "sasrec-text-init": (TextSASRec, {"text": "init"}),
    "sasrec-text-dual": (TextSASRec, {"text": "dual"}),
    "sasrec-text-init-fuse": (TextSASRec, {"text": "init-fuse"}),
    # Several views side by side, scores summed (SASRecConfig.copies, TextSASRecConfig.text).
    "sasrec-2-views": (SASRec, {"copies": 2}),
    "sasrec-text-init+fuse": (TextSASRec, {"text": "init,fuse"}),
    "sasrec-text-none+init+fuse": (TextSASRec, {"text": "none,init,fuse"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="amazon-beauty", help="a name `lmrec datasets` lists")
    ap.add_argument(
        "--variants", default="sasrec,sasrec-text-fuse", help=f"comma list of {', '.join(VARIANTS)}"
    )
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=50)
    ap.add_argument(
        "--set", action="append", default=[], help="extra config key=value (JSON value)"
    )
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default: see above)")
    ap.add_argument("--checkpoint-dir", type=Path, default=None)
    args = ap.parse_args()

    if args.out is None:
        args.out = Path(__file__).parent / "results" / f"{args.dataset}-loo-sasrec.json"
    ds = load_dataset(args.dataset)
    split = leave_one_out(ds.interactions)
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    results: dict[str, dict] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text()).get("results", {})
    test_history = split.test_history
    for name in args.variants.split(","):
        cls, cfg = VARIANTS[name]
        vectors = text_vectors(ds) if cls.uses_text else None
        for seed in (int(s) for s in args.seeds.split(",")):
            config = {
                **cfg,
                "epochs": args.epochs,
                "patience": args.patience,
                "seed": seed,
                **extra,
            }
            if args.checkpoint_dir:
                config["checkpoint_dir"] = str(args.checkpoint_dir / f"{name}-{seed}")
            model = cls(config)
            t0 = time.perf_counter()
            model.fit(TrainingData(split.train, item_vectors=vectors, valid=split.valid))
            fit_seconds = time.perf_counter() - t0
            ev = evaluate_model(
                model,
                test_history,
                split.test,
                item_popularity=split.train.item_counts,
                options=EvalOptions(ks=(10, 20)),
            )
            log = model.training_log_
            row = {k: round(v, 6) for k, v in ev.summary.items()}
            row.update(
                fit_seconds=round(fit_seconds, 1),
                eval_seconds=round(ev.eval_seconds, 1),
                seconds_per_epoch=round(float(np.median([r["seconds"] for r in log])), 1)
                if log
                else None,
                cpu_seconds_per_epoch=round(float(np.median([r["cpu_seconds"] for r in log])), 1)
                if log
                else None,
                epochs_run=len(log),
                best_epoch=model.best_epoch_ if log else None,
                minutes_to_best=to_best(log, model.best_epoch_, "seconds"),
                cpu_minutes_to_best=to_best(log, model.best_epoch_, "cpu_seconds"),
                valid_ndcg_at_10_sample=model.valid_ndcg_,
                latency_ms_median=round(latency_ms(model, test_history.histories()), 2),
                segments={
                    s: {k: round(v, 6) for k, v in ev.segments[s].items()}
                    for s in ("tail_items", "short_history")
                },
                config=model.config.model_dump(mode="json"),
                training_log=log,
            )
            key = f"{name}-seed{seed}"
            results[key] = row
            results[name] = over_seeds(results, name)
            print(
                key,
                json.dumps(
                    {
                        k: row[k]
                        for k in (
                            "ndcg@10",
                            "recall@10",
                            "hr@10",
                            "mrr@10",
                            "ndcg@20",
                            "recall@20",
                            "fit_seconds",
                            "seconds_per_epoch",
                            "best_epoch",
                            "latency_ms_median",
                        )
                    }
                ),
                flush=True,
            )
            out = {
                "dataset": args.dataset,
                "protocol": "loo",
                "n_users": ds.n_users,
                "n_items": ds.n_items,
                "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv),
                "results": results,
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
