"""How fast is full-ranking evaluation? Batched lmrec evaluator vs a naive per-user loop.

    python benchmarks/eval_speed.py --dataset amazon-beauty --model ease --repeats 3

Fits the model once, then times `evaluate_model` over every test user (all items
ranked, training items removed) `--repeats` times and reports the median. The
baseline, measured in the same run, is the straightforward loop a user would
write (score one user, mask, argsort, check the target), timed on
`--naive-users` users and scaled to the full user count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime

import numpy as np

from lmrec.data.interactions import Histories
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import leave_one_out
from lmrec.evaluation import evaluate_model
from lmrec.models.base import TrainingData
from lmrec.models.names import resolve_strategy


def naive_ndcg(model, history, test, users: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    total = 0.0
    for u in users:
        seen = history.history(u)
        scores = model.score(Histories.from_lists([seen]))[0]
        scores[seen] = -np.inf
        ranking = np.argsort(-scores)[:10]
        target = test.history(u)[0]
        hit = np.flatnonzero(ranking == target)
        total += 1.0 / np.log2(hit[0] + 2) if len(hit) else 0.0
    return total / len(users)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--model", default="ease")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-users", type=int, default=500)
    args = parser.parse_args()
    ds = load_dataset(args.dataset)
    split = leave_one_out(ds.interactions)
    history = split.test_history
    model = resolve_strategy(args.model)().fit(TrainingData(split.train, valid=split.valid))
    times, ndcg = [], 0.0
    for _ in range(args.repeats):
        res = evaluate_model(model, history, split.test, item_popularity=split.train.item_counts)
        times.append(res.eval_seconds)
        ndcg = res.summary["ndcg@10"]
    users = res.users
    sample = np.random.default_rng(0).choice(
        users, size=min(args.naive_users, len(users)), replace=False
    )
    t0 = time.perf_counter()
    naive_ndcg(model, history, split.test, sample)
    naive_full = (time.perf_counter() - t0) * len(users) / len(sample)
    median = statistics.median(times)
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "dataset": ds.name,
                "model": args.model,
                "n_test_users": len(users),
                "n_items": ds.n_items,
                "ndcg@10": round(ndcg, 5),
                "eval_seconds": [round(t, 2) for t in times],
                "eval_seconds_median": round(median, 2),
                "naive_loop_seconds_estimated": round(naive_full, 1),
                "speedup_vs_naive": round(naive_full / median, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
