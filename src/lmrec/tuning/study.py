"""An Optuna study over pipeline configs: seeded, resumable, parallel, pruned.

`run_study` creates (or resumes) a study in a journal file, enqueues the defaults as
its first trial, and runs trials in `jobs` processes (this one included) until the
study holds `n_trials` finished trials or `timeout` passes. Each trial scores a
config on the search dataset (see `lmrec.tuning.protocol`); the test split is never
loaded by a trial.

Determinism: the sampler of each trial is seeded by (seed, number of trials started
before it, failed ones not counted), so a study that was killed and resumed asks the
same configs in the same order as one that ran through, and a trial interrupted by
the kill is asked again. With several jobs the order depends on which process asks
first, so only the single-process run is reproducible trial by trial.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lmrec._cpu import share_cores
from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, LmrecError
from lmrec.evaluation.evaluator import EvalOptions, ModelEvaluation
from lmrec.models.names import resolve_strategy, reuse_fitted_parts
from lmrec.ranking.validation import Scorer, ValidationScore, full_ranking_ndcg
from lmrec.tuning.protocol import TextVectors, TrialConfig, fold_dataset, search_dataset
from lmrec.tuning.protocol import score_config as _score
from lmrec.tuning.space import Dimension, SearchSpace

if TYPE_CHECKING:
    from lmrec.distributed import Cluster

__all__ = ["SAMPLERS", "Objective", "TuneSetup", "run_study", "trial_config"]

SAMPLERS = ("tpe", "random", "grid")
#: Objectives that are better when smaller; every other metric is maximised.
_MINIMISE = ("latency", "fit_seconds", "gini", "avg_popularity")


@dataclass(frozen=True)
class Objective:
    """A value a trial is judged on: a metric of the evaluation (`ndcg@10`,
    `coverage@10`, `diversity@10`, ...), `latency` (ms per ranked list) or
    `fit_seconds`; `direction` defaults by name (costs and concentration minimised)."""

    name: str
    direction: Literal["maximize", "minimize"]

    @classmethod
    def parse(cls, text: str) -> Objective:
        """`ndcg@10`, `latency`, or with an explicit direction: `gini@10:min`."""
        name, _, way = text.strip().partition(":")
        if way and way not in ("min", "max"):
            raise ConfigError(f"--objective {text!r}: the direction after ':' is min or max")
        if way:
            return cls(name, "minimize" if way == "min" else "maximize")
        minimise = any(name.startswith(m) for m in _MINIMISE)
        return cls(name, "minimize" if minimise else "maximize")

    def read(self, res: ModelEvaluation) -> float:
        """This objective's value in one evaluation."""
        if self.name == "latency":
            return 1000.0 * res.eval_seconds / max(int(res.users.size), 1)
        if self.name == "fit_seconds":
            return res.fit_seconds
        if self.name not in res.summary:
            valid = ", ".join(sorted(res.summary))
            raise ConfigError(
                f"--objective {self.name!r} is not measured; choose among latency, fit_seconds, {valid}"
            )
        return float(res.summary[self.name])


@dataclass(frozen=True)
class TuneSetup:
    """Everything a trial needs, picklable so worker processes rebuild it.

    `load` returns the dataset (a module-level function or `functools.partial`);
    `space` the searched dimensions; `fixed` values applied to every trial without
    being searched. `folds` > 1 averages several validation folds (small data).
    """

    load: Callable[[], Dataset]
    model: str
    protocol: str
    space: SearchSpace
    objectives: tuple[Objective, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    seed: int = 0
    sampler: str = "tpe"
    grid_points: int = 3
    prune: bool = True
    folds: int = 1
    text_model: str | None = None
    ks: tuple[int, ...] = (10, 20)

    def describe(self) -> dict[str, Any]:
        """What a resumed study must agree with (stored with the study)."""
        return {
            "model": self.model,
            "protocol": self.protocol,
            "space": sorted(self.space.dimensions),
            "objectives": [[o.name, o.direction] for o in self.objectives],
            "seed": self.seed,
            "sampler": self.sampler,
            "folds": self.folds,
        }


def trial_config(setup: TuneSetup, stored: dict[str, Any]) -> TrialConfig:
    """The config of a trial's stored parameters (plus the fixed values)."""
    values = dict(setup.fixed)
    for name, value in stored.items():
        values[name] = setup.space.dimensions[name].value(value)
    return TrialConfig.from_values(setup.model, values)


class _Process:
    """A worker's data: the search dataset, its folds and text vectors, built once."""

    def __init__(self, setup: TuneSetup, dataset: Dataset | None = None):
        dataset = dataset if dataset is not None else setup.load()
        self.search = search_dataset(dataset, setup.protocol, setup.seed)
        self.folds = [fold_dataset(self.search, setup.protocol, f) for f in range(setup.folds)]
        self.vectors = TextVectors(dataset.catalog, setup.text_model)
        # Diversity is measured in one fixed space (the default text) for every trial.
        self.diversity = self.vectors({})


class _EpochReporter:
    """A validator that also reports each epoch's validation NDCG@10 to the trial and
    stops the trial when the pruner says it is behind the others at that epoch."""

    def __init__(self, trial: Any, prune: bool):
        self.trial = trial
        self.prune = prune
        self.curve: list[float] = []

    def __call__(self, score: Scorer, history: Any, targets: Any) -> ValidationScore:
        import optuna

        result = full_ranking_ndcg(score, history, targets)
        self.curve.append(round(float(result.ndcg), 6))
        self.trial.set_user_attr("epochs", self.curve)
        if self.prune:
            self.trial.report(float(result.ndcg), len(self.curve) - 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"epoch {len(self.curve)}: ndcg@10 {result.ndcg:.4f}")
        return result


def _suggest(trial: Any, dim: Dimension) -> Any:
    if dim.kind == "choice":
        return trial.suggest_categorical(dim.name, list(dim.labels))
    if dim.kind == "int":
        every = 1 if dim.log or dim.step is None else int(dim.step)
        return trial.suggest_int(dim.name, int(dim.low), int(dim.high), log=dim.log, step=every)
    return trial.suggest_float(
        dim.name, dim.low, dim.high, log=dim.log, step=None if dim.log else dim.step
    )


def _evaluate(setup: TuneSetup, work: _Process, trial: Any) -> list[float]:
    stored = {dim.name: _suggest(trial, dim) for dim in setup.space}
    trial.set_user_attr("default", stored == setup.space.defaults())
    config = trial_config(setup, stored)
    cls = resolve_strategy(setup.model)
    multi = len(setup.objectives) > 1
    reporter = _EpochReporter(trial, setup.prune and not multi) if cls.validates_per_epoch else None
    rows = []
    fit_seconds = 0.0
    for fold, fold_seed in work.folds:
        res = _score(
            fold,
            setup.protocol,
            config,
            seed=setup.seed + fold_seed,
            options=EvalOptions(ks=setup.ks, save_top=max(setup.ks)),
            vectors=work.vectors,
            diversity_vectors=work.diversity,
            validator=reporter,
        )
        fit_seconds += res.fit_seconds
        rows.append([o.read(res) for o in setup.objectives])
    trial.set_user_attr("fit_seconds", round(fit_seconds, 3))
    values = np.mean(np.asarray(rows, dtype=float), axis=0)
    return [float(v) for v in values]


def _sampler(setup: TuneSetup, index: int, point: dict[str, Any] | None = None) -> Any:
    """The sampler for the study's `index`-th trial; on a grid, the `point` this worker
    enqueued (`_next_point`)."""
    import optuna

    seed = (setup.seed * 1_000_003 + index) % (2**32)
    if setup.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if setup.sampler == "grid":
        # Another worker may take the trial this one enqueued; this one's ask then starts
        # a fresh trial, which must still be a grid point (at worst a repeated one).
        base = optuna.samplers.RandomSampler(seed=seed)
        with warnings.catch_warnings():  # "experimental" since Optuna 2.4; stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.PartialFixedSampler(point or {}, base)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, len(setup.space) * 3 + 1))


def _pruner(setup: TuneSetup) -> Any:
    import optuna

    if not setup.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=5)


def journal(path: str | Path) -> Any:
    """Optuna journal storage in a file (several processes may share it)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def _counts(study: Any) -> tuple[int, int]:
    """(trials finished or running, trials finished) in `study`."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    done = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
    return done + sum(s == TrialState.RUNNING for s in states), done


#: Trials in a row that may fail in one process before the study stops.
_MAX_FAILURES = 3
#: Largest grid a study will enumerate.
_MAX_GRID = 100_000


def grid_points(setup: TuneSetup) -> list[dict[str, Any]]:
    """Every point of the grid `setup` searches, in a seeded order, the defaults first."""
    axes = setup.space.grid(setup.grid_points)
    size = math.prod(len(v) for v in axes.values())
    if size > _MAX_GRID:
        raise ConfigError(
            f"the grid has {size:,} points; use --sampler tpe or random, fewer --grid-points, "
            "or narrow the space with --space"
        )
    points = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    order = np.random.default_rng(setup.seed).permutation(len(points))
    defaults = setup.space.defaults()
    ordered = [points[i] for i in order]
    return sorted(ordered, key=lambda p: p != defaults)  # stable: only the defaults move


def _next_point(
    setup: TuneSetup, study: Any, points: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Enqueue the first grid point no trial has taken (failed ones do not count) and
    return it; None when the grid is done."""
    from optuna.trial import TrialState

    taken = [
        t.params or t.system_attrs.get("fixed_params", {})
        for t in study.get_trials(deepcopy=False)
        if t.state != TrialState.FAIL
    ]
    for point in points:
        if point not in taken:
            study.enqueue_trial(point)
            return point
    return None


def _work(
    setup: TuneSetup,
    storage: str,
    study_name: str,
    n_trials: int,
    deadline: float | None,
    worker: int = 0,
    jobs: int = 1,
    on_trial: Callable[[Any], None] | None = None,
    dataset: Dataset | None = None,
) -> None:
    """Run trials in this process until the study is full or the deadline passes
    (`dataset`: the one `setup.load` gives, when the caller has it already). The parts
    of composite strategies are fitted once per settings in this process and reused by
    later trials (`reuse_fitted_parts`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Each worker on its share of the cores, so parallel trials do not oversubscribe them.
    with share_cores(worker, jobs):
        study = optuna.load_study(
            study_name=study_name, storage=journal(storage), pruner=_pruner(setup)
        )
        work = _Process(setup, dataset)
        with reuse_fitted_parts():
            _trials(setup, work, study, n_trials, deadline, on_trial)


def _trials(
    setup: TuneSetup,
    work: _Process,
    study: Any,
    n_trials: int,
    deadline: float | None,
    on_trial: Callable[[Any], None] | None,
) -> None:
    """Ask, evaluate and tell trials until the study is full or the deadline passes."""
    import optuna
    from optuna.trial import TrialState

    points = grid_points(setup) if setup.sampler == "grid" else []
    failures = 0
    while deadline is None or time.time() < deadline:
        started, _ = _counts(study)
        if started >= n_trials:
            break
        point = _next_point(setup, study, points) if points else None
        if points and point is None:
            break
        study.sampler = _sampler(setup, started, point)
        trial = study.ask()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        try:
            values = _evaluate(setup, work, trial)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned", str(exc))
            study.tell(trial, state=TrialState.PRUNED)
        except (LmrecError, ValueError, RuntimeError) as exc:
            # A config the strategy rejects (or that fails to train) is a failed trial,
            # recorded with its reason; the study goes on.
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            failures += 1
            if failures >= _MAX_FAILURES:  # failed trials do not count: stop, do not spin
                raise LmrecError(
                    f"{failures} trials in a row failed; the last said: {exc}"
                ) from None
        else:
            failures = 0
            study.tell(trial, values)
        if on_trial is not None:
            on_trial(study)


#: Seconds after which a running trial that names no process counts as abandoned: its
#: process names itself right after creating it, so it died in between.
_UNNAMED_GRACE_S = 30.0


def _fail_stale(study: Any, unnamed_grace_s: float = _UNNAMED_GRACE_S) -> int:
    """Mark trials left running by a process that no longer exists as failed (and those
    that never named their process, after `unnamed_grace_s`)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    stale = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if pid is None:
            started = t.datetime_start  # naive or aware, as the storage wrote it
            age = (datetime.now(started.tzinfo) - started).total_seconds() if started else 0.0
            if age < unnamed_grace_s:
                continue
        elif t.user_attrs.get("host") != host or not isinstance(pid, int) or _alive(pid):
            continue
        # Optuna has no public call to fail another process's trial (only RDB heartbeats).
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        stale += 1
    return stale


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_study(setup: TuneSetup, storage: str | Path, study_name: str) -> tuple[Any, bool]:
    """The study `study_name` in `storage`, created (defaults enqueued) or resumed; and
    whether it was resumed. A study made for another setup fails."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=journal(storage),
        directions=[o.direction for o in setup.objectives],
        load_if_exists=True,
    )
    described = setup.describe()
    stored = study.user_attrs.get("setup")
    if stored is not None and stored != described:
        diff = sorted(k for k in described if stored.get(k) != described[k])
        raise ConfigError(
            f"study {study_name!r} in {storage} was run with other settings ({', '.join(diff)} "
            "differ); resume it with the same ones or name another --study"
        )
    resumed = stored is not None
    if not resumed:
        study.set_user_attr("setup", described)
        if setup.sampler != "grid":  # a grid starts at the defaults by itself
            study.enqueue_trial(setup.space.defaults())
    _fail_stale(study)
    return study, resumed


def run_study(
    setup: TuneSetup,
    storage: str | Path,
    study_name: str,
    n_trials: int,
    *,
    timeout: float | None = None,
    jobs: int = 1,
    on_trial: Callable[[Any], None] | None = None,
    dataset: Dataset | None = None,
    cluster: Cluster | None = None,
) -> Any:
    """Run (or resume) the study to `n_trials` trials; the loaded study at the end.

    `jobs` processes run trials at once (this one and `jobs - 1` spawned ones),
    each on its share of the cores. `on_trial(study)` is called in this process
    after each of its trials. `dataset` (what `setup.load` gives) spares this process
    loading it again; worker processes always load their own.

    With a Ray `cluster` the `jobs` workers are Ray workers instead (as many at once as
    the cluster has CPUs), each on its share of them, running the same loop against the
    same journal (which they must all reach: one machine or a shared file system); they
    get the dataset from this process, and `on_trial` follows the study from here.
    """
    import optuna

    if setup.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {setup.sampler!r}: choose one of {', '.join(SAMPLERS)}")
    if setup.sampler == "grid":
        n_trials = min(n_trials, len(grid_points(setup)))
    open_study(setup, storage, study_name)
    deadline = time.time() + timeout if timeout else None
    if cluster is not None:
        args = (setup, str(Path(storage).resolve()), study_name, n_trials, deadline)
        _on_ray(args, jobs, dataset if dataset is not None else setup.load(), on_trial)
        return optuna.load_study(study_name=study_name, storage=journal(storage))
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(
            target=_work,
            args=(setup, str(storage), study_name, n_trials, deadline, w, jobs),
            daemon=True,
        )
        for w in range(1, jobs)
    ]
    for p in workers:
        p.start()
    try:
        _work(setup, str(storage), study_name, n_trials, deadline, 0, jobs, on_trial, dataset)
    finally:
        for p in workers:
            p.join()
    failed = [p.exitcode for p in workers if p.exitcode]
    if failed:
        raise LmrecError(f"{len(failed)} tuning worker process(es) failed (exit {failed[0]})")
    return optuna.load_study(study_name=study_name, storage=journal(storage))


def _on_ray(
    args: tuple[Any, ...],
    jobs: int,
    dataset: Dataset,
    on_trial: Callable[[Any], None] | None,
) -> None:
    """`_work(*args)` in `jobs` Ray workers; this process follows the study meanwhile."""
    import threading

    from lmrec.distributed import map_ordered

    stop = threading.Event()

    def follow(notify: Callable[[Any], None]) -> None:
        import optuna

        while not stop.wait(1.0):
            notify(optuna.load_study(study_name=args[2], storage=journal(args[1])))

    follower = None
    if on_trial is not None:
        follower = threading.Thread(target=follow, args=(on_trial,), daemon=True)
    if follower is not None:
        follower.start()
    try:
        map_ordered(_ray_work, range(jobs), (args, dataset))
    finally:
        stop.set()
        if follower is not None:
            follower.join()


def _ray_work(shared: tuple[tuple[Any, ...], Dataset], worker: int) -> None:
    """One Ray worker's `_work` (the worker is already pinned to its share of the cores)."""
    (setup, storage, study_name, n_trials, deadline), dataset = shared
    _work(setup, storage, study_name, n_trials, deadline, dataset=dataset)


def chosen_trials(study: Any, limit: int = 8) -> list[Any]:
    """The best trial (one objective) or the Pareto front (several, up to `limit`,
    best first objective first): the configs that meet the test split."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise LmrecError("no trial completed; see the errors in trials.csv")
    if len(study.directions) == 1:
        return [study.best_trial]
    front = sorted(study.best_trials, key=lambda t: t.values[0], reverse=_maximise(study, 0))
    return front[:limit]


def _maximise(study: Any, i: int) -> bool:
    import optuna

    return bool(study.directions[i] == optuna.study.StudyDirection.MAXIMIZE)


def default_trial(setup: TuneSetup, study: Any) -> Any | None:
    """The first completed trial of the defaults, if there is one."""
    from optuna.trial import TrialState

    defaults = setup.space.defaults()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.params == defaults:
            return t
    return None


def finished(study: Any) -> Sequence[Any]:
    """Completed and pruned trials in the order they were asked."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
