"""Wall time of one simulated round on the batch path, against an older checkout.

Runs `lmrec simulate` (one round, no refit) for each `--users` size, alternating this
checkout with `--baseline-src` (another checkout's `src`, put first on PYTHONPATH) when
given, `--repeats` times each, and reports the median `seconds_per_round` per strategy
and the ratio. Each run's JSON is kept under `--out-dir`.

    git worktree add ../lmrec-before <commit>
    LMREC_DATA_DIR=../shared/datasets python benchmarks/simulation_cost.py \\
      --dataset amazon-beauty --users 1000 --baseline-src ../lmrec-before/src
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def one_run(args: argparse.Namespace, users: int, src: str | None, out: Path) -> dict[str, float]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [
        sys.executable,
        "-m",
        "lmrec.cli",
        "simulate",
        "--dataset",
        args.dataset,
        "--strategies",
        args.strategies,
        "--rounds",
        "1",
        "--users",
        str(users),
        "--seeds",
        "1",
        "--truth",
        args.truth,
        "--refit-every",
        "0",
        "--out",
        str(out),
    ]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    doc = json.loads(out.read_text())
    return {k: v["seconds_per_round"] for k, v in doc["strategies"].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--users", default="1000", help="comma-separated sizes")
    ap.add_argument("--strategies", default="pop,als")
    ap.add_argument("--truth", default="als")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--baseline-src", default=None)
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/simulation-cost"))
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    trees = {"this checkout": None} | ({"baseline": args.baseline_src} if args.baseline_src else {})
    report = {}
    for users in (int(u) for u in args.users.split(",")):
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for rep in range(args.repeats):
            for name, src in trees.items():
                tag = "this" if src is None else "baseline"
                out = args.out_dir / f"{args.dataset}-{users}-{tag}-{rep}.json"
                runs[name].append(one_run(args, users, src, out))
                print(f"{users} users, {name}, run {rep}: {runs[name][-1]}", flush=True)
        med = {
            name: {s: round(float(np.median([r[s] for r in rs])), 3) for s in rs[0]}
            for name, rs in runs.items()
        }
        row: dict[str, object] = {"median_seconds_per_round": med}
        if "baseline" in med:
            row["speedup"] = {
                s: round(med["baseline"][s] / med["this checkout"][s], 2) for s in med["baseline"]
            }
        report[users] = row
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
