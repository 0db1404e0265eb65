"""The `lmrec` command line: evaluate, recommend, simulate, train, serve, experiments, demo, datasets."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
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
from lmrec.errors import LmrecError

app = typer.Typer(
    name="lmrec",
    help=(
        "lmrec: a recommender engine that understands items through language models.\n\n"
        "Start with `lmrec demo`; evaluate models with `lmrec evaluate --dataset ml-100k "
        "--models pop,itemknn,ease`. Real datasets are found through --data-dir or "
        "LMREC_DATA_DIR (see `lmrec datasets`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
stdout = Console()


def _leaderboard(doc: dict[str, Any], k: int = 10) -> Table:
    table = Table(
        title=f"{doc['dataset']} · {doc['protocol']} · full ranking over {doc['n_items']:,} items"
    )
    table.add_column("model")
    for col in (f"ndcg@{k}", f"recall@{k}", f"hr@{k}", f"mrr@{k}", f"coverage@{k}"):
        table.add_column(col, justify="right")
    table.add_column("fit s", justify="right")
    table.add_column("eval s", justify="right")
    # A metric is None when nothing was measured (no test users): such rows sort last.
    rows = sorted(doc["results"].items(), key=lambda kv: -(kv[1].get(f"ndcg@{k}") or 0.0))
    for name, row in rows:
        cells = []
        for col in (f"ndcg@{k}", f"recall@{k}", f"hr@{k}", f"mrr@{k}", f"coverage@{k}"):
            v = row.get(col)
            if v is None:
                cells.append("n/a")
                continue
            ci = row.get("ci95", {}).get(col)
            cells.append(f"{v:.4f}" + (f" [dim]±{(ci[1] - ci[0]) / 2:.4f}[/]" if ci else ""))
        table.add_row(name, *cells, f"{row['fit_seconds']:.1f}", f"{row['eval_seconds']:.1f}")
    return table


def _run(
    dataset: Any,
    protocol: str,
    model_names: list[str],
    params: list[str],
    seed: int,
    ks: list[int],
    reference: str | None,
    text_model: str | None = None,
    text_backend: str = "torch",
    always_text: bool = False,
    refit: bool = True,
    config: Any = None,
    json_params: dict[str, dict[str, Any]] | None = None,
    seeds: list[int] | None = None,
    cluster: Any = None,
) -> Any:
    """`config` (a `TrialConfig`, from `--config`) gives its model's parameters, the
    re-ranking knobs and the text fields; `json_params` (`--params`, by model) go over
    it, and `params` (`--param`) over both. With `seeds` every model runs once per seed
    (`NAME-seedK`); with a Ray `cluster` the encoding and the models run on it."""
    from lmrec.evaluation import EvalOptions, ModelSpec, parse_params, run_experiment
    from lmrec.evaluation.runner import RERANK, pipeline_config

    by_model: dict[str, dict[str, Any]] = {}
    text_fields = None
    if config is not None:
        by_model = {config.model: dict(config.params), RERANK: dict(config.rerank)}
        text_fields = config.text.get("fields")
        text_backend = config.text.get("backend", text_backend)
    for source in (json_params or {}, parse_params(params)):
        for name, values in source.items():
            by_model.setdefault(name, {}).update(values)
    unknown = set(by_model) - set(model_names) - {RERANK}
    if unknown:
        raise LmrecError(
            f"--param names models not being evaluated: {', '.join(sorted(unknown))} "
            f"(or use {RERANK}.KEY=VALUE for a re-ranking knob)"
        )
    pipeline = pipeline_config(by_model)
    specs = [ModelSpec.parse(name, by_model.get(name)) for name in model_names]
    if seeds:
        specs = [spec.seeded(s) for spec in specs for s in seeds]
    item_vectors = None
    if always_text or any(spec.cls.uses_text for spec in specs):
        item_vectors = _text_vectors(dataset, text_model, text_backend, text_fields, cluster)
    with progress_bar(console) as progress:
        tasks: dict[str, Any] = {}

        def on_event(kind: str, info: dict[str, Any]) -> None:
            name = info.get("model", "")
            if kind == "fit":
                tasks[name] = progress.add_task(f"{name}: fitting", total=None)
            elif kind == "evaluate":
                progress.update(
                    tasks[name], description=f"{name}: ranking", total=info["n_users"], completed=0
                )
            elif kind == "batch":
                progress.advance(tasks[name], info["n"])
            elif kind == "done":
                progress.update(tasks[name], description=f"{name}: done")

        return run_experiment(
            dataset,
            protocol,
            specs,
            seed=seed,
            options=EvalOptions(ks=tuple(sorted(set(ks)))),
            reference=reference,
            item_vectors=item_vectors,
            on_event=on_event,
            refit=refit,
            pipeline=pipeline,
            cluster=cluster,
        )


def _text_vectors(
    dataset: Any,
    text_model: str | None = None,
    backend: str = "torch",
    fields: list[str] | None = None,
    cluster: Any = None,
) -> Any:
    """Item text vectors through the on-disk cache (only new or changed texts are encoded);
    `fields` the catalogue fields read (default: every text field); encoded on a Ray
    `cluster` when one is given (the same vectors)."""
    from lmrec.text import EmbeddingCache, ItemTextConfig, encode_catalog, make_encoder

    encoder: Any = make_encoder(model=text_model, backend=backend)
    if cluster is not None:
        from lmrec.distributed import RayEncoder

        encoder = RayEncoder(encoder)
    text = ItemTextConfig(fields=tuple(fields)) if fields else None
    vectors, stats = encode_catalog(
        dataset.catalog, encoder, EmbeddingCache(), text, show_progress=True
    )
    console.print(
        f"item text: {vectors.shape[0]:,} x {vectors.shape[1]} vectors ({stats.n_encoded:,} encoded, "
        f"{stats.n_cached:,} from cache, {stats.seconds:.1f} s); {stats.text.n_fallback:,} items "
        f"without the configured text fields fell back to other fields ({stats.text.n_id_only:,} to their id)"
    )
    return vectors


def _json_params(text: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """`--params` JSON as {model: {key: value}}: keyed by model (or `rerank`), or, with one
    model evaluated, that model's parameters alone."""
    import json

    from lmrec.evaluation.runner import RERANK

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LmrecError(f"--params is not valid JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise LmrecError("--params must be a JSON object")
    keyed = {*names, RERANK}
    if doc and all(key in keyed and isinstance(v, dict) for key, v in doc.items()):
        return doc
    if len(names) == 1:
        return {names[0]: doc}
    raise LmrecError(
        f"--params: with several models, key the parameters by model, e.g. "
        f"'{{\"{names[0]}\": {{...}}}}' (models: {', '.join(names)})"
    )


@app.command()
def evaluate(
    dataset: Annotated[
        str, typer.Option(help="Dataset name (see `lmrec datasets`) or a path to data files.")
    ],
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated strategies: pop, random, itemknn, ease, als, bpr, content, lm-adapter, hybrid, multi-interest, sasrec, text-sasrec, fused; or package.module:Class. Default pop,itemknn,ease (only the --config model when one is given)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="A config file as `lmrec tune` writes (best.json): its model is evaluated with its parameters, re-ranking knobs and text fields."
        ),
    ] = None,
    protocol: Annotated[
        str, typer.Option(help="loo (leave-one-out), temporal, random or cold-items.")
    ] = "loo",
    out: Annotated[Path | None, typer.Option(help="Write the results JSON here.")] = None,
    save_rankings: Annotated[
        Path | None,
        typer.Option(
            help="Write each model's top-100 per test user (JSON lines) into this folder."
        ),
    ] = None,
    publish_rankings: Annotated[
        Path | None,
        typer.Option(
            help="Write each model's top 20 per test user as <dataset>-<model>.jsonl.gz in this "
            "folder: user and item ids only, no truth items (safe to commit); "
            "benchmarks/recompute_metrics.py --dataset recomputes the metrics from them."
        ),
    ] = None,
    tie_break: Annotated[
        str,
        typer.Option(
            help="How interactions with the same timestamp are ordered before splitting: file "
            "(a later line is later), item (by item id, as RecBole) or random (under --seed). "
            "Leave-one-out holds out different items under each; never compare across them."
        ),
    ] = "file",
    report: Annotated[
        Path | None, typer.Option(help="Write an HTML report with plots here.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="Hyperparameter MODEL.KEY=VALUE, repeatable (e.g. ease.reg=500, fused.strategies=ease,content, sasrec.epochs=50); rerank.KEY=VALUE sets a re-ranking knob of every pipeline (rerank.mmr_lambda=0.8, rerank.exposure_cap=2)."
        ),
    ] = None,
    params: Annotated[
        str | None,
        typer.Option(
            help='Hyperparameters as JSON by model, e.g. \'{"ease": {"reg": 500}, "rerank": {"mmr_lambda": 0.8}}\'; with one model, its parameters alone (\'{"reg": 500}\', as in `lmrec train`). --param goes over it.'
        ),
    ] = None,
    k: Annotated[
        list[int] | None, typer.Option(help="Cut-offs, repeatable (default 10 and 20).")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Model to test the others against (paired bootstrap and t-test)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for splits and models.")] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Model seeds, comma-separated (e.g. 0,1,2): each model is fitted and measured "
            "once per seed, as NAME-seedK (the split keeps --seed); for strategies with a seed."
        ),
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit/--no-refit",
            help="Fit strategies that need no validation data on train + validation for the test (standard); early-stopping ones always train on train.",
        ),
    ] = True,
    text_model: Annotated[
        str | None,
        typer.Option(
            help="Sentence-transformers model directory for item text (default: the bundled all-MiniLM-L6-v2)."
        ),
    ] = None,
    text_backend: Annotated[
        str, typer.Option(help="Text encoder runtime: torch, onnx or onnx-int8.")
    ] = "torch",
    text_diversity: Annotated[
        bool | None,
        typer.Option(
            "--text-diversity/--attribute-diversity",
            help="Measure intra-list diversity over text vectors (encodes item text) or attribute "
            "vectors (default: text when the text extra is installed).",
        ),
    ] = None,
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
    """Evaluate strategies with full ranking; print a leaderboard, write JSON/HTML.

    With --ray the item text is encoded and the models (each seed of --seeds) are fitted
    and measured on Ray workers, several at once.

    Example: lmrec evaluate --dataset ml-100k --protocol loo --models pop,itemknn,ease,als,bpr --out results.json
    """
    from lmrec.data.dataset import TIE_BREAKS
    from lmrec.data.splitting import PROTOCOLS
    from lmrec.evaluation import write_report

    if protocol not in PROTOCOLS:
        raise LmrecError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if tie_break not in TIE_BREAKS:
        raise LmrecError(
            f"unknown --tie-break {tie_break!r}; choose one of {', '.join(TIE_BREAKS)}"
        )
    tuned = None
    if config is not None:
        from lmrec.tuning.protocol import TrialConfig

        tuned = TrialConfig.read(config)
    default = "pop,itemknn,ease" if tuned is None else ""
    names = [m.strip() for m in (default if models is None else models).split(",") if m.strip()]
    if tuned is not None and tuned.model not in names:
        names.append(tuned.model)
    if not names:
        raise LmrecError("--models is empty; name at least one strategy, e.g. --models pop,ease")
    json_params = _json_params(params, names) if params is not None else None
    from lmrec.evaluation.runner import ModelSpec

    seed_list = _int_list(seeds, "--seeds") if seeds is not None else None
    for name in names:
        spec = ModelSpec.parse(name)  # fail on a typo before loading data
        if seed_list:
            spec.seeded(0)  # and on a strategy without a seed
    ds = load_for_cli(
        dataset,
        data_dir,
        columns=columns,
        item_columns=item_columns,
        min_rating=min_rating,
        k_core=k_core,
        dedupe=dedupe,
        loader=loader,
        catalog=catalog,
    ).with_tie_break(tie_break, seed)
    has_text = ds.catalog.has_titles
    if text_diversity is None:
        from lmrec._extras import text_extra_installed

        text_diversity = text_extra_installed()
        if has_text and not text_diversity:
            console.print(
                "intra-list diversity over attributes: encoding item text needs the text extra"
            )
    experiment = _run(
        ds,
        protocol,
        names,
        param or [],
        seed,
        k or [10, 20],
        reference,
        text_model=text_model,
        text_backend=text_backend,
        always_text=text_diversity and has_text,
        refit=refit,
        config=tuned,
        json_params=json_params,
        seeds=seed_list,
        cluster=ray_cluster(ray, ray_address, ray_cpus),
    )
    doc = experiment.to_json()
    stdout.print(_leaderboard(doc, min(doc["ks"])))
    if out:
        experiment.write_json(out)
        console.print(f"results: {out}")
    if save_rankings:
        experiment.write_rankings(save_rankings)
        console.print(f"rankings: {save_rankings}/")
    if publish_rankings:
        for path in experiment.write_rankings(publish_rankings, shareable=True):
            console.print(f"rankings: {path}")
    if report:
        write_report(doc, report)
        console.print(f"report: {report}")


def _int_list(text: str, flag: str) -> list[int]:
    """`0,1,2` as [0, 1, 2]; a one-line error naming `flag` otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LmrecError(
            f"{flag} {text!r}: expected integers separated by commas, e.g. 0,1,2"
        ) from None
    if not values or len(set(values)) < len(values):
        raise LmrecError(f"{flag} {text!r}: name at least one seed, each once")
    return values


@app.command()
def datasets(data_dir: DataDir = None) -> None:
    """List the datasets lmrec knows by name and whether their files are found."""
    from lmrec.data.loaders import known_datasets, resolve_dataset

    table = Table(title="datasets")
    table.add_column("name")
    table.add_column("found at")
    table.add_column("about")
    for name, about in known_datasets().items():
        if name == "sample":
            found = "built in (generated)"
        else:
            try:
                found = str(resolve_dataset(name, data_dir=data_dir, download=False))
            except LmrecError:
                found = "[dim]not found[/]"
        table.add_row(name, found, about)
    stdout.print(table)


def _constraint(meta: object) -> str:
    """A field constraint (annotated_types' Ge, Gt, Le, Lt, MinLen, ...) as text."""
    symbols = {
        "ge": ">=",
        "gt": ">",
        "le": "<=",
        "lt": "<",
        "min_length": "len >=",
        "max_length": "len <=",
    }
    for attr, symbol in symbols.items():
        value = getattr(meta, attr, None)
        if value is not None:
            return f"{symbol} {value}"
    return ""


@app.command()
def models(
    name: Annotated[
        str | None, typer.Argument(help="A strategy's short name: show its parameters.")
    ] = None,
) -> None:
    """List the strategies (one line each), or one strategy's parameters: type, default, range.

    Set parameters as `--param NAME.KEY=VALUE` in `lmrec evaluate` (or JSON in
    `lmrec train --params`). Example: lmrec models ease
    """
    from lmrec.models.names import STRATEGIES, resolve_strategy

    if name is None:
        table = Table(title="strategies (lmrec models NAME shows one's parameters)")
        table.add_column("name")
        table.add_column("what it is")
        for short in STRATEGIES:
            doc = (resolve_strategy(short).__doc__ or "").strip().splitlines()
            table.add_row(short, doc[0] if doc else "")
        stdout.print(table)
        return
    cls = resolve_strategy(name)
    config = cls.Config
    table = Table(title=f"{name}: {cls.__module__}:{cls.__qualname__}")
    from lmrec.tuning.space import config_dimensions

    searched = config_dimensions(name, config)
    for column in ("parameter", "type", "default", "range", "searched by `lmrec tune`"):
        table.add_column(column)
    for key, field in config.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation)
        default = (
            "(required)"
            if field.is_required()
            else repr(field.get_default(call_default_factory=True))
        )
        limits = ", ".join(c for c in (_constraint(m) for m in field.metadata) if c)
        dim = searched.get(f"{name}.{key}")
        search = dim.describe().partition(": ")[2].rpartition(" (default")[0] if dim else ""
        table.add_row(key, kind.replace("typing.", ""), default, limits, search)
    stdout.print(table)
    if config.__doc__:
        for paragraph in inspect.cleandoc(config.__doc__).split("\n\n"):
            stdout.print(" ".join(paragraph.split()), highlight=False)


@app.command()
def demo(
    data_dir: DataDir = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset to use (default: ml-100k when found, else the generated sample)."
        ),
    ] = None,
    workdir: Annotated[
        Path, typer.Option(help="Where the results, report, model and state go.")
    ] = Path("lmrec-demo"),
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Serve the best model on localhost at the end."),
    ] = True,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
) -> None:
    """Train CF and text strategies, evaluate them with full ranking, write a report, then serve.

    Uses ml-100k when its files are found (--data-dir / LMREC_DATA_DIR), else a
    generated sample dataset, and says which. The best model is saved as an
    artefact (WORKDIR/model) and served on localhost (no API key: local use only) until
    Ctrl-C; with --no-serve the command to serve it is printed instead.
    """
    import shutil

    from lmrec.artifacts import train_artifact
    from lmrec.evaluation import write_report

    name = dataset
    if name is None:
        from lmrec.data.loaders import resolve_dataset

        try:
            resolve_dataset("ml-100k", data_dir=data_dir, download=False)
            name = "ml-100k"
        except LmrecError:
            name = "sample"
            console.print(
                "ml-100k not found (set LMREC_DATA_DIR); using the generated sample dataset"
            )
    console.print("[bold]step 1/4[/] loading the data")
    ds = load_for_cli(name, data_dir)
    models = ["pop", "itemknn", "ease", "als", "content", "lm-adapter", "hybrid"]
    console.print(
        f"[bold]step 2/4[/] encoding item text (first run: a minute or two, then cached) and "
        f"evaluating {', '.join(models)} with full ranking (leave-one-out)"
    )
    experiment = _run(ds, "loo", models, [], 0, [10, 20], "pop", always_text=True)
    doc = experiment.to_json()
    stdout.print(_leaderboard(doc))
    workdir.mkdir(parents=True, exist_ok=True)
    experiment.write_json(workdir / "results.json")
    report = write_report(doc, workdir / "report.html")
    stdout.print(f"report: {report.resolve()}")
    best = max(
        (n for n in doc["results"] if n != "pop"), key=lambda n: doc["results"][n]["ndcg@10"]
    )
    model_dir = workdir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)  # the demo's own previous artefact
    console.print(f"[bold]step 3/4[/] training the best model, {best}, on all of {ds.name}")
    text_encoder = None
    if experiment.item_vectors is not None:
        from lmrec.text import make_encoder

        text_encoder = make_encoder()  # the artefact carries it as int8 ONNX
    with console.status(f"training {best} ..."):
        train_artifact(
            ds,
            best,
            model_dir,
            {},
            item_vectors=experiment.item_vectors,
            text_model_identity=text_encoder.identity if text_encoder is not None else None,
            text_encoder=text_encoder,
        )
    encoder = "auto"
    stdout.print(f"model artefact: {model_dir.resolve()}")
    if not serve:
        stdout.print(
            f"serve it with: lmrec serve --model-dir {model_dir} --db {workdir / 'state.db'} "
            f"--allow-anonymous --encoder {encoder} --port {port}"
        )
        return
    console.print("[bold]step 4/4[/] serving it")
    user = ds.users.id(0)
    base = f"http://127.0.0.1:{port}"
    stdout.print(
        f"\nserving {best} from {model_dir} at {base} (OpenAPI: {base}/docs); try:\n"
        f"  curl -s -X POST {base}/v1/recommendations -H 'content-type: application/json' "
        f'-d \'{{"user_id": "{user}", "k": 5}}\'\n'
        f"  curl -s -X POST {base}/v1/events -H 'content-type: application/json' "
        f'-d \'{{"events": [{{"event_id": "e1", "user_id": "{user}", '
        f'"item_id": "{ds.items.id(0)}", "type": "click"}}]}}\'\n'
        "Ctrl-C stops the server."
    )
    from lmrec.serving.cli import serve_command

    serve_command(
        model_dir=model_dir,
        db=workdir / "state.db",
        port=port,
        allow_anonymous=True,
        encoder=encoder,
    )


@app.command()
def recommend(
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="Artefact directory (`lmrec train`).")
    ],
    users: Annotated[Path, typer.Option("--users", help="Text file: one user id per line.")],
    out: Annotated[Path, typer.Option("--out", help="JSON lines to write, one per user.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Items per user.")] = 10,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Re-ranking knob KEY=VALUE, repeatable, as in a request (mmr_lambda=0.7, "
            "exposure_cap=2, mmr_space=attributes, boosts=brand=Acme:0.5).",
        ),
    ] = None,
    ray: UseRay = False,
    ray_address: RayAddress = None,
    ray_cpus: RayCpus = None,
) -> None:
    """Write each user's top-k through the batch path: `{"user_id", "items"}` per line.

    The lists are the ones `lmrec serve` answers for the same artefact, user and knobs
    (a user unknown to the artefact gets the cold-start list). With --ray, chunks of
    users are ranked on Ray workers (each loads the artefact once); the file is the same.
    Example: lmrec recommend --model-dir models/ease-v1 --users users.txt --k 10 --out recs.jsonl
    """
    from lmrec.batch import write_recommendations
    from lmrec.evaluation.runner import RERANK, coerce, pipeline_config

    knobs: dict[str, Any] = {}
    for item in param or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise LmrecError(f"--param {item!r}: expected KEY=VALUE, e.g. mmr_lambda=0.7")
        key = key.strip().removeprefix(RERANK + ".")
        knobs[key] = value.strip() if key == "boosts" else coerce(value.strip())
    pipeline_config({RERANK: knobs})  # unknown or invalid knobs fail here, naming the valid ones
    try:
        ids = [line.strip() for line in users.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise LmrecError(f"{users}: cannot read the user list ({exc})") from None
    ids = [u for u in ids if u]
    if not ids:
        raise LmrecError(f"{users}: no user ids (one per line)")
    cluster = ray_cluster(ray, ray_address, ray_cpus)
    with progress_bar(console) as progress:
        task = progress.add_task("ranking", total=len(ids))
        ranked = write_recommendations(
            model_dir,
            ids,
            out,
            k,
            knobs,
            cluster=cluster,
            on_chunk=lambda n: progress.advance(task, n),
        )
    unknown = ranked.n_unknown
    note = f" ({unknown:,} unknown to the model: cold-start lists)" if unknown else ""
    console.print(f"wrote {len(ids):,} lists to {out}{note}")


def _register_serving() -> None:
    from lmrec.experiments.cli import experiments_app
    from lmrec.serving.cli import keys_command, serve_command, train_command
    from lmrec.simulation.cli import simulate_command
    from lmrec.tuning.cli import tune_command

    app.command("simulate")(simulate_command)
    app.command("train")(train_command)
    app.command("tune")(tune_command)
    app.command("serve")(serve_command)
    app.command("keys")(keys_command)
    app.add_typer(experiments_app, name="experiments")


_register_serving()


def main() -> None:
    """Entry point: run the app; user errors print one line and exit 2."""
    try:
        app(standalone_mode=False)
    except LmrecError as exc:
        # Escaped: messages name things like lmrec[text] that are not markup.
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: a missing option, no command
        # Typer bundles its own click; its usage errors derive from TyperException.
        exc.show()  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
