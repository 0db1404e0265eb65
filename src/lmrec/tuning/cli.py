"""`lmrec tune`: search a strategy's parameters, pipeline knobs and text features on
validation, then score the chosen configs on test once."""

from __future__ import annotations

import json
import time
import tomllib
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lmrec.cli_data import (
    CatalogFile,
    Columns,
    DataDir,
    Dedupe,
    ItemColumns,
    KCore,
    Loader,
    MinRating,
    load_for_cli,
    progress_bar,
)
from lmrec.cli_ray import RayAddress, RayCpus, UseRay, ray_cluster
from lmrec.errors import ConfigError

__all__ = ["tune_command"]

console = Console(stderr=True)
stdout = Console()

PROTOCOL_NOTE = (
    "Trials were fitted and scored without the test split: each trial ran the evaluation "
    "procedure on the log with the test interactions removed (under leave-one-out its "
    "targets are the validation items). After the search the defaults and the chosen "
    "configs were refitted as `lmrec evaluate` does and scored on test once."
)


def _space_specs(space: list[str], space_file: Path | None) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    if space_file is not None:
        try:
            text = space_file.read_text()
        except OSError as exc:
            raise ConfigError(f"--space-file {space_file}: {exc.strerror}") from None
        try:
            loaded = tomllib.loads(text) if space_file.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--space-file {space_file}: not valid TOML/JSON ({exc})") from None
        specs.update(_flatten(loaded))
    for item in space:
        name, eq, spec = item.partition("=")
        if not eq:
            spec = "default"
        specs[name.strip()] = spec.strip()
    return specs


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"ease": {"reg": {...}}}` or `{"ease.reg": {...}}` -> `{"ease.reg": {...}}`."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}.{key}" if prefix else key
        leaf = not isinstance(value, dict) or {"low", "high", "choices"} & set(value) or "." in key
        if leaf:
            out[name] = value
        else:
            out.update(_flatten(value, name))
    return out


def tune_command(
    dataset: Annotated[str, typer.Option(help="Dataset name (see `lmrec datasets`) or a path.")],
    model: Annotated[str, typer.Option(help="Strategy to tune (see `lmrec models`).")] = "ease",
    trials: Annotated[
        int, typer.Option(min=1, help="Trials in the study (resumed ones count).")
    ] = 30,
    sampler: Annotated[str, typer.Option(help="tpe, random or grid.")] = "tpe",
    objective: Annotated[
        list[str] | None,
        typer.Option(
            help="What to optimise on validation, repeatable for a Pareto front: ndcg@10, "
            "recall@10, coverage@10, diversity@10, novelty@10, latency (ms per list), "
            "fit_seconds; NAME:min or NAME:max sets the direction."
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop starting trials after this many seconds.")
    ] = None,
    jobs: Annotated[
        int, typer.Option(min=1, help="Processes (Ray workers with --ray) running trials at once.")
    ] = 1,
    storage: Annotated[
        Path | None,
        typer.Option(
            help="Journal file of the study (default OUT/study.journal); reuse to resume."
        ),
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default MODEL-DATASET).")] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for best.json, trials.csv, report.html.")
    ] = Path("tune"),
    protocol: Annotated[str, typer.Option(help="loo, temporal, random or cold-items.")] = "loo",
    seed: Annotated[int, typer.Option(help="Seed of the split, the models and the sampler.")] = 0,
    space: Annotated[
        list[str] | None,
        typer.Option(
            help="Narrow, widen, add or drop a knob, repeatable: ease.reg=10:1000:log, "
            "rerank.mmr_lambda=0.5:1, fused.fusion=learned|rrf, itemknn.recency=off, "
            "rerank.mmr_lambda (its declared range). --show-space lists them."
        ),
    ] = None,
    space_file: Annotated[
        Path | None, typer.Option(help="The same as a TOML or JSON file: NAME = SPEC.")
    ] = None,
    search: Annotated[
        str,
        typer.Option(help="Groups added to the model's own knobs: rerank, text (comma-separated)."),
    ] = "",
    param: Annotated[
        list[str] | None,
        typer.Option(help="A fixed value for every trial, MODEL.KEY=VALUE or rerank.KEY=VALUE."),
    ] = None,
    folds: Annotated[
        int, typer.Option(min=1, help="Validation folds averaged per trial (small data).")
    ] = 1,
    grid_points: Annotated[
        int, typer.Option(min=1, help="Points per numeric range for --sampler grid.")
    ] = 3,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune/--no-prune",
            help="Stop epoch-based trials (sasrec, lm-adapter) whose learning curve trails the median.",
        ),
    ] = True,
    pareto_limit: Annotated[
        int, typer.Option(min=1, help="Most Pareto configs scored on test (multi-objective).")
    ] = 8,
    text_model: Annotated[
        str | None, typer.Option(help="Sentence-transformers directory for item text.")
    ] = None,
    show_space: Annotated[
        bool, typer.Option("--show-space", help="Print the search space and every knob; exit.")
    ] = False,
    data_dir: DataDir = None,
    columns: Columns = None,
    catalog: CatalogFile = None,
    item_columns: ItemColumns = None,
    min_rating: MinRating = None,
    k_core: KCore = 1,
    dedupe: Dedupe = None,
    loader: Loader = None,
    ray: UseRay = False,
    ray_address: RayAddress = None,
    ray_cpus: RayCpus = None,
) -> None:
    """Search on validation (never test), then score the chosen configs on test once.

    Writes OUT/best.json (what `lmrec train --config` and `lmrec evaluate --config`
    take), trials.csv, epochs.csv, tune.json and report.html. A killed study resumes
    from --storage; --jobs runs trials in parallel processes, or with --ray in that many
    Ray workers sharing the journal (which every node must reach).

    Example: lmrec tune --dataset ml-100k --model ease --trials 20 --out runs/tune-ease
    """
    from lmrec.data.splitting import PROTOCOLS
    from lmrec.evaluation.runner import parse_params
    from lmrec.models.names import resolve_strategy
    from lmrec.tuning.outputs import score_on_test, write_outputs
    from lmrec.tuning.space import space_for
    from lmrec.tuning.study import Objective, TuneSetup, finished, run_study

    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    cls = resolve_strategy(model)
    options: dict[str, Any] = {
        "columns": columns,
        "item_columns": item_columns,
        "min_rating": min_rating,
        "k_core": k_core,
        "dedupe": dedupe,
        "loader": loader,
        "catalog": catalog,
    }
    ds = load_for_cli(dataset, data_dir, **options)
    load = partial(load_for_cli, dataset, data_dir, **options, quiet=True)
    fields = ds.catalog.text_fields_present()
    groups = [g.strip() for g in search.split(",") if g.strip()]
    base, known = space_for(model, cls.Config, text_fields=fields, groups=groups)
    chosen = base.override(_space_specs(space or [], space_file), known)
    fixed: dict[str, Any] = {}
    for prefix, values in parse_params(param or []).items():
        for key, value in values.items():
            name = f"{prefix}.{key}"
            if prefix not in (model, "rerank"):
                raise ConfigError(f"--param {prefix}.{key}: name {model}.KEY or rerank.KEY")
            fixed[name] = value
            chosen.dimensions.pop(name, None)
    if show_space:
        stdout.print(f"[bold]searched[/] ({len(chosen)}):", highlight=False)
        for dim in chosen:
            stdout.print(f"  {dim.describe()}", highlight=False)
        rest = [d for n, d in known.items() if n not in chosen.dimensions]
        stdout.print("[bold]also searchable[/] (--space NAME or --search GROUP):", highlight=False)
        for dim in rest:
            stdout.print(f"  {dim.describe()}", highlight=False)
        return
    objectives = tuple(Objective.parse(o) for o in (objective or ["ndcg@10"]))
    if len({o.name for o in objectives}) < len(objectives):
        raise ConfigError("--objective names the same metric twice")
    ks = tuple(sorted({10, 20, *(_cutoff(o.name) for o in objectives)} - {0}))
    setup = TuneSetup(
        load=load,
        model=model,
        protocol=protocol,
        space=chosen,
        objectives=objectives,
        fixed=tuple(fixed.items()),
        seed=seed,
        sampler=sampler,
        grid_points=grid_points,
        prune=prune,
        folds=folds,
        text_model=text_model,
        ks=ks,
    )
    name = study or f"{model}-{ds.name}"
    journal = storage or out / "study.journal"
    console.print(
        f"[bold]{ds.name}[/]: tuning {model} over {len(chosen)} knobs, {trials} trials, "
        f"objective {', '.join(o.name + (' ↑' if o.direction == 'maximize' else ' ↓') for o in objectives)}; "
        f"study {name!r} in {journal}"
    )
    cluster = ray_cluster(ray, ray_address, ray_cpus)
    started = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task("trials", total=trials)

        def on_trial(live: Any) -> None:
            done = finished(live)
            best = ""
            scored = [t for t in done if t.values is not None]
            if scored and len(objectives) == 1:
                pick = max if objectives[0].direction == "maximize" else min
                top = pick(scored, key=lambda t: t.values[0])
                best = f" · best {objectives[0].name} {top.values[0]:.4f} (trial {top.number})"
            progress.update(task, completed=len(done), description=f"trials{best}")

        result = run_study(
            setup,
            journal,
            name,
            trials,
            timeout=timeout,
            jobs=jobs,
            on_trial=on_trial,
            dataset=ds,
            cluster=cluster,
        )
        on_trial(result)
    search_seconds = time.perf_counter() - started
    with console.status("refitting the chosen configs and scoring them on test ..."):
        test = score_on_test(setup, result, ds, pareto_limit)
    states = [t.state.name.lower() for t in result.get_trials(deepcopy=False)]
    summary = {
        "dataset": ds.name,
        "model": model,
        "study": name,
        "storage": str(journal),
        "setup": setup.describe(),
        "space": [d.describe() for d in chosen],
        "fixed": fixed,
        "protocol_note": PROTOCOL_NOTE,
        "trials": {s: states.count(s) for s in ("complete", "pruned", "fail", "running")},
        "search_seconds": round(search_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "test": test,
    }
    paths = write_outputs(setup, result, out, summary)
    stdout.print(_summary_table(test, [o.name for o in objectives]))
    console.print(f"best config: {paths['best.json']}  ·  report: {paths['report.html']}")


def _cutoff(metric: str) -> int:
    _, at, k = metric.partition("@")
    return int(k) if at and k.isdigit() else 0


def _summary_table(test: dict[str, Any], names: list[str]) -> Table:
    table = Table(title="validation (search) and test (once, after it)")
    table.add_column("config")
    for n in names:
        table.add_column(f"valid {n}", justify="right")
    table.add_column("test ndcg@10", justify="right")
    table.add_column("vs default", justify="right")
    for label, row in [
        ("default", test["default"]),
        *((f"trial {c['trial']}", c) for c in test["chosen"]),
    ]:
        vs = row.get("vs_default", {}).get("ndcg@10")
        table.add_row(
            label,
            *(f"{row['validation'].get(n, float('nan')) or float('nan'):.4f}" for n in names),
            f"{row['test'].get('ndcg@10', float('nan')):.4f}",
            f"{vs['diff']:+.4f} [{vs['ci95'][0]:+.4f}, {vs['ci95'][1]:+.4f}]" if vs else "",
        )
    return table
