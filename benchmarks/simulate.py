"""Findings of `lmrec simulate` results, stated as measured (for BENCHMARKS.md).

    LMREC_DATA_DIR=/path/to/datasets lmrec simulate --dataset ml-100k \
        --strategies pop,ease,fused,fused+mmr --rounds 50 --seeds 3 --refit-every 10 \
        --users 400 --reference fused --param sim.returns.leave_hazard=0.03 \
        --out benchmarks/results/ml-100k-simulation.json \
        --report benchmarks/results/ml-100k-simulation.html
    python benchmarks/simulate.py benchmarks/results/ml-100k-simulation.json [more.json ...]

The CLI writes the per-round series, intervals and report; this script reads one or
more of its JSON files (e.g. one per ground truth) and prints, per ground truth, the
answers the simulation issue asks for: who retains the most users at the last round,
who amplifies popularity (Gini and average-popularity slopes with their intervals),
what MMR does to homogenisation and at what CTR cost (paired, same seeds), how niche
users fare, the round-0 validity figures, and the cost per round.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _v(x: Any, ci: Any = None, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    text = f"{x:.{digits}g}"
    if ci and None not in ci:
        text += f" [{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"
    return text


def _paired(a: dict[str, Any], b: dict[str, Any], key: str) -> tuple[Any, Any]:
    """Mean and 95% bootstrap interval of a − b at the final round, seed by seed."""
    from lmrec.evaluation.significance import bootstrap_ci

    d = [
        x[key] - y[key]
        for x, y in zip(a["final_seeds"], b["final_seeds"], strict=True)
        if x[key] is not None and y[key] is not None
    ]
    if not d:
        return None, None
    ci = bootstrap_ci(np.asarray(d, dtype=np.float64), seed=0)
    return ci.mean, [ci.low, ci.high]


def _final(res: dict[str, Any], key: str) -> str:
    return _v(res["final"].get(key), res["final"].get(f"{key}_ci95"))


def findings(truth: str, block: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """Markdown lines for one ground truth."""
    st = block["strategies"]
    last = settings["rounds"] - 1
    out = [f"### Ground truth {truth} (final round {last})", ""]
    out.append(
        "| strategy | retention | active | ctr | satisfaction | gini | gini slope/round | avg pop. shown | avg pop. slope | homogenisation | diversity | ctr niche | ctr mainstream | retention niche | s/round |"
    )
    out.append("|" + "---|" * 15)
    for label, res in st.items():
        t = res["trend"]
        out.append(
            f"| {label} | {_final(res, 'retention')} | {_final(res, 'active_users')} | {_final(res, 'ctr')} "
            f"| {_final(res, 'satisfaction')} | {_final(res, 'gini')} "
            f"| {_v(t['gini_slope']['mean'], t['gini_slope']['ci95'], 3)} | {_final(res, 'avg_popularity')} "
            f"| {_v(t['avg_popularity_slope']['mean'], t['avg_popularity_slope']['ci95'], 3)} "
            f"| {_final(res, 'homogenisation')} | {_final(res, 'diversity')} | {_final(res, 'ctr_niche')} "
            f"| {_final(res, 'ctr_mainstream')} | {_final(res, 'retention_niche')} | {res['seconds_per_round']} |"
        )
    best = max(st, key=lambda s: st[s]["final"]["retention"] or 0)
    out += [
        "",
        f"- Most users retained at round {last}: **{best}** ({_final(st[best], 'retention')}).",
    ]

    def slope(s: str) -> str:
        t = st[s]["trend"]["avg_popularity_slope"]
        return _v(t["mean"], t["ci95"], 3)

    def low(s: str) -> float:
        ci = st[s]["trend"]["avg_popularity_slope"]["ci95"]  # None or [None, None] with 1 seed
        return ci[0] if ci and ci[0] is not None else 0.0

    rising = [s for s in st if low(s) > 0]
    if rising:
        out.append(
            "- Raise the average popularity shown (slope CI above 0): "
            + ", ".join(f"**{s}** ({slope(s)} per round)" for s in rising)
            + "."
        )
    else:
        out.append("- No strategy raises the average popularity shown (no slope CI above 0).")
    out.append(
        "- New items' share of impressions, mean over rounds: "
        + ", ".join(
            f"{s} {sum(r.get('new_item_share') or 0 for r in st[s]['rounds']) / len(st[s]['rounds']):.4f}"
            for s in st
        )
        + "."
    )
    for label, res in st.items():
        base = label.split("+")[0]
        if "+mmr" in label and base in st and "final_seeds" in res:
            pair = {k: _paired(res, st[base], k) for k in ("homogenisation", "ctr", "diversity")}
            out.append(
                f"- {label} − {base} (paired over seeds): "
                + ", ".join(f"{k} {_v(*v)}" for k, v in pair.items())
                + "."
            )
        vs = res.get("vs_reference")
        if vs and "mmr" in label:
            out.append(
                f"- {label} − {vs['reference']}: homogenisation {_v(vs['homogenisation']['diff'], vs['homogenisation']['ci95'])}, "
                f"ctr {_v(vs['ctr']['diff'], vs['ctr']['ci95'])}, diversity {_v(vs['diversity']['diff'], vs['diversity']['ci95'])}."
            )
    v = block["validity"]
    out.append(
        f"- Validity: the users' own NDCG@10 {v['truth_ndcg@10']} vs strategies {v['strategies_ndcg@10']}; "
        f"median popularity of consumption: log {v['popularity_logged'].get('q50')}, round 0 "
        + ", ".join(f"{k} {p.get('q50')}" for k, p in v["popularity_simulated_round0"].items())
        + f"; session gaps (rounds) in the log {v['session_gaps_logged']}, returns {v['returns']}."
    )
    return [*out, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.results:
        doc = json.loads(path.read_text())
        print(
            f"## {doc['dataset']}: {path.name} ({doc['settings']['rounds']} rounds, "
            f"{doc['settings']['seeds']} seeds, {doc['settings']['users'] or 'all'} users, "
            f"lmrec {doc['lmrec_version']}, {doc['seconds']} s)\n"
        )
        for truth, block in doc["truths"].items():
            print("\n".join(findings(truth, block, doc["settings"])))


if __name__ == "__main__":
    main()
