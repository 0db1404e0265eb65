"""Statistical properties of the A/B engine (`lmrec.experiments`) over simulated traffic.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/ab_tests.py --seed 0 \
        --experiments 1000 --power-experiments 200 --out benchmarks/results/ab-aa.json
    python benchmarks/ab_tests.py --quick --out /tmp/ab-quick.json    # a smoke run (~10 s)

The full run takes about 5 minutes on 2 cores (numpy only, one process).

What it measures (the issue's must-show figures):

1. A/A false positives. `--experiments` A/A experiments, the report read at the end of
   every simulated day for `--days` days: the sequential method (the always-valid p of
   the confidence sequence on the CTR ratio metric, running minimum over the looks)
   against a naive fixed-horizon Welch test on the same looks (a winner declared the
   first day p < alpha), and that naive test read once at the last day. The JSON's
   top-level `sequential`/`naive`/`naive_once` are the report's headline statistic
   (CUPED on pre-period clicks, which `experiment_report` uses whenever it can run);
   `aa` also has them without CUPED and with a what-if covariate. Rates come with exact
   (Clopper-Pearson) 95% intervals.
2. Power. With a true CTR lift of `--lift` between the variants: the share of experiments
   the sequential test detects within the days, and the units enrolled at detection, for
   A/B without CUPED, A/B with CUPED (covariate: each unit's clicks over the 28 days before
   the start, as the report uses; and the what-if covariate) and team-draft interleaving
   (`stats.preference`), each at several traffic sizes; `power.headline` takes each method
   at the smallest traffic where it detects in >= 80% of experiments and gives the ratio of
   median units at detection and of the (interpolated) traffic for 80% power.
3. SRM. `stats.srm` (p < 0.001) on a 50/50 experiment whose logging loses 2% of one arm:
   (a) 2% of that arm's exposure records dropped at random (a unit is still counted if
   any of its exposures was logged), (b) 2% of that arm's units never logged (a client
   that fails); and an A/A without drops. Flag rates at the A/A traffic, then over a grid
   of traffic sizes from exact binomial draws, with the traffic at which each is flagged.

User model. With the data present (ml-100k under LMREC_DATA_DIR or --data-dir), the users
are the long-term simulator's fitted users: `fit_truth` with the default
`SimulationConfig` (EASE ground truth, temperature calibrated on held-out last items,
position bias 1), a served pipeline (`--served-model`, default ALS, a different family
from the truth; fitted on the whole log, lists from `Pipeline.rank`, seen items excluded)
gives each user's top-10 list A, and the choice model (multinomial logit with position
bias and a no-click option) gives each user's per-visit click probability
p_u = 1 - P(no click | list A). The no-click utility is solved as `calibrate_no_click`
does, but with users weighted by their expected exposures, so that the CTR the report
measures on list A is `--target-ctr` (the simulator's unweighted calibration, also in the
JSON, gives heavy users, who click less, and a measured CTR of about 0.044 on ml-100k). A user's visit
rate is proportional to their number of interactions in the log, scaled to a mean of
`--mean-visits` a day. An experiment draws `--users` units with replacement from the 943
users and splits them 50/50 (a Binomial count, the same as a coin per unit; the
end-to-end experiments below use the real `assign`); each unit arrives on a uniform day,
is exposed once that day and then visits Poisson(rate) times on each later day; each visit
is one exposure and a click with probability p_u (x(1 + lift) in arm b of a test with a
lift). The confidence sequences are tuned to n_star = the units per experiment (what an
experimenter would set as `expected_units`). The pre-period (CUPED's covariate) is the same process over the 28 days before the
start under list A: Poisson(28 rate) visits. Interleaving compares list A with a real
ranking B, the top-10 by the served score (standardised per user) plus lambda times the
ground-truth utility, lambda found by bisection so that the population's mean CTR under
the choice model (weighted by each user's expected exposures, as the ratio metric weights
users) is (1 + lift) times list A's. Each visit to an interleaving experiment is shown
`team_draft(A, B, 10, request_id)` for one of 64 request ids per user (drawn at random;
the 64 drafts are computed once per user with the real function) and makes at most one
choice by the same choice model, credited to the team of the clicked item. Without the
data (or with --synthetic): 1,000 synthetic users, lognormal activity (sigma 1, mean
`--mean-visits`), Beta(1, 9) click propensities (mean 0.1), Gaussian utilities over 500
items with a served score correlated 0.6 with them, and a per-user no-click utility that
makes 1 - P(no click | list A) equal the user's propensity; the JSON says which.

Fast path and ties to the served report. The experiments are analysed from per-arm sums
(counts, sums of squares and cross-products of clicks, exposures and covariates per look)
with the formulas of `lmrec.experiments.stats` (delta-method ratio, pooled-theta CUPED,
Welch, the mixture confidence sequence, the preference test); `consistency.fast_vs_stats`
checks them against `stats.ratio`/`stats.preference` on the per-unit arrays, and
`consistency.report_vs_fast` runs `--e2e` A/A experiments end to end through
`experiment_report` (Exposure records and `Event`s, units assigned by `assign`) and
compares its always-valid p, timeline and SRM counts with the fast path's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps
from scipy.optimize import brentq

from lmrec.experiments import stats
from lmrec.experiments.analysis import experiment_report
from lmrec.experiments.assignment import assign, team_draft
from lmrec.experiments.design import Experiment, ExperimentSpec, Exposure, Variant, allocate
from lmrec.serving.store import Event
from lmrec.simulation.users import calibrate_no_click, choice_probabilities, position_weights

DAY = 86_400.0
K = 10
#: Request ids (team-draft seeds) tabulated per user for interleaving.
DRAFTS = 64
#: The fast path's name of the report's headline CTR statistic.
HEADLINE = "cuped_pre_clicks"
#: Power results of A/B: no CUPED, CUPED as the report, CUPED with the what-if covariate.
AB_KEYS = ("ab", "ab_cuped", "ab_cuped_pre_ctr")
#: Epoch second at which every simulated experiment starts (2026-11-01 UTC).
T0 = 1_793_491_200.0


# --- the user population -------------------------------------------------------------


@dataclass(eq=False)
class Population:
    """Users that units are drawn from: visit rates, per-visit click probabilities under
    list A, and each user's team-draft tables (probability of a click credited to team a
    or b, per tabulated request id) for A vs B and for A vs A."""

    source: str
    rate: np.ndarray
    p_a: np.ndarray
    credit_ab: tuple[np.ndarray, np.ndarray]
    credit_aa: tuple[np.ndarray, np.ndarray]
    list_a: list[tuple[str, ...]]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Users in the population."""
        return int(self.rate.size)


@dataclass(eq=False)
class _Choice:
    """What the population is built from: truth utilities over temperature (`logits`),
    served scores standardised per user, items a user may not be shown, list A, the
    no-click utility per user, visit rates and item ids."""

    source: str
    logits: np.ndarray
    served: np.ndarray
    banned: np.ndarray
    list_a: np.ndarray
    no_click: np.ndarray
    rate: np.ndarray
    item_ids: list[str]
    info: dict[str, Any]


def _standardise(x: np.ndarray) -> np.ndarray:
    mean, std = x.mean(axis=1, keepdims=True), x.std(axis=1, keepdims=True)
    return (x - mean) / np.where(std > 1e-12, std, 1.0)


def _exposure_weight(rate: np.ndarray, days: int) -> np.ndarray:
    """Expected exposures of a unit in an experiment: 1 on its arrival day, then `rate` a
    day on the remaining days ((days - 1) / 2 of them on average, arrival being uniform)."""
    return 1.0 + rate * (days - 1) / 2


def _ml100k_choice(args: argparse.Namespace, data_dir: Path) -> _Choice:
    """The simulator's fitted users on ml-100k and a served pipeline's lists."""
    from lmrec.data.loaders import load_dataset
    from lmrec.models.base import TrainingData
    from lmrec.models.names import resolve_strategy
    from lmrec.pipeline import Pipeline, PipelineConfig, Query, UserHistories
    from lmrec.simulation.config import SimulationConfig
    from lmrec.simulation.users import fit_truth

    t0 = time.perf_counter()
    ds = load_dataset(args.dataset, data_dir, download=False)
    log = ds.interactions
    config = SimulationConfig(seed=args.seed)
    truth = fit_truth(ds, config)
    users = np.flatnonzero(log.user_counts > 0)
    z = truth.utilities(log.histories(users)).astype(np.float64)
    model = resolve_strategy(args.served_model)({}).fit(TrainingData(log, ds.catalog))
    pipe = Pipeline(
        model,
        ds.items,
        ds.catalog,
        histories=UserHistories.from_interactions(ds.users, log),
        config=PipelineConfig(),
        strategy=args.served_model,
    )
    ranked = pipe.rank([Query(user_id=ds.users.id(int(u)), k=K, explain=False) for u in users])
    list_a = np.stack([r.items[:K] for r in ranked]).astype(np.int64)
    seen = log.matrix(binary=True)[users].toarray() > 0
    served = _standardise(model.score(log.histories(users)).astype(np.float64))
    # The pipeline's lists are the model's top-k over unseen items; B is built on the
    # same scores, so check that they agree.
    top = np.argsort(-np.where(seen, -np.inf, served), axis=1, kind="stable")[:, :K]
    agree = float(np.mean(top == list_a))
    logits = z / truth.temperature
    weights = position_weights(K, config.choice.position_bias)
    best = np.take_along_axis(logits, list_a, axis=1)
    counts = log.user_counts[users].astype(np.float64)
    rate = args.mean_visits * counts / counts.mean()
    u0_simulator = calibrate_no_click(best, weights, args.target_ctr)
    # The simulator's calibration makes the mean over users `target`; the report's CTR
    # weights users by their exposures, so solve the same equation with those weights.
    weight = _exposure_weight(rate, args.days)

    def gap(u: float) -> float:
        p = 1.0 - choice_probabilities(best, weights, u)[:, -1]
        return float(np.average(p, weights=weight) - args.target_ctr)

    u0 = float(brentq(gap, u0_simulator - 50.0, u0_simulator + 50.0, xtol=1e-9))
    info = {
        "dataset": args.dataset,
        "users": int(users.size),
        "items": int(ds.n_items),
        "truth": config.truth,
        "truth_temperature": truth.temperature,
        "truth_ndcg@10": truth.ndcg10,
        "position_bias": config.choice.position_bias,
        "served_model": args.served_model,
        "served_lists_equal_model_top10": agree,
        "no_click_utility": u0,
        "no_click_utility_unweighted_calibration": u0_simulator,
        "seconds_to_fit": round(time.perf_counter() - t0, 2),
    }
    return _Choice(
        "ml-100k",
        logits,
        served,
        seen,
        list_a,
        np.full(users.size, u0),
        rate,
        [str(i) for i in ds.items.ids],
        info,
    )


def _synthetic_choice(args: argparse.Namespace) -> _Choice:
    """A documented synthetic population (no dataset needed)."""
    rng = np.random.default_rng([args.seed, 99])
    n_users, n_items = 1000, 500
    z = rng.standard_normal((n_users, n_items))
    served = _standardise(0.6 * z + 0.8 * rng.standard_normal((n_users, n_items)))
    banned = np.zeros((n_users, n_items), dtype=bool)
    list_a = np.argsort(-served, axis=1, kind="stable")[:, :K]
    activity = rng.lognormal(0.0, 1.0, n_users)
    rate = args.mean_visits * activity / activity.mean()
    propensity = rng.beta(1.0, 9.0, n_users).clip(1e-4, 0.99)
    weights = position_weights(K, 1.0)
    shown = (weights * np.exp(np.take_along_axis(z, list_a, axis=1))).sum(axis=1)
    # 1 - P(no click) = S / (S + e^u0) = propensity  <=>  u0 = log(S (1 - p) / p).
    no_click = np.log(shown * (1 - propensity) / propensity)
    info = {
        "users": n_users,
        "items": n_items,
        "activity": "lognormal(0, 1), scaled to the mean visit rate",
        "click_propensity": "Beta(1, 9)",
        "utilities": "standard normal; served score = 0.6 z + 0.8 noise; temperature 1",
        "position_bias": 1.0,
    }
    return _Choice(
        "synthetic",
        z,
        served,
        banned,
        list_a,
        no_click,
        rate,
        [f"i{i}" for i in range(n_items)],
        info,
    )


def _click_prob(logits: np.ndarray, lists: np.ndarray, no_click: np.ndarray) -> np.ndarray:
    """Per-user probability of a click on a visit shown `lists` (users x k)."""
    shown = np.take_along_axis(logits, lists, axis=1) - no_click[:, None]
    return 1.0 - choice_probabilities(shown, position_weights(lists.shape[1], 1.0), 0.0)[:, -1]


def _list_b(c: _Choice, lift: float, weight: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """List B: top-k of served + lambda * utility, lambda by bisection for the target lift."""
    utility = c.logits - c.logits.mean(axis=1, keepdims=True)
    utility /= np.maximum(utility.std(axis=1, keepdims=True), 1e-12)

    def lists(lam: float) -> np.ndarray:
        score = np.where(c.banned, -np.inf, c.served + lam * utility)
        part = np.argpartition(-score, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(score, part, axis=1), axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)

    def ctr(lst: np.ndarray) -> float:
        return float(np.average(_click_prob(c.logits, lst, c.no_click), weights=weight))

    base = ctr(c.list_a)
    target = (1 + lift) * base
    lo, hi = 0.0, 1.0
    while ctr(lists(hi)) < target:
        hi *= 2
        if hi > 1e4:
            raise RuntimeError(f"no lambda reaches a {lift:.1%} CTR lift; the oracle is too close")
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ctr(lists(mid)) < target else (lo, mid)
    b = lists(hi)
    same = lists(0.0)
    return b, {
        "lambda": hi,
        "ctr_a": base,
        "ctr_b": ctr(b),
        "ratio_b_over_a": ctr(b) / base,
        "list_b_at_lambda0_equals_a": float(np.mean(same == c.list_a)),
        "items_changed_per_list": float(
            np.mean(
                [len(set(x) - set(y)) for x, y in zip(b.tolist(), c.list_a.tolist(), strict=True)]
            )
        ),
        "oracle_ctr": ctr(lists(1e6)),
    }


def _draft_tables(
    c: _Choice, list_a: np.ndarray, list_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per user and tabulated request id, P(click credited to a) and to b."""
    n = list_a.shape[0]
    items = np.zeros((n, DRAFTS, K), dtype=np.int64)
    team_b = np.zeros((n, DRAFTS, K), dtype=bool)
    valid = np.zeros((n, DRAFTS, K), dtype=bool)
    index = {iid: i for i, iid in enumerate(c.item_ids)}
    for u in range(n):
        a = [c.item_ids[i] for i in list_a[u]]
        b = [c.item_ids[i] for i in list_b[u]]
        for s in range(DRAFTS):
            ids, teams = team_draft(a, b, K, f"u{u}:r{s}")
            m = len(ids)
            items[u, s, :m] = [index[i] for i in ids]
            team_b[u, s, :m] = [t == "b" for t in teams]
            valid[u, s, :m] = True
    logits = np.take_along_axis(c.logits, items.reshape(n, -1), axis=1).reshape(n, DRAFTS, K)
    logits = np.where(valid, logits - c.no_click[:, None, None], -np.inf)
    probs = choice_probabilities(logits.reshape(-1, K), position_weights(K, 1.0), 0.0)[:, :K]
    probs = probs.reshape(n, DRAFTS, K)
    return (probs * ~team_b).sum(axis=2), (probs * team_b).sum(axis=2)


def build_population(args: argparse.Namespace) -> Population:
    """The population of the run (ml-100k when it is there, else synthetic)."""
    folder = args.data_dir or os.environ.get("LMREC_DATA_DIR")
    data_dir = Path(folder) if folder else None
    if args.synthetic or data_dir is None or not (data_dir / args.dataset).exists():
        c = _synthetic_choice(args)
        c.info["why"] = (
            "--synthetic"
            if args.synthetic
            else f"no {args.dataset} under {data_dir}"
            if data_dir
            else "no --data-dir and LMREC_DATA_DIR is unset"
        )
    else:
        c = _ml100k_choice(args, data_dir)
    p_a = _click_prob(c.logits, c.list_a, c.no_click)
    weight = _exposure_weight(c.rate, args.days)
    list_b, b_info = _list_b(c, args.lift, weight)
    credit_ab = _draft_tables(c, c.list_a, list_b)
    credit_aa = _draft_tables(c, c.list_a, c.list_a)
    pa, pb = credit_ab
    info = {
        **c.info,
        "source": c.source,
        "visit_rate": _quantiles(c.rate),
        "click_prob_list_a": _quantiles(p_a),
        "ctr_list_a_exposure_weighted": float(np.average(p_a, weights=weight)),
        "list_b": b_info,
        "interleaving": {
            "drafts_per_user": DRAFTS,
            "p_click_credit_a": float(np.average(pa.mean(axis=1), weights=weight)),
            "p_click_credit_b": float(np.average(pb.mean(axis=1), weights=weight)),
            "aa_p_click_credit_a": float(np.average(credit_aa[0].mean(axis=1), weights=weight)),
            "aa_p_click_credit_b": float(np.average(credit_aa[1].mean(axis=1), weights=weight)),
        },
    }
    return Population(
        c.source,
        c.rate,
        p_a,
        credit_ab,
        credit_aa,
        [tuple(c.item_ids[i] for i in row) for row in c.list_a],
        info,
    )


def _quantiles(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {
        "mean": float(x.mean()),
        **{k: float(v) for k, v in zip(("min", "q10", "q50", "q90", "max"), q, strict=True)},
    }


# --- traffic -------------------------------------------------------------------------


@dataclass(eq=False)
class Traffic:
    """One experiment's simulated units: per day and unit (days x units), exposures and
    clicks (A/B) or clicks credited to each team (interleaving), plus the pre-period."""

    member: np.ndarray  # population index per unit
    arm_b: np.ndarray  # bool per unit (A/B)
    arrival: np.ndarray  # day index per unit
    visits: np.ndarray  # days x units
    clicks: np.ndarray  # days x units (A/B); credited to team a (interleaving)
    credit_b: np.ndarray | None
    pre_visits: np.ndarray
    pre_clicks: np.ndarray


def simulate(
    pop: Population,
    n_units: int,
    days: int,
    pre_days: int,
    rng: np.random.Generator,
    *,
    lift: float = 0.0,
    interleave: str | None = None,
    arm_b: np.ndarray | None = None,
) -> Traffic:
    """Simulate one experiment's traffic (`interleave`: None for A/B, "ab" or "aa")."""
    member = rng.integers(0, pop.size, n_units)
    if arm_b is None:
        # Units are independent, so a Binomial(n, 1/2) split with arm a first is the same
        # as a coin per unit, and keeps each arm's columns contiguous.
        arm_b = np.arange(n_units) >= rng.binomial(n_units, 0.5)
    arrival = rng.integers(0, days, n_units)
    rate = pop.rate[member]
    after = np.arange(days)[:, None] > arrival[None, :]
    visits = np.zeros((days, n_units), dtype=np.int64)
    visits[after] = rng.poisson(np.broadcast_to(rate, (days, n_units))[after])
    visits[arrival, np.arange(n_units)] = 1
    pre_visits = rng.poisson(rate * pre_days)
    pre_clicks = rng.binomial(pre_visits, pop.p_a[member])
    day, unit = np.nonzero(visits)
    if interleave is None:
        p = np.minimum(pop.p_a[member] * np.where(arm_b, 1.0 + lift, 1.0), 1.0)
        clicks = np.zeros_like(visits)
        clicks[day, unit] = rng.binomial(visits[day, unit], p[unit])
        return Traffic(member, arm_b, arrival, visits, clicks, None, pre_visits, pre_clicks)
    # One row per visit: its cell, a tabulated request id, and the choice it makes.
    cell = np.repeat(day * n_units + unit, visits[day, unit])
    who = member[cell % n_units]
    draft = rng.integers(0, DRAFTS, cell.size)
    table_a, table_b = pop.credit_ab if interleave == "ab" else pop.credit_aa
    pa, pb = table_a[who, draft], table_b[who, draft]
    r = rng.random(cell.size)
    to_a, to_b = r < pa, (r >= pa) & (r < pa + pb)
    credit_a = np.bincount(cell[to_a], minlength=visits.size).reshape(visits.shape)
    credit_b = np.bincount(cell[to_b], minlength=visits.size).reshape(visits.shape)
    return Traffic(member, arm_b, arrival, visits, credit_a, credit_b, pre_visits, pre_clicks)


# --- the fast path: the stats module's formulas on per-arm sums, every look at once ----


def cs_p(
    diff: np.ndarray, se: np.ndarray, n: np.ndarray, alpha: float, n_star: float
) -> np.ndarray:
    """`stats.confidence_sequence`'s always-valid p, vectorised (1 where undefined)."""
    ok = (n >= 1) & (se > 0) & np.isfinite(diff) & np.isfinite(se)
    se = np.where(ok, se, 1.0)
    n = np.where(ok, n, 1.0)
    v = n * se * se
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star
    nr = n * rho2
    log_p = 0.5 * np.log1p(nr) - diff * diff * n * nr / (2 * v * (nr + 1))
    return np.where(ok, np.minimum(1.0, np.exp(np.minimum(log_p, 0.0))), 1.0)


def _sums(
    x: np.ndarray, d: np.ndarray, arrival: np.ndarray, arm_b: np.ndarray, covs: list[np.ndarray]
) -> list[dict[str, Any]]:
    """Per arm and look: units, sums, squares and cross-products of cumulative clicks `x`
    and exposures `d` (days x units; zero before a unit arrives) and of covariates."""
    days = x.shape[0]
    out: list[dict[str, Any]] = []
    for arm in (~arm_b, arm_b):
        if arm.all() or not arm.any():
            cols = slice(None) if arm.all() else slice(0, 0)
        else:
            idx = np.flatnonzero(arm)  # a contiguous run when the arms are sorted
            cols = slice(idx[0], idx[-1] + 1) if idx[-1] - idx[0] + 1 == idx.size else idx
        xa, da = x[:, cols], d[:, cols]
        entry: dict[str, Any] = {
            "n": np.cumsum(np.bincount(arrival[cols], minlength=days)).astype(np.float64),
            "sx": xa.sum(axis=1),
            "sd": da.sum(axis=1),
            "sxx": np.einsum("ij,ij->i", xa, xa),
            "sxd": np.einsum("ij,ij->i", xa, da),
            "sdd": np.einsum("ij,ij->i", da, da),
            "cov": [],
        }
        for c in covs:
            # A covariate counts from its unit's arrival: per-day totals, cumulated.
            ca, when = c[cols], arrival[cols]
            entry["cov"].append(
                {
                    "sc": np.cumsum(np.bincount(when, ca, minlength=days)),
                    "scc": np.cumsum(np.bincount(when, ca * ca, minlength=days)),
                    "scx": xa @ ca,
                    "scd": da @ ca,
                }
            )
        out.append(entry)
    return out


def _welch(mean_a, mean_b, ss_a, ss_b, n_a, n_b, alpha, n_star, valid=True):
    """diff, fixed-horizon p, always-valid p from arm means and sums of squared deviations
    (p = 1 at a look where the library raises: too few units, no variance, `~valid`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        va, vb = ss_a / (n_a - 1) / n_a, ss_b / (n_b - 1) / n_b
        se = np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
        diff = mean_b - mean_a
        ok = valid & (n_a >= 2) & (n_b >= 2) & (se > 0) & np.isfinite(se)
        p = np.where(
            ok, 2 * sps.t.sf(np.abs(diff) / np.where(ok, se, 1.0), np.where(ok, df, 1.0)), 1.0
        )
    seq = cs_p(np.where(ok, diff, 0.0), np.where(ok, se, 0.0), n_a + n_b, alpha, n_star)
    return diff, np.minimum(p, 1.0), seq


def _cumulate(daily: np.ndarray) -> np.ndarray:
    """Running totals over days (rows) as float64; a row loop is much faster than
    `np.cumsum(axis=0)` on a days x units array."""
    out = daily.astype(np.float64)
    for t in range(1, out.shape[0]):
        out[t] += out[t - 1]
    return out


def ratio_looks(
    tr: Traffic, covariates: dict[str, np.ndarray], alpha: float, n_star: float
) -> dict[str, dict[str, np.ndarray]]:
    """The CTR comparison at every look: plain (delta method) and CUPED per covariate.

    Returns, per method, arrays over looks: diff, p (fixed horizon), seq (always-valid p
    at that look), n (units).
    """
    x, d = _cumulate(tr.clicks), _cumulate(tr.visits)
    names = list(covariates)
    arms = _sums(x, d, tr.arrival, tr.arm_b, [covariates[k] for k in names])
    a, b = arms
    with np.errstate(divide="ignore", invalid="ignore"):
        r = [s["sx"] / s["sd"] for s in arms]
        dbar = [s["sd"] / s["n"] for s in arms]
        # l = (x - r d) / dbar + r has mean r; its sum of squared deviations:
        ss = [
            (s["sxx"] - 2 * ri * s["sxd"] + ri * ri * s["sdd"]) / (db * db)
            for s, ri, db in zip(arms, r, dbar, strict=True)
        ]
    n_a, n_b = a["n"], b["n"]
    out = {}
    diff, p, seq = _welch(r[0], r[1], ss[0], ss[1], n_a, n_b, alpha, n_star)
    out["plain"] = {"diff": diff, "p": p, "seq": seq, "n": n_a + n_b}
    for j, name in enumerate(names):
        ca, cb = a["cov"][j], b["cov"][j]
        with np.errstate(divide="ignore", invalid="ignore"):
            big_n = n_a + n_b
            cbar = (ca["sc"] + cb["sc"]) / big_n
            ybar = (n_a * r[0] + n_b * r[1]) / big_n
            # sum over an arm of c * l
            scy = [
                (cc["scx"] - ri * cc["scd"]) / db + ri * cc["sc"]
                for cc, ri, db in zip((ca, cb), r, dbar, strict=True)
            ]
            # theta pooled over both arms, as `stats.cuped`
            sxy = scy[0] + scy[1] - big_n * cbar * ybar
            sxx = ca["scc"] + cb["scc"] - big_n * cbar * cbar
            # `stats.cuped` raises on a covariate constant over all units (the report
            # then skips the look).
            varies = sxx > 1e-12 * (ca["scc"] + cb["scc"])
            theta = np.where(varies, sxy / sxx, 0.0)
            means, sss = [], []
            for cc, ri, db, s, n in zip((ca, cb), r, dbar, ss, (n_a, n_b), strict=True):
                cov_dev = (cc["scx"] - ri * cc["scd"]) / db
                ssc = cc["scc"] - cc["sc"] ** 2 / n
                means.append(ri - theta * (cc["sc"] / n - cbar))
                sss.append(s - 2 * theta * cov_dev + theta * theta * ssc)
        diff, p, seq = _welch(
            means[0], means[1], sss[0], sss[1], n_a, n_b, alpha, n_star, valid=varies
        )
        out[f"cuped_{name}"] = {"diff": diff, "p": p, "seq": seq, "n": n_a + n_b, "theta": theta}
    return out


def preference_looks(tr: Traffic, alpha: float, n_star: float) -> dict[str, np.ndarray]:
    """`stats.preference` at every look, from cumulative credits per unit."""
    assert tr.credit_b is not None
    ca, cb = _cumulate(tr.clicks), _cumulate(tr.credit_b)
    wins_a = (ca > cb).sum(axis=1).astype(np.float64)
    wins_b = (cb > ca).sum(axis=1).astype(np.float64)
    n = ((ca + cb) > 0).sum(axis=1).astype(np.float64)
    ok = (n >= 2) & (wins_a + wins_b > 0)
    n_safe = np.where(ok, n, 1.0)
    diff = np.where(ok, (wins_b - wins_a) / n_safe, 0.0)
    se = np.where(ok, np.sqrt(wins_a + wins_b) / n_safe, 0.0)
    seq = cs_p(diff, se, n, alpha, n_star)
    units = np.cumsum(np.bincount(tr.arrival, minlength=ca.shape[0]))
    return {"diff": diff, "seq": seq, "n_active": n, "units": units.astype(np.float64)}


def _covariate_correlation(tr: Traffic) -> dict[str, float]:
    """Correlation of each unit's linearised CTR at the last look with each covariate
    (CUPED's variance reduction is about its square)."""
    x, d = tr.clicks.sum(axis=0), tr.visits.sum(axis=0)
    lin = (x - x.sum() / d.sum() * d) / d.mean()
    return {k: float(np.corrcoef(lin, c)[0, 1]) for k, c in _covariates(tr).items()}


def _covariates(tr: Traffic) -> dict[str, np.ndarray]:
    """CUPED covariates: the report's (pre-period clicks) and a what-if one."""
    pre_c = tr.pre_clicks.astype(np.float64)
    pre_v = tr.pre_visits.astype(np.float64)
    r_pre = pre_c.sum() / max(pre_v.sum(), 1.0)
    return {"pre_clicks": pre_c, "pre_ctr_linearised": pre_c - r_pre * pre_v}


# --- summaries -----------------------------------------------------------------------


def rate(k: int, n: int) -> dict[str, Any]:
    """A share with its exact (Clopper-Pearson) 95% interval."""
    ci = sps.binomtest(int(k), int(n)).proportion_ci(0.95, method="exact") if n else None
    return {
        "rate": k / n if n else None,
        "k": int(k),
        "n": int(n),
        "ci95": [float(ci.low), float(ci.high)] if ci else None,
    }


def fpr(k: int, n: int, method: str) -> dict[str, Any]:
    """A false-positive rate in the JSON's `{"fpr", "n", "ci95"}` shape."""
    r = rate(k, n)
    return {
        "fpr": r["rate"],
        "false_positives": r["k"],
        "n": r["n"],
        "ci95": r["ci95"],
        "method": method,
    }


def _median_ci(x: np.ndarray, rng: np.random.Generator, reps: int = 2000) -> list[float] | None:
    if x.size < 2:
        return None
    boot = np.median(rng.choice(x, (reps, x.size)), axis=1)
    return [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]


def detection(seq: np.ndarray, units: np.ndarray, diff: np.ndarray, alpha: float, rng) -> dict:
    """Power and units at detection from per-experiment seq p (experiments x looks)."""
    running = np.minimum.accumulate(seq, axis=1)
    hit = running < alpha
    detected = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    rows = np.flatnonzero(detected)
    at = units[rows, first[rows]]
    wrong = int(np.sum(diff[rows, first[rows]] < 0))
    # With non-detections as infinitely many units, the median is defined when power >= 50%.
    all_units = np.where(detected, units[np.arange(len(units)), first], np.inf)
    med_all = float(np.median(all_units))
    out = {
        "power": rate(int(detected.sum()), len(detected)),
        "wrong_sign_detections": wrong,
        "median_units_at_detection": float(np.median(at)) if rows.size else None,
        "median_units_at_detection_ci95": _median_ci(at, rng),
        "median_units_all_experiments": med_all if math.isfinite(med_all) else None,
        "median_detection_day": float(np.median(first[rows] + 1)) if rows.size else None,
        "units_at_detection_quantiles": _quantiles(at) if rows.size else None,
        "detected_by_day": np.round(hit.mean(axis=0), 4).tolist(),
        "enrolled_units_by_day": np.round(units.mean(axis=0), 1).tolist(),
    }
    return out | {"_units_at_detection": at}


# --- SRM -----------------------------------------------------------------------------


def srm_counts(tr: Traffic, drop: float, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """Units per arm at the last look as the report counts them, for each logging case."""
    a_units = int((~tr.arm_b).sum())
    b = tr.arm_b
    # (a) each of arm b's exposure records lost with probability `drop`: a unit is in the
    # report if any of its exposures was logged.
    logged = rng.binomial(tr.visits[:, b], 1.0 - drop).sum(axis=0)
    # (b) `drop` of arm b's units never logged (a failing client).
    kept = rng.random(int(b.sum())) >= drop
    return {
        "aa_no_drop": (a_units, int(b.sum())),
        "drop_exposure_records": (a_units, int((logged > 0).sum())),
        "drop_units": (a_units, int(kept.sum())),
    }


def _srm_flag(a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """`stats.srm`'s flag for 50/50, vectorised over experiments."""
    total = a + b
    chi2 = (a - total / 2) ** 2 / (total / 2) * 2
    return sps.chi2.sf(chi2, 1) < threshold


def srm_grid(pop: Population, args: argparse.Namespace, rng: np.random.Generator) -> dict:
    """Flag rates over traffic sizes from exact draws of the arm counts.

    Units are independent, so arm b's count is Binomial(N, 1/2) and each of its units is
    lost independently: with probability `drop` when its client fails, and with
    q = E[drop^V] when each exposure record is dropped (V its exposures: 1 + Poisson(rate
    x remaining days), so q = drop * E[exp(-(1 - drop) rate (days - 1 - arrival))]).
    """
    drop, threshold = args.srm_drop, 0.001
    remaining = np.arange(args.days)[::-1]  # days after the arrival day
    q = float(drop * np.mean(np.exp(-(1 - drop) * pop.rate[:, None] * remaining[None, :])))
    sizes = [int(s) for s in args.srm_sizes.split(",")]
    crit = sps.chi2.isf(threshold, 1)

    def analytic_power(n: float, f: float) -> float:
        return float(sps.ncx2.sf(crit, 1, n * f * f / (2 * (2 - f))))

    def traffic_for(power: float, f: float) -> float:
        return float(brentq(lambda n: analytic_power(n, f) - power, 10.0, 1e12))

    cases = {"aa_no_drop": 0.0, "drop_exposure_records": q, "drop_units": drop}
    out: dict[str, Any] = {"threshold": threshold, "unit_loss_share": cases, "reps": args.srm_reps}
    for case, loss in cases.items():
        grid = []
        for n in sizes:
            nb = rng.binomial(n, 0.5, args.srm_reps)
            seen_b = rng.binomial(nb, 1.0 - loss)
            flags = _srm_flag((n - nb).astype(float), seen_b.astype(float), threshold)
            grid.append({"units": n, **rate(int(flags.sum()), args.srm_reps)})
        entry: dict[str, Any] = {"grid": grid}
        if loss > 0:
            entry["analytic_units_for_50pct_flagged"] = round(traffic_for(0.5, loss))
            entry["analytic_units_for_80pct_flagged"] = round(traffic_for(0.8, loss))
            flagged = [g["units"] for g in grid if g["rate"] >= 0.8]
            entry["smallest_grid_units_flagged_80pct"] = flagged[0] if flagged else None
        out[case] = entry
    return out


# --- end-to-end through the served report --------------------------------------------


def _experiment(name: str, n_star: int, interleaving: bool = False) -> Experiment:
    spec = ExperimentSpec(
        id=name,
        type="interleaving" if interleaving else "ab",
        variants=[Variant(name="a", share=0.5), Variant(name="b", share=0.5)],
        primary_metric="ctr",
        secondary_metrics=[],
        start_at=T0,
        expected_units=n_star,
    )
    return allocate(Experiment(**spec.model_dump(), created_at=T0), [], T0)


def _logs(
    exp: Experiment, units: list[str], tr: Traffic, pop: Population, rng: np.random.Generator
) -> tuple[list[Exposure], list[Event]]:
    """The exposure and event logs of simulated A/B traffic, as the server writes them."""
    exposures: list[Exposure] = []
    events: list[Event] = []
    n = tr.visits.shape[1]
    for u in range(n):
        shown = pop.list_a[int(tr.member[u])]
        variant = "b" if tr.arm_b[u] else "a"
        for d in np.flatnonzero(tr.visits[:, u]).tolist():
            v, c = int(tr.visits[d, u]), int(tr.clicks[d, u])
            times = T0 + d * DAY + np.sort(rng.uniform(1.0, DAY - 120.0, v))
            order = rng.permutation(v)  # which of the day's visits clicked
            for j in range(v):
                rid = f"{exp.id}-{u}-{d}-{j}"
                exposures.append(Exposure(rid, exp.id, variant, units[u], float(times[j]), shown))
                if order[j] < c:
                    events.append(
                        Event(
                            f"e-{rid}",
                            units[u],
                            shown[0],
                            "click",
                            float(times[j]) + 60.0,
                            request_id=rid,
                        )
                    )
        pre = np.sort(rng.uniform(T0 - 28 * DAY, T0 - 1.0, int(tr.pre_clicks[u])))
        for j, t in enumerate(pre.tolist()):
            events.append(Event(f"pre-{exp.id}-{u}-{j}", units[u], shown[0], "click", t))
    exposures.sort(key=lambda x: x.timestamp)
    events.sort(key=lambda e: e.timestamp)
    return exposures, events


def report_vs_fast(pop: Population, args: argparse.Namespace) -> list[dict[str, Any]]:
    """A/A experiments through `experiment_report`, against the fast path on the same data."""
    out = []
    for k in range(args.e2e):
        rng = np.random.default_rng([args.seed, 7, k])
        exp = _experiment(f"aa-e2e-{k}", args.users)
        units = [f"e2e{k}-user{i}" for i in range(args.users)]
        now = T0 + args.days * DAY
        arm_b = np.array([assign([exp], u, T0)[0].variant == "b" for u in units])
        tr = simulate(pop, args.users, args.days, 28, rng, arm_b=arm_b)
        exposures, events = _logs(exp, units, tr, pop, rng)
        t0 = time.perf_counter()
        report = experiment_report(exp, exposures, events, now)
        seconds = time.perf_counter() - t0
        entry = report["comparisons"][0]
        fast = ratio_looks(
            tr, {"pre_clicks": tr.pre_clicks.astype(np.float64)}, args.alpha, args.users
        )
        # The report's headline method: CUPED when it runs on all the data, else plain.
        method = "cuped_pre_clicks" if entry["method"] == "cuped" else "plain"
        running = np.minimum.accumulate(fast[method]["seq"])
        # The report looks hourly for three days, then daily: its running minimum is over
        # more looks than the fast path's daily ones, so at each day it is at most theirs;
        # from the first day on which no hourly look was lower they are equal.
        daily = [
            p
            for p in entry["timeline"]
            if abs((p["t"] - T0) / DAY - round((p["t"] - T0) / DAY)) < 1e-9
        ]
        look = np.array([round((p["t"] - T0) / DAY) - 1 for p in daily], dtype=int)
        timeline = np.array([p["seq_p_value"] for p in daily])
        counts = srm_counts(tr, 0.0, rng)["aa_no_drop"]
        pairs = {
            "always_valid_p": (entry["always_valid_p"], running[-1]),
            "p_value": (entry["p_value"], fast[method]["p"][-1]),
            "plain_seq_p": (entry["plain"]["seq_p_value"], fast["plain"]["seq"][-1]),
            "plain_p": (entry["plain"]["p_value"], fast["plain"]["p"][-1]),
            "cuped_seq_p": (entry["cuped"].get("seq_p_value"), fast["cuped_pre_clicks"]["seq"][-1]),
            "cuped_p": (entry["cuped"].get("p_value"), fast["cuped_pre_clicks"]["p"][-1]),
        }
        out.append(
            {
                "experiment": exp.id,
                "units": args.users,
                "exposures": len(exposures),
                "events": len(events),
                "report_seconds": round(seconds, 2),
                "report_method": entry["method"],
                "report_vs_fast": {k: [v[0], float(v[1])] for k, v in pairs.items()},
                "looks_in_report_timeline": len(entry["timeline"]),
                "report_at_most_fast_every_day": bool(np.all(timeline <= running[look] + 1e-12)),
                "report_timeline_never_rises": bool(
                    np.all(np.diff([p["seq_p_value"] for p in entry["timeline"]]) <= 0)
                ),
                "report_units": report["units"],
                "fast_units": {"a": counts[0], "b": counts[1]},
                "report_srm_p": report["srm"]["p_value"],
                "fast_srm_p": stats.srm(list(counts), [0.5, 0.5]).p_value,
            }
        )
        # SRM as the report counts units (first logged exposure): lose 2% of arm b's
        # exposure records, or every record of 2% of arm b's units, and count again.
        drop = args.srm_drop
        lost_units = {
            u for u, b in zip(units, arm_b.tolist(), strict=True) if b and rng.random() < drop
        }
        cases = {
            "drop_exposure_records": [
                x for x in exposures if x.variant == "a" or rng.random() >= drop
            ],
            "drop_units": [x for x in exposures if x.unit not in lost_units],
        }
        srm_check = {}
        for case, kept in cases.items():
            rep = experiment_report(exp, kept, events, now)
            expected_b = len({x.unit for x in kept if x.variant == "b"})
            srm_check[case] = {
                "report_units": rep["units"],
                "distinct_logged_units_b": expected_b,
                "report_srm_p": rep["srm"]["p_value"],
                "flagged": rep["srm"]["flagged"],
            }
        out[-1]["srm_as_the_report_counts"] = srm_check
        e = out[-1]
        same_look = {k: v for k, v in e["report_vs_fast"].items() if k != "always_valid_p"}
        report_p, fast_p = e["report_vs_fast"]["always_valid_p"]
        e["agrees"] = bool(
            all(
                r is not None and math.isclose(r, f, rel_tol=1e-9, abs_tol=1e-12)
                for r, f in same_look.values()
            )
            and report_p is not None
            and report_p <= fast_p + 1e-12  # more looks: a running minimum at most as high
            and timeline.size == args.days
            and e["report_at_most_fast_every_day"]
            and e["report_timeline_never_rises"]
            and e["report_units"] == e["fast_units"]
            and all(
                c["report_units"]["b"] == c["distinct_logged_units_b"] for c in srm_check.values()
            )
        )
        print(
            f"  report vs fast path ({exp.id}, {e['report_method']}): always-valid p "
            f"{pairs['always_valid_p'][0]:.6g} vs {pairs['always_valid_p'][1]:.6g}, "
            f"agrees={e['agrees']} ({seconds:.1f} s)",
            flush=True,
        )
    return out


def fast_vs_stats(pop: Population, args: argparse.Namespace) -> dict[str, Any]:
    """The fast path against `stats.ratio` / `stats.preference` on per-unit arrays."""
    worst: dict[str, float] = {}

    def note(key: str, mine: float, theirs: float) -> None:
        err = abs(mine - theirs) / max(abs(theirs), 1e-300)
        worst[key] = float(max(worst.get(key, 0.0), err))

    n_star = args.users
    for k in range(2):
        rng = np.random.default_rng([args.seed, 8, k])
        tr = simulate(pop, args.users, args.days, 28, rng, lift=args.lift * k)
        covs = _covariates(tr)
        fast = ratio_looks(tr, covs, args.alpha, n_star)
        x = np.cumsum(tr.clicks, axis=0)
        d = np.cumsum(tr.visits, axis=0)
        for look in (0, args.days // 2, args.days - 1):
            m = tr.arrival <= look
            a, b = m & ~tr.arm_b, m & tr.arm_b
            for name, cov in [("plain", None), *[(f"cuped_{c}", covs[c]) for c in covs]]:
                kw = {} if cov is None else {"covariate_a": cov[a], "covariate_b": cov[b]}
                c = stats.ratio(x[look, a], d[look, a], x[look, b], d[look, b], n_star=n_star, **kw)
                note(f"{name}.seq_p", fast[name]["seq"][look], c.seq_p_value)
                note(f"{name}.p", fast[name]["p"][look], c.p_value)
                note(f"{name}.diff", fast[name]["diff"][look], c.diff)
        tr = simulate(pop, args.users, args.days, 28, rng, interleave="ab")
        pref = preference_looks(tr, args.alpha, n_star)
        ca, cb = np.cumsum(tr.clicks, axis=0), np.cumsum(tr.credit_b, axis=0)
        for look in (0, args.days // 2, args.days - 1):
            c = stats.preference(ca[look], cb[look], n_star=n_star)
            note("preference.seq_p", pref["seq"][look], c.seq_p_value)
            note("preference.diff", pref["diff"][look], c.diff)
    return {"max_relative_error": worst, "agrees": all(v < 1e-8 for v in worst.values())}


# --- the runs ------------------------------------------------------------------------


def _progress(i: int, n: int, label: str, t0: float) -> None:
    if (i + 1) % max(1, n // 5) == 0:
        print(f"  {label}: {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)


def run_aa(pop: Population, args: argparse.Namespace, timings: dict) -> dict[str, Any]:
    """A/A experiments: false positives of each method, and SRM at this traffic."""
    n, looks, alpha = args.experiments, args.days, args.alpha
    methods = ["plain", "cuped_pre_clicks", "cuped_pre_ctr_linearised"]
    seq = {m: np.ones((n, looks)) for m in methods}
    p = {m: np.ones((n, looks)) for m in methods}
    srm_units: dict[str, list[tuple[int, int]]] = {}
    srm_any_look = np.zeros(n, dtype=bool)
    theta = np.zeros(n)
    corr: list[dict[str, float]] = []

    t0 = time.perf_counter()
    for i in range(n):
        rng = np.random.default_rng([args.seed, 1, i])
        tr = simulate(pop, args.users, looks, 28, rng)
        res = ratio_looks(tr, _covariates(tr), alpha, args.users)
        for m in methods:
            seq[m][i], p[m][i] = res[m]["seq"], res[m]["p"]
        theta[i] = res["cuped_pre_clicks"]["theta"][-1]
        if i < 100:
            corr.append(_covariate_correlation(tr))
        for case, counts in srm_counts(tr, args.srm_drop, rng).items():
            srm_units.setdefault(case, []).append(counts)
        by_day = tr.arrival[:, None] <= np.arange(looks)
        a_day = (by_day & ~tr.arm_b[:, None]).sum(axis=0).astype(float)
        b_day = (by_day & tr.arm_b[:, None]).sum(axis=0).astype(float)
        srm_any_look[i] = _srm_flag(a_day, b_day, 0.001).any()
        _progress(i, n, "A/A", t0)
    timings["aa_seconds"] = round(time.perf_counter() - t0, 2)
    out: dict[str, Any] = {}
    labels = {
        "plain": "ratio-delta, no CUPED",
        "cuped_pre_clicks": "CUPED on pre-period clicks: the report's headline",
        "cuped_pre_ctr_linearised": "CUPED, covariate pre-period clicks - r x pre-period exposures (what-if: the report has no pre-period exposures)",
    }
    for m in methods:
        running = np.minimum.accumulate(seq[m], axis=1)
        seq_hit = (running < alpha).any(axis=1)
        naive_hit = (p[m] < alpha).any(axis=1)
        once_hit = p[m][:, -1] < alpha
        out[m] = {
            "sequential": fpr(
                int(seq_hit.sum()),
                n,
                f"always-valid p ({labels[m]}), running min over {looks} daily looks < {alpha}",
            ),
            "naive": fpr(
                int(naive_hit.sum()),
                n,
                f"fixed-horizon Welch p ({labels[m]}) < {alpha} at any of {looks} daily looks",
            ),
            "naive_once": fpr(
                int(once_hit.sum()),
                n,
                f"fixed-horizon Welch p ({labels[m]}) < {alpha} read once, day {looks}",
            ),
            "declared_by_day": {
                "sequential": np.round((running < alpha).mean(axis=0), 4).tolist(),
                "naive_peeking": np.round(
                    np.maximum.accumulate(p[m] < alpha, axis=1).mean(axis=0), 4
                ).tolist(),
            },
        }
    out["cuped_theta_median"] = float(np.median(theta))
    out["covariate_correlation_day30_mean"] = {
        k: float(np.mean([c[k] for c in corr])) for k in corr[0]
    } | {"experiments": len(corr)}
    srm: dict[str, Any] = {"units_per_experiment": args.users, "threshold": 0.001}
    for case, counts in srm_units.items():
        arr = np.array(counts, dtype=float)
        flags = _srm_flag(arr[:, 0], arr[:, 1], 0.001)
        srm[case] = {
            **rate(int(flags.sum()), n),
            "mean_units_lost_share_of_b": float(1 - arr[:, 1].mean() / arr[:, 0].mean()),
        }
    # Cross-check the vectorised flag with the library's on a few experiments.
    sample = np.array(srm_units["drop_units"][: min(50, n)])
    lib = [stats.srm(list(map(int, c)), [0.5, 0.5]).flagged for c in sample]
    srm["vectorised_flag_equals_stats_srm"] = bool(
        np.array_equal(
            lib, _srm_flag(sample[:, 0].astype(float), sample[:, 1].astype(float), 0.001)
        )
    )
    srm["aa_no_drop_any_daily_look"] = rate(int(srm_any_look.sum()), n)
    out["srm"] = srm
    return out


def _power_run(
    pop: Population, args: argparse.Namespace, kind: str, size: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One method at one traffic: per experiment and look, the always-valid p, the
    difference, the units enrolled and (interleaving) the users with credited clicks."""
    n, looks, alpha = args.power_experiments, args.days, args.alpha
    methods = {"ab": "plain", "ab_cuped": HEADLINE, "ab_cuped_pre_ctr": "cuped_pre_ctr_linearised"}
    keys = tuple(methods) if kind == "ab" else (kind,)
    seq = {k: np.ones((n, looks)) for k in keys}
    diff = {k: np.zeros((n, looks)) for k in keys}
    units, active = np.zeros((n, looks)), np.zeros((n, looks))
    t0 = time.perf_counter()
    for i in range(n):
        rng = np.random.default_rng([args.seed, 2 if kind == "ab" else 3, size, i])
        if kind == "ab":
            tr = simulate(pop, size, looks, 28, rng, lift=args.lift)
            res = ratio_looks(tr, _covariates(tr), alpha, size)
            for key, m in methods.items():
                seq[key][i], diff[key][i] = res[m]["seq"], res[m]["diff"]
            units[i] = res["plain"]["n"]
        else:
            mode = "aa" if kind.endswith("aa") else "ab"
            tr = simulate(pop, size, looks, 28, rng, interleave=mode)
            pref = preference_looks(tr, alpha, size)
            seq[kind][i], diff[kind][i] = pref["seq"], pref["diff"]
            units[i], active[i] = pref["units"], pref["n_active"]
        _progress(i, n, f"{kind} at {size} units", t0)
    return seq, diff, units, active


def run_power(pop: Population, args: argparse.Namespace, timings: dict) -> dict[str, Any]:
    """Experiments with a true CTR lift: detection and units at detection per method."""
    n, alpha = args.power_experiments, args.alpha
    boot = np.random.default_rng([args.seed, 5])
    out: dict[str, Any] = {"experiments": n, "lift": args.lift, "alpha": alpha}
    ab_sizes = sorted({args.users, *[int(s) for s in args.power_users_ab.split(",")]})
    il_sizes = sorted({args.users, *[int(s) for s in args.power_users_il.split(",")]})
    runs: list[tuple[str, int]] = [("ab", s) for s in ab_sizes] + [
        ("interleaving", s) for s in il_sizes
    ]
    runs.append(("interleaving_aa", args.users))
    for kind, size in runs:
        t0 = time.perf_counter()
        seq, diff, units, active = _power_run(pop, args, kind, size)
        timings[f"power_{kind}_{size}_seconds"] = round(time.perf_counter() - t0, 2)
        for key in seq:
            res = detection(seq[key], units, diff[key], alpha, boot)
            res["units_per_experiment"] = size
            if kind.startswith("interleaving"):
                res["active_users_by_day"] = np.round(active.mean(axis=0), 1).tolist()
            out.setdefault(key, {})[str(size)] = res
    aa = out.pop("interleaving_aa")[str(args.users)]
    out["interleaving_aa_fpr"] = {
        "fpr": aa["power"]["rate"],
        "n": aa["power"]["n"],
        "ci95": aa["power"]["ci95"],
        "false_positives": aa["power"]["k"],
        "units_per_experiment": args.users,
        "method": "team draft of list A with itself, preference test, always-valid p running min",
    }
    out["ratios"] = _ratios(out, boot)
    out["headline"] = _headline(out)
    for key in (*AB_KEYS, "interleaving"):
        for res in out[key].values():
            res.pop("_units_at_detection")
    return out


def _headline(out: dict[str, Any]) -> dict[str, Any]:
    """Each method at the smallest traffic tried where it detects the lift in >= 80% of
    experiments (else its largest), and the ratio of their median units at detection."""

    def pick(key: str) -> tuple[str, dict[str, Any]]:
        sizes = sorted(out[key], key=int)
        good = [s for s in sizes if (out[key][s]["power"]["rate"] or 0) >= 0.8]
        size = good[0] if good else sizes[-1]
        return size, out[key][size]

    head: dict[str, Any] = {}
    for key in (*AB_KEYS, "interleaving"):
        size, res = pick(key)
        head[key] = {
            "units_per_experiment": int(size),
            "power": res["power"],
            "median_units_at_detection": res["median_units_at_detection"],
            "median_units_at_detection_ci95": res["median_units_at_detection_ci95"],
        }
        head[key]["units_for_80pct_power"] = _units_for(out[key], 0.8)
    il = head["interleaving"]
    for key in AB_KEYS:
        label = (
            f"{key}@{head[key]['units_per_experiment']} / interleaving@{il['units_per_experiment']}"
        )
        head[f"{key}_over_interleaving"] = out["ratios"].get(label)
        n_ab, n_il = head[key]["units_for_80pct_power"], il["units_for_80pct_power"]
        head[f"{key}_over_interleaving_units_for_80pct_power"] = (
            n_ab / n_il if n_ab is not None and n_il is not None else None
        )
    return head


def _units_for(by_size: dict[str, Any], power: float) -> float | None:
    """Traffic at which the sequential test detects in `power` of experiments, linear in
    log(traffic) between the two sizes tried that bracket it (None if none do)."""
    sizes = sorted(by_size, key=int)
    rates = [by_size[s]["power"]["rate"] for s in sizes]
    for i in range(1, len(sizes)):
        lo, hi = rates[i - 1], rates[i]
        if lo < power <= hi:
            w = (power - lo) / (hi - lo)
            return float(np.exp((1 - w) * np.log(int(sizes[i - 1])) + w * np.log(int(sizes[i]))))
    return None


def _ratios(out: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Median units at detection: A/B (each traffic) over interleaving (each traffic)."""
    ratios = {}
    for ab_key in AB_KEYS:
        for ab_size, ab in out[ab_key].items():
            for il_size, il in out["interleaving"].items():
                x, y = ab["_units_at_detection"], il["_units_at_detection"]
                if x.size < 2 or y.size < 2:
                    continue
                boot = np.median(rng.choice(x, (2000, x.size)), axis=1) / np.median(
                    rng.choice(y, (2000, y.size)), axis=1
                )
                ratios[f"{ab_key}@{ab_size} / interleaving@{il_size}"] = {
                    "ratio_of_medians": float(np.median(x) / np.median(y)),
                    "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
                    "power_ab": ab["power"]["rate"],
                    "power_interleaving": il["power"]["rate"],
                }
    return ratios


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of everything random (default 0).")
    p.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/ab-aa.json"), help="Results JSON."
    )
    p.add_argument("--experiments", type=int, default=1000, help="A/A experiments (default 1000).")
    p.add_argument(
        "--power-experiments",
        type=int,
        default=200,
        help="Experiments per method and traffic for power (default 200).",
    )
    p.add_argument(
        "--users",
        type=int,
        default=20_000,
        help="Units per A/A experiment (default 20,000); also the common traffic of the power runs.",
    )
    p.add_argument(
        "--power-users-ab",
        default="100000,200000,300000",
        help="Extra A/B traffic sizes for power, comma-separated (default 100000,200000,300000).",
    )
    p.add_argument(
        "--power-users-il",
        default="1000,2000,3000,4000,5000",
        help="Extra interleaving traffic sizes for power (default 1000,2000,3000,4000,5000).",
    )
    p.add_argument("--days", type=int, default=30, help="Days, read once a day (default 30).")
    p.add_argument(
        "--lift",
        type=float,
        default=0.03,
        help="True relative CTR lift of the power runs (default 0.03).",
    )
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument(
        "--target-ctr",
        type=float,
        default=0.1,
        help="Mean per-visit CTR of the served lists (default 0.1).",
    )
    p.add_argument(
        "--mean-visits", type=float, default=0.3, help="Mean visits per user per day (default 0.3)."
    )
    p.add_argument(
        "--srm-drop",
        type=float,
        default=0.02,
        help="Share of one arm lost by logging (default 0.02).",
    )
    p.add_argument(
        "--srm-sizes",
        default="20000,50000,100000,200000,500000,1000000,2000000,5000000,10000000,20000000",
    )
    p.add_argument(
        "--srm-reps", type=int, default=2000, help="Draws per traffic size of the SRM grid."
    )
    p.add_argument(
        "--e2e", type=int, default=3, help="A/A experiments also run through experiment_report."
    )
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument(
        "--served-model", default="als", help="The served pipeline's model (default als)."
    )
    p.add_argument("--data-dir", default=None, help="Datasets folder (default $LMREC_DATA_DIR).")
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="Use the synthetic population even if the data is there.",
    )
    p.add_argument("--quick", action="store_true", help="A small smoke run (~1 minute).")
    args = p.parse_args(argv)
    if args.quick:
        args.experiments, args.power_experiments, args.users = 40, 20, 5000
        args.power_users_ab, args.power_users_il = "20000", "2000"
        args.srm_reps, args.e2e = 200, 1
        args.srm_sizes = "20000,200000,2000000"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    print("building the user population ...", flush=True)
    t0 = time.perf_counter()
    pop = build_population(args)
    timings["population_seconds"] = round(time.perf_counter() - t0, 2)
    print(f"  {pop.source}: {pop.size} users, {timings['population_seconds']} s", flush=True)
    print("consistency checks ...", flush=True)
    t0 = time.perf_counter()
    consistency = {
        "fast_vs_stats": fast_vs_stats(pop, args),
        "report_vs_fast": report_vs_fast(pop, args),
    }
    consistency["report_agrees"] = all(e["agrees"] for e in consistency["report_vs_fast"])
    timings["consistency_seconds"] = round(time.perf_counter() - t0, 2)
    print(f"  fast path vs stats: {consistency['fast_vs_stats']}", flush=True)
    aa = run_aa(pop, args, timings)
    power = run_power(pop, args, timings)
    srm_rng = np.random.default_rng([args.seed, 6])
    t0 = time.perf_counter()
    srm = aa.pop("srm") | {"by_traffic": srm_grid(pop, args, srm_rng)}
    timings["srm_grid_seconds"] = round(time.perf_counter() - t0, 2)
    timings["total_seconds"] = round(time.perf_counter() - started, 2)
    doc = {
        "benchmark": "ab_tests",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "command": "python benchmarks/ab_tests.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        | {"n_star": "expected_units = units per experiment", "looks": "end of each day", "k": K},
        "population": pop.info,
        # The report's headline statistic (CUPED on pre-period clicks, as
        # `experiment_report` chooses); the same without CUPED is under aa.plain.
        "sequential": aa[HEADLINE]["sequential"],
        "naive": aa[HEADLINE]["naive"],
        "naive_once": aa[HEADLINE]["naive_once"],
        "aa": aa,
        "power": power,
        "srm": srm,
        "consistency": consistency,
        "timings": timings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stats.json_safe(doc), indent=2) + "\n")
    s, nv, once = doc["sequential"], doc["naive"], doc["naive_once"]
    print(
        f"A/A ({args.experiments} x {args.users} units, {args.days} daily looks): sequential FPR "
        f"{s['fpr']:.3f} {s['ci95']}, naive peeking {nv['fpr']:.3f} {nv['ci95']}, naive once "
        f"{once['fpr']:.3f} {once['ci95']}"
    )
    for key in (*AB_KEYS, "interleaving"):
        for size, res in power[key].items():
            print(
                f"power {key} @ {size}: {res['power']['rate']:.3f} {res['power']['ci95']}, "
                f"median units at detection {res['median_units_at_detection']}"
            )
    head = power["headline"]
    for key in AB_KEYS:
        ratio = head[f"{key}_over_interleaving"]
        print(
            f"{key} @ {head[key]['units_per_experiment']} / interleaving @ "
            f"{head['interleaving']['units_per_experiment']}: ratio of median units at detection "
            f"{ratio and round(ratio['ratio_of_medians'], 1)}; ratio of units for 80% power "
            f"{head[f'{key}_over_interleaving_units_for_80pct_power']}"
        )
    for case in ("aa_no_drop", "drop_exposure_records", "drop_units"):
        grid = srm["by_traffic"][case]
        print(
            f"SRM {case}: flag rate at {args.users} units {srm[case]['rate']:.3f}; "
            f"units for 80% flagged {grid.get('analytic_units_for_80pct_flagged')}"
        )
    print(f"report agrees with the fast path: {consistency['report_agrees']}")
    print(f"wrote {args.out} in {timings['total_seconds']} s")


if __name__ == "__main__":
    main()
