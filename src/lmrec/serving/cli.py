"""Command-line entry points for training an artefact and serving it (registered by `lmrec.cli`).

Both are plain functions with typer annotations: `app.command("train")(train_command)`.
Errors the user can fix are raised as `LmrecError`; the main CLI prints them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
)
from lmrec.cli_ray import RayAddress, RayCpus, UseRay, ray_cluster
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.text import TextEncoder

__all__ = ["keys_command", "serve_command", "train_command"]


def train_command(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset name or path.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="New artefact directory (must not exist).")
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Strategy short name or package.module:Class (default ease)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A config file as `lmrec tune` writes (best.json): model, parameters, "
            "re-ranking knobs and text fields; --params and --param go over it.",
        ),
    ] = None,
    params: Annotated[
        str, typer.Option("--params", help="Hyperparameters as JSON, e.g. '{\"reg\": 250}'.")
    ] = "{}",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="One hyperparameter as KEY=VALUE (or MODEL.KEY=VALUE, as in `lmrec evaluate`); "
            "repeatable, applied over --params. `lmrec models NAME` lists them.",
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
    text_vectors: Annotated[
        bool,
        typer.Option(
            "--text-vectors/--no-text-vectors",
            help="Encode item text (MiniLM) into the artefact, with the int8 ONNX encoder "
            "the server then encodes new items and queries with (no torch needed to serve).",
        ),
    ] = False,
    event_weights: Annotated[
        str | None,
        typer.Option(
            "--event-weights",
            help="Weights of positive event types (view=0.25,click=0.5,...; 0 drops a type); "
            "recorded in the artefact, which the server then applies to live events.",
        ),
    ] = None,
    forget_erased: Annotated[
        Path | None,
        typer.Option(
            "--forget-erased",
            help="A server's state file: users erased there (DELETE /v1/users) are left out of "
            "the training data and the artefact, ids included.",
        ),
    ] = None,
    warm_start: Annotated[
        Path | None,
        typer.Option(
            "--warm-start",
            help="An earlier artefact of the same strategy to start from: its settings "
            "(--params/--param may change epochs, patience, warm_patience, ...) and weights, "
            "matched to this data's items by id; new items start fresh. A retrain of "
            "sasrec/text-sasrec then costs a few epochs, not a whole fit.",
        ),
    ] = None,
    ray: UseRay = False,
    ray_address: RayAddress = None,
    ray_cpus: RayCpus = None,
) -> None:
    """Fit a strategy on a whole dataset and write a versioned model artefact.

    With --ray the item text (--text-vectors) is encoded on Ray workers (the same vectors).
    A nightly retrain of a transformer: lmrec train --model text-sasrec --warm-start
    models/v1 --out models/v2 ... (the data: yesterday's plus today's log).
    """
    from lmrec.artifacts import train_artifact
    from lmrec.data.events import EventPolicy
    from lmrec.models.names import resolve_strategy
    from lmrec.tuning.protocol import TrialConfig

    tuned = TrialConfig.read(config) if config is not None else TrialConfig(model or "ease")
    if model is not None and model != tuned.model:
        raise ConfigError(f"--model {model} differs from the model of --config ({tuned.model})")
    model = tuned.model
    try:
        given = json.loads(params)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not valid JSON ({exc.msg})") from None
    if not isinstance(given, dict):
        raise ConfigError("--params must be a JSON object")
    earlier = None
    if warm_start is not None:
        from lmrec.artifacts import load_artifact

        earlier = load_artifact(warm_start)
    # A warm start keeps the earlier model's settings unless told otherwise (not the
    # folder its own training checkpointed to).
    kept = earlier.model.config.model_dump(exclude={"checkpoint_dir"}) if earlier else {}
    hyper = {**kept, **tuned.params, **given}
    # A strategy that reads item text gets its vectors without being asked.
    text_vectors = text_vectors or resolve_strategy(model).uses_text
    from lmrec.evaluation.runner import coerce

    for item in param or []:
        key, eq, value = item.partition("=")
        prefix, dot, rest = key.strip().partition(".")
        if dot and prefix == model:
            key = rest
        if not eq or not key.strip():
            raise ConfigError(f"--param {item!r}: expected KEY=VALUE, e.g. reg=500")
        hyper[key.strip()] = coerce(value.strip())
    policy = EventPolicy.parse(event_weights, min_rating)
    data = load_for_cli(
        dataset,
        data_dir,
        columns=columns,
        item_columns=item_columns,
        min_rating=min_rating,
        k_core=k_core,
        dedupe=dedupe,
        loader=loader,
        catalog=catalog,
        event_policy=policy,
    )
    if forget_erased is not None:
        from lmrec.serving.store import SQLiteStateStore

        if not forget_erased.is_file():
            raise ConfigError(f"--forget-erased: no state file at {forget_erased}")
        store = SQLiteStateStore(forget_erased).open()
        try:
            erased = store.erased_among(data.users.to_list())
        finally:
            store.close()
        data = data.without_users(erased)
        typer.echo(f"left out {len(erased)} users erased in {forget_erased}")
    vectors = identity = text_encoder = None
    if text_vectors:
        from lmrec.text import make_encoder

        fields = tuned.text.get("fields")
        texts = data.catalog.texts(fields) if fields else data.catalog.texts()
        text_encoder = make_encoder(backend=tuned.text.get("backend", "torch"))
        encoder: TextEncoder = text_encoder
        if ray_cluster(ray, ray_address, ray_cpus) is not None:
            from lmrec.distributed import RayEncoder

            encoder = RayEncoder(text_encoder)
        vectors, identity = encoder.encode(texts, show_progress=True), text_encoder.identity
    from lmrec.evaluation.runner import RERANK, pipeline_config

    path = train_artifact(
        data,
        model,
        out,
        hyper,
        item_vectors=vectors,
        text_model_identity=identity,
        pipeline=pipeline_config({RERANK: tuned.rerank}) if tuned.rerank else None,
        event_policy=policy,
        text_encoder=text_encoder,
        warm_start=earlier,
    )
    manifest = json.loads((path / "manifest.json").read_text())
    held = manifest.get("validation")
    held_note = (
        f"; tuned on its own validation: {held['protocol']}, {held['n_users']} users"
        if held
        else ""
    )
    typer.echo(f"wrote {path} (version {manifest['version']}{held_note})")


def serve_command(
    model_dir: Annotated[Path, typer.Option("--model-dir", help="Artefact directory to serve.")],
    db: Annotated[
        Path, typer.Option("--db", help="SQLite file for events and online state.")
    ] = Path("lmrec-state.db"),
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    api_keys_file: Annotated[
        Path | None,
        typer.Option("--api-keys-file", help="JSON file of hashed API keys (see `keys`)."),
    ] = None,
    allow_anonymous: Annotated[
        bool, typer.Option("--allow-anonymous", help="Serve without keys (local experiments only).")
    ] = False,
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder",
            help="What encodes new items and free-text queries: auto (the artefact's own "
            "int8 ONNX encoder when it carries one, no torch), artifact (the same, required), "
            "minilm (MiniLM on torch: the text extra) or none.",
        ),
    ] = "auto",
    model_root: Annotated[
        Path | None,
        typer.Option(
            "--model-root",
            help="Admin model loads must lie under this folder (default: the folder that "
            "holds --model-dir).",
        ),
    ] = None,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes")] = 1_048_576,
    request_timeout: Annotated[
        float,
        typer.Option(
            "--request-timeout",
            help="Seconds a client may take to send a request's headers, and again its body "
            "(slower ones are answered 408 or dropped).",
        ),
    ] = 10.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections", help="Open connections and requests at most; more get 503."
        ),
    ] = 1000,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Keep the online state in Redis instead of --db, shared by every worker and "
            "server pointed at it, e.g. redis://127.0.0.1:6379/0 (run redis-server with "
            "--appendonly yes --appendfsync always; see docs/scale-out.md).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Server processes on one port (each loads the model; needs --store). A "
            "worker that dies is restarted.",
        ),
    ] = 1,
    min_rating: Annotated[
        float | None,
        typer.Option(
            "--min-rating",
            help="Ratings below this do not join a history (default: the artefact's policy).",
        ),
    ] = None,
    event_weights: Annotated[
        str | None,
        typer.Option(
            "--event-weights",
            help="Weights of positive event types, e.g. view=0.25,click=0.5,add_to_cart=0.75,"
            "purchase=1,rating=1 (unnamed types keep these defaults; 0 makes a type not count; "
            "default: the policy the artefact was trained with).",
        ),
    ] = None,
    experiment_holdout: Annotated[
        float,
        typer.Option(
            "--experiment-holdout",
            help="Share of users kept out of every A/B test (a global holdout that always "
            "sees the default pipeline), e.g. 0.05.",
        ),
    ] = 0.0,
    private_metrics: Annotated[
        bool,
        typer.Option("--private-metrics", help="/metrics needs an admin key (default: public)."),
    ] = False,
    docs: Annotated[
        bool,
        typer.Option("--docs/--no-docs", help="Serve /docs, /redoc and /openapi.json."),
    ] = True,
    reports_dir: Annotated[
        Path | None,
        typer.Option(
            "--reports-dir",
            help="A folder of HTML reports (`lmrec evaluate`, `tune`, `simulate`) that read "
            "keys may list and open on the dashboard; nothing outside it is served.",
        ),
    ] = None,
    ui: Annotated[
        bool, typer.Option("--ui/--no-ui", help="Serve the dashboard at /ui (default on).")
    ] = True,
    ranking_batch: Annotated[
        int,
        typer.Option(
            "--ranking-batch",
            help="Rank up to this many waiting recommendation requests together (1-64; "
            "1 = one at a time). A busy server then scores them in one pass; an idle one "
            "never waits to fill a batch.",
        ),
    ] = 8,
    native_threads: Annotated[
        int,
        typer.Option(
            "--native-threads",
            help="BLAS/OpenMP threads per server process (at most its share of the cores). "
            "Ranking multiplies a few queries at a time, where more threads mostly spin: "
            "raise it only for a large catalogue served at low traffic.",
        ),
    ] = 1,
    trust_class: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-class",
            help="A custom strategy class (module:Class) artefacts may name; repeat for more. "
            "Artefacts naming any other class than lmrec's own are refused.",
        ),
    ] = None,
) -> None:
    """Serve recommendations over HTTP (OpenAPI at /docs)."""
    import uvicorn

    from lmrec.data.events import EventPolicy
    from lmrec.serving import ApiKeys, Settings, create_app, load_api_keys

    encoders = ("auto", "artifact", "minilm", "none")
    if encoder not in encoders:
        raise ConfigError(f"--encoder must be one of {', '.join(encoders)}, not {encoder!r}")
    if encoder == "minilm":
        from lmrec._extras import missing_text_extra, text_extra_installed

        if not text_extra_installed():
            raise missing_text_extra("--encoder minilm")
    if api_keys_file is None and not allow_anonymous:
        raise ConfigError("give --api-keys-file (make one with `keys`) or --allow-anonymous")
    if request_timeout <= 0 or max_connections < 1:
        raise ConfigError("--request-timeout must be > 0 and --max-connections at least 1")
    if not 0.0 <= experiment_holdout < 1.0:
        raise ConfigError(f"--experiment-holdout must be in [0, 1), not {experiment_holdout:g}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    if not 1 <= ranking_batch <= 64:
        raise ConfigError(f"--ranking-batch must be between 1 and 64, not {ranking_batch}")
    if native_threads < 1:
        raise ConfigError(f"--native-threads must be at least 1, not {native_threads}")
    if workers > 1 and store is None:
        raise ConfigError(
            "--workers > 1 needs a shared state store: add --store redis://HOST:PORT/0 "
            "(one SQLite file serves one process)"
        )
    settings = Settings(
        model_dir=model_dir,
        db=db,
        store=store,
        api_keys=load_api_keys(api_keys_file) if api_keys_file is not None else ApiKeys(),
        allow_anonymous=allow_anonymous,
        encoder=encoder,  # type: ignore[arg-type]
        model_root=model_root,
        max_body_bytes=max_body_bytes,
        body_timeout_s=request_timeout,
        event_policy=None
        if event_weights is None and min_rating is None
        else EventPolicy.parse(event_weights, min_rating),
        experiment_holdout=experiment_holdout,
        trusted_model_classes=tuple(trust_class or ()),
        metrics_public=not private_metrics,
        docs=docs,
        reports_dir=reports_dir,
        ui=ui,
        ranking_batch=ranking_batch,
        native_threads=native_threads,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if workers > 1:
        from lmrec.serving.workers import serve_workers

        serve_workers(settings, workers, host, port, max_connections)
        return
    from lmrec.serving.workers import limit_native_threads, uvicorn_options

    limit_native_threads(settings)
    uvicorn.run(
        create_app(settings), host=host, port=port, **uvicorn_options(settings, max_connections)
    )


def keys_command(
    name: Annotated[str, typer.Option("--name", help="Who the key is for.")],
    scopes: Annotated[
        str,
        typer.Option(
            "--scopes",
            help="Comma-separated: read,ingest,delete,admin (see the scope matrix in the README).",
        ),
    ] = "read",
    file: Annotated[Path, typer.Option("--file", help="Keys file to add the entry to.")] = Path(
        "api-keys.json"
    ),
) -> None:
    """Make a new API key: prints it once and stores only its hash in the keys file."""
    from lmrec.serving.auth import SCOPES, ApiKeys, load_api_keys, new_api_key

    wanted = tuple(s.strip() for s in scopes.split(",") if s.strip())
    bad = [s for s in wanted if s not in SCOPES]
    if bad or not wanted:
        raise ConfigError(f"unknown scopes {bad}; choose from {', '.join(SCOPES)}")
    current = load_api_keys(file) if file.exists() else ApiKeys()
    key, entry = new_api_key(name, wanted)  # type: ignore[arg-type]
    updated = ApiKeys(keys=(*current.keys, entry))
    tmp = file.with_suffix(file.suffix + ".tmp")
    tmp.write_text(json.dumps(updated.model_dump(), indent=2))
    tmp.chmod(0o600)
    tmp.replace(file)
    typer.echo(key)
