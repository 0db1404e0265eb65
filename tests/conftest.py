"""Shared fixtures: small synthetic datasets with known structure, and the real-data location."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec._cpu import share_cores
from lmrec.data import Dataset, Interactions
from lmrec.serving.local_redis import RedisServer


@pytest.fixture(scope="session", autouse=True)
def _one_share_of_the_cores_per_xdist_worker() -> Iterator[None]:
    """Under pytest-xdist (`-n N`) each worker runs on its share of the cores, so the
    workers' BLAS and torch thread pools do not fight over the same ones."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    with share_cores(int(worker.removeprefix("gw") or 0), workers):
        yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets folder (LMREC_DATA_DIR); skips the test when it is not set."""
    value = os.environ.get("LMREC_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("real datasets not available: set LMREC_DATA_DIR to the datasets folder")
    return Path(value)


def parity_log(n_users: int = 40, n_items: int = 30) -> Interactions:
    """Every even user interacted with every even item, every odd user with every odd item.

    A right answer is known: for a user with some even items, the best unseen
    items are the other even items (and likewise for odd).
    """
    users, items = [], []
    for u in range(n_users):
        for i in range(u % 2, n_items, 2):
            users.append(u)
            items.append(i)
    return Interactions.build(np.array(users), np.array(items), n_users, n_items)


@pytest.fixture()
def parity() -> Interactions:
    return parity_log()


@pytest.fixture()
def tiny_dataset() -> Dataset:
    """A 6-user, 8-item dataset with text, in file order with timestamps."""
    rows = [
        ("u1", "a", 1),
        ("u1", "b", 2),
        ("u1", "c", 3),
        ("u1", "d", 4),
        ("u2", "a", 1),
        ("u2", "c", 2),
        ("u2", "e", 3),
        ("u3", "b", 5),
        ("u3", "d", 6),
        ("u3", "f", 7),
        ("u3", "g", 8),
        ("u4", "a", 1),
        ("u4", "b", 1),
        ("u4", "h", 2),
        ("u5", "c", 3),
        ("u5", "d", 4),
        ("u5", "e", 5),
        ("u6", "f", 1),
        ("u6", "g", 2),
        ("u6", "h", 3),
    ]
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    catalog = pd.DataFrame(
        {
            "item": list("abcdefgh"),
            "title": [f"Item {c.upper()}" for c in "abcdefgh"],
            "categories": [["x"], ["x"], ["y"], ["y"], ["x", "y"], ["z"], ["z"], ["x"]],
            "brand": ["p", "p", "q", "q", "", "r", "r", "p"],
        }
    )
    return Dataset.from_frames("tiny", frame, catalog)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server (AOF on, fsync always) for one test, stopped after it."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
