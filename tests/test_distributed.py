"""`lmrec.distributed`: batch work on a real local Ray cluster gives the single-process results.

One two-CPU cluster serves the module. A Ray worker holds one core here (the cluster's
two CPUs over two or more items), and strategies whose float results depend on the
thread count (ALS, SASRec) are compared with a single process on one core
(`share_cores`); encoding, ItemKNN and EASE are the same at any thread count and are
compared with the process as it runs by default.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmrec._cpu import share_cores
from lmrec.data import Dataset
from lmrec.data.loaders.sample import load_sample
from lmrec.errors import ConfigError, LmrecError

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from lmrec.distributed import connect

    yield connect(num_cpus=2)
    ray.shutdown()


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load_sample()


def test_without_ray_the_options_say_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lmrec.cli_ray import ray_cluster
    from lmrec.distributed import connect, map_ordered

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    with pytest.raises(LmrecError, match=r"pip install 'lmrec\[ray\]'"):
        connect()
    with pytest.raises(LmrecError, match=r"--ray-address auto .*pip install 'lmrec\[ray\]'"):
        ray_cluster(False, "auto", None)
    with pytest.raises(LmrecError, match=r"lmrec\[ray\]"):
        map_ordered(lambda state, x: x, [1])
    assert ray_cluster(False, None, None) is None
    with pytest.raises(ConfigError, match="--ray-cpus"):
        ray_cluster(False, None, 2)


def test_an_address_nothing_listens_at_fails_at_once_in_one_line() -> None:
    ray = pytest.importorskip("ray")
    from lmrec.distributed import connect

    if ray.is_initialized():
        pytest.skip("connected already: connect() keeps that cluster")
    with pytest.raises(LmrecError, match=r"cannot connect to the Ray cluster at 127.0.0.1:1 "):
        connect("127.0.0.1:1")  # Ray alone would retry for minutes
    with pytest.raises(ConfigError, match="--ray-cpus sizes a local cluster"):
        connect("127.0.0.1:1", num_cpus=2)
    assert not ray.is_initialized()


def _square_plus(offset: int, x: int) -> int:
    return x * x + offset


def _fail(state: Any, x: int) -> int:
    raise ConfigError(f"item {x} is bad")


def _cores(state: Any, x: int) -> int:
    from lmrec._cpu import usable_cores

    return usable_cores()


@pytest.mark.slow
def test_map_ordered_keeps_the_input_order_and_raises_an_lmrec_error_as_it_is(
    cluster: Any,
) -> None:
    from lmrec.distributed import map_ordered

    seen: list[int] = []
    out = map_ordered(_square_plus, range(9), 1, on_result=lambda i, r: seen.append(i))
    assert out == [x * x + 1 for x in range(9)]
    assert sorted(seen) == list(range(9))
    with pytest.raises(ConfigError, match="item 0 is bad"):
        map_ordered(_fail, [0])
    # A worker is pinned to the CPUs it holds: its thread pools are sized to them.
    assert map_ordered(_cores, range(4)) == [1, 1, 1, 1]
    assert map_ordered(_cores, [0]) == [2]


@pytest.mark.slow
def test_encoding_on_ray_gives_the_single_process_vectors_bit_for_bit(
    cluster: Any, sample: Dataset
) -> None:
    from lmrec.distributed import RayEncoder
    from lmrec.text import EncoderConfig, item_texts, make_encoder

    texts = list(item_texts(sample.catalog)[0])[:200]
    config = EncoderConfig(batch_size=16)  # 13 batches: shards of 2 over both workers
    local = make_encoder(config).encode(texts)
    remote = RayEncoder(config, chunk=2)
    assert remote.identity == make_encoder(config).identity
    vectors = remote.encode(texts)
    assert vectors.dtype == np.float32 and vectors.shape == local.shape
    assert np.array_equal(vectors, local)  # exact, not within a tolerance


@pytest.mark.slow
def test_seeds_and_strategies_on_ray_give_the_single_process_results(
    cluster: Any, sample: Dataset
) -> None:
    from lmrec.evaluation import ModelSpec, run_experiment

    specs = [ModelSpec.parse("als").seeded(s) for s in (0, 1, 2)] + [ModelSpec.parse("ease")]
    events: list[tuple[str, str]] = []
    on_ray = run_experiment(
        sample, "loo", specs, cluster=cluster, on_event=lambda k, i: events.append((k, i["model"]))
    )
    with share_cores(0, 1, 1):  # one core, as each Ray worker has
        alone = run_experiment(sample, "loo", specs)
    assert list(on_ray.results) == [s.name for s in specs] == list(alone.results)
    for name, res in alone.results.items():
        got = on_ray.results[name]
        assert np.array_equal(got.rankings, res.rankings), name
        assert got.summary == res.summary, name
        assert got.segments == res.segments, name
        assert got.fit_on == res.fit_on and got.chosen == res.chosen
    assert not np.array_equal(
        on_ray.results["als-seed0"].rankings, alone.results["als-seed1"].rankings
    )
    assert sorted(events) == sorted(
        [("fit", s.name) for s in specs] + [("done", s.name) for s in specs]
    )


def test_seeds_need_a_strategy_with_a_seed() -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app

    result = CliRunner().invoke(
        app, ["evaluate", "--dataset", "sample", "--models", "ease", "--seeds", "0,1"]
    )
    assert result.exit_code != 0 and "ease has no seed parameter" in str(result.exception)
    result = CliRunner().invoke(
        app, ["evaluate", "--dataset", "sample", "--models", "pop", "--seeds", "0,x"]
    )
    assert "--seeds '0,x'" in str(result.exception)


@pytest.mark.slow
def test_evaluate_seeds_on_ray_writes_the_same_results(cluster: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app

    args = ["evaluate", "--dataset", "sample", "--models", "random,als", "--seeds", "3,4"]
    args += ["--attribute-diversity", "--save-rankings"]
    docs = []
    for name, extra in (("alone", []), ("ray", ["--ray"])):
        out = tmp_path / name
        with share_cores(0, 1, 1) if name == "alone" else nullcontext():  # a worker's one core
            result = CliRunner().invoke(
                app, [*args, str(out), "--out", str(out / "r.json"), *extra]
            )
        assert result.exit_code == 0, result.output
        doc = json.loads((out / "r.json").read_text())
        for row in doc["results"].values():
            del row["fit_seconds"], row["eval_seconds"]
        docs.append((doc["results"], sorted(p.read_text() for p in out.glob("*.jsonl"))))
    assert list(docs[0][0]) == ["random-seed3", "random-seed4", "als-seed3", "als-seed4"]
    assert docs[1] == docs[0]


def _tune_setup(**kw: Any) -> Any:
    """ItemKNN's neighbourhood size on the sample (shrinkage and recency fixed)."""
    from lmrec.models.itemknn import ItemKNNConfig
    from lmrec.tuning.space import space_for
    from lmrec.tuning.study import Objective, TuneSetup

    space, known = space_for("itemknn", ItemKNNConfig)
    space = space.override({"itemknn.recency": "off", "itemknn.shrink": "off"}, known)
    args: dict[str, Any] = {
        "load": partial(load_sample),
        "model": "itemknn",
        "protocol": "loo",
        "space": space,
        "objectives": (Objective.parse("ndcg@10"),),
        "seed": 5,
    }
    return TuneSetup(**{**args, **kw})


def _history(study: Any) -> list[tuple[Any, ...]]:
    from lmrec.tuning.study import finished

    return [(tuple(sorted(t.params.items())), tuple(t.values or ())) for t in finished(study)]


@pytest.mark.slow
def test_tune_trials_on_ray_give_the_process_studys_trials(
    cluster: Any, sample: Dataset, tmp_path: Path
) -> None:
    from lmrec.tuning.study import run_study

    def study(name: str, setup: Any, n: int, **kw: Any) -> list[tuple[Any, ...]]:
        return _history(
            run_study(setup, tmp_path / f"{name}.journal", name, n, dataset=sample, **kw)
        )

    tpe = _tune_setup()
    alone = study("p", tpe, 3)
    assert len(alone) == 3
    assert study("r", tpe, 3, cluster=cluster) == alone  # one worker: trial for trial
    # Two Ray workers over the grid (4 points): every config scores what one process gives.
    grid = _tune_setup(sampler="grid")
    points = dict(study("g1", grid, 9))
    both = study("g2", grid, 9, jobs=2, cluster=cluster)
    # Optuna's GridSampler may hand one point to two workers at once (documented for
    # distributed studies): a point can appear twice and the study can end before every
    # point ran. What is ours to pin: each config scores on Ray what it scores alone.
    assert len(points) == 4 and len({params for params, _ in both}) >= 2
    assert all(points[params] == values for params, values in both)


@pytest.mark.slow
def test_recommend_on_ray_writes_the_same_file(
    cluster: Any, sample: Dataset, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from lmrec.artifacts import train_artifact
    from lmrec.batch import CHUNK
    from lmrec.cli import app

    model_dir = train_artifact(sample, "ease", tmp_path / "ease")
    users = list(sample.users.ids)
    users = [*(users * (2 * CHUNK // len(users) + 1))[: 2 * CHUNK + 7], "nobody-knows-me"]
    (tmp_path / "users.txt").write_text("\n".join(users) + "\n")
    args = ["recommend", "--model-dir", str(model_dir), "--users", str(tmp_path / "users.txt")]
    args += ["--k", "12", "--param", "mmr_lambda=0.7"]
    alone = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "alone.jsonl")])
    assert alone.exit_code == 0, alone.output
    on_ray = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ray.jsonl"), "--ray"])
    assert on_ray.exit_code == 0, on_ray.output
    assert "(1 unknown to the model" in " ".join(on_ray.output.split())
    written = (tmp_path / "ray.jsonl").read_bytes()
    assert written == (tmp_path / "alone.jsonl").read_bytes()
    assert written.count(b"\n") == len(users)
