"""Query steering on Amazon Beauty: written queries with expected categories.

    LMREC_DATA_DIR=/path/to/datasets python benchmarks/query_steering.py \
        --model ease --users 200 --out benchmarks/results/query_steering.json

For each query and each sampled user (history = train + validation), the serving
`Pipeline` returns the top 10 with and without the query; the score is the share
of those items whose category path contains one of the query's expected
categories. Queries with negations ("fragrance-free", "no glitter") also report
the share of items matching the ruled-out category (should fall). Run on another
dataset with `--queries FILE.json` (a list of {"query", "expect", "avoid"}).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from _decision_common import run_info, setup
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, Query, UserHistories

#: Written queries; `expect` / `avoid` are category names that occur in Beauty's category paths.
QUERIES: list[dict[str, Any]] = [
    {
        "query": "gentle fragrance-free moisturiser for dry skin",
        "expect": ["Moisturizers"],
        "avoid": ["Fragrance"],
    },
    {"query": "waterproof mascara for long lashes", "expect": ["Mascara"]},
    {"query": "a floral perfume for women", "expect": ["Women's"], "avoid": ["Men's"]},
    {"query": "men's cologne, fresh and woody", "expect": ["Men's"]},
    {
        "query": "sulfate-free shampoo for curly hair",
        "expect": ["Shampoos", "Shampoo & Conditioner Sets"],
    },
    {
        "query": "deep conditioner for damaged hair",
        "expect": ["Conditioners", "Shampoo & Conditioner Sets"],
    },
    {"query": "nail polish in bright summer colours", "expect": ["Nail Polish"]},
    {"query": "nail file and buffer", "expect": ["Nail Files & Buffers"]},
    {"query": "false nails, easy to apply", "expect": ["False Nails"]},
    {"query": "sunscreen SPF 50 for the face", "expect": ["Sun", "Skin Protection"]},
    {"query": "self tanner for a natural glow", "expect": ["Self-Tanners & Bronzers"]},
    {"query": "red lipstick, long lasting, no glitter", "expect": ["Lipstick"]},
    {"query": "lip gloss with shine", "expect": ["Lip Glosses"]},
    {"query": "black liquid eyeliner", "expect": ["Eyeliner"]},
    {"query": "eyeshadow palette with neutral shades", "expect": ["Eye Shadow"]},
    {"query": "full coverage foundation for oily skin", "expect": ["Foundation"]},
    {
        "query": "concealer for dark circles",
        "expect": ["Concealers & Neutralizers", "Dark Circle Treatments"],
    },
    {"query": "powder blush, soft pink", "expect": ["Blush"]},
    {"query": "makeup brush set", "expect": ["Makeup Brushes & Tools", "Brushes & Applicators"]},
    {"query": "strong hold hair spray", "expect": ["Hair Sprays"]},
    {"query": "ionic hair dryer, quiet and light", "expect": ["Hair Dryers"]},
    {"query": "flat iron hair straightener", "expect": ["Flattening Irons"]},
    {"query": "body scrub with sea salt", "expect": ["Body Scrubs"]},
    {"query": "moisturizing body wash without parabens", "expect": ["Body Washes"]},
    {"query": "anti-aging face serum with vitamin C", "expect": ["Oils & Serums"]},
    {"query": "toner for acne-prone skin, no alcohol", "expect": ["Toners & Astringents"]},
    {"query": "hand cream for cracked hands", "expect": ["Hand Creams & Lotions"]},
    {"query": "hair dye to cover grey hair", "expect": ["Chemical Hair Dyes", "Hair Color"]},
    {"query": "eye cream for puffiness", "expect": ["Creams", "Eyes"]},
    {"query": "eyebrow pencil", "expect": ["Eyebrow Color"]},
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="ease")
    p.add_argument("--params", default="{}")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--queries", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/query_steering.json"))
    args = p.parse_args()
    from lmrec.text import make_encoder

    queries = json.loads(args.queries.read_text()) if args.queries else QUERIES
    s = setup(args.dataset, args.data_dir, None, args.seed)
    known = {c for cats in s.dataset.catalog.frame["categories"] for c in cats}
    missing = sorted({c for q in queries for c in q["expect"] + q.get("avoid", [])} - known)
    if missing:
        print(f"warning: categories not in this catalogue (those queries count 0): {missing}")
    model = resolve_strategy(args.model)(json.loads(args.params))
    model.fit(s.data if model.uses_validation else s.data.merged())
    log = s.split.test_history
    encoder = make_encoder()
    pipe = Pipeline(
        model,
        s.dataset.items,
        s.dataset.catalog,
        histories=UserHistories.from_interactions(s.dataset.users, log),
        item_vectors=s.vectors,
        encoder=encoder.encode,
    )
    cats = [set(c) for c in s.dataset.catalog.frame["categories"]]
    rng = np.random.default_rng(args.seed)
    users = rng.choice(np.flatnonzero(log.user_counts > 0), args.users, replace=False)
    user_ids = [s.dataset.users.id(int(u)) for u in users]

    def share(recs: list[Any], names: list[str]) -> float:
        idx = [s.dataset.items.get(r.item_id) for r in recs]
        return float(np.mean([bool(cats[i] & set(names)) for i in idx])) if idx else 0.0

    # The lists without a query do not depend on it: ranked once, in one batch.
    plain_lists = pipe.recommend_batch(
        [Query(user_id=uid, k=10, explain=False) for uid in user_ids]
    )
    rows = []
    for q in queries:
        base, steered, base_avoid, steered_avoid = [], [], [], []
        steered_lists = pipe.recommend_batch(
            [Query(user_id=uid, k=10, text=q["query"], explain=False) for uid in user_ids]
        )
        for plain, with_q in zip(plain_lists, steered_lists, strict=True):
            base.append(share(plain, q["expect"]))
            steered.append(share(with_q, q["expect"]))
            if q.get("avoid"):
                base_avoid.append(share(plain, q["avoid"]))
                steered_avoid.append(share(with_q, q["avoid"]))
        row = {
            "query": q["query"],
            "expect": q["expect"],
            "without": float(np.mean(base)),
            "with": float(np.mean(steered)),
        }
        if base_avoid:
            row["avoid"] = q["avoid"]
            row["avoid_without"] = float(np.mean(base_avoid))
            row["avoid_with"] = float(np.mean(steered_avoid))
        rows.append(row)
        print(f"{row['without']:.3f} -> {row['with']:.3f}  {q['query']}", flush=True)
    summary = {
        "mean_without": float(np.mean([r["without"] for r in rows])),
        "mean_with": float(np.mean([r["with"] for r in rows])),
        "queries_improved": int(sum(r["with"] > r["without"] for r in rows)),
        "n_queries": len(rows),
        "n_users": len(user_ids),
    }
    print(json.dumps(summary, indent=2))
    doc = {
        "dataset": s.dataset.name,
        "model": args.model,
        **run_info(),
        "summary": summary,
        "queries": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
