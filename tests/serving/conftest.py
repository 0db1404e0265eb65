"""Fixtures for the serving tests: a fitted artefact, API keys, settings and an app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import ENCODER, make_artifact

from lmrec.serving import ApiKeys, Settings, create_app, new_api_key


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_artifact(tmp_path_factory.mktemp("models") / "v1")


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    """Plain keys by name; the app only ever sees their hashes."""
    out = {}
    entries = []
    for name, scopes in {
        "read": ("read",),
        "ingest": ("ingest",),
        "delete": ("delete",),
        "admin": ("admin",),
        "all": ("read", "ingest", "delete", "admin"),
    }.items():
        key, entry = new_api_key(name, scopes)  # type: ignore[arg-type]
        out[name] = key
        entries.append(entry)
    out["_file"] = json.dumps(ApiKeys(keys=tuple(entries)).model_dump())
    return out


@pytest.fixture
def store_kind() -> str:
    """Which state store `settings` uses; a module runs on both by overriding this with
    `params=["sqlite", "redis"]` (Redis: a real redis-server per test)."""
    return "sqlite"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    artifact_dir: Path,
    keys: dict[str, str],
    store_kind: str,
) -> Settings:
    return Settings(
        model_dir=artifact_dir,
        db=tmp_path / "state.db",
        store=request.getfixturevalue("redis_server").url if store_kind == "redis" else None,
        api_keys=ApiKeys.model_validate_json(keys["_file"]),
        max_body_bytes=64 * 1024,
        # The session's temporary folder: tests load artefacts they build in `tmp_path`.
        model_root=tmp_path.parent,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, encoder=ENCODER)) as c:
        yield c
