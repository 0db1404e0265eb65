"""Helpers for the serving tests: a tiny real dataset and a fitted EASE artefact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd

from lmrec.artifacts import build_artifact
from lmrec.data import Dataset
from lmrec.models import EASE, TrainingData
from lmrec.serving.encoders import HashingEncoder

ENCODER = HashingEncoder(dim=128)

# Two tastes: items s0..s5 are space films, r0..r5 romances. Users u0..u3 watch space, u4..u7 romance.
SPACE = [
    ("s0", "Star Voyage", "Orbit"),
    ("s1", "Alien Planet", "Orbit"),
    ("s2", "Rocket Dawn", "Nova"),
    ("s3", "Galaxy Wars", "Nova"),
    ("s4", "Moon Base", "Orbit"),
    ("s5", "Comet Chase", "Nova"),
]
ROMANCE = [
    ("r0", "Paris Love", "Heart"),
    ("r1", "Summer Kiss", "Heart"),
    ("r2", "Wedding Day", "Rose"),
    ("r3", "First Date", "Rose"),
    ("r4", "Love Letters", "Heart"),
    ("r5", "Rose Garden", "Rose"),
]


def make_dataset() -> Dataset:
    rows = []
    t = 0
    for u in range(8):
        pool = SPACE if u < 4 else ROMANCE
        for j in range(6):
            if (u + j) % 3 != 0:  # each user sees four of their six
                rows.append({"user": f"u{u}", "item": pool[j][0], "timestamp": t})
                t += 1
    catalog = pd.DataFrame(
        [
            {
                "item": i,
                "title": title,
                "brand": brand,
                "categories": ["space" if i[0] == "s" else "romance"],
            }
            for i, title, brand in SPACE + ROMANCE
        ]
    )
    return Dataset.from_frames("tiny", pd.DataFrame(rows), catalog)


def make_artifact(out: Path, reg: float = 1.0) -> Path:
    dataset = make_dataset()
    model = EASE(reg=reg).fit(TrainingData(dataset.interactions, dataset.catalog))
    vectors = ENCODER(dataset.catalog.texts())
    return build_artifact(
        dataset, model, out, item_vectors=vectors, text_model_identity=ENCODER.identity
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A real server process on a fresh loopback port, ready when `start` returns.

    `argv(port)` is its command line; `kill` sends SIGKILL, `start` again restarts
    it on a new port.
    """

    def __init__(self, argv: Callable[[int], list[str]]):
        self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout_s: float = 120) -> ServerProcess:
        port = free_port()
        self.proc = subprocess.Popen(self.argv(port))
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited"
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("the server did not become ready")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
