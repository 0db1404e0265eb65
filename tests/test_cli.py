"""The command line as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.models.names import resolve_strategy

ROOT = Path(__file__).resolve().parents[1]


def lmrec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lmrec.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture()
def ratings_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        items = rng.choice(40, size=8, replace=False) + (u % 2) * 40  # two communities
        rows += [(f"user{u}", f"item{i}", t) for t, i in enumerate(items)]
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_evaluate_writes_contract_json_and_rankings_that_recompute(
    ratings_csv: Path, tmp_path: Path
):
    out = tmp_path / "res.json"
    ranks = tmp_path / "ranks"
    proc = lmrec(
        "evaluate",
        "--dataset",
        str(ratings_csv),
        "--models",
        "pop,itemknn",
        "--out",
        str(out),
        "--save-rankings",
        str(ranks),
        "--report",
        str(tmp_path / "r.html"),
        "--reference",
        "pop",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["protocol"] == "loo" and doc["n_users"] == 60 and doc["n_items"] == 80
    assert set(doc["results"]) == {"pop", "itemknn"}
    # Community structure: item-kNN must beat popularity.
    assert doc["results"]["itemknn"]["ndcg@10"] > doc["results"]["pop"]["ndcg@10"]
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "recompute_metrics.py"), str(ranks), str(out)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    assert "MISMATCH" not in check.stdout and check.stdout.count(" ok") == 4
    assert "<img" in (tmp_path / "r.html").read_text()


@pytest.mark.slow
def test_published_rankings_hold_ids_only_and_recompute_from_the_dataset(tmp_path: Path):
    out, ranks = tmp_path / "res.json", tmp_path / "ranks"
    proc = lmrec(
        "evaluate", "--dataset", "sample", "--models", "pop,ease", "--tie-break", "item",
        "--out", str(out), "--publish-rankings", str(ranks),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["tie_break"] == "item"
    files = sorted(p.name for p in ranks.iterdir())
    assert files == ["sample-ease.jsonl.gz", "sample-pop.jsonl.gz"]
    with gzip.open(ranks / files[0], "rt") as fh:
        first = json.loads(fh.readline())
    assert set(first) == {"user", "ranked"} and len(first["ranked"]) == 20
    script = [sys.executable, str(ROOT / "benchmarks" / "recompute_metrics.py")]
    check = subprocess.run(
        [*script, "--dataset", "sample", "--rankings", str(ranks), "--results", str(out),
         "--tie-break", "item"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(" ok") == 4


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--dataset", "no-such-dataset", "--models", "pop"], "known"),
        (["evaluate", "--dataset", "sample", "--models", "eaes"], "unknown model 'eaes'"),
        (["evaluate", "--dataset", "sample", "--protocol", "lol"], "unknown protocol"),
        (["evaluate", "--dataset", "sample", "--models", "ease", "--param", "ease.nope=1"], "nope"),
        (
            [
                "evaluate",
                "--dataset",
                "sample",
                "--models",
                "text-sasrec",
                "--param",
                "text-sasrec.text=init,bogus",
            ],
            "text.1: Input should be 'none', 'fuse', 'init', 'init-fuse' or 'dual'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = lmrec(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_teaches():
    proc = lmrec("evaluate", "--help")
    assert proc.returncode == 0
    assert "--save-rankings" in proc.stdout and "Example" in proc.stdout


@pytest.mark.slow
def test_demo_trains_evaluates_and_reports_on_the_sample(tmp_path: Path):
    proc = lmrec("demo", "--dataset", "sample", "--workdir", str(tmp_path), "--no-serve")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = doc["results"]
    assert {"pop", "ease", "lm-adapter", "hybrid"} <= set(rows)
    # The sample has real topical structure: personalised strategies beat popularity,
    # and diversity is measured over text vectors.
    assert rows["ease"]["ndcg@10"] > 2 * rows["pop"]["ndcg@10"]
    assert rows["lm-adapter"]["ndcg@10"] > rows["pop"]["ndcg@10"]
    assert "diversity@10" in rows["ease"]
    assert (tmp_path / "report.html").stat().st_size > 10_000
    # --no-serve leaves the best model's artefact and says how to serve it.
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    best = max((n for n in rows if n != "pop"), key=lambda n: rows[n]["ndcg@10"])
    assert (
        manifest["model"]["class"]
        == resolve_strategy(best).__module__ + ":" + resolve_strategy(best).__qualname__
    )
    assert f"lmrec serve --model-dir {tmp_path / 'model'}" in " ".join(proc.stdout.split())
    assert "step 3/4" in proc.stderr


@pytest.mark.slow
def test_train_says_what_a_tuning_strategy_held_out(tmp_path: Path):
    out = tmp_path / "sasrec-v1"
    params = json.dumps({"epochs": 1, "embedding_dim": 16})
    proc = lmrec("train", "-d", "sample", "-m", "sasrec", "--params", params, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    held = json.loads((out / "manifest.json").read_text())["validation"]
    assert held["n_users"] == 500
    assert f"tuned on its own validation: {held['protocol']}, 500 users" in proc.stdout


def test_usage_errors_are_one_message_not_a_traceback() -> None:
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-m", "lmrec.cli", *args], capture_output=True, text=True, timeout=60
        )
        for args in (["serve"], [])
    ]
    for run in runs:
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr + run.stdout
    assert "Missing option '--model-dir'" in runs[0].stderr
    assert "Usage" in runs[1].stdout + runs[1].stderr  # no command: the help


def test_models_lists_the_strategies_and_one_strategys_parameters() -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app
    from lmrec.models.names import STRATEGIES

    runner = CliRunner()
    listed = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert all(name in listed.output for name in STRATEGIES)
    ease = runner.invoke(app, ["models", "ease"], env={"COLUMNS": "200"})
    assert ease.exit_code == 0 and "reg" in ease.output and "50.0" in ease.output
    assert "> 0.0" in ease.output and "L2 penalty" in ease.output
    unknown = runner.invoke(app, ["models", "nope"])
    assert unknown.exit_code != 0 and "known: pop" in str(unknown.exception)


def test_train_takes_parameters_in_either_form(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from lmrec.cli import app

    runner = CliRunner()
    out = tmp_path / "a"
    args = ["train", "--dataset", "sample", "--model", "ease", "--out", str(out)]
    done = runner.invoke(app, [*args, "--params", '{"reg": 7}', "--param", "ease.reg=123"])
    assert done.exit_code == 0, done.output
    assert json.loads((out / "model" / "model.json").read_text())["config"]["reg"] == 123
    bad = runner.invoke(app, [*args[:-1], str(tmp_path / "b"), "--param", "regg=1"])
    assert bad.exit_code != 0 and "valid: reg" in str(bad.exception)


@pytest.mark.slow
def test_train_warm_starts_from_an_earlier_artefact_matching_items_by_id(
    ratings_csv: Path, tmp_path: Path
) -> None:
    """`--warm-start` keeps the earlier artefact's settings and, trained for 0 epochs, its
    item rows exactly, matched by id though the new log lists new items first."""
    from typer.testing import CliRunner

    from lmrec.artifacts import load_artifact
    from lmrec.cli import app

    runner = CliRunner()
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    small = '{"embedding_dim": 8, "max_len": 5, "epochs": 2, "progress": false}'
    base = ["train", "--dataset", str(ratings_csv), "--model", "sasrec"]
    done = runner.invoke(app, [*base, "--params", small, "--out", str(v1)])
    assert done.exit_code == 0, done.output
    old = pd.read_csv(ratings_csv)
    new = pd.DataFrame({"user_id": ["fresh"] * 3, "item_id": ["n1", "n2", "n3"]})
    grown = tmp_path / "grown.csv"
    pd.concat([new.assign(timestamp=-1), old]).to_csv(grown, index=False)
    args = ["train", "--dataset", str(grown), "--model", "sasrec", "--warm-start", str(v1)]
    done = runner.invoke(app, [*args, "--param", "epochs=0", "--out", str(v2)])
    assert done.exit_code == 0, done.output
    a, b = load_artifact(v1), load_artifact(v2)
    assert b.model.config.embedding_dim == 8  # the earlier settings, not the defaults
    ids = a.items.to_list()
    rows_a = a.model.item_embeddings()[a.items.indexes(ids)]
    rows_b = b.model.item_embeddings()[b.items.indexes(ids)]
    assert b.items.indexes(ids)[0] != a.items.indexes(ids)[0]  # the indexes moved
    np.testing.assert_array_equal(rows_b, rows_a)
    wrong = runner.invoke(app, [*args[:4], "ease", *args[5:], "--out", str(tmp_path / "x")])
    assert wrong.exit_code != 0 and "these can: sasrec, text-sasrec, fused" in str(wrong.exception)
    other = runner.invoke(app, [*args[:4], "text-sasrec", *args[5:], "--out", str(tmp_path / "y")])
    assert other.exit_code != 0 and "holds a SASRec model, not TextSASRec" in str(other.exception)


@pytest.mark.slow
def test_evaluate_takes_parameters_in_either_form(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app

    runner = CliRunner()
    base = ["evaluate", "--dataset", "sample", "--attribute-diversity"]

    def reg_fit(*extra: str) -> float:
        out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
        done = runner.invoke(app, [*base, *extra, "--out", str(out)])
        assert done.exit_code == 0, done.output
        return json.loads(out.read_text())["results"]["ease"]["ndcg@10"]

    as_flag = reg_fit("--models", "ease", "--param", "ease.reg=3")
    assert reg_fit("--models", "ease", "--params", '{"reg": 3}') == as_flag
    assert reg_fit("--models", "pop,ease", "--params", '{"ease": {"reg": 3}}') == as_flag
    assert reg_fit("--models", "ease", "--params", '{"reg": 9}', "--param", "ease.reg=3") == as_flag
    assert reg_fit("--models", "ease") != as_flag  # the parameter changed something
    bad = runner.invoke(app, [*base, "--models", "pop,ease", "--params", '{"reg": 3}'])
    assert bad.exit_code != 0 and "key the parameters by model" in str(bad.exception)
