"""Shared set-up for the decision-layer benchmarks: data, text vectors, split, user sampling."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.data.interactions import Interactions
from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import Split, split
from lmrec.models.base import TrainingData


@dataclass(eq=False)
class Setup:
    """A dataset, its text vectors, the leave-one-out split and the training data."""

    dataset: Dataset
    vectors: np.ndarray
    split: Split
    data: TrainingData
    test: Interactions  # test targets, possibly restricted to sampled users


def setup(name: str, data_dir: str | None, max_users: int | None, seed: int = 0) -> Setup:
    """Load `name`, encode item text through the cache, split LOO, sample test users."""
    from lmrec.text import EmbeddingCache, encode_catalog, make_encoder

    if data_dir:
        os.environ["LMREC_DATA_DIR"] = data_dir
    ds = load_dataset(name)
    vectors, _ = encode_catalog(ds.catalog, make_encoder(), EmbeddingCache())
    s = split(ds.interactions, "loo", seed=seed)
    data = TrainingData(s.train, ds.catalog, vectors, s.valid)
    test = s.test
    if max_users is not None:
        users = np.flatnonzero(test.user_counts > 0)
        if len(users) > max_users:
            keep = np.random.default_rng(seed).choice(users, max_users, replace=False)
            test = test.select(np.isin(test.users, keep))
    return Setup(ds, vectors, s, data, test)


def run_info() -> dict[str, Any]:
    """Date, machine and command, as BENCHMARKS.md records them."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.system()}",
        "command": " ".join(["python", *sys.argv]),
    }
