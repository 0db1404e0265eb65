"""`lmrec.tuning`: declared spaces, the honest protocol, resumable seeded studies, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import pytest
from pydantic import Field

from lmrec.data import Dataset
from lmrec.data.interactions import Histories
from lmrec.errors import ConfigError, LmrecError
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.models.ease import EASEConfig
from lmrec.tuning.outputs import score_on_test, trial_rows
from lmrec.tuning.protocol import TrialConfig, fold_dataset, search_dataset
from lmrec.tuning.space import Tunable, space_for
from lmrec.tuning.study import Objective, TuneSetup, finished, journal, run_study

N_USERS, N_ITEMS, N_SENTINELS = 60, 30, 12


def synthetic(shift: int = 0) -> Dataset:
    """Users in two taste groups, each user's last interaction with a sentinel item.

    Sentinels (`s0`..) appear nowhere else, so any trace of one in what a strategy
    is fitted on or scores from is a read of the test split. `shift` moves every
    user's test item to another sentinel: a protocol that never reads test gives
    the same trials for every shift.
    """
    rng = np.random.default_rng(7)
    rows = []
    for u in range(N_USERS):
        group = u % 2
        pool = [i for i in range(N_ITEMS) if i % 2 == group]
        for t, item in enumerate(rng.choice(pool, size=8, replace=False)):
            rows.append((f"u{u}", f"i{item}", t))
        rows.append((f"u{u}", f"s{(u + shift) % N_SENTINELS}", 100))
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    items = [f"i{i}" for i in range(N_ITEMS)] + [f"s{i}" for i in range(N_SENTINELS)]
    catalog = pd.DataFrame({"item": items, "title": [""] * len(items)})
    return Dataset.from_frames("synthetic", frame, catalog)


SEEN: list[str] = []


class SpyConfig(ModelConfig):
    """`k`: how much the taste-group signal counts against popularity; `sleep` seconds
    a fit takes (to be killed in)."""

    k: Annotated[float, Tunable(0.0, 4.0)] = Field(1.0, ge=0.0)
    sleep: float = 0.0


class Spy(Recommender):
    """Popularity plus same-parity affinity; records every item it is fitted on or scores from."""

    Config = SpyConfig
    config: SpyConfig
    ids: ClassVar[list[str]] = []

    def _fit(self, data: TrainingData) -> None:
        time.sleep(self.config.sleep)
        SEEN.extend(Spy.ids[i] for i in data.interactions.items)
        if data.valid is not None:
            SEEN.extend(Spy.ids[i] for i in data.valid.items)
        self.counts_ = np.bincount(data.interactions.items, minlength=self.n_items).astype(float)

    def _score(self, histories: Histories) -> np.ndarray:
        SEEN.extend(Spy.ids[i] for i in histories.items)
        parity = np.arange(self.n_items) % 2
        out = np.tile(self.counts_ / max(self.counts_.max(), 1.0), (len(histories), 1))
        for q in range(len(histories)):
            h = histories[q]
            if len(h):
                out[q] += self.config.k * (parity == np.bincount(h % 2, minlength=2).argmax())
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.counts_ = state["counts"]


SPY = f"{__name__}:Spy"


def setup_for(dataset: Dataset, **kw: Any) -> TuneSetup:
    Spy.ids = list(dataset.items.ids)
    space, _ = space_for(SPY, SpyConfig)
    args: dict[str, Any] = {
        "load": lambda: dataset,
        "model": SPY,
        "protocol": "loo",
        "space": space,
        "objectives": (Objective.parse("ndcg@10"),),
        "seed": 3,
    }
    args.update(kw)
    return TuneSetup(**args)


def trial_history(study: Any) -> list[tuple[tuple[tuple[str, Any], ...], tuple[float, ...]]]:
    return [(tuple(sorted(t.params.items())), tuple(t.values or ())) for t in finished(study)]


# --- the space, declared on the configs -------------------------------------------------


def test_space_comes_from_the_config_marks_and_holds_the_defaults() -> None:
    space, known = space_for("ease", EASEConfig, text_fields=("title", "brand"))
    (reg,) = space
    assert (reg.name, reg.kind, reg.low, reg.high, reg.log) == ("ease.reg", "float", 1.0, 1e5, True)
    assert space.defaults() == {"ease.reg": 50.0}
    assert {"rerank.mmr_lambda", "rerank.mmr_space", "text.fields", "text.backend"} <= set(known)
    assert known["text.fields"].default == ("title", "brand")
    assert 50.0 in reg.grid(3) and len(reg.grid(3)) == 4  # 1, 316, 1e5 and the default


def test_space_overrides_narrow_fix_drop_and_fail_on_unknown_names() -> None:
    space, known = space_for("ease", EASEConfig)
    narrowed = space.override({"ease.reg": "100:1000:log", "rerank.mmr_lambda": "0.5|1"}, known)
    reg, lam = narrowed.dimensions["ease.reg"], narrowed.dimensions["rerank.mmr_lambda"]
    assert (reg.low, reg.high, reg.log) == (50.0, 1000.0, True)  # widened to hold the default
    assert lam.kind == "choice" and lam.choices == (0.5, 1.0) and lam.default == 1.0
    assert "ease.reg" not in space.override({"ease.reg": "off"}, known).dimensions
    with pytest.raises(ConfigError, match=r"'ease.regg'.*valid: .*ease\.reg"):
        space.override({"ease.regg": "1:2"}, known)
    with pytest.raises(ConfigError, match="low < high"):
        space.override({"ease.reg": "5:1"}, known)


def test_a_trial_config_is_what_train_and_evaluate_read() -> None:
    config = TrialConfig.from_values(
        "fused",
        {"fused.depth": 50, "rerank.mmr_lambda": 0.7, "text.fields": ("title", "brand")},
    )
    assert config.to_json() == {
        "model": "fused",
        "params": {"depth": 50},
        "rerank": {"mmr_lambda": 0.7},
        "text": {"fields": ["title", "brand"]},
    }


# --- the honest protocol -----------------------------------------------------------------


def test_the_search_dataset_is_the_log_without_test_and_its_targets_are_validation() -> None:
    from lmrec.data.splitting import split

    ds = synthetic()
    search = search_dataset(ds, "loo")
    assert len(search.interactions) == len(ds.interactions) - N_USERS
    sentinel = {i for i, item in enumerate(ds.items.ids) if item.startswith("s")}
    assert not sentinel & set(search.interactions.items.tolist())
    inner, outer = split(search.interactions, "loo"), split(ds.interactions, "loo")
    assert np.array_equal(inner.test.items, outer.valid.items)
    assert np.array_equal(inner.test.users, outer.valid.users)


def test_earlier_folds_move_the_targets_back_one_interaction_per_fold() -> None:
    from lmrec.data.splitting import split

    search = search_dataset(synthetic(), "loo")
    fold1, seed = fold_dataset(search, "loo", 1)
    assert seed == 0 and len(fold1.interactions) == len(search.interactions) - N_USERS
    # Fold 1's targets are the items just before fold 0's, for every user.
    log = search.interactions
    before_last = log.items[log.user_indptr[1:] - 2]
    assert np.array_equal(split(fold1.interactions, "loo").test.items, before_last)
    assert fold_dataset(search, "random", 2)[1] == 2  # random: another seed instead


def test_folds_average_their_scores(tmp_path: Path) -> None:
    from lmrec.evaluation.evaluator import EvalOptions
    from lmrec.tuning.protocol import score_config

    study = run_study(setup_for(synthetic(), folds=2), tmp_path / "f.journal", "spy", 1)
    search = search_dataset(synthetic(), "loo", seed=3)
    config = TrialConfig(SPY, {"k": 1.0})
    per_fold = [
        score_config(
            fold_dataset(search, "loo", f)[0],
            "loo",
            config,
            seed=3,
            options=EvalOptions(ks=(10, 20), save_top=20),
        ).summary["ndcg@10"]
        for f in (0, 1)
    ]
    assert per_fold[0] != per_fold[1]
    assert study.trials[0].values[0] == pytest.approx(np.mean(per_fold), abs=1e-12)


def test_no_trial_reads_the_test_split(tmp_path: Path) -> None:
    """Fails if any trial fits on, scores from, or is measured against test data."""
    studies = []
    for shift in (0, 5):
        SEEN.clear()
        setup = setup_for(synthetic(shift))
        study = run_study(setup, tmp_path / f"shift{shift}.journal", "spy", 6)
        assert SEEN and not any(item.startswith("s") for item in SEEN)
        studies.append(study)
    # Moving every test item changes no trial: their values never depended on test.
    assert trial_history(studies[0]) == trial_history(studies[1])
    # ... while the test scores after the search do see the test items.
    tests = [
        score_on_test(setup_for(synthetic(shift)), s, synthetic(shift))
        for shift, s in zip((0, 5), studies, strict=True)
    ]
    assert tests[0]["test_reads"] == 1 + (tests[0]["chosen"][0]["trial"] != 0)
    assert tests[0]["default"]["validation"] == tests[1]["default"]["validation"]


# --- studies -------------------------------------------------------------------------------


def test_defaults_are_trial_zero_and_tuning_beats_a_poor_default(tmp_path: Path) -> None:
    setup = setup_for(synthetic())
    space = setup.space.override({f"{SPY}.k": "0:4"}, setup.space.dimensions)
    setup = setup_for(synthetic(), space=space)
    study = run_study(setup, tmp_path / "s.journal", "spy", 8)
    first = finished(study)[0]
    assert first.user_attrs["default"] and first.params == {f"{SPY}.k": 1.0}
    assert len(finished(study)) == 8
    # Popularity alone (k = 0) ignores taste; the best trial must use the group signal.
    assert study.best_trial.params[f"{SPY}.k"] > 0.0


def test_a_killed_study_resumes_to_the_same_trials_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    setup = setup_for(synthetic(), sampler="tpe")
    whole = run_study(setup, tmp_path / "whole.journal", "spy", 7)
    part = run_study(setup, tmp_path / "part.journal", "spy", 3)
    # A process that died mid-trial leaves a running trial behind.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    trial = part.ask()
    trial.set_user_attr("host", os.uname().nodename)
    trial.set_user_attr("pid", int(dead.stdout))
    resumed = run_study(setup, tmp_path / "part.journal", "spy", 7)
    states = [t.state.name for t in resumed.get_trials(deepcopy=False)]
    assert states.count("FAIL") == 1 and "RUNNING" not in states
    assert trial_history(resumed) == trial_history(whole)


def test_a_running_trial_that_never_named_its_process_fails_after_a_grace(
    tmp_path: Path,
) -> None:
    """A process killed between creating a trial and naming itself leaves a running trial
    with no pid; once it is older than the grace it is failed, so a resume re-runs it."""
    from lmrec.tuning.study import _fail_stale

    study = run_study(setup_for(synthetic()), tmp_path / "u.journal", "spy", 2)
    study.ask()  # never named
    assert _fail_stale(study, unnamed_grace_s=3600) == 0
    assert _fail_stale(study, unnamed_grace_s=0) == 1
    assert [t.state.name for t in study.get_trials(deepcopy=False)][-1] == "FAIL"


def test_the_timeout_stops_starting_trials(tmp_path: Path) -> None:
    fixed = ((f"{SPY}.sleep", 0.3),)
    started = time.perf_counter()
    study = run_study(
        setup_for(synthetic(), fixed=fixed), tmp_path / "t.journal", "spy", 50, timeout=0.5
    )
    assert 1 <= len(finished(study)) <= 3
    assert time.perf_counter() - started < 3.0


def test_a_resumed_study_must_keep_its_settings(tmp_path: Path) -> None:
    run_study(setup_for(synthetic()), tmp_path / "s.journal", "spy", 2)
    with pytest.raises(ConfigError, match=r"other settings .*seed"):
        run_study(setup_for(synthetic(), seed=4), tmp_path / "s.journal", "spy", 3)


def test_two_objectives_give_a_pareto_front_of_non_dominated_trials(tmp_path: Path) -> None:
    setup = setup_for(
        synthetic(),
        objectives=(Objective.parse("ndcg@10"), Objective.parse("coverage@10")),
        sampler="random",
    )
    study = run_study(setup, tmp_path / "m.journal", "spy", 8)
    front = study.best_trials
    assert front
    everyone = [t.values for t in finished(study)]
    for t in front:
        a, c = t.values
        assert not any(x >= a and y >= c and (x > a or y > c) for x, y in everyone)


def test_grid_search_visits_every_point_once(tmp_path: Path) -> None:
    setup = setup_for(synthetic(), sampler="grid", grid_points=3)
    study = run_study(setup, tmp_path / "g.journal", "spy", 50)
    values = sorted(t.params[f"{SPY}.k"] for t in finished(study))
    assert values == [0.0, 1.0, 2.0, 4.0]  # 0, 2, 4 and the default 1


def test_a_grid_worker_whose_point_another_took_still_runs_a_grid_point(tmp_path: Path) -> None:
    """Two workers share a grid study: one enqueues a point, the other's ask takes it;
    the first worker's own ask must start a grid point too, never a random one."""
    from lmrec.tuning.study import _next_point, _sampler, _suggest, grid_points

    setup = setup_for(synthetic(), sampler="grid", grid_points=3)
    study = optuna.create_study(storage=journal(tmp_path / "race.journal"))
    points = grid_points(setup)
    mine = _next_point(setup, study, points)
    assert mine == points[0]
    taken = study.ask()  # the other worker pops the enqueued trial first
    study.sampler = _sampler(setup, 1, mine)
    fresh = study.ask()
    params = [{d.name: _suggest(t, d) for d in setup.space} for t in (taken, fresh)]
    assert params == [mine, mine]


def test_an_objective_that_is_not_measured_names_the_valid_ones(tmp_path: Path) -> None:
    setup = setup_for(synthetic(), objectives=(Objective.parse("ndgc@10"),))
    with pytest.raises(LmrecError, match=r"3 trials in a row failed.*'ndgc@10' is not measured"):
        run_study(setup, tmp_path / "o.journal", "spy", 5)
    study = optuna.load_study(study_name="spy", storage=journal(tmp_path / "o.journal"))
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL"] * 3
    assert "choose among latency, fit_seconds, " in trials[0].user_attrs["error"]
    assert "ndcg@10" in trials[0].user_attrs["error"]


@pytest.mark.slow
def test_a_study_killed_for_real_resumes_to_the_same_trials(tmp_path: Path) -> None:
    """kill -9 a process in the middle of a trial, then resume the study from its journal."""
    fixed = ((f"{SPY}.sleep", 0.4),)
    whole = run_study(setup_for(synthetic(), fixed=fixed), tmp_path / "whole.journal", "spy", 6)
    script = (
        "import sys; sys.path.insert(0, {root!r});"
        "from pathlib import Path;"
        "from tests.tuning.test_tuning import setup_for, synthetic;"
        "from lmrec.tuning.study import run_study;"
        "run_study(setup_for(synthetic(), fixed={fixed!r}), Path({path!r}), 'spy', 6)"
    ).format(root=str(Path(__file__).parents[2]), fixed=fixed, path=str(tmp_path / "k.journal"))
    child = subprocess.Popen([sys.executable, "-c", script])
    storage = journal(tmp_path / "k.journal")
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)
        try:
            live = optuna.load_study(study_name="spy", storage=storage)
        except KeyError:  # not created yet
            continue
        trials = live.get_trials(deepcopy=False)
        states = [t.state.name for t in trials]
        # Killed once the running trial has named its process (the path under test).
        if states.count("COMPLETE") >= 3 and states[-1] == "RUNNING" and trials[-1].user_attrs:
            break
    child.kill()
    child.wait()
    assert states.count("COMPLETE") >= 3, "the child never got three trials done"
    resumed = run_study(setup_for(synthetic(), fixed=fixed), tmp_path / "k.journal", "spy", 6)
    states = [t.state.name for t in resumed.get_trials(deepcopy=False)]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 6
    assert trial_history(resumed) == trial_history(whole)


@pytest.mark.slow
def test_epoch_models_report_learning_curves_and_poor_trials_are_pruned(tmp_path: Path) -> None:
    from lmrec.models.sasrec import SASRecConfig

    ds = synthetic()
    space, known = space_for("sasrec", SASRecConfig)
    setup = TuneSetup(
        load=lambda: ds,
        model="sasrec",
        protocol="loo",
        space=space.override({"sasrec.learning_rate": "1e-5:1e-2:log"}, known),
        objectives=(Objective.parse("ndcg@10"),),
        fixed=(("sasrec.epochs", 12), ("sasrec.patience", 0), ("sasrec.progress", False)),
    )
    study = run_study(setup, tmp_path / "p.journal", "sasrec", 10)
    curves = {t.number: t.user_attrs["epochs"] for t in study.get_trials(deepcopy=False)}
    pruned = [t for t in study.get_trials(deepcopy=False) if t.state.name == "PRUNED"]
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    assert pruned and complete
    assert all(len(curves[t.number]) == 12 for t in complete)
    # The median pruner stops a trial after its warm-up, below the others at that epoch.
    for t in pruned:
        step = len(curves[t.number]) - 1
        assert 5 <= step < 11
        earlier = [curves[c.number][step] for c in complete if c.number < t.number]
        assert curves[t.number][step] < np.median(earlier)
    rows = trial_rows(setup, study)
    assert all(r["ndcg@10"] is None for r in rows if r["state"] == "pruned")


# --- the command line ----------------------------------------------------------------------


def _write_csv(tmp_path: Path) -> Path:
    ds = synthetic()
    log = ds.interactions
    frame = pd.DataFrame(
        {
            "user_id": [ds.users.id(int(u)) for u in log.users],
            "item_id": [ds.items.id(int(i)) for i in log.items],
            "timestamp": log.timestamps,
        }
    )
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_tune_command_writes_outputs_that_train_and_evaluate_accept(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app

    data = _write_csv(tmp_path)
    out = tmp_path / "tune"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "tune",
            "--dataset",
            str(data),
            "--model",
            "itemknn",
            "--trials",
            "4",
            "--out",
            str(out),
            "--space",
            "itemknn.recency=off",
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    best = json.loads((out / "best.json").read_text())
    assert best["model"] == "itemknn" and set(best["params"]) == {"k", "shrink"}
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 4 and trials["default"].iloc[0]
    assert set(trials["state"]) == {"complete"}
    summary = json.loads((out / "tune.json").read_text())
    assert summary["test"]["test_reads"] in (1, 2)
    assert "Pareto" not in (out / "report.html").read_text()
    model_dir = tmp_path / "model"
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            str(data),
            "--config",
            str(out / "best.json"),
            "--out",
            str(model_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["model"]["config"]["k"] == best["params"]["k"]
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            str(data),
            "--config",
            str(out / "best.json"),
            "--out",
            str(tmp_path / "eval.json"),
            "--attribute-diversity",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "eval.json").read_text())
    tuned = doc["results"]["itemknn"]["ndcg@10"]
    assert tuned == pytest.approx(best["tuning"]["test"]["ndcg@10"], abs=1e-6)
