"""Grid-search baseline hyperparameters on the validation split (never the test split).

    python benchmarks/tune_baselines.py --dataset amazon-beauty [--models ease,als,itemknn,bpr]

For each setting: fit on the training part of a leave-one-out split, rank all
items for the validation targets (history = training), report NDCG@10. Prints a
JSON line per setting and the best per model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import leave_one_out
from lmrec.evaluation import EvalOptions, evaluate_model
from lmrec.models.base import TrainingData
from lmrec.models.names import resolve_strategy

GRIDS: dict[str, dict[str, list]] = {
    "ease": {"reg": [50.0, 150.0, 500.0, 1500.0]},
    "itemknn": {"k": [50, 200], "shrink": [0.0, 10.0, 50.0]},
    "als": {"embedding_dim": [64, 256], "reg": [0.05, 1.0], "alpha": [2.0, 10.0]},
    "bpr": {"embedding_dim": [64, 128], "learning_rate": [0.005, 0.01, 0.02]},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--models", default="ease,itemknn,als,bpr")
    args = parser.parse_args()
    ds = load_dataset(args.dataset)
    split = leave_one_out(ds.interactions)
    data = TrainingData(split.train)
    best: dict[str, tuple[float, dict]] = {}
    for name in args.models.split(","):
        cls = resolve_strategy(name)
        grid = GRIDS[name]
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values, strict=True))
            t0 = time.perf_counter()
            model = cls(params).fit(data)
            fit = time.perf_counter() - t0
            res = evaluate_model(
                model, split.train, split.valid, options=EvalOptions(ks=(10,), save_top=10)
            )
            ndcg = res.summary["ndcg@10"]
            print(
                json.dumps(
                    {
                        "model": name,
                        "params": params,
                        "valid_ndcg@10": round(ndcg, 5),
                        "fit_s": round(fit, 1),
                    }
                ),
                flush=True,
            )
            if ndcg > best.get(name, (-1.0, {}))[0]:
                best[name] = (ndcg, params)
    print(
        json.dumps(
            {
                "best": {
                    k: {"valid_ndcg@10": round(v[0], 5), "params": v[1]} for k, v in best.items()
                }
            }
        )
    )


if __name__ == "__main__":
    main()
