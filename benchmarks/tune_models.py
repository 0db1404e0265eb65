"""Default vs tuned, per strategy: `lmrec tune` for each model, the results gathered.

    python benchmarks/tune_models.py --dataset ml-100k --models ease:30,als:20,itemknn:30

Each `MODEL:TRIALS` runs `lmrec tune --dataset D --model MODEL --trials TRIALS` (TPE, seed
0, objective ndcg@10 on validation, leave-one-out) into OUT/D-MODEL, then copies its
tune.json, trials.csv and best.json to benchmarks/results/tune/. The test figures in
them were computed once, after each search; `lmrec evaluate --config best.json
--save-rankings DIR` recomputes them with the rankings. Extra `lmrec tune` flags go
after `--`, e.g. `-- --search rerank --objective diversity@10`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "tune"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--models", default="ease:30,itemknn:30,als:20,bpr:15")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lmrec-bench/tune"))
    parser.add_argument("--tag", default="", help="Suffix of the result names.")
    parser.add_argument("extra", nargs="*", help="More `lmrec tune` flags (after --).")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    for item in args.models.split(","):
        model, _, trials = item.partition(":")
        name = f"{args.dataset}-{model}{args.tag}"
        out = args.out / name
        cmd = [
            sys.executable,
            "-m",
            "lmrec.cli",
            "tune",
            "--dataset",
            args.dataset,
            "--model",
            model,
            "--trials",
            trials or "20",
            "--out",
            str(out),
            "--study",
            name,
            *args.extra,
        ]
        print(" ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        for file in ("tune.json", "trials.csv", "best.json"):
            shutil.copy(out / file, RESULTS / f"{name}-{file}")
        doc = json.loads((out / "tune.json").read_text())
        test = doc["test"]
        best = test["chosen"][0]
        vs = best.get("vs_default", {}).get("ndcg@10", {})
        print(
            json.dumps(
                {
                    "dataset": args.dataset,
                    "model": model,
                    "trials": doc["trials"],
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "default": {
                        "valid": test["default"]["validation"],
                        "test": test["default"]["test"],
                    },
                    "tuned": {
                        "valid": best["validation"],
                        "test": best["test"],
                        "params": best["config"],
                    },
                    "ndcg@10_diff": vs,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
