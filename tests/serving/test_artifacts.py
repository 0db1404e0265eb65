"""Artefacts: round trip, immutability, and corruption named by file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from serving_fixtures import ENCODER, make_artifact, make_dataset

from lmrec.artifacts import build_artifact, load_artifact, train_artifact
from lmrec.data import Histories
from lmrec.errors import LmrecError
from lmrec.models import EASE, TrainingData


def test_round_trip_keeps_vocabularies_histories_vectors_and_scores(tmp_path: Path) -> None:
    dataset = make_dataset()
    model = EASE().fit(TrainingData(dataset.interactions, dataset.catalog))
    vectors = ENCODER(dataset.catalog.texts())
    path = build_artifact(
        dataset, model, tmp_path / "v1", item_vectors=vectors, text_model_identity="bow"
    )
    art = load_artifact(path)

    assert art.users == dataset.users and art.items == dataset.items
    assert art.catalog.texts() == dataset.catalog.texts()
    np.testing.assert_array_equal(art.item_vectors, vectors)
    for u in range(dataset.n_users):
        np.testing.assert_array_equal(
            art.history(dataset.users.id(u)), dataset.interactions.history(u)
        )
    h = dataset.interactions.histories()
    np.testing.assert_array_equal(art.model.score(h), model.score(h))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["version"] == art.version and manifest["text_model"] == "bow"
    assert set(manifest["files"]) >= {
        "users.json",
        "items.json",
        "catalog.jsonl",
        "item_vectors.npy",
        "histories.safetensors",
        "model/model.json",
        "model/state.safetensors",
    }
    assert manifest["dataset"]["n_items"] == 12
    assert art.history("nobody").size == 0
    # No temporary directory is left behind.
    assert [p.name for p in tmp_path.iterdir()] == ["v1"]


def test_an_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    path = make_artifact(tmp_path / "v1")
    before = (path / "manifest.json").read_bytes()
    with pytest.raises(LmrecError, match="already exists"):
        make_artifact(tmp_path / "v1")
    assert (path / "manifest.json").read_bytes() == before


@pytest.mark.parametrize(
    "name", ["model/state.safetensors", "catalog.jsonl", "item_vectors.npy", "users.json"]
)
def test_checksum_mismatch_names_the_file(tmp_path: Path, artifact_dir: Path, name: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifact_dir, broken)
    target = broken / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(LmrecError, match="checksum mismatch") as err:
        load_artifact(broken)
    assert name.split("/")[-1] in str(err.value)


def test_missing_file_and_missing_manifest_are_named(tmp_path: Path, artifact_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(artifact_dir, broken)
    (broken / "histories.safetensors").unlink()
    with pytest.raises(
        LmrecError, match=r"histories\.safetensors: listed in the manifest but missing"
    ):
        load_artifact(broken)
    with pytest.raises(LmrecError, match=r"no manifest\.json"):
        load_artifact(tmp_path)


def test_train_artifact_fits_by_name(tmp_path: Path) -> None:
    dataset = make_dataset()
    path = train_artifact(dataset, "itemknn", tmp_path / "knn", {"k": 5})
    art = load_artifact(path)
    assert art.strategy == "ItemKNN" and art.item_vectors is None
    assert art.model.score(Histories.from_lists([[0]])).shape == (1, 12)
    with pytest.raises(LmrecError, match="already exists"):
        train_artifact(dataset, "itemknn", path, {})


@pytest.mark.slow
def test_a_strategy_that_tunes_on_validation_holds_out_its_own(tmp_path: Path) -> None:
    """`train --model fused` once fitted without validation and fell back to RRF unsaid."""
    from lmrec.data.loaders import load_dataset

    dataset = load_dataset("sample")
    vectors = ENCODER(dataset.catalog.texts())
    art = load_artifact(train_artifact(dataset, "fused", tmp_path / "fused", item_vectors=vectors))
    assert art.model.fusion_ == "learned"
    held = art.manifest["validation"]
    assert held["n_users"] == dataset.n_users  # every sample user has a last interaction to hold
    # Serving still knows every interaction, the held-out ones included.
    assert len(art.history_items) == len(dataset.interactions)
    plain = load_artifact(train_artifact(dataset, "itemknn", tmp_path / "knn"))
    assert plain.manifest["validation"] is None
