"""Versioned, immutable model artefacts: everything a server needs to answer, checksummed.

An artefact is one directory, written once and never changed:

```
manifest.json            format, lmrec version, model version id, created time,
                         dataset summary, strategy, text model, text encoder, files + sha256
users.json, items.json   the vocabularies (JSON lists; index = position)
catalog.jsonl            one JSON object per item, in index order
item_vectors.npy         item text vectors (float32), when the model has them
histories.safetensors    training histories of known users (CSR: indptr, items, timestamps)
model/                   the strategy (`Recommender.save`: model.json + state.safetensors)
encoder/                 with vectors from a language model: its int8 ONNX graph, tokenizer
                         and settings (`lmrec.text.export_runtime`), so the server encodes
                         new items and free-text queries without torch (`artifact_encoder`)
```

`item_vectors.npy` stays what training produced (`text_model` names that encoder);
the manifest's `text_encoder` names the runtime that encodes new text at serve time.

`build_artifact` writes into a temporary sibling directory and renames it into
place, so a reader never sees half an artefact, and it refuses to replace an
existing one. `load_artifact` verifies every checksum before it trusts a byte and
names the bad file when one does not match.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from lmrec import __version__
from lmrec._arrays import read_arrays, write_arrays
from lmrec.data.catalog import Catalog
from lmrec.data.dataset import Dataset
from lmrec.data.events import EventPolicy
from lmrec.data.interactions import Interactions
from lmrec.data.splitting import hold_out_last
from lmrec.data.vocabulary import Vocabulary
from lmrec.errors import ConfigError, LmrecError, first_problem
from lmrec.models.base import Recommender, TrainingData, class_path, load_model
from lmrec.pipeline._query import PipelineConfig

if TYPE_CHECKING:
    from lmrec.text import BatchEncoder, OnnxEncoder

__all__ = [
    "ARTIFACT_FORMAT",
    "Artifact",
    "artifact_encoder",
    "build_artifact",
    "fit_for_artifact",
    "load_artifact",
    "read_event_policy",
    "train_artifact",
]

#: Bumped when the layout changes incompatibly.
ARTIFACT_FORMAT = 1
MANIFEST = "manifest.json"
#: Where an artefact keeps its text encoder's runtime.
ENCODER_DIR = "encoder"
_CHUNK = 1 << 20


@dataclass(frozen=True, eq=False)
class Artifact:
    """A loaded, verified artefact (see the module docstring for the layout).

    `history_indptr`/`history_items` hold each known user's time-ordered training
    history: user index `u` has `history_items[history_indptr[u]:history_indptr[u + 1]]`.
    """

    path: Path
    manifest: dict[str, Any]
    users: Vocabulary
    items: Vocabulary
    catalog: Catalog
    model: Recommender
    history_indptr: np.ndarray
    history_items: np.ndarray
    item_vectors: np.ndarray | None = None

    @property
    def version(self) -> str:
        """The model version id (content hash with creation time)."""
        return str(self.manifest["version"])

    @property
    def strategy(self) -> str:
        """The strategy's class name, e.g. `EASE`."""
        return str(self.manifest["model"]["class"]).rpartition(":")[2]

    @property
    def pipeline_config(self) -> PipelineConfig:
        """The pipeline settings (default re-ranking knobs) the artefact was built with."""
        return PipelineConfig.model_validate(self.manifest.get("pipeline", {}))

    @property
    def event_policy(self) -> EventPolicy:
        """Which events made the training data (and make a user's history when served)."""
        return EventPolicy.model_validate(self.manifest.get("event_policy") or {})

    @property
    def text_model(self) -> str | None:
        """Identity of the text encoder that made `item_vectors` (None when there are none)."""
        return self.manifest.get("text_model")

    @property
    def text_encoder(self) -> dict[str, Any] | None:
        """The encoder runtime the artefact carries for new text (None when it has none)."""
        return self.manifest.get("text_encoder")

    def history(self, user_id: str) -> np.ndarray:
        """Training history (item indexes, oldest first) of a user; empty when unknown."""
        u = self.users.get(user_id)
        if u < 0:
            return np.zeros(0, dtype=np.int64)
        return self.history_items[self.history_indptr[u] : self.history_indptr[u + 1]].astype(
            np.int64
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _json_value(value: Any) -> Any:
    """Catalogue values as plain JSON (numpy scalars and arrays, NaN -> None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def catalog_rows(catalog: Catalog, ids: list[str]) -> list[dict[str, Any]]:
    """Catalogue rows as JSON-ready dicts with an `id` key, in index order."""
    records = catalog.frame.drop(columns=["item"], errors="ignore").to_dict("records")
    return [
        {"id": item_id, **{str(k): _json_value(v) for k, v in row.items()}}
        for item_id, row in zip(ids, records, strict=True)
    ]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def build_artifact(
    dataset: Dataset,
    model: Recommender,
    out_dir: str | Path,
    item_vectors: np.ndarray | None = None,
    text_model_identity: str | None = None,
    training: Interactions | None = None,
    pipeline: PipelineConfig | None = None,
    validation: dict[str, Any] | None = None,
    event_policy: EventPolicy | None = None,
    text_encoder: BatchEncoder | None = None,
) -> Path:
    """Write a fitted `model` and what serving needs into a new artefact directory `out_dir`.

    `pipeline` holds the default re-ranking knobs the server applies; `validation`
    says what the model held out to tune on (recorded in the manifest); `event_policy`
    the events the data was made of, which the server then applies to live events.
    `training` is the log the model learned from (default: the dataset's
    interactions); its per-user histories let the server answer known users.
    `item_vectors` (row `i` = item `i`) and the identity of the text model that
    made them let new items be scored from their text; `text_encoder` (the encoder
    that made them, or one of the same model) is exported into `encoder/` as an int8
    ONNX runtime that encodes new items and queries at serve time without torch.
    Raises `LmrecError` when `out_dir` already exists: versions are immutable.
    """
    out = Path(out_dir)
    if out.exists():
        raise LmrecError(
            f"{out}: already exists; artefact versions are immutable, choose a new directory"
        )
    if not model.fitted:
        raise LmrecError(
            f"{type(model).__name__} is not fitted: fit it before building an artefact"
        )
    log = training if training is not None else dataset.interactions
    if item_vectors is not None:
        item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if item_vectors.ndim != 2 or len(item_vectors) != dataset.n_items:
            raise LmrecError(
                f"item_vectors must be (n_items={dataset.n_items}, dim), not {item_vectors.shape}"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_text(tmp / "users.json", json.dumps(dataset.users.to_list()))
        _write_text(tmp / "items.json", json.dumps(dataset.items.to_list()))
        rows = catalog_rows(dataset.catalog, dataset.items.to_list())
        _write_text(
            tmp / "catalog.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
        if item_vectors is not None:
            with (tmp / "item_vectors.npy").open("wb") as f:
                np.save(f, item_vectors, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
        runtime = None
        if text_encoder is not None and item_vectors is not None:
            runtime = _write_encoder(text_encoder, tmp / ENCODER_DIR, item_vectors.shape[1])
        log = log.with_sizes(max(log.n_users, dataset.n_users), max(log.n_items, dataset.n_items))
        write_arrays(
            tmp / "histories.safetensors",
            {
                "indptr": log.user_indptr.astype(np.int64),
                "items": log.items.astype(np.int32),
                "timestamps": log.timestamps.astype(np.float64),
            },
        )
        model.save(tmp / "model")
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        for p in files:
            if p.suffix == ".safetensors" or p.parent.name in ("model", ENCODER_DIR):
                with p.open("rb") as f:
                    os.fsync(f.fileno())
        checksums = {p.relative_to(tmp).as_posix(): _sha256(p) for p in files}
        content = hashlib.sha256(json.dumps(checksums, sort_keys=True).encode()).hexdigest()
        now = _dt.datetime.now(_dt.UTC)
        manifest = {
            "format": ARTIFACT_FORMAT,
            "lmrec_version": __version__,
            "version": f"{now:%Y%m%dT%H%M%SZ}-{content[:12]}",
            "content_sha256": content,
            "created": now.isoformat(timespec="seconds"),
            "dataset": dataset.summary(),
            "model": {
                "class": class_path(type(model)),
                "config": model.config.model_dump(mode="json"),
                "n_items": model.n_items,
            },
            "pipeline": (pipeline or PipelineConfig()).model_dump(mode="json"),
            "validation": validation,
            "event_policy": (event_policy or EventPolicy()).model_dump(mode="json"),
            "text_model": text_model_identity if item_vectors is not None else None,
            "vector_dim": None if item_vectors is None else int(item_vectors.shape[1]),
            "text_encoder": runtime,
            "files": {
                name: {"sha256": digest, "bytes": (tmp / name).stat().st_size}
                for name, digest in checksums.items()
            },
        }
        _write_text(tmp / MANIFEST, json.dumps(manifest, indent=2))
        _fsync_dir(tmp)
        if out.exists():
            raise LmrecError(
                f"{out}: already exists; artefact versions are immutable, choose a new directory"
            )
        os.rename(tmp, out)
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_encoder(encoder: BatchEncoder, out: Path, dim: int) -> dict[str, Any]:
    """Export `encoder`'s runtime into `out`; its manifest entry."""
    from lmrec.text import RUNTIME, export_runtime

    meta = export_runtime(encoder, out)
    if int(meta["dim"]) != dim:
        raise LmrecError(
            f"the text encoder {meta['identity']} makes {meta['dim']} dimensions, "
            f"the item vectors have {dim}"
        )
    return {
        "identity": meta["identity"],
        "runtime": RUNTIME,
        "backend": meta["backend"],
        "source": meta["source_id"],
        "dim": int(meta["dim"]),
        "max_seq_length": int(meta["max_seq_length"]),
        "files": sorted(f"{ENCODER_DIR}/{p.name}" for p in out.iterdir() if p.is_file()),
        "encodes": "new items and free-text queries at serve time; item_vectors.npy "
        "stays what text_model made in training",
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LmrecError(f"{path}: cannot read artefact file ({exc})") from None


def read_event_policy(path: str | Path) -> EventPolicy:
    """The event policy an artefact records, read from its manifest alone (no model load)."""
    manifest = _read_json(Path(path) / MANIFEST)
    try:
        return EventPolicy.model_validate((manifest or {}).get("event_policy") or {})
    except (ValidationError, AttributeError) as exc:
        raise LmrecError(f"{Path(path) / MANIFEST}: event_policy is not valid ({exc})") from None


def load_artifact(path: str | Path, trusted_classes: Collection[str] = ()) -> Artifact:
    """Load and verify an artefact; `LmrecError` names the file that is missing or corrupt.

    Every file the manifest lists must lie inside the artefact directory, and the
    model's class must be lmrec's own or one of `trusted_classes` (see `load_model`).
    """
    root = Path(path)
    if not (root / MANIFEST).is_file():
        raise LmrecError(f"{root}: no {MANIFEST}; is this an lmrec artefact directory?")
    manifest = _read_json(root / MANIFEST)
    if not isinstance(manifest, dict) or "files" not in manifest or "version" not in manifest:
        raise LmrecError(f"{root / MANIFEST}: not an lmrec artefact manifest")
    if manifest.get("format") != ARTIFACT_FORMAT:
        raise LmrecError(
            f"{root / MANIFEST}: artefact format {manifest.get('format')!r}, this lmrec reads {ARTIFACT_FORMAT}"
        )
    _check_files(root, manifest, list(manifest["files"]))
    for required in (
        "users.json",
        "items.json",
        "catalog.jsonl",
        "histories.safetensors",
        "model/model.json",
        "model/state.safetensors",
    ):
        if required not in manifest["files"]:
            raise LmrecError(f"{root / MANIFEST}: the file list lacks {required}")

    users = Vocabulary(_read_json(root / "users.json"))
    items = Vocabulary(_read_json(root / "items.json"))
    try:
        lines = (root / "catalog.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LmrecError(f"{root / 'catalog.jsonl'}: cannot read catalogue ({exc})") from None
    if [r.get("id") for r in rows] != items.to_list():
        raise LmrecError(f"{root / 'catalog.jsonl'}: rows do not match items.json")
    frame = pd.DataFrame(
        [{k: v for k, v in r.items() if k != "id"} for r in rows], index=range(len(rows))
    )
    catalog = Catalog(frame)

    vectors = None
    if "item_vectors.npy" in manifest["files"]:
        try:
            vectors = np.load(root / "item_vectors.npy", allow_pickle=False).astype(
                np.float32, copy=False
            )
        except (OSError, ValueError) as exc:
            raise LmrecError(f"{root / 'item_vectors.npy'}: cannot read vectors ({exc})") from None
        if vectors.ndim != 2 or len(vectors) != len(items):
            raise LmrecError(
                f"{root / 'item_vectors.npy'}: shape {vectors.shape} does not match {len(items)} items"
            )
    hist = read_arrays(root / "histories.safetensors", "histories")
    indptr, hist_items = hist["indptr"].astype(np.int64), hist["items"]
    if len(indptr) != len(users) + 1 or indptr[-1] != len(hist_items):
        raise LmrecError(f"{root / 'histories.safetensors'}: does not match users.json")
    try:
        model = load_model(root / "model", trusted_classes)
    except LmrecError:
        raise
    except Exception as exc:  # a corrupt state the checksums did not catch (hand-edited manifest)
        raise LmrecError(
            f"{root / 'model'}: cannot load the model ({type(exc).__name__}: {exc})"
        ) from None
    for key, kind in (("pipeline", PipelineConfig), ("event_policy", EventPolicy)):
        try:
            kind.model_validate(manifest.get(key) or {})
        except ValidationError as exc:
            raise LmrecError(f"{root / MANIFEST}: {key}.{first_problem(exc)}") from None
    if model.n_items > len(items):
        raise LmrecError(
            f"{root / 'model'}: the model scores {model.n_items} items but items.json has "
            f"{len(items)} (model state from another dataset?)"
        )
    return Artifact(root, manifest, users, items, catalog, model, indptr, hist_items, vectors)


def _check_files(root: Path, manifest: dict[str, Any], names: Collection[str]) -> None:
    """Every one of `names` is listed, inside `root`, present and matches its checksum."""
    inside = root.resolve()
    for name in names:
        # Checked for every entry before any is opened, and answered alike whether or not
        # the path exists, so a manifest cannot probe or read files elsewhere.
        if not isinstance(name, str) or not (root / name).resolve().is_relative_to(inside):
            raise LmrecError(f"{root / MANIFEST}: lists a file outside the artefact directory")
    for name in names:
        file, meta = root / name, manifest["files"].get(name)
        if meta is None:
            raise LmrecError(f"{root / MANIFEST}: {name} has no checksum in the file list")
        if not file.is_file():
            raise LmrecError(f"{file}: listed in the manifest but missing")
        if file.stat().st_size != meta["bytes"] or _sha256(file) != meta["sha256"]:
            raise LmrecError(f"{file}: checksum mismatch (the file is corrupt or was changed)")


def artifact_encoder(path: str | Path, threads: int | None = None) -> OnnxEncoder | None:
    """The text encoder an artefact carries (None when it has none), its files verified.

    It runs on ONNX Runtime with `tokenizers` (no torch) and loads on first use;
    `threads` as in `EncoderConfig`. Reads only the manifest and the encoder's files,
    so a server can open it before (and beside) `load_artifact`.
    """
    from lmrec.text import META_FILE, OnnxEncoder, runtime_files

    root = Path(path)
    manifest = _read_json(root / MANIFEST)
    entry = manifest.get("text_encoder") if isinstance(manifest, dict) else None
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
        raise LmrecError(f"{root / MANIFEST}: text_encoder is not valid")
    listed = set(entry["files"])
    _check_files(root, manifest, sorted(listed))
    # Only verified files are read: the settings file first, then those it names.
    if f"{ENCODER_DIR}/{META_FILE}" not in listed:
        raise LmrecError(f"{root / MANIFEST}: text_encoder.files lacks {ENCODER_DIR}/{META_FILE}")
    for name in runtime_files(root / ENCODER_DIR):
        if f"{ENCODER_DIR}/{name}" not in listed:
            raise LmrecError(f"{root / MANIFEST}: text_encoder.files lacks {ENCODER_DIR}/{name}")
    return OnnxEncoder.from_runtime(root / ENCODER_DIR, threads=threads)


def fit_for_artifact(
    dataset: Dataset,
    cls: type[Recommender],
    params: Mapping[str, Any] | None = None,
    item_vectors: np.ndarray | None = None,
    warm: Recommender | None = None,
    warm_items: np.ndarray | None = None,
) -> tuple[Recommender, dict[str, Any] | None]:
    """Fit a strategy on all of `dataset`, as an artefact serves it.

    A strategy that tunes or early-stops on validation (`uses_validation`) gets
    its own: each user's last interaction (users with at least two) is held out as
    validation, the rest is training; it refits its parts on both where it does
    so. `warm`, the model this one replaces, seeds the fit where the strategy
    `warm_starts` (ignored otherwise), with `warm_items` mapping `dataset`'s items to
    its own (`Recommender.start_from`). Returns the model and what was held out (None
    when nothing was).
    """
    model = cls(dict(params or {}))
    if warm is not None and cls.warm_starts:
        model.start_from(warm, warm_items)
    log = dataset.interactions
    if not cls.uses_validation:
        return model.fit(TrainingData(log, dataset.catalog, item_vectors)), None
    train, valid = hold_out_last(log)
    model.fit(TrainingData(train, dataset.catalog, item_vectors, valid))
    n_users = int((valid.user_counts > 0).sum())
    return model, {"protocol": "last interaction per user", "n_users": n_users}


def train_artifact(
    dataset: Dataset,
    model_name_or_path: str,
    out_dir: str | Path,
    params: Mapping[str, Any] | None = None,
    item_vectors: np.ndarray | None = None,
    text_model_identity: str | None = None,
    pipeline: PipelineConfig | None = None,
    event_policy: EventPolicy | None = None,
    text_encoder: BatchEncoder | None = None,
    warm_start: Artifact | None = None,
) -> Path:
    """Fit a strategy (short name like `ease` or an import path) on all of `dataset` and write an artefact.

    See `fit_for_artifact` for the validation a strategy that tunes on it gets, and
    `build_artifact` for the text encoder an artefact with vectors carries. With
    `warm_start`, an earlier artefact of a strategy that `warm_starts`, the fit begins
    from its model's weights, matched to `dataset`'s items by id.
    """
    from lmrec.models.names import STRATEGIES, resolve_strategy

    out = Path(out_dir)
    if out.exists():  # fail before a long fit, not after
        raise LmrecError(
            f"{out}: already exists; artefact versions are immutable, choose a new directory"
        )
    cls = resolve_strategy(model_name_or_path)
    warm = warm_items = None
    if warm_start is not None:
        if not cls.warm_starts:
            able = [n for n in STRATEGIES if resolve_strategy(n).warm_starts]
            raise ConfigError(
                f"{model_name_or_path} cannot warm-start (these can: {', '.join(able)}); "
                "fit it from scratch"
            )
        if type(warm_start.model) is not cls:
            raise ConfigError(
                f"warm start: {warm_start.path} holds a {type(warm_start.model).__name__} "
                f"model, not {cls.__name__}; train the strategy it holds"
            )
        warm = warm_start.model
        warm_items = warm_start.items.indexes(dataset.items.ids, missing="mark")
    model, validation = fit_for_artifact(dataset, cls, params, item_vectors, warm, warm_items)
    return build_artifact(
        dataset,
        model,
        out,
        item_vectors=item_vectors,
        text_model_identity=text_model_identity,
        pipeline=pipeline,
        validation=validation,
        event_policy=event_policy,
        text_encoder=text_encoder,
    )
