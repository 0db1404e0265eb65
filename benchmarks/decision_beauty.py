"""Decision layer on a real dataset (LOO, full ranking): fusion vs single strategies, the MMR
accuracy-diversity curve, and multi-interest vs a single profile on multi-interest users.

    LMREC_DATA_DIR=/path/to/datasets python benchmarks/decision_beauty.py \
        --dataset amazon-beauty --out benchmarks/results/amazon-beauty-decision.json \
        --report benchmarks/results/amazon-beauty-decision.html

1. Each single strategy (`--strategies`) and `Fused` (learned fusion over them, and
   RRF over the same fitted parts) ranks all items for every test user; bootstrap 95%
   CIs; paired bootstrap of fused minus the best single strategy on NDCG@10 (claim:
   fused >= best single). Like with like: single strategies that do not use
   validation are refit on train + validation (as `lmrec evaluate` does), and `Fused`
   refits those parts the same way after learning its fusion on validation.
   `Fused` keeps whichever of its learned fusion, RRF and each part alone ranks
   validation best (`FusedConfig.select`; `--fused '{"select": false}'` keeps the
   learned fusion, the behaviour before); the JSON's `fused_chosen` says which.
2. MMR lambda sweep on the fitted fused model (no refit; only the re-ranker
   changes): every setting ranks through one `Pipeline` over the model with the
   setting as the queries' re-ranking knobs, as a served request would; reports the
   settings where diversity@10 rises >= 20% while NDCG@10 falls <= 5% against
   lambda = 1.
3. Multi-interest (quota merge) vs the same model with one profile vector
   (`merge=weighted`), on users whose history spans >= 2 interests each holding
   >= `--min-share` of it: recall@20 with paired CIs.

`--tune` measures on validation instead of test, for choosing settings without
touching the test split: half the validation users train the fusion ranker, the
other half are the targets (history = training log), and nothing is refit. With
`--folds 2` (sections mmr and interests) it cross-fits instead: each half's ranker
scores the other half, so every validation user is a target (half/half left ~470
targets on ml-100k, too few to tell MMR settings apart). `--mmr-scales minmax,exp`
sweeps how MMR scales the fused relevance (`RerankOptions.mmr_relevance`).
`--fused` keys that are re-ranking knobs (`RerankOptions` fields, e.g. `mmr_lambda`;
the old `rerank_depth` is `depth`) are the pipeline's: every ranking of the fusion
section gets them as query knobs.
The JSON follows `lmrec evaluate`'s layout plus `mmr_curve` and `interests`, so
`write_report` draws the accuracy-diversity plot and the per-interest table.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from _decision_common import Setup, run_info, setup
from lmrec.data.dataset import Dataset
from lmrec.data.interactions import Histories, Interactions
from lmrec.evaluation import EvalOptions, evaluate_model, evaluate_pipeline, write_report
from lmrec.evaluation.evaluator import ModelEvaluation
from lmrec.evaluation.metrics import accuracy_metrics, intra_list_diversity
from lmrec.evaluation.significance import bootstrap_ci, paired_test
from lmrec.models.base import Recommender, TrainingData
from lmrec.models.fused import Fused
from lmrec.models.multi_interest import MultiInterest
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, UserHistories
from lmrec.ranking.rerank import RerankOptions

CI_METRICS = ("ndcg@10", "recall@10", "recall@20", "hr@10")


def _row(res: ModelEvaluation, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {k: float(v) for k, v in res.summary.items()}
    row["fit_seconds"] = res.fit_seconds
    row["fit_on"] = res.fit_on
    row["eval_seconds"] = res.eval_seconds
    row["ci95"] = {}
    for m in CI_METRICS:
        if m in res.per_user:
            ci = bootstrap_ci(res.per_user[m], seed=seed)
            row["ci95"][m] = [ci.low, ci.high]
    row["segments"] = res.segments
    return row


def _claim(a: ModelEvaluation, b: ModelEvaluation, metric: str, seed: int) -> dict[str, Any]:
    """Paired bootstrap of mean(a) - mean(b) on one per-user metric."""
    t = paired_test(a.per_user[metric], b.per_user[metric], seed=seed)
    return {"diff": t.diff.mean, "ci95": [t.diff.low, t.diff.high], "p_bootstrap": t.p_bootstrap}


@dataclass(eq=False)
class Bench:
    """What every section needs: the data to fit on, the evaluation input and targets."""

    fit_data: TrainingData  # what the fused model (and --tune singles) fit on
    refit_data: TrainingData  # what single strategies that do not use validation fit on
    history: Interactions
    targets: Interactions
    popularity: np.ndarray
    vectors: np.ndarray  # unit text vectors: intra-list diversity as in every results table
    attributes: sp.csr_matrix  # unit attribute rows (genres, categories, brand): the other ILD
    opts: EvalOptions
    refit_on: str  # what `refit_data` is, for the JSON's `fit_on`
    dataset: Dataset  # ids and catalogue of the pipeline every model ranks through

    def pipeline(self, model: Recommender) -> Pipeline:
        """The pipeline `lmrec evaluate` ranks `model` through, over this bench's histories."""
        ds = self.dataset
        histories = UserHistories.from_interactions(ds.users, self.history)
        return Pipeline(model, ds.items, ds.catalog, histories=histories, item_vectors=self.vectors)

    def run(
        self,
        name: str,
        model: Recommender,
        fitted: bool = False,
        knobs: dict[str, Any] | None = None,
    ) -> ModelEvaluation:
        """Fit (unless `fitted`) and evaluate one model, with re-ranking `knobs` on every
        query; prints a one-line summary."""
        t0 = time.perf_counter()
        if not fitted:
            model.fit(self.fit_data if model.uses_validation else self.refit_data)
        fit_s = time.perf_counter() - t0
        res = evaluate_pipeline(
            self.pipeline(model),
            self.targets,
            self.popularity,
            self.vectors,
            self.opts,
            knobs=knobs,
        )
        res.fit_seconds = fit_s
        res.fit_on = "train" if model.uses_validation else self.refit_on
        print(
            f"{name:>22}: ndcg@10 {res.summary['ndcg@10']:.4f} recall@20 "
            f"{res.summary['recall@20']:.4f} diversity@10 {res.summary['diversity@10']:.4f} "
            f"(fit {fit_s:.0f}s, eval {res.eval_seconds:.0f}s)",
            flush=True,
        )
        return res


def make_bench(s: Setup, tune: bool, seed: int, fold: int = 0, folds: int = 1) -> Bench:
    """Test-time bench, or with `tune` a validation bench (see the module docstring).

    `folds` > 1 (with `tune`) splits the validation users into that many parts at
    random; fold `fold`'s bench trains the fusion ranker on the other parts and takes
    part `fold` as the targets, so the folds together score every validation user
    (a cross-fit). `folds = 1` is the half/half split: half trains, half are targets.
    """
    opts = EvalOptions(ks=(10, 20))
    pop = s.split.train.item_counts
    attrs = s.dataset.catalog.attribute_vectors()
    if not tune:
        return Bench(
            s.data,
            s.data.merged(),
            s.split.test_history,
            s.test,
            pop,
            s.vectors,
            attrs,
            opts,
            "train+valid",
            s.dataset,
        )
    valid = s.split.valid
    users = np.flatnonzero(valid.user_counts > 0)
    perm = np.random.default_rng(seed + 1).permutation(users)
    if folds <= 1:
        target_users = perm[len(users) // 2 :]
    else:
        target_users = np.array_split(perm, folds)[fold]
    in_a = ~np.isin(valid.users, target_users)
    data = TrainingData(s.split.train, s.dataset.catalog, s.vectors, valid.select(in_a))
    targets = valid.select(~in_a)
    if s.test is not s.split.test:  # --max-users: sample the tuning targets as many
        n = len(np.unique(s.test.users)) // max(folds, 1)
        keep = np.random.default_rng(seed).choice(np.unique(targets.users), n, replace=False)
        targets = targets.select(np.isin(targets.users, keep))
    no_valid = TrainingData(s.split.train, s.dataset.catalog, s.vectors, None)
    return Bench(
        data, no_valid, s.split.train, targets, pop, s.vectors, attrs, opts, "train", s.dataset
    )


def split_fused(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--fused` settings as (Fused config, pipeline re-ranking knobs).

    Re-ranking moved from `Fused` to the pipeline (`RerankOptions`); its keys, and the
    old fused name `rerank_depth` (now `depth`), become query knobs. The old `rerank_k`
    (places MMR fills) is each query's `k` now (the sweep ranks 20).
    """
    if "rerank_k" in settings:
        raise SystemExit("--fused rerank_k: re-ranking fills each query's k places now")
    config: dict[str, Any] = {}
    knobs: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "rerank_depth":
            knobs["depth"] = value
        elif key != "depth" and key in RerankOptions.model_fields:  # `depth`: Fused's own
            knobs[key] = value
        else:
            config[key] = value
    RerankOptions().updated(knobs)  # fail now on a bad value, not after fitting
    return config, knobs


def fusion_section(
    bench: Bench,
    names: list[str],
    params: dict[str, dict[str, Any]],
    fused_cfg: dict[str, Any],
    seed: int,
    knobs: dict[str, Any] | None = None,
) -> tuple[dict[str, ModelEvaluation], Fused, dict[str, Any]]:
    """Single strategies, the fused model and RRF over the same fitted parts (the fused
    rankings with re-ranking `knobs`)."""
    results: dict[str, ModelEvaluation] = {}
    for name in names:
        results[name] = bench.run(name, resolve_strategy(name)(params.get(name, {})))
    fused = Fused(
        strategies=tuple(names),
        strategy_params={n: params[n] for n in names if n in params},
        **fused_cfg,
    )
    results["fused"] = bench.run("fused", fused, knobs=knobs)
    rrf = copy.copy(fused)  # same fitted parts, reciprocal rank fusion instead of the ranker
    rrf.ranker_, rrf.fusion_ = None, "rrf"
    results["fused-rrf"] = bench.run("fused-rrf", rrf, fitted=True, knobs=knobs)
    best = max(names, key=lambda n: results[n].summary["ndcg@10"])
    claims: dict[str, Any] = {"best_single": best}
    for fname in ("fused", "fused-rrf"):
        claims[f"{fname}_minus_{best}_ndcg@10"] = _claim(
            results[fname], results[best], "ndcg@10", seed
        )
    return results, fused, claims


class ScoreOnce(Recommender):
    """A fitted model whose scores are computed once per history and then reused.

    The MMR sweep ranks the same users at every setting and only the re-ranker
    changes, so the fused relevance (several strategies and the fusion) is scored
    once per user instead of once per setting; the pipeline does everything else
    (masks, candidates, re-ranking) at every setting, as for a served request.
    """

    def __init__(self, model: Recommender):
        super().__init__()
        self.model = model
        self.n_items = model.n_items
        self._fitted = model.fitted
        self._rows: dict[bytes, np.ndarray] = {}

    def _score(self, histories: Histories) -> np.ndarray:
        rows = [np.asarray(histories[q], dtype=np.int64) for q in range(len(histories))]
        keys = [h.tobytes() for h in rows]
        todo = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if todo:
            first = {k: h for k, h in zip(keys, rows, strict=True)}
            scores = self.model.score(Histories.from_lists([first[k] for k in todo]))
            self._rows.update(zip(todo, scores, strict=True))
        return np.stack([self._rows[k] for k in keys])

    def _fit(self, data: TrainingData) -> None:
        raise NotImplementedError("ScoreOnce wraps a fitted model")

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError("save the wrapped model")

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError("load the wrapped model")


def mmr_section(
    folds: list[tuple[Bench, Fused]],
    lambdas: list[float],
    spaces: list[str],
    depths: list[int],
    penalties: list[str],
    seed: int,
    max_users: int | None = None,
    scales: tuple[str, ...] = ("minmax",),
    knobs: dict[str, Any] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """NDCG@10 and diversity@10 along the MMR lambda, one curve per (space, pool depth,
    penalty, relevance scale).

    Each setting is one `evaluate_pipeline` run through a `Pipeline` over the fitted
    model, with the setting (over the other `knobs`) as every query's re-ranking knobs:
    top 20 per user, history excluded, full ranking. Only the re-ranker changes, so the
    model's scores are computed once (`ScoreOnce`). `folds` are (bench, fitted model)
    pairs whose target users are pooled (the cross-fit tune; one pair otherwise).
    `max_users` samples each fold's users (the sweep re-ranks every list at every setting).
    """
    settings = [
        (sp_, d, pen, sc, lam)
        for sp_ in spaces
        for pen in penalties
        for sc in scales
        for d in depths
        for lam in lambdas
    ]
    tops: dict[tuple[Any, ...], list[np.ndarray]] = {key: [] for key in settings}
    truths: list[sp.csr_matrix] = []
    t0 = time.perf_counter()
    bench = folds[0][0]
    n_items = bench.history.n_items
    opts = EvalOptions(ks=(10, 20), save_top=20)
    for bench, fused in folds:
        targets = bench.targets
        users = np.flatnonzero(targets.user_counts > 0)
        if max_users is not None and len(users) > max_users:
            users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
            targets = targets.select(np.isin(targets.users, users))
        pipeline = bench.pipeline(ScoreOnce(fused))
        for key in settings:
            space, depth, penalty, scale, lam = key
            setting = {
                **(knobs or {}),
                "mmr_space": space,
                "depth": depth,
                "mmr_penalty": penalty,
                "mmr_relevance": scale,
                "mmr_lambda": lam,
            }
            res = evaluate_pipeline(pipeline, targets, bench.popularity, None, opts, knobs=setting)
            assert np.array_equal(res.users, users)
            tops[key].append(res.rankings)
        truths.append(targets.matrix(binary=True)[users])
    print(f"mmr sweep: {time.perf_counter() - t0:.0f}s", flush=True)
    joined = {key: np.concatenate(v) for key, v in tops.items()}
    t = sp.vstack(truths).tocsr()
    n_rel = np.diff(t.indptr)
    dense = t.toarray() > 0
    curves: dict[str, list[dict[str, Any]]] = {}
    for space, depth, penalty, scale in dict.fromkeys(k[:4] for k in settings):
        keys = [(space, depth, penalty, scale, lam) for lam in lambdas]
        per_user = {k: _list_metrics(joined[k], dense, n_rel, bench) for k in keys}
        ref = per_user[(space, depth, penalty, scale, max(lambdas))]
        rel_part = "" if scale == "minmax" else f", {scale} relevance"
        name = f"fused (MMR {penalty}-sim on {space}, pool {depth}{rel_part})"
        curves[name] = [
            _curve_point(k[4], per_user[k], ref, joined[k], n_items, seed) for k in keys
        ]
    return curves


def _list_metrics(
    top: np.ndarray, dense: np.ndarray, n_rel: np.ndarray, bench: Bench
) -> dict[str, np.ndarray]:
    hits = np.take_along_axis(dense, np.maximum(top, 0), axis=1) & (top >= 0)
    return {
        "ndcg@10": accuracy_metrics(hits, n_rel, 10)["ndcg"],
        "recall@20": accuracy_metrics(hits, n_rel, 20)["recall"],
        "diversity@10": _ild(top[:, :10], bench.vectors),
        "attribute_diversity@10": _ild(top[:, :10], bench.attributes),
    }


def _curve_point(
    lam: float,
    per_user: dict[str, np.ndarray],
    ref: dict[str, np.ndarray],
    top: np.ndarray,
    n_items: int,
    seed: int,
) -> dict[str, Any]:
    """Means at one lambda, with relative change and paired CI against the reference."""
    point: dict[str, Any] = {"mmr_lambda": lam}
    point.update({k: float(v.mean()) for k, v in per_user.items()})
    exposure = np.bincount(top[:, :10][top[:, :10] >= 0].ravel(), minlength=n_items)
    point["coverage@10"] = float((exposure > 0).mean())
    for m in ("ndcg@10", "diversity@10", "attribute_diversity@10"):
        d = paired_test(per_user[m], ref[m], seed=seed)
        point[f"{m}_change_vs_ref"] = d.diff.mean / max(float(ref[m].mean()), 1e-12)
        point[f"{m}_diff_ci95"] = [d.diff.low, d.diff.high]
    return point


def _ild(top: np.ndarray, vectors: np.ndarray | sp.csr_matrix) -> np.ndarray:
    """Intra-list diversity per list, in chunks (sparse attribute rows densify per chunk)."""
    top = np.maximum(top, 0)
    parts = [intra_list_diversity(top[lo : lo + 1024], vectors) for lo in range(0, len(top), 1024)]
    return np.concatenate(parts) if parts else np.zeros(0)


def mmr_claims(curves: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per curve, the lambdas where diversity@10 (text, and attribute) rises >= 20% while
    NDCG@10 falls <= 5% against lambda = 1 (relative changes of the means)."""
    out: dict[str, Any] = {}
    for name, curve in curves.items():
        for space in ("diversity@10", "attribute_diversity@10"):
            out[f"{name}: {space} +20%, ndcg@10 -5%"] = [
                c["mmr_lambda"]
                for c in curve
                if c[f"{space}_change_vs_ref"] >= 0.2 and c["ndcg@10_change_vs_ref"] >= -0.05
            ]
    return out


def interest_section(
    bench: Bench,
    history: Interactions,
    params: dict[str, Any],
    min_share: float,
    others: dict[str, ModelEvaluation],
    seed: int,
) -> tuple[dict[str, ModelEvaluation], dict[str, Any], dict[str, Any]]:
    """Multi-interest vs one profile vector, by how many interests a user's history spans."""
    mi = MultiInterest(params)
    res_mi = others.get("multi-interest") or bench.run("multi-interest", mi)
    if "multi-interest" in others:
        mi.fit(bench.refit_data)
    res_single = bench.run("single-profile", MultiInterest({**params, "merge": "weighted"}))
    n_int = np.array(
        [
            sum(1 for i in mi.interests(history.history(int(u))) if i.weight >= min_share)
            for u in res_mi.users
        ]
    )
    compared = {"multi-interest": res_mi, "single-profile": res_single}
    compared.update({n: others[n] for n in ("content", "fused") if n in others})
    segments: dict[str, dict[str, Any]] = {}
    for label, mask in (("1 interest", n_int <= 1), ("2+ interests", n_int >= 2)):
        idx = np.flatnonzero(mask)
        segments[label] = {n: _segment(r, idx, seed) for n, r in compared.items()}
    claims: dict[str, Any] = {}
    idx = np.flatnonzero(n_int >= 2)
    if len(idx):
        t = paired_test(
            res_mi.per_user["recall@20"][idx], res_single.per_user["recall@20"][idx], seed=seed
        )
        claims["multi_minus_single_recall@20_on_2+_interests"] = {
            "diff": t.diff.mean,
            "relative": t.diff.mean
            / max(float(res_single.per_user["recall@20"][idx].mean()), 1e-12),
            "ci95": [t.diff.low, t.diff.high],
            "p_bootstrap": t.p_bootstrap,
            "n_users": len(idx),
        }
    return {"multi-interest": res_mi, "single-profile": res_single}, segments, claims


def _interest_diffs(
    params: dict[str, Any],
    fit_data: TrainingData,
    history: Interactions,
    targets: Interactions,
    popularity: np.ndarray,
    min_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Users spanning >= 2 interests (as `interest_section` counts them) and, per user,
    recall@20 of multi-interest minus the single-profile model."""
    opts = EvalOptions(ks=(10, 20))
    mi = MultiInterest(params).fit(fit_data)
    res_mi = evaluate_model(mi, history, targets, popularity, fit_data.item_vectors, opts)
    single = MultiInterest({**params, "merge": "weighted"}).fit(fit_data)
    res_single = evaluate_model(single, history, targets, popularity, fit_data.item_vectors, opts)
    n_int = np.array(
        [
            sum(1 for i in mi.interests(history.history(int(u))) if i.weight >= min_share)
            for u in res_mi.users
        ]
    )
    idx = np.flatnonzero(n_int >= 2)
    diff = res_mi.per_user["recall@20"][idx] - res_single.per_user["recall@20"][idx]
    return res_mi.users[idx], diff


def interest_both_items(
    s: Setup, params: dict[str, Any], min_share: float, seed: int, n_resamples: int = 10000
) -> dict[str, Any]:
    """Multi-interest minus single profile on both held-out items of each user.

    Neither model learns from validation, so the validation item (history = training
    log, models fit on it) is as held out as the test item (history = train + valid).
    Users are counted per split exactly as on test (>= 2 interests in that split's
    history). The pooled difference is a mean over (user, item) pairs with a bootstrap
    over users (a user's two items resampled together).
    """
    train_only = TrainingData(s.split.train, s.dataset.catalog, s.vectors, None)
    pop = s.split.train.item_counts
    parts = {
        "valid": _interest_diffs(params, train_only, s.split.train, s.split.valid, pop, min_share),
        "test": _interest_diffs(
            params, s.data.merged(), s.split.test_history, s.test, pop, min_share
        ),
    }
    per_user: dict[int, list[float]] = {}
    out: dict[str, Any] = {}
    for name, (users, diff) in parts.items():
        out[name] = {"diff": float(diff.mean()) if len(diff) else float("nan"), "n": len(diff)}
        for u, d in zip(users.tolist(), diff.tolist(), strict=True):
            per_user.setdefault(int(u), []).append(d)
    if not per_user:
        return out
    sums = np.array([sum(v) for v in per_user.values()])
    counts = np.array([len(v) for v in per_user.values()])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n_resamples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    out["pooled"] = {
        "diff": float(sums.sum() / counts.sum()),
        "ci95": [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))],
        "p_bootstrap": float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean()))),
        "n_items": int(counts.sum()),
        "n_users": len(sums),
    }
    return out


def _segment(res: ModelEvaluation, idx: np.ndarray, seed: int) -> dict[str, Any]:
    v = res.per_user["recall@20"][idx]
    out: dict[str, Any] = {
        "recall@20": float(v.mean()) if len(v) else float("nan"),
        "ndcg@10": float(res.per_user["ndcg@10"][idx].mean()) if len(v) else float("nan"),
        "n_users": len(idx),
    }
    if len(v):
        ci = bootstrap_ci(v, seed=seed)
        out["recall@20_ci95"] = [ci.low, ci.high]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="amazon-beauty")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--strategies", default="ease,itemknn,content,multi-interest")
    p.add_argument("--params", default="{}", help='JSON {"ease": {"reg": 50}, ...}')
    p.add_argument(
        "--fused",
        default="{}",
        help='JSON Fused settings {"depth": 200, ...}; re-ranking keys ("mmr_lambda", ...) '
        "are the pipeline's knobs",
    )
    p.add_argument("--lambdas", default="1.0,0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1,0.0")
    p.add_argument("--mmr-spaces", default="text,attributes", help="MMR similarity spaces.")
    p.add_argument("--mmr-depths", default="100", help="MMR candidate pool sizes.")
    p.add_argument("--mmr-penalties", default="max", help="MMR redundancy terms: max,mean.")
    p.add_argument("--mmr-users", type=int, default=None, help="Sample users for the sweep.")
    p.add_argument("--sections", default="fusion,mmr,interests")
    p.add_argument("--max-users", type=int, default=None, help="Sample this many test users.")
    p.add_argument("--min-share", type=float, default=0.2)
    p.add_argument(
        "--interest-both-items",
        action="store_true",
        help="Also measure multi-interest vs one profile on each user's validation item "
        "and pool it with the test item (neither model learns from validation).",
    )
    p.add_argument("--tune", action="store_true", help="Measure on held-out validation users.")
    p.add_argument(
        "--folds",
        type=int,
        default=1,
        help="With --tune: cross-fit over this many folds of the validation users "
        "(each fold's fusion ranker learns on the others), so every user is a target.",
    )
    p.add_argument("--mmr-scales", default="minmax", help="MMR relevance scales: minmax,exp.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/decision.json"))
    p.add_argument("--report", type=Path, default=None)
    args = p.parse_args()

    fused_cfg, knobs = split_fused(json.loads(args.fused))
    s = setup(args.dataset, args.data_dir, args.max_users, args.seed)
    folds = args.folds if args.tune else 1
    bench = make_bench(s, args.tune, args.seed)
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    params: dict[str, dict[str, Any]] = json.loads(args.params)
    sections = set(args.sections.split(","))
    if folds > 1 and "fusion" in sections:
        p.error("--folds > 1 is for the mmr and interests sections (the MMR tune)")
    results: dict[str, ModelEvaluation] = {}
    claims: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    fused: Fused | None = None
    fitted_folds: list[tuple[Bench, Fused]] = []
    if "fusion" in sections or "mmr" in sections:
        singles = names if "fusion" in sections else []
        if singles:
            results, fused, claims = fusion_section(
                bench, names, params, fused_cfg, args.seed, knobs
            )
            fitted_folds = [(bench, fused)]
        else:
            for fold in range(folds):
                fold_bench = (
                    make_bench(s, args.tune, args.seed, fold, folds) if folds > 1 else bench
                )
                fused = Fused(
                    strategies=tuple(names),
                    strategy_params={n: params[n] for n in names if n in params},
                    **fused_cfg,
                )
                label = "fused" if folds == 1 else f"fused (fold {fold + 1}/{folds})"
                results[label] = fold_bench.run(label, fused, knobs=knobs)
                fitted_folds.append((fold_bench, fused))
        assert fused is not None
        doc["fusion_weights"] = fused.feature_weights
        doc["fused_config"] = fused.config.model_dump(mode="json")
        doc["fused_knobs"] = knobs
        doc["fused_chosen"] = fused.describe()
    if "mmr" in sections and fitted_folds:
        curves = mmr_section(
            fitted_folds,
            [float(x) for x in args.lambdas.split(",")],
            args.mmr_spaces.split(","),
            [int(x) for x in args.mmr_depths.split(",")],
            args.mmr_penalties.split(","),
            args.seed,
            args.mmr_users,
            tuple(args.mmr_scales.split(",")),
            knobs,
        )
        doc["mmr_curve"] = curves
        claims.update(mmr_claims(curves))
    if folds > 1:
        # Nothing below learns from validation: every validation user is a target.
        bench = Bench(
            bench.refit_data,
            bench.refit_data,
            s.split.train,
            s.split.valid,
            bench.popularity,
            bench.vectors,
            bench.attributes,
            bench.opts,
            "train",
            s.dataset,
        )
    if "interests" in sections:
        found, segments, more = interest_section(
            bench,
            bench.history,
            params.get("multi-interest", {}),
            args.min_share,
            results,
            args.seed,
        )
        results.update(found)
        doc["interests"] = segments
        claims.update(more)
        if args.interest_both_items and not args.tune:
            claims["multi_minus_single_recall@20_on_2+_interests_both_items"] = interest_both_items(
                s, params.get("multi-interest", {}), args.min_share, args.seed
            )

    n_targets = sum(len(r.users) for n, r in results.items() if n.startswith("fused (fold"))
    first = next(iter(results.values()))
    doc = {
        "dataset": s.dataset.name,
        "protocol": "loo-valid (tuning)" if args.tune else "loo",
        "n_users": s.dataset.n_users,
        "n_items": s.dataset.n_items,
        "n_interactions": len(s.dataset.interactions),
        "n_test_users": n_targets or len(first.users),
        "ks": [10, 20],
        **run_info(),
        "results": {n: _row(r, args.seed) for n, r in results.items()},
        **doc,
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
