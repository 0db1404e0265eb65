"""SASRec (ID-only and text-enhanced) on Amazon Beauty 2014 5-core, leave-one-out, full ranking.

Usage:
    LMREC_DATA_DIR=/path/to/datasets python benchmarks/sasrec_beauty.py \
        --variants id,fuse --epochs 60 --seeds 0

Loads Beauty through lmrec (`$LMREC_DATA_DIR`), encodes item text through lmrec's
embedding cache, and writes the `lmrec evaluate` JSON schema (plus training logs) to
`benchmarks/results/amazon-beauty-loo-sasrec.json`, merging with results already there.
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


VARIANTS = {
    "sasrec": (SASRec, {}),
    "sasrec-text-fuse": (TextSASRec, {"text": "fuse"}),
    "sasrec-text-init": (TextSASRec, {"text": "init"}),
    "sasrec-text-dual": (TextSASRec, {"text": "dual"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--variants", default="sasrec,sasrec-text-fuse", help=f"comma list of {', '.join(VARIANTS)}"
    )
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument(
        "--set", action="append", default=[], help="extra config key=value (JSON value)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results" / "amazon-beauty-loo-sasrec.json",
    )
    ap.add_argument("--checkpoint-dir", type=Path, default=None)
    args = ap.parse_args()

    ds = load_dataset("amazon-beauty")
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
            best = max(log, key=lambda r: r["valid_ndcg@10"]) if log else {}
            row = {k: round(v, 6) for k, v in ev.summary.items()}
            row.update(
                fit_seconds=round(fit_seconds, 1),
                eval_seconds=round(ev.eval_seconds, 1),
                seconds_per_epoch=round(float(np.median([r["seconds"] for r in log])), 1)
                if log
                else None,
                epochs_run=len(log),
                best_epoch=best.get("epoch"),
                valid_ndcg_at_10_full=model.valid_ndcg_,
                latency_ms_median=round(latency_ms(model, test_history.histories()), 2),
                segments={
                    s: {k: round(v, 6) for k, v in ev.segments[s].items()}
                    for s in ("tail_items", "short_history")
                },
                config=model.config.model_dump(mode="json"),
                training_log=log,
            )
            key = name if len(args.seeds.split(",")) == 1 else f"{name}-seed{seed}"
            results[key] = row
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
                "dataset": "amazon-beauty",
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
