"""Render an `lmrec evaluate` results JSON as a Markdown table for BENCHMARKS.md.

python benchmarks/results_table.py benchmarks/results/amazon-beauty-loo.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(doc: dict) -> str:
    """One row per model: accuracy with CIs, beyond-accuracy, segments, timings."""
    head = (
        "| model | NDCG@10 [95% CI] | Recall@10 [95% CI] | MRR@10 | NDCG@20 | coverage@10 | "
        "diversity@10 | tail-item NDCG@10 | short-history NDCG@10 | vs ref. NDCG@10 diff [CI] | fit on | fit s | eval s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    rows = sorted(doc["results"].items(), key=lambda kv: -(kv[1].get("ndcg@10") or 0.0))
    for name, r in rows:
        ci = r.get("ci95", {})
        seg = r.get("segments", {})
        vs = r.get("vs_reference", {}).get("ndcg@10")
        if vs:
            ref = f"{vs['diff']:+.4f} [{vs['ci95'][0]:+.4f}, {vs['ci95'][1]:+.4f}]"
        else:
            ref = "(reference)" if name == _reference(doc) else ""
        lines.append(
            f"| {name} | {_f(r.get('ndcg@10'))} [{_f(ci.get('ndcg@10', [None])[0])}, {_f(ci.get('ndcg@10', [None, None])[1])}] "
            f"| {_f(r.get('recall@10'))} [{_f(ci.get('recall@10', [None])[0])}, {_f(ci.get('recall@10', [None, None])[1])}] "
            f"| {_f(r.get('mrr@10'))} | {_f(r.get('ndcg@20'))} | {_f(r.get('coverage@10'), 3)} | {_f(r.get('diversity@10'), 3)} "
            f"| {_f(seg.get('tail_items', {}).get('ndcg@10'))} | {_f(seg.get('short_history', {}).get('ndcg@10'))} "
            f"| {ref} | {r.get('fit_on', '')} | {r['fit_seconds']:.1f} | {r['eval_seconds']:.1f} |"
        )
    return "\n".join(lines)


def _reference(doc: dict) -> str | None:
    for row in doc["results"].values():
        vs = row.get("vs_reference", {}).get("ndcg@10")
        if vs:
            return vs["reference"]
    return None


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text())))
