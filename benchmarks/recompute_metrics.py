"""Recompute NDCG@K and Recall@K from saved rankings, independently of how they were scored.

Two modes:

    # rankings with their truth (`lmrec evaluate --save-rankings DIR`), checked against
    # the results JSON; plain Python, nothing from lmrec
    python benchmarks/recompute_metrics.py RANKINGS_DIR RESULTS.json [--k 10]

    # shareable rankings (`lmrec evaluate --publish-rankings DIR`: ids only, no truth):
    # the truth comes from the dataset, split by leave-one-out as `lmrec evaluate` does
    python benchmarks/recompute_metrics.py --dataset amazon-beauty \
        [--rankings benchmarks/results/rankings] [--tie-break file] [--results RESULTS.json ...]

The metric arithmetic is the few lines below in both modes; the second mode uses lmrec
only to load the dataset and find each user's held-out item. With a results JSON, exits
1 if any recomputed value differs from the reported one by more than 1e-6 (the JSON
stores 6 decimals); in the second mode a ranking `<dataset>-<model>.jsonl.gz` is checked
against the JSON's row `<model>`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path


def metrics(rows: Iterable[tuple[set[str], list[str]]], k: int) -> dict[str, float]:
    """Mean NDCG@k and Recall@k over (truth items, ranked items) pairs."""
    ndcg_sum = recall_sum = 0.0
    n = 0
    for truth, ranked in rows:
        top = ranked[:k]
        dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(top) if item in truth)
        idcg = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(truth), k)))
        ndcg_sum += dcg / idcg
        recall_sum += sum(1 for item in top if item in truth) / len(truth)
        n += 1
    return {f"ndcg@{k}": ndcg_sum / max(n, 1), f"recall@{k}": recall_sum / max(n, 1), "n_users": n}


def _lines(path: Path) -> Iterable[dict]:  # type: ignore[type-arg]
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def recompute(path: Path, k: int) -> dict[str, float]:
    """Metrics of one `--save-rankings` file (its rows carry their truth)."""
    return metrics(((set(r["truth"]), r["ranked"]) for r in _lines(path)), k)


def recompute_against(path: Path, truth: Mapping[str, set[str]], k: int) -> dict[str, float]:
    """Metrics of one shareable rankings file, the truth given by user id.

    Every test user must be ranked: a file missing some would score only the rest."""
    rows = list(_lines(path))
    seen = {r["user"] for r in rows}
    if seen != set(truth):
        raise SystemExit(
            f"{path}: ranks {len(seen)} users, the split tests {len(truth)} "
            f"({len(seen - set(truth))} unknown, {len(set(truth) - seen)} missing); "
            "wrong dataset or --tie-break?"
        )
    return metrics(((truth[r["user"]], r["ranked"]) for r in rows), k)


def loo_truth(dataset: str, tie_break: str) -> dict[str, set[str]]:
    """Each leave-one-out test user's held-out items, as `lmrec evaluate` splits them."""
    from lmrec.data.loaders import load_dataset
    from lmrec.data.splitting import leave_one_out

    ds = load_dataset(dataset).with_tie_break(tie_break)
    test = leave_one_out(ds.interactions).test
    out: dict[str, set[str]] = {}
    for user, item in zip(test.users.tolist(), test.items.tolist(), strict=True):
        out.setdefault(ds.users.id(user), set()).add(ds.items.id(item))
    return out


def _check(name: str, mine: dict[str, float], row: Mapping[str, float] | None, k: int) -> bool:
    ok = True
    for metric in (f"ndcg@{k}", f"recall@{k}"):
        if row is None:
            print(
                f"{name:28s} {metric:10s} recomputed {mine[metric]:.6f} ({mine['n_users']} users)"
            )
            continue
        diff = abs(mine[metric] - row[metric])
        ok &= diff <= 1e-6
        print(
            f"{name:28s} {metric:10s} reported {row[metric]:.6f} recomputed {mine[metric]:.6f} "
            f"({mine['n_users']} users) {'ok' if diff <= 1e-6 else 'MISMATCH'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rankings_dir", type=Path, nargs="?", help="--save-rankings folder")
    parser.add_argument("results_json", type=Path, nargs="?", help="its results JSON")
    parser.add_argument("--dataset", help="recompute shareable rankings of this dataset")
    parser.add_argument("--rankings", type=Path, default=Path("benchmarks/results/rankings"))
    parser.add_argument(
        "--results", type=Path, action="append", help="results JSON to check against (repeatable)"
    )
    parser.add_argument("--tie-break", default="file", help="as given to lmrec evaluate")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    ok = True
    if args.dataset is None:
        if args.rankings_dir is None or args.results_json is None:
            parser.error("give RANKINGS_DIR RESULTS.json, or --dataset NAME")
        reported = json.loads(args.results_json.read_text())["results"]
        for name, row in reported.items():
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            ok &= _check(name, recompute(args.rankings_dir / f"{safe}.jsonl", args.k), row, args.k)
        return 0 if ok else 1
    reported = None
    if args.results:
        reported = {}
        for path in args.results:
            reported.update(json.loads(path.read_text())["results"])
    files = sorted(args.rankings.glob(f"{args.dataset}-*.jsonl.gz"))
    if not files:
        print(f"no {args.dataset}-*.jsonl.gz in {args.rankings}", file=sys.stderr)
        return 1
    truth = loo_truth(args.dataset, args.tie_break)
    for path in files:
        model = path.name[len(args.dataset) + 1 : -len(".jsonl.gz")]
        row = None if reported is None else reported.get(model)
        if reported is not None and row is None:
            print(f"{model}: in no --results file", file=sys.stderr)
            ok = False
            continue
        ok &= _check(model, recompute_against(path, truth, args.k), row, args.k)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
