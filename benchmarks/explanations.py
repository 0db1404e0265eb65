"""Explanation faithfulness: does removing the top-cited history item lower the item's score?

    LMREC_DATA_DIR=/path/to/datasets python benchmarks/explanations.py --dataset amazon-beauty \
        --n 1000 --out benchmarks/results/explanations.json --figure benchmarks/results/explanations.png

For each strategy, samples `--n` recommendations (a random test user, a random item
of their top 10, history = train + validation) from the serving `Pipeline`, takes
the history item its explanation cites first (`Explanation.contributions`, read off
`model.contributions`), removes every occurrence of it and re-scores. Reports the
share of cases where the item's score fell (claim: >= 90%), with a Wilson 95%
interval, and the median relative drop; compares
against removing a random history item (the baseline a faithful explanation
must beat). For `fused` the contributions come from the strategy that ranked
the item best, and both that strategy's score and the fused relevance are checked.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from _decision_common import run_info, setup
from lmrec.data.interactions import Histories
from lmrec.models.fused import Fused
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, Query, UserHistories


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """Wilson score interval of a proportion k / n."""
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    r = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [(c - r) / d, (c + r) / d]


def measure(pipeline: Pipeline, users: np.ndarray, seed: int) -> dict[str, Any]:
    """Score drops when the top-cited (vs a random) history item is removed, per sampled user."""
    model = pipeline.model
    rng = np.random.default_rng(seed)
    cited_drop, random_drop, fused_drop = [], [], []
    for u in users:
        user_id = pipeline.histories.users.id(int(u))
        h = pipeline.histories.get(user_id)
        if len(h) < 2:
            continue
        ranked = pipeline.rank([Query(user_id=user_id, k=10)])[0]
        item = int(rng.choice(ranked.items))
        assert ranked.explanations is not None
        explanation = ranked.explanations[int(np.flatnonzero(ranked.items == item)[0])]
        if explanation is None or not explanation.contributions:
            continue
        cited = pipeline.items.get(explanation.contributions[0][0])
        # A fused item's contributions come from the strategy that ranked it best.
        scorer = model.part(explanation.contributor) if isinstance(model, Fused) else model
        before = float(scorer.score(Histories.from_lists([h]))[0, item])
        after = float(scorer.score(Histories.from_lists([h[h != cited]]))[0, item])
        other = h[h != cited]
        rand_item = int(rng.choice(other)) if len(other) else cited
        after_rand = float(scorer.score(Histories.from_lists([h[h != rand_item]]))[0, item])
        scale = max(abs(before), 1e-12)
        cited_drop.append((before - after) / scale)
        random_drop.append((before - after_rand) / scale)
        if isinstance(model, Fused):
            rel0 = float(model.relevance(Histories.from_lists([h]))[0, item])
            rel1 = float(model.relevance(Histories.from_lists([h[h != cited]]))[0, item])
            fused_drop.append(rel0 - rel1)
    c, r = np.array(cited_drop), np.array(random_drop)
    out: dict[str, Any] = {
        "n": len(c),
        "lowered_share": float((c > 0).mean()) if len(c) else float("nan"),
        "lowered_ci95": wilson(int((c > 0).sum()), len(c)),
        "median_relative_drop": float(np.median(c)) if len(c) else float("nan"),
        "random_item_lowered_share": float((r > 0).mean()) if len(r) else float("nan"),
        "random_item_median_relative_drop": float(np.median(r)) if len(r) else float("nan"),
        "_cited": c.tolist(),
        "_random": r.tolist(),
    }
    if fused_drop:
        f = np.array(fused_drop)
        out["fused_relevance_lowered_share"] = float((f > 0).mean())
    return out


def figure(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    share = [results[n]["lowered_share"] for n in names]
    rand = [results[n]["random_item_lowered_share"] for n in names]
    x = np.arange(len(names))
    a.bar(x - 0.2, share, 0.4, label="top-cited item removed")
    a.bar(x + 0.2, rand, 0.4, label="random history item removed", color="#bbb")
    a.axhline(0.9, color="red", lw=1, ls="--")
    a.set_xticks(x, names, rotation=30)
    a.set_ylabel("share of items whose score fell")
    a.legend(fontsize=8)
    data = [np.clip(results[n]["_cited"], -1, 1) for n in names]
    b.boxplot(data, tick_labels=names, showfliers=False)
    b.set_ylabel("relative score drop (top-cited removed)")
    b.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--strategies", default="itemknn,ease,content,multi-interest,fused")
    p.add_argument("--params", default="{}", help='JSON {"ease": {"reg": 50}, ...}')
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/explanations.json"))
    p.add_argument("--figure", type=Path, default=Path("benchmarks/results/explanations.png"))
    args = p.parse_args()
    s = setup(args.dataset, args.data_dir, None, args.seed)
    params = json.loads(args.params)
    histories = UserHistories.from_interactions(s.dataset.users, s.split.test_history)
    users = np.flatnonzero(s.split.test.user_counts > 0)
    # More recommendations than users (ml-100k: 943): users repeat, each with a fresh item draw.
    users = np.random.default_rng(args.seed).choice(users, args.n, replace=args.n > len(users))
    results = {}
    for name in [n.strip() for n in args.strategies.split(",") if n.strip()]:
        model = resolve_strategy(name)(params.get(name, {}))
        # Like `lmrec evaluate`: validation-free strategies are refit on train + validation.
        model.fit(s.data if model.uses_validation else s.data.merged())
        pipeline = Pipeline(
            model,
            s.dataset.items,
            s.dataset.catalog,
            histories=histories,
            item_vectors=s.vectors,
            strategy=name,
        )
        results[name] = measure(pipeline, users, args.seed)
        shown = {k: v for k, v in results[name].items() if not k.startswith("_")}
        print(name, json.dumps(shown, default=float), flush=True)
    figure(results, args.figure)
    doc = {
        "dataset": s.dataset.name,
        **run_info(),
        "results": {
            n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in results.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=float))
    print(f"results: {args.out}\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
