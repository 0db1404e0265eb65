"""A transformer's retrain from the model it replaces (warm start) vs from scratch.

The periodic retrain a server (or `lmrec simulate`) does: yesterday's model was fitted
on the log without its latest `--share` of interactions (a global cut in time); today
the whole log is there. Both of today's models are fitted as an artefact is
(`fit_for_artifact`: each user's last interaction held out for early stopping): one
from scratch, one from yesterday's weights (`start_from`, stopping after
`warm_patience` epochs without a gain). Both are scored on the leave-one-out test
items, which neither saw, through the pipeline's batch path with full ranking (history
removed), paired over users.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/warm_refit.py --dataset ml-100k \
        --model sasrec --out benchmarks/results/ml-100k-warm-refit.json
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.artifacts import fit_for_artifact
from lmrec.data.dataset import Dataset
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import leave_one_out
from lmrec.evaluation import evaluate_pipeline
from lmrec.evaluation.significance import paired_test
from lmrec.models.base import Recommender
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, UserHistories
from lmrec.text import EmbeddingCache, encode_catalog, make_encoder


def _fit(
    data: Dataset, cls: type[Recommender], params: dict[str, Any], vectors: Any, warm: Any = None
) -> tuple[Recommender, float]:
    t0 = time.perf_counter()
    model, _ = fit_for_artifact(data, cls, params, vectors, warm)
    return model, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--model", default="sasrec")
    parser.add_argument("--share", type=float, default=0.1, help="Latest share of the log.")
    parser.add_argument("--params", default="{}", help="JSON hyperparameters of --model.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    ds = load_dataset(args.dataset)
    cls = resolve_strategy(args.model)
    params = json.loads(args.params)
    vectors = None
    if cls.uses_text:
        vectors, _ = encode_catalog(ds.catalog, make_encoder(), EmbeddingCache())
    s = leave_one_out(ds.interactions)
    today_log = s.train.concat(s.valid)
    cut = np.quantile(today_log.timestamps, 1.0 - args.share)
    # Same vocabulary both days: items first seen after the cut have untrained rows.
    yesterday = Dataset(
        ds.name, today_log.select(today_log.timestamps < cut), ds.users, ds.items, ds.catalog
    )
    today = Dataset(ds.name, today_log, ds.users, ds.items, ds.catalog)
    old, old_s = _fit(yesterday, cls, params, vectors)
    runs = {
        "cold": _fit(today, cls, params, vectors),
        "warm": _fit(today, cls, params, vectors, old),
    }
    ndcg = {}
    for name, (model, _) in runs.items():
        pipeline = Pipeline(
            model,
            ds.items,
            ds.catalog,
            histories=UserHistories.from_interactions(ds.users, today_log),
            item_vectors=vectors,
        )
        ndcg[name] = evaluate_pipeline(pipeline, s.test).per_user["ndcg@10"]
    diff = paired_test(ndcg["warm"], ndcg["cold"])
    doc: dict[str, Any] = {
        "dataset": ds.name,
        "model": args.model,
        "params": params,
        "share": args.share,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "yesterday": {"interactions": len(yesterday.interactions), "fit_seconds": round(old_s, 1)},
        "today": {"interactions": len(today_log), "test_users": len(ndcg["cold"])},
    }
    for name, (model, seconds) in runs.items():
        doc[name] = {
            "fit_seconds": round(seconds, 1),
            "test_ndcg@10": round(float(ndcg[name].mean()), 6),
            **model.describe(),
        }
    ci = diff.diff
    doc["warm_minus_cold_ndcg@10"] = {
        "diff": round(ci.mean, 6),
        "ci95": [round(ci.low, 6), round(ci.high, 6)],
        "p_bootstrap": diff.p_bootstrap,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
