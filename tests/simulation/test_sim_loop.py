"""Known answers for the round loop on the generated sample: amplification, seeds, CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmrec.data.loaders import load_dataset
from lmrec.simulation import SimulationConfig, parse_strategies, run_simulation

NO_SATIATION = {"choice.satiation": 0.0, "choice.drift": 0.0, "arrivals.share": 0.0}


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def test_popularity_without_satiation_drives_gini_of_exposure_up(sample):
    config = SimulationConfig.from_params(NO_SATIATION, rounds=6, refit_every=1, users=300)
    doc = run_simulation(sample, parse_strategies("pop"), config, seeds=1)
    gini = [r["gini"] for r in doc["strategies"]["pop"]["rounds"]]
    assert all(b > a for a, b in itertools.pairwise(gini)), gini
    assert doc["strategies"]["pop"]["trend"]["gini_slope"]["mean"] > 0


def _strip(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc.pop("date")
    doc.pop("seconds")
    for block in [doc, *doc["truths"].values()]:
        for res in block["strategies"].values():
            res.pop("seconds_per_round")
            res.pop("refit_seconds")
    return doc


@pytest.mark.slow
def test_same_seed_same_result_and_another_seed_differs(sample):
    specs = parse_strategies("pop,ease+mmr=0.5+mmr_space=attributes")
    config = SimulationConfig(rounds=3, refit_every=2, users=150)
    a = run_simulation(sample, specs, config, seeds=2, reference="pop")
    b = run_simulation(sample, specs, config, seeds=2, reference="pop")
    assert _strip(a) == _strip(b)
    c = run_simulation(sample, specs, config.model_copy(update={"seed": 5}), seeds=2)
    assert _strip(c)["strategies"]["pop"]["rounds"] != _strip(a)["strategies"]["pop"]["rounds"]
    # Shape: means with intervals beside them, settings and the code version.
    row = a["strategies"]["pop"]["rounds"][0]
    assert {
        "round",
        "ctr",
        "active_users",
        "gini",
        "avg_popularity",
        "coverage",
        "homogenisation",
    } <= set(row)
    assert len(row["ctr_ci95"]) == 2
    assert a["settings"]["rounds"] == 3 and a["lmrec_version"]
    assert "vs_reference" in a["strategies"]["ease+mmr=0.5+mmr_space=attributes"]
    per_seed = [f["ctr"] for f in a["strategies"]["pop"]["final_seeds"]]
    assert len(per_seed) == 2 and per_seed[0] != per_seed[1]
    assert np.mean(per_seed) == pytest.approx(a["strategies"]["pop"]["final"]["ctr"], abs=1e-6)


def test_personalised_slates_are_less_homogeneous_than_popularity(sample):
    config = SimulationConfig(rounds=2, refit_every=0, users=200)
    doc = run_simulation(sample, parse_strategies("pop,ease"), config, seeds=1)
    pop, ease = (doc["strategies"][s]["rounds"][0] for s in ("pop", "ease"))
    assert ease["homogenisation"] < pop["homogenisation"]
    assert ease["ctr"] > pop["ctr"]  # the truth is EASE: its own family is favoured
    assert 0 < doc["validity"]["truth_ndcg@10"] <= 1
    assert np.isfinite(doc["validity"]["temperature"])


def lmrec(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lmrec.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_writes_json_and_report(tmp_path: Path):
    out, report = tmp_path / "sim.json", tmp_path / "sim.html"
    proc = lmrec(
        "simulate",
        "--dataset",
        "sample",
        "--strategies",
        "pop,ease+mmr",
        "--rounds",
        "2",
        "--users",
        "80",
        "--seeds",
        "2",
        "--refit-every",
        "1",
        "--no-validity",
        "--param",
        "sim.k=5",
        "--param",
        "ease.reg=100",
        "--out",
        str(out),
        "--report",
        str(report),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc["strategies"]) == {"pop", "ease+mmr"}
    assert set(doc["truths"]) == {"ease", "als"}  # both families by default
    assert doc["settings"]["k"] == 5
    assert doc["settings"]["strategy_configs"]["ease+mmr"]["params"] == {"reg": 100}
    assert "data:image/png;base64" in report.read_text()


@pytest.mark.slow
def test_cli_bad_setting_names_the_key():
    proc = lmrec("simulate", "--dataset", "sample", "--param", "sim.choice.satiaton=0")
    assert proc.returncode == 2
    assert "satiaton" in proc.stderr
    proc = lmrec("simulate", "--dataset", "sample", "--strategies", "pop+mmrr")
    assert proc.returncode == 2 and "mmrr" in proc.stderr
