"""The core install (no torch, no sentence-transformers) imports, evaluates, trains and serves;
a strategy that needs torch says in one line which extra to install."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from lmrec._extras import ANY_TORCH_ENV, TORCH_SPEC, require_torch
from lmrec.errors import LmrecError
from tests.no_text_extra import run_without_text_extra

CORE = """
import json
import sys

import lmrec.cli
import lmrec.models.ease
import lmrec.serving.app
import lmrec.tuning
from fastapi.testclient import TestClient

from lmrec.artifacts import train_artifact
from lmrec.data.loaders import load_dataset
from lmrec.errors import LmrecError
from lmrec.models.names import resolve_strategy
from lmrec.serving import Settings, create_app


def cli(*args):
    sys.argv = ["lmrec", *args]
    try:
        lmrec.cli.main()
    except SystemExit as exc:
        return exc.code
    return 0


out = {"evaluate": cli("evaluate", "--dataset", "sample", "--models", "pop,ease", "--out", "res.json")}
try:
    resolve_strategy("sasrec")
except LmrecError as exc:
    out["sasrec"] = str(exc)
out["cli_sasrec"] = cli("evaluate", "--dataset", "sample", "--models", "sasrec")
path = train_artifact(load_dataset("sample"), "ease", "ease-v1")
with TestClient(create_app(Settings(model_dir=path, db="state.db", allow_anonymous=True))) as c:
    answer = c.post("/v1/recommendations", json={"user_id": "u0001", "k": 3})
    out["serve"] = [answer.status_code, len(answer.json()["items"])]
out["loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in _BLOCKED)
print("RESULT " + json.dumps(out))
"""


@pytest.mark.slow
def test_the_core_runs_without_the_text_extra(tmp_path: Path) -> None:
    done = run_without_text_extra(CORE, tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    out = json.loads(lines[0].removeprefix("RESULT "))

    assert out["evaluate"] == 0
    results = json.loads((tmp_path / "res.json").read_text())["results"]
    assert results["ease"]["ndcg@10"] > results["pop"]["ndcg@10"]
    assert out["serve"] == [200, 3]
    assert out["loaded"] == []  # nothing of the extra was imported, not even partly

    message = out["sasrec"]
    assert "\n" not in message and message.startswith("sasrec needs torch")
    assert "pip install 'lmrec[text]'" in message and "download.pytorch.org/whl/cpu" in message
    # The CLI prints that line as it is (brackets included) and exits 2.
    assert out["cli_sasrec"] == 2
    printed = " ".join((done.stdout + done.stderr).split())
    assert "error: sasrec needs torch" in printed and "lmrec[text]" in printed


def test_a_torch_outside_the_tested_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert require_torch("sasrec") is torch  # the installed one is in range
    monkeypatch.setattr(torch, "__version__", "2.1.2+cpu")
    with pytest.raises(
        LmrecError, match=r"sasrec: lmrec is tested with torch>=.*found torch 2\.1\.2"
    ):
        require_torch("sasrec")
    monkeypatch.setenv(ANY_TORCH_ENV, "1")
    assert require_torch("sasrec") is torch


def test_the_tested_range_is_the_one_the_text_extra_states() -> None:
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extra = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["text"]
    assert [r for r in extra if r.startswith("torch")] == [TORCH_SPEC]
