"""Decision layer on a real dataset (LOO, full ranking): fusion vs single strategies, the MMR
accuracy-diversity curve, and multi-interest vs a single profile on multi-interest users.

    LMREC_DATA_DIR=/path/to/datasets python benchmarks/decision_beauty.py \
        --dataset amazon-beauty --out benchmarks/results/decision_beauty.json \
        --report benchmarks/results/decision_beauty.html

1. Each single strategy (`--strategies`) and `Fused` (learned fusion over them, and
   RRF) ranks all items for every test user; bootstrap 95% CIs; paired bootstrap of
   fused minus the best single strategy on NDCG@10 (claim: fused >= best single).
2. MMR lambda sweep on the learned fused model (no refit; only the re-ranker
   changes); reports the settings where diversity@10 rises >= 20% while NDCG@10
   falls <= 5% against lambda = 1.
3. Multi-interest (quota merge) vs the same model with one profile vector
   (`merge=weighted`) and vs `content`, on users whose history spans >= 2
   interests each holding >= `--min-share` of it: recall@20 with paired CIs.
The JSON follows `lmrec evaluate`'s layout plus `mmr_curve` and `interests`, so
`write_report` draws the accuracy-diversity plot and the per-interest table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from _decision_common import run_info, setup
from lmrec.evaluation import EvalOptions, evaluate_model, write_report
from lmrec.evaluation.evaluator import ModelEvaluation
from lmrec.evaluation.significance import bootstrap_ci, paired_test
from lmrec.models.base import Recommender
from lmrec.models.multi_interest import MultiInterest
from lmrec.models.names import resolve_strategy
from lmrec.ranking.decision import Fused

CI_METRICS = ("ndcg@10", "recall@10", "recall@20", "hr@10")


def _row(res: ModelEvaluation, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {k: float(v) for k, v in res.summary.items()}
    row["fit_seconds"] = res.fit_seconds
    row["eval_seconds"] = res.eval_seconds
    row["ci95"] = {}
    for m in CI_METRICS:
        if m in res.per_user:
            ci = bootstrap_ci(res.per_user[m], seed=seed)
            row["ci95"][m] = [ci.low, ci.high]
    row["segments"] = res.segments
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--strategies", default="ease,itemknn,content,multi-interest")
    p.add_argument("--params", default="{}", help='JSON {"ease": {"reg": 50}, ...}')
    p.add_argument("--lambdas", default="1.0,0.95,0.9,0.85,0.8,0.7,0.5")
    p.add_argument("--max-users", type=int, default=None, help="Sample this many test users.")
    p.add_argument("--min-share", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/decision.json"))
    p.add_argument("--report", type=Path, default=None)
    args = p.parse_args()

    s = setup(args.dataset, args.data_dir, args.max_users, args.seed)
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    params: dict[str, dict[str, Any]] = json.loads(args.params)
    opts = EvalOptions(ks=(10, 20))
    history = s.split.test_history
    pop = s.split.train.item_counts

    def run(name: str, model: Recommender, fitted: bool = False) -> ModelEvaluation:
        t0 = time.perf_counter()
        if not fitted:
            model.fit(s.data)
        fit_s = time.perf_counter() - t0
        res = evaluate_model(model, history, s.test, pop, s.vectors, opts)
        res.fit_seconds = fit_s
        print(
            f"{name:>22}: ndcg@10 {res.summary['ndcg@10']:.4f} recall@20 "
            f"{res.summary['recall@20']:.4f} diversity@10 {res.summary['diversity@10']:.4f} "
            f"(fit {fit_s:.0f}s, eval {res.eval_seconds:.0f}s)",
            flush=True,
        )
        return res

    results: dict[str, ModelEvaluation] = {}
    models: dict[str, Recommender] = {}
    for name in names:
        models[name] = resolve_strategy(name)(params.get(name, {}))
        results[name] = run(name, models[name])
    fused = Fused(strategies=tuple(names), strategy_params={n: params.get(n, {}) for n in names})
    results["fused"] = run("fused", fused)
    rrf = Fused(strategies=tuple(names), strategy_params=fused.config.strategy_params, fusion="rrf")
    results["fused-rrf"] = run("fused-rrf", rrf)

    best = max(names, key=lambda n: results[n].summary["ndcg@10"])
    claims: dict[str, Any] = {"best_single": best}
    for fname in ("fused", "fused-rrf"):
        t = paired_test(
            results[fname].per_user["ndcg@10"], results[best].per_user["ndcg@10"], seed=args.seed
        )
        claims[f"{fname}_minus_{best}_ndcg@10"] = {
            "diff": t.diff.mean,
            "ci95": [t.diff.low, t.diff.high],
            "p_bootstrap": t.p_bootstrap,
        }

    # MMR lambda sweep: only the re-ranker changes, so the fitted model is reused.
    curve = []
    base_cfg = fused.config
    for lam in [float(x) for x in args.lambdas.split(",")]:
        fused.config = base_cfg.model_copy(update={"mmr_lambda": lam})
        res = run(f"fused mmr={lam:g}", fused, fitted=True)
        curve.append(
            {
                "mmr_lambda": lam,
                **{
                    k: float(res.summary[k])
                    for k in ("ndcg@10", "diversity@10", "coverage@10", "recall@20")
                },
            }
        )
    fused.config = base_cfg
    ref = next(c for c in curve if c["mmr_lambda"] == max(c["mmr_lambda"] for c in curve))
    good = [
        c["mmr_lambda"]
        for c in curve
        if c["diversity@10"] >= 1.2 * ref["diversity@10"] and c["ndcg@10"] >= 0.95 * ref["ndcg@10"]
    ]
    claims["mmr_settings_div+20%_ndcg-5%"] = good

    # Multi-interest vs single profile on users with >= 2 substantial interests.
    mi = MultiInterest(params.get("multi-interest", {})).fit(s.data)
    single = MultiInterest({**params.get("multi-interest", {}), "merge": "weighted"})
    res_single = run("single-profile", single)
    res_mi = results.get("multi-interest") or run("multi-interest", mi)
    users = res_mi.users
    n_int = np.array(
        [
            sum(1 for i in mi.interests(history.history(int(u))) if i.weight >= args.min_share)
            for u in users
        ]
    )
    segments: dict[str, dict[str, Any]] = {}
    for label, mask in (("1 interest", n_int <= 1), ("2+ interests", n_int >= 2)):
        idx = np.flatnonzero(mask)
        seg: dict[str, Any] = {}
        for name, res in (
            ("multi-interest", res_mi),
            ("single-profile", res_single),
            *((n, results[n]) for n in ("content", "fused") if n in results),
        ):
            v = res.per_user["recall@20"][idx]
            ci = bootstrap_ci(v, seed=args.seed) if len(v) else None
            seg[name] = {
                "recall@20": float(v.mean()) if len(v) else float("nan"),
                "ndcg@10": float(res.per_user["ndcg@10"][idx].mean()) if len(v) else float("nan"),
                "n_users": len(idx),
            }
            if ci is not None:
                seg[name]["recall@20_ci95"] = [ci.low, ci.high]
        segments[label] = seg
    idx = np.flatnonzero(n_int >= 2)
    if len(idx):
        t = paired_test(
            res_mi.per_user["recall@20"][idx], res_single.per_user["recall@20"][idx], seed=args.seed
        )
        claims["multi_minus_single_recall@20_on_2+_interests"] = {
            "diff": t.diff.mean,
            "ci95": [t.diff.low, t.diff.high],
            "p_bootstrap": t.p_bootstrap,
            "n_users": len(idx),
        }
    results["single-profile"] = res_single

    doc: dict[str, Any] = {
        "dataset": s.dataset.name,
        "protocol": "loo",
        "n_users": s.dataset.n_users,
        "n_items": s.dataset.n_items,
        "n_interactions": len(s.dataset.interactions),
        "n_test_users": len(results["fused"].users),
        "ks": [10, 20],
        **run_info(),
        "results": {n: _row(r, args.seed) for n, r in results.items()},
        "fusion_weights": fused.feature_weights,
        "mmr_curve": {"fused": curve},
        "interests": segments,
        "claims": claims,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=float))
    print(json.dumps(claims, indent=2, default=float))
    print(f"results: {args.out}")
    if args.report:
        write_report(doc, args.report)
        print(f"report: {args.report}")


if __name__ == "__main__":
    main()
