"""The HTTP service: app factory, settings, state stores, model registry and auth.

Names are imported on first use, so `lmrec --help` does not load the web stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ApiError": "app",
    "create_app": "app",
    "ApiKey": "auth",
    "ApiKeys": "auth",
    "hash_key": "auth",
    "load_api_keys": "auth",
    "new_api_key": "auth",
    "ModelRegistry": "registry",
    "Settings": "settings",
    "Event": "store",
    "SQLiteStateStore": "store",
    "StateStore": "store",
    "RedisStateStore": "redis_store",
    "open_store": "store",
    "StoredItem": "store",
    "UserState": "store",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"lmrec.serving.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lmrec.serving' has no attribute {name!r}")
