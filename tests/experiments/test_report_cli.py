"""`lmrec experiments` on a real state file, and the HTML report of `experiment_report`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lmrec.cli import app, main
from lmrec.errors import LmrecError
from lmrec.experiments import Experiment, ExperimentSpec, Exposure, experiment_report
from lmrec.experiments.report import write_report
from lmrec.serving.experiments import ExperimentBook
from lmrec.serving.registry import ModelRegistry
from lmrec.serving.store import Event, SQLiteStateStore

runner = CliRunner()
SPEC = {
    "id": "exp1",
    "variants": [
        {"name": "a", "share": 0.5},
        {"name": "b", "share": 0.5, "knobs": {"mmr_lambda": 0.7}},
    ],
}
ITEMS = ("i1", "i2", "i3")


def _clicks(arm: str, i: int) -> bool:
    """Who clicks (once, on the first list's first item): a quarter of a, half of b."""
    return i % 4 == 0 if arm == "a" else i % 2 == 0


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    """A state file with exp1 two hours old: 40 units, 20 per arm, 2 lists each, 5 + 10 clicks."""
    path = tmp_path / "state.db"
    store = SQLiteStateStore(path).open()
    try:
        start = time.time() - 7200
        ExperimentBook(store, ModelRegistry(store)).create(ExperimentSpec(**SPEC), start)
        exposures, events = [], []
        for u in range(40):
            arm, i = ("a", u) if u < 20 else ("b", u - 20)
            t = start + 60 * u
            for rep in range(2):
                rid = f"r{u}-{rep}"
                exposures.append(Exposure(rid, "exp1", arm, f"u{u}", t + 600 * rep, ITEMS))
            if _clicks(arm, i):
                events.append(Event(f"e{u}", f"u{u}", "i1", "click", t + 30, request_id=f"r{u}-0"))
        store.add_exposures(exposures)
        store.add_events(events)
    finally:
        store.close()
    return path


def _ok(*args: str) -> Result:
    result = runner.invoke(app, ["experiments", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the real entry point; return the one line it printed on stderr (exit code 2)."""
    monkeypatch.setattr(sys, "argv", ["lmrec", "experiments", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_list_shows_the_experiment_and_its_units(db: Path) -> None:
    out = _ok("list", "--db", str(db)).stdout
    row = next(line for line in out.splitlines() if "exp1" in line)
    assert "ab" in row and "running" in row and "default" in row and "100.00%" in row
    assert row.split()[-2] == "40"  # units so far (then the table's closing border)


def test_report_writes_html_and_json_with_the_inserted_counts(db: Path, tmp_path: Path) -> None:
    html_path, json_path = tmp_path / "out" / "exp1.html", tmp_path / "exp1.json"
    out = _ok(
        "report", "--db", str(db), "--id", "exp1", "--out", str(html_path), "--json", str(json_path)
    ).stdout
    assert "running; units: a 20, b 20; no SRM" in out
    doc = json.loads(json_path.read_text())
    assert doc["exposures"] == {"a": 40, "b": 40} and doc["exposures_total"] == 80
    assert doc["units"] == {"a": 20, "b": 20} and doc["srm"]["flagged"] is False
    ctr = next(c for c in doc["comparisons"] if c["metric"] == "ctr")
    # 5 clicks over 40 lists against 10 over 40; no pre-period clicks, so no CUPED.
    assert ctr["plain"]["mean_a"] == pytest.approx(5 / 40)
    assert ctr["plain"]["mean_b"] == pytest.approx(10 / 40)
    assert ctr["method"] == "ratio-delta" and ctr["timeline"]
    page = html_path.read_text()
    assert "exp1" in page and page.count("<img") == 2
    assert "<h3>ctr</h3>" in page and "<td>0.125</td><td>0.25</td><td>20 / 20</td>" in page
    assert "plain (ratio-delta)" in page and "No sample-ratio mismatch" in page
    # No purchases yet: conversion has no variance in either arm.
    conversion = page.split("<h3>conversion</h3>")[1].split("</table>")[0]
    assert "not enough data yet" in conversion


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_create_from_a_file_then_list(db: Path, tmp_path: Path, suffix: str) -> None:
    file = tmp_path / f"exp2{suffix}"
    if suffix == ".json":
        file.write_text(json.dumps({**SPEC, "id": "exp2", "layer": "other", "traffic": 0.25}))
    else:
        file.write_text(
            'id = "exp2"\nlayer = "other"\ntraffic = 0.25\n'
            '[[variants]]\nname = "a"\nshare = 0.5\n'
            '[[variants]]\nname = "b"\nshare = 0.5\nknobs = { mmr_lambda = 0.7 }\n'
        )
    out = _ok("create", "--db", str(db), "--file", str(file)).stdout
    assert "created exp2: ab, layer other buckets [0, 2500), running" in out
    listed = _ok("list", "--db", str(db)).stdout
    assert "exp1" in listed and "25.00%" in next(ln for ln in listed.splitlines() if "exp2" in ln)
    shown = json.loads(_ok("show", "--db", str(db), "--id", "exp2").stdout)
    assert shown["variants"][1]["knobs"] == {"mmr_lambda": 0.7} and shown["status"] == "running"


def test_stop_then_the_status_is_stopped(db: Path, tmp_path: Path) -> None:
    assert "stopped exp1 at" in _ok("stop", "--db", str(db), "--id", "exp1").stdout
    assert json.loads(_ok("show", "--db", str(db), "--id", "exp1").stdout)["status"] == "stopped"
    assert "already stopped" in _ok("stop", "--db", str(db), "--id", "exp1").stdout
    # Its range of the default layer is free again.
    file = tmp_path / "exp2.json"
    file.write_text(json.dumps({**SPEC, "id": "exp2"}))
    assert (
        "layer default buckets [0, 10000)"
        in _ok("create", "--db", str(db), "--file", str(file)).stdout
    )


def test_bad_definitions_fail_in_one_line_naming_the_field(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({**SPEC, "id": "exp2", "traffic": 2}))
    assert "traffic: Input should be less than or equal to 1" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(file)
    )
    file.write_text(json.dumps({**SPEC, "id": "exp2", "layer": "x", "bogus": 1}))
    assert "bogus: Extra inputs are not permitted" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(file)
    )
    with_model = {**SPEC, "id": "exp3", "layer": "x"}
    with_model["variants"] = [
        {"name": "a", "share": 0.5},
        {"name": "b", "share": 0.5, "model_path": "m"},
    ]
    file.write_text(json.dumps(with_model))
    assert "admin API" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(file)
    )
    # The default layer is taken by exp1: the server's allocation refuses, saying so.
    file.write_text(json.dumps({**SPEC, "id": "exp4"}))
    assert "layer 'default'" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(file)
    )
    file.write_text(json.dumps(SPEC))
    assert "'exp1' exists" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(file)
    )
    file.write_text("{not json")
    assert "bad.json, line 1: not valid JSON" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(file)
    )
    assert "cannot read the experiment file" in _fails(
        monkeypatch, capsys, "create", "--db", str(db), "--file", str(tmp_path / "nope.json")
    )


def test_an_unknown_id_and_a_missing_db_fail_in_one_line(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no experiment 'nope'" in _fails(
        monkeypatch, capsys, "show", "--db", str(db), "--id", "nope"
    )
    missing = tmp_path / "missing.db"
    for args in (["list"], ["stop", "--id", "exp1"], ["report", "--id", "exp1", "--out", "r.html"]):
        assert "no such state file" in _fails(
            monkeypatch, capsys, *args[:1], "--db", str(missing), *args[1:]
        )
    assert not missing.exists()  # never created by accident
    result = runner.invoke(app, ["experiments", "list", "--db", str(missing)])
    assert result.exit_code != 0 and isinstance(result.exception, LmrecError)
    not_state = tmp_path / "notes.txt"
    not_state.write_text("hello")
    assert "not a SQLite state file" in _fails(monkeypatch, capsys, "list", "--db", str(not_state))


def test_help_teaches_each_command() -> None:
    for command in ("list", "show", "create", "stop", "report"):
        out = _ok(command, "--help").stdout
        assert "--db" in out and "Example: lmrec experiments " + command in out


def test_the_page_renders_without_data_and_for_interleaving(tmp_path: Path) -> None:
    now = time.time()
    empty = Experiment(**SPEC, created_at=now - 60)
    page = write_report(experiment_report(empty, [], [], now), tmp_path / "empty.html").read_text()
    assert "not enough data yet: no unit has been served a list" in page and "<img" not in page
    il = Experiment(**{**SPEC, "id": "il", "type": "interleaving"}, created_at=now - 60)
    shown = [
        Exposure(f"r{u}", "il", "interleaved", f"u{u}", now - 50, ITEMS, ("a", "b", "a"))
        for u in range(6)
    ]
    # Units 0-3 click a's first item, 4-5 b's second: 4 prefer a, 2 prefer b.
    clicks = [
        Event(f"e{u}", f"u{u}", "i1" if u < 4 else "i2", "click", now - 40, request_id=f"r{u}")
        for u in range(6)
    ]
    report = experiment_report(il, shown, clicks, now)
    assert report["clicks"] == {"a": 4, "b": 2}
    page = write_report(report, tmp_path / "il.html").read_text()
    assert (
        "Does not apply: every unit sees both arms" in page and "credited clicks: a 4, b 2" in page
    )
    assert "<h3>preference</h3>" in page and page.count("<img") == 2
    # Text from the report is escaped, never markup.
    report["comparisons"][0]["plain"] = {"error": "<script>x</script>"}
    report["comparisons"][0]["timeline"] = []
    page = write_report(report, tmp_path / "il2.html").read_text()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert page.count("not enough data yet") >= 3
