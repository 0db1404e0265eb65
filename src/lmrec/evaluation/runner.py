"""Run an evaluation experiment: split, fit each model, rank, measure, compare.

This is what `lmrec evaluate` and the benchmarks call; the JSON it writes
follows the contract in DESIGN §3.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from lmrec.data.dataset import Dataset
from lmrec.data.splitting import Split, split
from lmrec.evaluation.evaluator import EvalOptions, ModelEvaluation, evaluate_pipeline
from lmrec.evaluation.significance import bootstrap_ci, paired_test
from lmrec.models.base import Recommender, TrainingData
from lmrec.models.names import resolve_strategy
from lmrec.pipeline import Pipeline, PipelineConfig, UserHistories
from lmrec.ranking.validation import Validator, full_ranking_ndcg

if TYPE_CHECKING:
    from lmrec.distributed import Cluster

__all__ = ["Experiment", "ModelSpec", "parse_params", "pipeline_config", "run_experiment"]

#: The `--param` prefix of the pipeline's re-ranking knobs (`rerank.mmr_lambda=0.7`).
RERANK = "rerank"

#: Metrics that get a bootstrap confidence interval in reports.
CI_METRICS = ("ndcg@10", "recall@10", "hr@10", "mrr@10")
#: Items per user in shareable rankings (`Experiment.write_rankings`).
SHAREABLE_TOP = 20


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: a display name, its class and hyperparameters."""

    name: str
    cls: type[Recommender]
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: str, params: dict[str, Any] | None = None) -> ModelSpec:
        """From a short name (`ease`) or import path, with optional hyperparameters."""
        return cls(name, resolve_strategy(name), dict(params or {}))

    def build(self) -> Recommender:
        """A fresh, unfitted model."""
        return self.cls(self.params)

    def seeded(self, seed: int) -> ModelSpec:
        """This model with its `seed` parameter set, named `NAME-seedSEED`."""
        from lmrec.errors import ConfigError

        if "seed" not in self.cls.Config.model_fields:
            raise ConfigError(
                f"--seeds: {self.name} has no seed parameter (see `lmrec models {self.name}`)"
            )
        return ModelSpec(f"{self.name}-seed{seed}", self.cls, {**self.params, "seed": seed})


def coerce(value: str) -> Any:
    """A command-line value as int, float or bool when it reads as one, else the string."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def pipeline_config(params: dict[str, dict[str, Any]]) -> PipelineConfig:
    """The pipeline settings in parsed `--param`s: `rerank.KEY=VALUE` sets a re-ranking knob."""
    from pydantic import ValidationError

    from lmrec.errors import ConfigError

    try:
        return PipelineConfig.model_validate({"rerank": params.get(RERANK, {})})
    except ValidationError as exc:
        from lmrec.errors import first_problem
        from lmrec.ranking.rerank import RerankOptions

        raise ConfigError(
            f"--param {first_problem(exc)} (re-ranking knobs: {', '.join(RerankOptions.model_fields)})"
        ) from None


def parse_params(assignments: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`["ease.reg=500", "als.embedding_dim=64"]` -> `{"ease": {"reg": 500}, "als": {...}}`."""
    from lmrec.errors import ConfigError

    out: dict[str, dict[str, Any]] = {}
    for item in assignments:
        key, eq, value = item.partition("=")
        model, dot, param = key.partition(".")
        if not eq or not dot or not model or not param:
            raise ConfigError(f"--param {item!r}: expected MODEL.KEY=VALUE, e.g. ease.reg=500")
        out.setdefault(model.strip(), {})[param.strip()] = coerce(value.strip())
    return out


@dataclass(eq=False)
class Experiment:
    """The outcome of `run_experiment`: one `ModelEvaluation` per model."""

    dataset: Dataset
    split: Split
    results: dict[str, ModelEvaluation]
    reference: str | None
    options: EvalOptions
    seed: int
    started: str
    #: The item text vectors the run used (None without text).
    item_vectors: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        """The `lmrec evaluate` result document (DESIGN §3)."""
        out: dict[str, Any] = {
            "dataset": self.dataset.name,
            "protocol": self.split.protocol,
            "tie_break": self.dataset.tie_break,
            "n_users": self.dataset.n_users,
            "n_items": self.dataset.n_items,
            "n_interactions": len(self.dataset.interactions),
            "n_test_users": int(next(iter(self.results.values())).users.size)
            if self.results
            else 0,
            "seed": self.seed,
            "date": self.started,
            "ks": list(self.options.ks),
            "results": {},
        }
        ref = self.results.get(self.reference) if self.reference else None
        for name, res in self.results.items():
            row: dict[str, Any] = {k: _round(v) for k, v in res.summary.items()}
            row["fit_seconds"] = round(res.fit_seconds, 3)
            row["fit_on"] = res.fit_on
            row["eval_seconds"] = round(res.eval_seconds, 3)
            row["ci95"] = {}
            for metric in CI_METRICS:
                if metric in res.per_user:
                    ci = bootstrap_ci(res.per_user[metric], seed=self.seed)
                    row["ci95"][metric] = [_round(ci.low), _round(ci.high)]
            row["segments"] = {
                s: {k: _round(v) for k, v in vals.items()} for s, vals in res.segments.items()
            }
            if ref is not None and name != self.reference:
                row["vs_reference"] = {}
                for metric in ("ndcg@10", "recall@10"):
                    t = paired_test(res.per_user[metric], ref.per_user[metric], seed=self.seed)
                    row["vs_reference"][metric] = {
                        "reference": self.reference,
                        "diff": _round(t.diff.mean),
                        "ci95": [_round(t.diff.low), _round(t.diff.high)],
                        "p_bootstrap": _round(t.p_bootstrap),
                        "p_ttest": _round(t.p_ttest),
                    }
            row.update({k: _round(v) for k, v in res.extra.items()})
            if res.chosen:
                row["chosen"] = res.chosen
            out["results"][name] = row
        return out

    def write_json(self, path: str | Path) -> Path:
        """Write `to_json()` to `path` (parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path

    def write_rankings(self, directory: str | Path, shareable: bool = False) -> list[Path]:
        """One JSON-lines file per model: `{"user", "truth", "ranked"}` per test user.

        `shareable`: `<dataset>-<model>.jsonl.gz` instead, the top `SHAREABLE_TOP` ids per
        user and no truth items (nothing of the data but user and item ids, safe to
        publish); `benchmarks/recompute_metrics.py --dataset` takes the truth from the
        dataset itself.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        truth = self.split.test.matrix(binary=True)
        users_vocab, items_vocab = self.dataset.users, self.dataset.items
        item_ids = np.asarray(items_vocab.ids, dtype=object)
        paths = []
        for name, res in self.results.items():
            stem = f"{_safe(self.dataset.name)}-{_safe(name)}" if shareable else _safe(name)
            path = directory / (f"{stem}.jsonl.gz" if shareable else f"{stem}.jsonl")
            opener = gzip.open if shareable else open
            with opener(path, "wt", encoding="utf-8") as fh:
                for row, user in enumerate(res.users):
                    ranked = res.rankings[row]
                    ranked = item_ids[ranked[ranked >= 0]].tolist()
                    line: dict[str, Any] = {"user": users_vocab.id(int(user))}
                    if shareable:
                        line["ranked"] = ranked[:SHAREABLE_TOP]
                    else:
                        t = truth.indices[truth.indptr[user] : truth.indptr[user + 1]]
                        line["truth"] = sorted(item_ids[t].tolist())
                        line["ranked"] = ranked
                    fh.write(json.dumps(line) + "\n")
            paths.append(path)
        return paths


def _round(x: float) -> float | None:
    """6 decimals; None (JSON null) for an undefined value, e.g. a segment with no users."""
    return float(round(x, 6)) if np.isfinite(x) else None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _done(
    emit: Callable[[str, dict[str, Any]], None], spec: ModelSpec, res: ModelEvaluation
) -> None:
    emit("done", {"model": spec.name, "summary": res.summary, "fit_seconds": res.fit_seconds})


def _on_ray(
    bench: _Bench,
    specs: Sequence[ModelSpec],
    emit: Callable[[str, dict[str, Any]], None],
) -> list[ModelEvaluation]:
    """Every model's `_evaluate_spec` on a Ray worker, in `specs`' order."""
    from lmrec.distributed import map_ordered

    for spec in specs:
        emit("fit", {"model": spec.name})
    return map_ordered(
        _evaluate_spec, specs, bench, on_result=lambda i, res: _done(emit, specs[i], res)
    )


def _batch_reporter(
    emit: Callable[[str, dict[str, Any]], None], name: str
) -> Callable[[int], None]:
    return lambda n: emit("batch", {"model": name, "n": n})


@dataclass(frozen=True, eq=False)
class _Bench:
    """What every model of one experiment is fitted and measured on (built once; sent
    once to a Ray cluster's workers)."""

    dataset: Dataset
    split: Split
    data: TrainingData
    item_vectors: np.ndarray | None
    diversity_vectors: np.ndarray | sp.spmatrix | None
    options: EvalOptions
    refit: bool
    pipeline: PipelineConfig | None


def _evaluate_spec(
    bench: _Bench, spec: ModelSpec, on_event: Callable[[str, dict[str, Any]], None] | None = None
) -> ModelEvaluation:
    """Fit one model and rank every test user through its pipeline: the whole of one
    model's evaluation, in this process or on a Ray worker alike (`on_event` gets the
    "evaluate" and "batch" events of `run_experiment`)."""
    model = spec.build()
    # Strategies that use validation train on the training split and stop/tune on
    # validation; the others are refit on training + validation (the validation item
    # is part of every test user's input anyway), as is standard for the final test.
    data = bench.data
    fit_data = data if (model.uses_validation or not bench.refit) else data.merged()
    t0 = time.perf_counter()
    model.fit(fit_data)
    fit_seconds = time.perf_counter() - t0
    emit = on_event or (lambda kind, info: None)
    emit("evaluate", {"model": spec.name, "n_users": int((bench.split.test.user_counts > 0).sum())})
    served = Pipeline(
        model,
        bench.dataset.items,
        bench.dataset.catalog,
        histories=UserHistories.from_interactions(bench.dataset.users, bench.split.test_history),
        item_vectors=bench.item_vectors,
        config=bench.pipeline,
    )
    res = evaluate_pipeline(
        served,
        bench.split.test,
        item_popularity=bench.split.train.item_counts,
        item_vectors=bench.diversity_vectors,
        options=bench.options,
        progress=_batch_reporter(emit, spec.name),
    )
    res.fit_seconds = fit_seconds
    res.fit_on = "train" if fit_data is data else "train+valid"
    res.chosen = model.describe()
    return res


def run_experiment(
    dataset: Dataset,
    protocol: str,
    specs: Sequence[ModelSpec],
    seed: int = 0,
    options: EvalOptions | None = None,
    reference: str | None = None,
    item_vectors: np.ndarray | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    refit: bool = True,
    pipeline: PipelineConfig | None = None,
    validator: Validator | None = None,
    diversity_vectors: np.ndarray | sp.spmatrix | None = None,
    cluster: Cluster | None = None,
) -> Experiment:
    """Split `dataset` by `protocol`, fit and evaluate every model, return the results.

    `item_vectors` (text vectors, row i = item i) are given to text strategies and
    used for intra-list diversity; without them diversity uses attribute vectors.
    With `refit`, strategies that do not use validation data are fit on training plus
    validation interactions; those that do (early stopping, tuning) on training only.
    `on_event(kind, info)` receives progress: ("fit", {...}), ("batch", {...}), ("done", {...}).
    Every model ranks through a `Pipeline` (with `pipeline`'s settings), the object
    an artefact of it would serve. `validator` replaces how strategies measure
    themselves on validation (a tuner wraps it to follow learning curves);
    `diversity_vectors` replaces the vectors intra-list diversity is measured in.

    With a Ray `cluster` (`lmrec.distributed.connect`) each model is fitted and measured
    by a worker, several at once; the results are the ones this process would measure
    with the same threads per fit (see docs/scale-out.md, "Ray"). No "batch" events then.
    """
    options = options or EvalOptions()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    the_split = split(dataset.interactions, protocol, seed=seed)
    if diversity_vectors is None:
        diversity_vectors = item_vectors
    if diversity_vectors is None and len(dataset.catalog) == dataset.n_items:
        attrs = dataset.catalog.attribute_vectors()
        diversity_vectors = attrs if attrs.shape[1] > 0 else None
    data = TrainingData(
        the_split.train,
        dataset.catalog,
        item_vectors,
        the_split.valid,
        validator or full_ranking_ndcg,
    )
    bench = _Bench(
        dataset, the_split, data, item_vectors, diversity_vectors, options, refit, pipeline
    )
    emit = on_event or (lambda kind, info: None)
    if cluster is not None:
        evaluations = _on_ray(bench, specs, emit)
    else:
        evaluations = []
        for spec in specs:
            emit("fit", {"model": spec.name})
            evaluations.append(_evaluate_spec(bench, spec, emit))
            _done(emit, spec, evaluations[-1])
    results = {spec.name: res for spec, res in zip(specs, evaluations, strict=True)}
    if reference is not None and reference not in results:
        from lmrec.errors import ConfigError

        raise ConfigError(f"reference model {reference!r} is not among the evaluated models")
    return Experiment(dataset, the_split, results, reference, options, seed, started, item_vectors)
