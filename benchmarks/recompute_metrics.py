"""Recompute NDCG@K and Recall@K from `lmrec evaluate --save-rankings` output, independently.

Uses nothing from lmrec: plain Python over the JSON lines, so anyone can check
that the reported figures follow from the rankings.

    python benchmarks/recompute_metrics.py RANKINGS_DIR RESULTS.json [--k 10]

Exits 1 if any model's recomputed value differs from the reported one by more
than 1e-6 (the JSON stores 6 decimals).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def recompute(path: Path, k: int) -> dict[str, float]:
    """Mean NDCG@k and Recall@k over the users in one rankings file."""
    ndcg_sum = recall_sum = 0.0
    n = 0
    with path.open() as fh:
        for line in fh:
            row = json.loads(line)
            truth = set(row["truth"])
            ranked = row["ranked"][:k]
            dcg = sum(
                1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked) if item in truth
            )
            idcg = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(truth), k)))
            ndcg_sum += dcg / idcg
            recall_sum += sum(1 for item in ranked if item in truth) / len(truth)
            n += 1
    return {f"ndcg@{k}": ndcg_sum / n, f"recall@{k}": recall_sum / n, "n_users": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rankings", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    reported = json.loads(args.results.read_text())["results"]
    ok = True
    for name, row in reported.items():
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        mine = recompute(args.rankings / f"{safe}.jsonl", args.k)
        for metric in (f"ndcg@{args.k}", f"recall@{args.k}"):
            diff = abs(mine[metric] - row[metric])
            status = "ok" if diff <= 1e-6 else "MISMATCH"
            ok &= diff <= 1e-6
            print(
                f"{name:12s} {metric:10s} reported {row[metric]:.6f} recomputed {mine[metric]:.6f} ({mine['n_users']} users) {status}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
