"""New items through the serving path: cold items added with `Pipeline.add_items`, then ranked.

The cold-items protocol (20% of items held out with all their interactions), served the
way a shop would: each model is fit on a catalogue that does not contain the held-out
items at all (a vocabulary of the warm items only), the pipeline is built around it, and
the held-out items arrive afterwards through `add_items` with their text vectors, as
`POST /v1/items` adds them. Every test user is then ranked through `Pipeline.rank` over
all items (warm and new, history removed), and the targets are the new items'
interactions. Compare with `lmrec evaluate --protocol cold-items`, where the held-out
items are in the model's vocabulary from the start.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/new_items.py --dataset amazon-beauty \
        --models pop,ease,content --out benchmarks/results/amazon-beauty-new-items.json
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.data.catalog import Catalog
from lmrec.data.interactions import Interactions
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import split
from lmrec.data.vocabulary import Vocabulary
from lmrec.evaluation import evaluate_pipeline
from lmrec.evaluation.significance import bootstrap_ci
from lmrec.models import TrainingData
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, UserHistories
from lmrec.text import EmbeddingCache, encode_catalog, make_encoder


def _remap(log: Interactions, new_index: np.ndarray, n_items: int) -> Interactions:
    """`log` with item `i` renumbered `new_index[i]` (every item of `log` must have one)."""
    items = new_index[log.items]
    assert (items >= 0).all()
    return Interactions.build(
        log.users, items, log.n_users, n_items, log.timestamps, log.weights, log.events
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--models", default="pop,ease,content")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    ds = load_dataset(args.dataset)
    vectors, _ = encode_catalog(ds.catalog, make_encoder(), EmbeddingCache(), show_progress=True)
    s = split(ds.interactions, "cold-items", seed=args.seed)
    held = np.zeros(ds.n_items, dtype=bool)
    held[s.cold_items] = True
    held[np.unique(s.valid.items)] = True  # the cold validation items are new too
    warm = np.flatnonzero(~held)
    order = np.concatenate([warm, s.cold_items, np.setdiff1d(np.flatnonzero(held), s.cold_items)])
    new_index = np.full(ds.n_items, -1, dtype=np.int64)
    new_index[order] = np.arange(len(order))
    n_warm = len(warm)
    train = _remap(s.train, new_index, n_warm)
    valid = _remap(s.valid, new_index, ds.n_items)
    targets = _remap(s.test, new_index, ds.n_items)
    warm_ids = Vocabulary(ds.items.id(int(i)) for i in warm)
    warm_catalog = Catalog(ds.catalog.frame.iloc[warm].reset_index(drop=True))
    new_items = order[n_warm:]
    rows = ds.catalog.frame.iloc[new_items].drop(columns=["item"]).to_dict("records")
    results: dict[str, Any] = {}
    for name in args.models.split(","):
        cls = resolve_strategy(name)
        data = TrainingData(train, warm_catalog, vectors[warm], None)
        if cls.uses_validation:  # cold validation items it may tune on: they must be known
            data = TrainingData(
                train.with_sizes(train.n_users, ds.n_items), None, vectors[order], valid
            )
        t0 = time.perf_counter()
        model = cls().fit(data)
        fit_s = time.perf_counter() - t0
        pipeline = Pipeline(
            model,
            warm_ids,
            warm_catalog,
            histories=UserHistories.from_interactions(ds.users, train),
            item_vectors=vectors[warm],
        )
        pipeline.add_items([ds.items.id(int(i)) for i in new_items], rows, vectors[new_items])
        res = evaluate_pipeline(pipeline, targets.with_sizes(targets.n_users, pipeline.n_items))
        ci = bootstrap_ci(res.per_user["ndcg@10"], seed=args.seed)
        results[name] = {
            "ndcg@10": round(res.summary["ndcg@10"], 6),
            "ndcg@10_ci95": [round(ci.low, 6), round(ci.high, 6)],
            "recall@10": round(res.summary["recall@10"], 6),
            "hr@10": round(res.summary["hr@10"], 6),
            "ndcg@20": round(res.summary["ndcg@20"], 6),
            "new_item_share@10": round(float((res.rankings[:, :10] >= n_warm).mean()), 6),
            "fit_seconds": round(fit_s, 1),
            "eval_seconds": round(res.eval_seconds, 1),
        }
        print(name, json.dumps(results[name]), flush=True)
    doc = {
        "dataset": args.dataset,
        "protocol": "cold-items, added with Pipeline.add_items after fitting",
        "n_test_users": int((targets.user_counts > 0).sum()),
        "n_warm_items": n_warm,
        "n_new_items": len(new_items),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
