"""Run strategies through simulated users under one or more ground truths and seeds.

`run_simulation` fits the users once per ground-truth family, builds one world per
seed (shared by every strategy: common random numbers), fits each strategy once on
the starting log for every truth and seed (a model is shared by strategies that
differ only in knobs), runs
every strategy, and aggregates: per round, the mean over seeds with a 95% percentile
bootstrap interval over the seeds (`bootstrap_ci`); the final round's paired
differences against a reference strategy (per seed, same users and arrivals); the
slope of Gini and average popularity over rounds with its interval; and the round-0
validity figures (`validity`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.artifacts import fit_for_artifact
from lmrec.data.dataset import Dataset
from lmrec.evaluation.significance import bootstrap_ci
from lmrec.models.base import Recommender
from lmrec.simulation.config import SimulationConfig, TruthFamily
from lmrec.simulation.returns import fit_returns
from lmrec.simulation.strategies import StrategySpec
from lmrec.simulation.users import GroundTruth, fit_truth
from lmrec.simulation.world import SimulationRun, World, build_world, run_info, simulate

__all__ = ["TREND_METRICS", "aggregate", "run_simulation", "write_json"]

#: Metrics whose slope over rounds is reported (popularity amplification).
TREND_METRICS = ("gini", "avg_popularity", "avg_popularity_consumed", "homogenisation")
#: Popularity quantiles compared between logged and simulated consumption.
_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)

Progress = Callable[[str, dict[str, Any]], None]


def _ci(values: Sequence[float], seed: int = 0) -> tuple[float | None, list[float | None]]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if not len(arr):
        return None, [None, None]
    ci = bootstrap_ci(arr, seed=seed)
    return _r(ci.mean), [_r(ci.low), _r(ci.high)]


def _r(x: float) -> float | None:
    return float(round(x, 6)) if x is not None and np.isfinite(x) else None


def _slope(series: list[float]) -> float:
    y = np.asarray(series, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def aggregate(
    runs: dict[str, list[SimulationRun]], reference: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per strategy: the per-round means over seeds with `METRIC_ci95` beside each, the
    final round (`final`, and each seed's in `final_seeds`), trends, wall time, and
    paired differences against `reference`."""
    out: dict[str, dict[str, Any]] = {}
    for label, seeds in runs.items():
        n_rounds = len(seeds[0].rounds)
        rounds = []
        for t in range(n_rounds):
            row: dict[str, Any] = {"round": t}
            for key in seeds[0].rounds[t]:
                if key == "round":
                    continue
                mean, ci = _ci([s.rounds[t][key] for s in seeds])
                row[key], row[f"{key}_ci95"] = mean, ci
            rounds.append(row)
        trend = {}
        for key in TREND_METRICS:
            mean, ci = _ci([_slope([r[key] for r in s.rounds]) for s in seeds])
            trend[f"{key}_slope"] = {"mean": mean, "ci95": ci}
        fits = [f for s in seeds for f in s.fit_seconds]
        out[label] = {
            "rounds": rounds,
            "final": rounds[-1],
            # Each seed's final round, so any two strategies can be paired afterwards.
            "final_seeds": [
                {k: v if k == "round" else _r(v) for k, v in s.rounds[-1].items()} for s in seeds
            ],
            "trend": trend,
            "seconds_per_round": _r(float(np.median([s.seconds_per_round for s in seeds]))),
            "refit_seconds": _r(float(np.median(fits))) if fits else None,
        }
    if reference is not None and reference in runs:
        ref = runs[reference]
        for label, seeds in runs.items():
            if label == reference:
                continue
            diffs: dict[str, Any] = {"reference": reference}
            for key in ref[0].rounds[-1]:
                if key == "round":
                    continue
                d = [s.rounds[-1][key] - r.rounds[-1][key] for s, r in zip(seeds, ref, strict=True)]
                mean, ci = _ci(d)
                diffs[key] = {"diff": mean, "ci95": ci}
            out[label]["vs_reference"] = diffs
    return out


def _popularity_profile(items: np.ndarray, popularity: np.ndarray) -> dict[str, float | None]:
    """Quantiles of the log popularity (share of users) of consumed items."""
    if not len(items):
        return {}
    pop = popularity[items]
    return {f"q{int(q * 100)}": _r(float(np.quantile(pop, q))) for q in _QUANTILES} | {
        "mean": _r(float(pop.mean()))
    }


def validity(
    world: World, runs: dict[str, list[SimulationRun]], ndcg: dict[str, float] | None = None
) -> dict[str, Any]:
    """Round-0 validity: the truth's own NDCG@10 (against the strategies' when given),
    the popularity of simulated round-0 vs logged consumption, visit gaps vs the log's."""
    share = world.popularity / max(1, world.dataset.n_users)
    logged = world.dataset.interactions.items
    logged = logged[~np.isin(logged, world.new_items)]
    gaps = {}
    for label, seeds in runs.items():
        g = np.concatenate([s.visit_gaps for s in seeds])
        gaps[label] = (
            {
                "mean": _r(float(g.mean())),
                "median": _r(float(np.median(g))),
                "p90": _r(float(np.quantile(g, 0.9))),
                "share_1": _r(float((g <= 1).mean())),
            }
            if len(g)
            else {}
        )
    return {
        "truth_ndcg@10": _r(world.truth.ndcg10),
        "truth_calibration_users": world.truth.n_calibration_users,
        "strategies_ndcg@10": {k: _r(v) for k, v in (ndcg or {}).items()},
        "temperature": _r(world.truth.temperature),
        "no_click": _r(world.no_click),
        "popularity_logged": _popularity_profile(logged, share),
        "popularity_simulated_round0": {
            label: _popularity_profile(np.concatenate([s.consumed_round0 for s in seeds]), share)
            for label, seeds in runs.items()
        },
        "session_gaps_logged": world.returns.log_gaps,
        "visit_gaps_simulated": gaps,
        "returns": {
            "return_rate": _r(world.returns.return_rate),
            "leave_hazard": _r(world.returns.leave_hazard),
            "source": world.returns.source,
        },
    }


def run_simulation(
    dataset: Dataset,
    specs: Sequence[StrategySpec],
    config: SimulationConfig,
    seeds: int = 3,
    truths: Sequence[TruthFamily] = ("ease",),
    vectors: np.ndarray | None = None,
    reference: str | None = None,
    strategy_ndcg: dict[str, float] | None = None,
    on_event: Progress | None = None,
) -> dict[str, Any]:
    """The results document: `strategies` under the first truth, every truth under `truths`."""
    emit = on_event or (lambda kind, info: None)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    returns = fit_returns(dataset.interactions, config.returns)
    by_truth: dict[str, Any] = {}
    # Every truth and seed starts from the same log, so each strategy is fitted once.
    models: dict[str, Recommender] = {}
    for family in truths:
        cfg = config.model_copy(update={"truth": family})
        emit("truth", {"truth": family})
        truth: GroundTruth = fit_truth(dataset, cfg)
        runs: dict[str, list[SimulationRun]] = {s.label: [] for s in specs}
        world: World | None = None
        for seed in range(seeds):
            world = build_world(dataset, cfg, truth, returns, vectors, seed=config.seed + seed)
            for spec in specs:
                key = spec.model + json.dumps(spec.params, sort_keys=True, default=str)
                if key not in models:
                    emit("fit", {"strategy": spec.label})
                    models[key], _ = fit_for_artifact(
                        world.base, spec.cls, spec.params, world.base_vectors()
                    )
                emit(
                    "start",
                    {"truth": family, "seed": seed, "strategy": spec.label, "rounds": cfg.rounds},
                )
                runs[spec.label].append(
                    simulate(world, spec, models[key], lambda t: emit("round", {"round": t}))
                )
        assert world is not None
        by_truth[family] = {
            "strategies": aggregate(runs, reference),
            "validity": validity(world, runs, strategy_ndcg),
            "world": run_info(world),
        }
    from lmrec import __version__

    first = by_truth[truths[0]]
    return {
        "dataset": dataset.name,
        "strategies": first["strategies"],
        "validity": first["validity"],
        "truths": by_truth,
        "settings": {
            **config.model_dump(mode="json"),
            "seeds": seeds,
            "truths": list(truths),
            "strategies": [s.label for s in specs],
            "reference": reference,
            "strategy_configs": {
                s.label: {
                    "model": s.model,
                    "params": s.params,
                    "rerank": s.pipeline.rerank.model_dump(mode="json"),
                }
                for s in specs
            },
        },
        "lmrec_version": __version__,
        "date": started,
        "seconds": None,
    }


def write_json(doc: dict[str, Any], path: str | Path) -> Path:
    """Write a results document (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `fn` and record its wall time in the document's `seconds`."""
    t0 = time.perf_counter()
    doc = fn()
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    return doc
