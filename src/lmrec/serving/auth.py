"""API keys with scopes: stored hashed, compared in constant time, never logged.

A keys file is JSON: `{"keys": [{"name": "web", "sha256": "<hex>", "scopes": ["read"]}]}`.
Only the SHA-256 of a key is stored (keys are long random tokens, so a fast hash
is enough; there is nothing to brute-force). Make an entry with `new_api_key`.
Clients send the key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmrec.errors import ConfigError

__all__ = ["SCOPES", "ApiKey", "ApiKeys", "hash_key", "load_api_keys", "new_api_key"]

Scope = Literal["read", "ingest", "delete", "admin"]
#: What each scope may call (a key holds any set of them):
#: read: recommendations, similar items, the current model, experiments and their reports;
#: ingest: events and item upserts (a new item or new fields for one; nothing is removed);
#: delete: user erasure and item deletion (an upsert with `deleted`: true), which destroy data;
#: admin: model loading, experiments (create, stop), and `/metrics` when metrics are private.
SCOPES: tuple[str, ...] = ("read", "ingest", "delete", "admin")


class ApiKey(BaseModel):
    """One client's key, by its hash, and what it may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...]


class ApiKeys(BaseModel):
    """The contents of an API keys file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[ApiKey, ...] = ()


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(name: str, scopes: tuple[Scope, ...]) -> tuple[str, ApiKey]:
    """A fresh random key (show it once) and the entry to store for it."""
    key = secrets.token_urlsafe(32)
    return key, ApiKey(name=name, sha256=hash_key(key), scopes=scopes)


def load_api_keys(path: str | Path) -> ApiKeys:
    """Read and validate a keys file."""
    path = Path(path)
    try:
        return ApiKeys.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such API keys file") from None
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ConfigError(
            f"{path}: not a valid API keys file ({str(exc).splitlines()[0]})"
        ) from None


def authenticate(keys: ApiKeys, presented: str) -> ApiKey | None:
    """The entry whose hash matches `presented`, comparing against every entry in constant time."""
    digest = hash_key(presented)
    found = None
    for entry in keys.keys:
        if hmac.compare_digest(digest, entry.sha256):
            found = entry
    return found
