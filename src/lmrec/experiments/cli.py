"""`lmrec experiments`: list, show, create, stop and report experiments in a state file.

The commands work on the SQLite state file a server uses (`lmrec serve --db`), through
the server's own `ExperimentBook`, so a definition made here is checked and allocated
exactly as the admin API would do it; a running server on the same file applies it
from its next request (the store's `experiments_version` counter moves on every write).
Registered by `lmrec.cli`; heavy imports wait until a command runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from lmrec.experiments.design import Experiment, ExperimentSpec
    from lmrec.serving.experiments import ExperimentBook
    from lmrec.serving.store import SQLiteStateStore

__all__ = ["experiments_app"]

experiments_app = typer.Typer(
    name="experiments",
    help=(
        "A/B tests and interleaving experiments in a server's state file: list them, show "
        "one's definition, create one from a JSON or TOML file, stop one, and write its "
        "report (HTML with plots, or JSON). Every command takes --db, the file `lmrec serve "
        "--db` uses; a running server on that file applies a change from its next request. "
        "Example: lmrec experiments report --db lmrec-state.db --id exp1 --out exp1.html"
    ),
    no_args_is_help=True,
)

Db = Annotated[
    Path,
    typer.Option("--db", help="The server's state file (`lmrec serve --db`); it must exist."),
]
Id = Annotated[str, typer.Option("--id", help="The experiment's id.")]


def _check_state_file(db: Path) -> None:
    """Refuse a path that is not an existing lmrec state file (never create one by accident)."""
    import sqlite3

    if not db.exists():
        raise DataError(
            "no such state file; pass the --db that `lmrec serve` uses (the server creates "
            "it when it first starts)",
            db,
        )
    if not db.is_file():
        raise DataError("is not a file; pass the state file that `lmrec serve --db` uses", db)
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DataError(f"not a SQLite state file ({exc})", db) from None
    if found is None:
        raise DataError(
            "is a SQLite file but not an lmrec state file (no `meta` table); pass the file "
            "`lmrec serve --db` uses",
            db,
        )


@contextmanager
def _opened(db: Path) -> Iterator[SQLiteStateStore]:
    from lmrec.serving.store import SQLiteStateStore

    _check_state_file(db)
    store = SQLiteStateStore(db).open()
    try:
        yield store
    finally:
        store.close()


def _book(store: SQLiteStateStore) -> ExperimentBook:
    """The server's experiment logic over `store`; its registry never loads a model here."""
    from lmrec.serving.experiments import ExperimentBook
    from lmrec.serving.registry import ModelRegistry

    return ExperimentBook(store, ModelRegistry(store))


def _units_so_far(store: SQLiteStateStore) -> dict[str, int]:
    """Distinct units exposed, per experiment id (one query, not the whole log)."""
    with store.snapshot() as conn:
        rows = conn.execute(
            "SELECT experiment_id, COUNT(DISTINCT unit) FROM exposures GROUP BY experiment_id"
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


@experiments_app.command("list")
def list_command(db: Db) -> None:
    """List every experiment in the state file: id, type, status now, layer, traffic, units.

    Status is computed at this moment from the schedule and any stop
    ("scheduled", "running" or "stopped"); traffic is the share of the
    layer's units enrolled; units are the distinct units served at least one
    list so far. Experiments in one layer never share a unit.

    Example: lmrec experiments list --db lmrec-state.db
    """
    from rich.console import Console
    from rich.table import Table

    with _opened(db) as store:
        experiments = store.experiments()
        units = _units_so_far(store)
    now = time.time()
    table = Table(title=f"experiments in {db}")
    for column in ("id", "type", "status", "layer", "traffic", "units"):
        table.add_column(column, justify="right" if column in ("traffic", "units") else "left")
    for e in experiments:
        table.add_row(
            e.id,
            e.type,
            e.status_at(now),
            e.layer,
            f"{e.traffic:.2%}",
            f"{units.get(e.id, 0):,}",
        )
    Console().print(table)


def _get(store: SQLiteStateStore, experiment_id: str) -> Experiment:
    return _book(store).get(experiment_id)  # UnknownExperiment (an LmrecError) when absent


@experiments_app.command("show")
def show_command(db: Db, experiment_id: Id) -> None:
    """Print one experiment's stored definition as JSON, with its status now.

    The definition is the spec it was created with plus what was set on
    creation (`created_at`, `buckets`: its range of the layer's 10,000
    buckets) and `stopped_at` once stopped. Times are epoch seconds. To
    start a similar experiment, save this, drop those three fields and
    `status`, pick a new id and `lmrec experiments create`.

    Example: lmrec experiments show --db lmrec-state.db --id exp1
    """
    with _opened(db) as store:
        experiment = _get(store, experiment_id)
    doc = experiment.model_dump(mode="json") | {"status": experiment.status_at(time.time())}
    typer.echo(json.dumps(doc, indent=2))


def _read_spec(file: Path) -> ExperimentSpec:
    """An `ExperimentSpec` from a JSON or TOML file; every problem is one `ConfigError` line."""
    import tomllib

    from pydantic import ValidationError

    from lmrec.errors import first_problem
    from lmrec.experiments.design import ExperimentSpec

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the experiment file ({exc})", file) from None
    data: Any
    try:
        data = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", file, exc.lineno) from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"not valid TOML: {exc}", file) from None
    if not isinstance(data, dict):
        raise DataError("must hold one experiment definition (a JSON object or TOML table)", file)
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{file}: {first_problem(exc)}") from None
    with_model = [v.name for v in spec.variants if v.model_path is not None]
    if with_model:
        raise ConfigError(
            f"{file}: variant {with_model[0]!r} ranks with its own model (model_path); create "
            "this experiment through the server's admin API (POST /v1/admin/experiments), "
            "which loads and checks the model in the server that will serve it"
        )
    return spec


@experiments_app.command("create")
def create_command(
    db: Db,
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            help="The definition: a .json file, or a .toml file (read as TOML by its suffix).",
        ),
    ],
) -> None:
    """Create an experiment from a JSON or TOML file holding an ExperimentSpec.

    The file names an `id`, the `variants` (each a `name`, a `share`, the
    shares summing to 1, and optional re-ranking `knobs` such as
    {"mmr_lambda": 0.7}), and optionally `type` ("ab" or "interleaving"),
    `traffic`, `layer`, `primary_metric`, `secondary_metrics`, `alpha`,
    `start_at`/`stop_at` (epoch seconds) and `expected_units`. It is checked
    and given a range of its layer's buckets as the server's admin API does;
    a running server on the same --db serves it from its next request.
    Variants with their own `model_path` must be created through the admin
    API, which loads the model.

    Example: lmrec experiments create --db lmrec-state.db --file exp1.json
    """
    spec = _read_spec(file)
    with _opened(db) as store:
        experiment = _book(store).create(spec, time.time())
    first, last = experiment.buckets or (0, 0)
    typer.echo(
        f"created {experiment.id}: {experiment.type}, layer {experiment.layer} buckets "
        f"[{first}, {last}), {experiment.status_at(time.time())}; a server on {db} applies it "
        "from its next request"
    )


@experiments_app.command("stop")
def stop_command(db: Db, experiment_id: Id) -> None:
    """Stop an experiment: its units get the default from the next request; its data stays.

    Stopping frees its range of the layer for new experiments and cannot be
    undone (ids are never reused: create a new one to resume). Events keep
    counting for lists shown before the stop until the attribution window
    closes, so the report can still move a little. Stopping a stopped
    experiment changes nothing.

    Example: lmrec experiments stop --db lmrec-state.db --id exp1
    """
    now = time.time()
    with _opened(db) as store:
        was = _get(store, experiment_id).stopped_at
        experiment = _book(store).stop(experiment_id, now)
    stopped_at = experiment.stopped_at if experiment.stopped_at is not None else now
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stopped_at))
    if was is not None:
        typer.echo(f"{experiment.id} was already stopped at {when}")
    else:
        typer.echo(
            f"stopped {experiment.id} at {when}; its data stays (`lmrec experiments report`)"
        )


def _summary(report: dict[str, Any]) -> str:
    """The report's gist in one line: status, units, SRM and the primary comparison."""
    units = ", ".join(f"{k} {v:,}" for k, v in report["units"].items())
    srm = report.get("srm")
    srm_text = "" if srm is None else ("; SRM flagged" if srm["flagged"] else "; no SRM")
    primary = next(
        (c for c in report.get("comparisons", []) if c["metric"] == report["primary_metric"]),
        None,
    )
    text = f"{report['status']}; units: {units}{srm_text}"
    if primary is None or primary.get("always_valid_p") is None:
        return text + f"; {report['primary_metric']}: not enough data yet"
    return (
        text + f"; {primary['metric']} {primary['variant']} vs {primary['control']}: "
        f"always-valid p {primary['always_valid_p']:.3g}, significant: "
        f"{'yes' if primary.get('significant') else 'no'}"
    )


@experiments_app.command("report")
def report_command(
    db: Db,
    experiment_id: Id,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML report (tables and plots) here.")
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Write the report as JSON here (the server's report body)."),
    ] = None,
) -> None:
    """Write an experiment's report as of now: HTML with plots (--out) and/or JSON (--json).

    The report attributes every event to the list it responds to and
    compares each variant with the control (the first variant) on every
    metric: means, the difference with its fixed-horizon CI, lift, CUPED
    when pre-experiment data allows, an always-valid p-value that may be
    read at every look (a peek does not inflate the error),
    Benjamini–Hochberg over all metrics, and a sample-ratio-mismatch check
    that units reached the arms in the configured shares. The JSON is what
    GET /v1/experiments/{id}/report answers.

    Example: lmrec experiments report --db lmrec-state.db --id exp1 --out exp1.html --json exp1.json
    """
    if out is None and json_path is None:
        raise ConfigError("say where the report goes: --out REPORT.html and/or --json REPORT.json")
    from lmrec.experiments.analysis import experiment_report
    from lmrec.experiments.report import write_report

    with _opened(db) as store:
        experiment = _get(store, experiment_id)
        exposures = store.exposures(experiment_id)
        events = store.unit_events(experiment_id)
    report = experiment_report(experiment, exposures, events, now=time.time())
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
        typer.echo(f"json: {json_path}")
    if out is not None:
        typer.echo(f"report: {write_report(report, out)}")
    typer.echo(_summary(report))
