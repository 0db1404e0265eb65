"""Fuzz every operation in the app's own OpenAPI document with schemathesis.

The real app (real artefact, real SQLite file) is driven in-process over ASGI with
a key that holds every scope, so generated requests reach the handlers instead of
stopping at authentication. Each response must not be a 5xx, must use a documented
status code and content type, and must match the documented schema: the OpenAPI
document is the contract clients are generated from, so an undocumented 404 or a
body that differs from the schema is a bug just like a crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving_fixtures import ENCODER, auth

from lmrec.serving import ApiKeys, Settings, create_app

#: Examples per operation and generation mode (valid and invalid inputs): enough to hit
#: every documented status on this small API while keeping the module under a minute.
EXAMPLES = 25

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

#: Requests sent per operation, for the summary printed when the module ends (`-s`).
exercised: Counter[str] = Counter()


def _document() -> dict[str, object]:
    """The factory's OpenAPI document; `create_app` does no I/O, so this is cheap at collection."""
    unused = Path("unused")
    return create_app(Settings(model_dir=unused, db=unused)).openapi()


# Parametrised from the document when the module is collected: one test per operation.
# (Schemathesis' lazy `from_fixture` loader does not run on pytest 9.)
schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, artifact_dir: Path, keys: dict[str, str]
) -> FastAPI:
    """The app under test, with its own state file; its lifespan starts on the first request.

    Model loads are confined to the fixture's model directory so the fuzzer probes
    the path checks rather than reading arbitrary directories on the machine.
    """
    app_settings = Settings(
        model_dir=artifact_dir,
        db=tmp_path_factory.mktemp("fuzz") / "state.db",
        api_keys=ApiKeys.model_validate_json(keys["_file"]),
        model_root=artifact_dir.parent,
        max_body_bytes=64 * 1024,
    )
    app = create_app(app_settings, ENCODER)
    assert app.openapi() == schema.raw_schema  # the app serves the document being fuzzed
    return app


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    """Print how many operations and requests the module fuzzed (the figure we report)."""
    yield
    print(f"\nfuzzed {len(exercised)} operations with {sum(exercised.values())} requests")


@pytest.fixture
def statuses() -> Iterator[Counter[int]]:
    """Statuses one operation answered; some request must have got past authentication.

    Without that the fuzzer would only have exercised the 401/403 path, and a clean
    run would prove nothing about the handler.
    """
    seen: Counter[int] = Counter()
    yield seen
    print(f" {dict(sorted(seen.items()))}", end="")
    assert set(seen) - {401, 403}, f"every request was refused by authentication: {seen}"


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi(
    case: schemathesis.Case, app: FastAPI, keys: dict[str, str], statuses: Counter[int]
) -> None:
    exercised[case.operation.label] += 1
    response = case.call_and_validate(app=app, headers=auth(keys["all"]), checks=CHECKS)
    statuses[response.status_code] += 1


# Inputs that crashed the server or broke the response schema before the fixes, each with
# the 4xx and message it must now get. Raw bodies: `NaN`, `Infinity` and `\ud800` escapes
# are what other clients send, and Python's JSON encoder will not write some of them.
FOUND = [
    # A lone surrogate reached pyarrow and the encoder: 500.
    ("POST", "/v1/items", r'{"items": [{"item_id": "n1", "title": "\ud800"}]}', 422, "valid Unicode"),
    ("POST", "/v1/items", r'{"items": [{"item_id": "n1", "brand": "\udfff"}]}', 422, "valid Unicode"),
    # A boost of 1e308 or Infinity overflowed the score to `null` (schema says number).
    ("POST", "/v1/recommendations", r'{"history": ["s0"], "boosts": {"brand=Orbit": 1e308}}', 422, "less than or equal to 100"),
    ("POST", "/v1/recommendations", r'{"history": ["s0"], "boosts": {"brand=Orbit": Infinity}}', 422, "finite number"),
    # A NaN timestamp became NULL in SQLite; INSERT OR IGNORE dropped the row but the
    # batch was acknowledged (as a "duplicate").
    ("POST", "/v1/events", r'{"events": [{"event_id": "e", "user_id": "u", "item_id": "s0", "type": "view", "timestamp": NaN}]}', 422, "timestamp"),
    ("POST", "/v1/events", r'{"events": [{"event_id": "e", "user_id": "u", "item_id": "s0", "type": "rating", "value": NaN}]}', 422, "finite number"),
    # A NUL byte (with a model root) or an over-long file name made path handling raise: 500;
    # an over-long name is now refused by the root check before the file system sees it.
    ("POST", "/v1/admin/models", '{"path": "a\\u0000b"}', 422, "path: String should match pattern"),
    ("POST", "/v1/admin/models", '{"path": "' + "~" * 4000 + '"}', 422, "outside the model root"),
    # A body that is not UTF-8: FastAPI's 400, now documented.
    ("POST", "/v1/events", b'{"events": "\xff"}', 400, "error parsing the body"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), FOUND)
def test_inputs_the_fuzzer_found_get_a_clear_4xx(
    client: TestClient,
    keys: dict[str, str],
    method: str,
    path: str,
    body: str | bytes,
    status: int,
    message: str,
) -> None:
    r = client.request(
        method,
        path,
        content=body,
        headers={**auth(keys["all"]), "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert str(status) in schema.raw_schema["paths"][path][method.lower()]["responses"]
    assert message in r.json()["error"]["message"]
