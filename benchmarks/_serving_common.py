"""What the serving load benchmarks share: a cached artefact, a served `lmrec serve`, wrk runs.

The load generator is wrk (Debian package `wrk`) with `serving_wrk.lua`, a separate
process on loopback, so the figures measure the server, not a Python client that
competes with it for the interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

LUA = Path(__file__).with_name("serving_wrk.lua")


def load_arguments(parser: argparse.ArgumentParser, port: int, seconds: float) -> None:
    """The options every load benchmark shares: data, model, rates, duration, where to cache."""
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--model", default="ease", help="Strategy short name.")
    parser.add_argument("--rps", type=float, default=200, help="Recommendation requests/s.")
    parser.add_argument("--eps", type=float, default=1000, help="Events/s ingested meanwhile.")
    parser.add_argument("--batch", type=int, default=100, help="Events per POST /v1/events.")
    parser.add_argument("--connections", type=int, default=10, help="wrk connections (= threads).")
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lmrec-bench")
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="Serve another checkout's src folder (a baseline commit, e.g. a git worktree).",
    )


def cached_artifact(work: Path, dataset: str, model: str, params: Mapping[str, Any]) -> Path:
    """An artefact of `model` fit on all of `dataset`, trained once per (dataset, model, params).

    Fitting EASE on Beauty takes minutes on a shared 2-core machine (hybrid about 16);
    the artefact is immutable, so repeated benchmark runs reuse it. A strategy that
    reads text gets MiniLM item vectors (from the on-disk embedding cache).
    """
    from lmrec.artifacts import train_artifact
    from lmrec.data.loaders import load_dataset
    from lmrec.models.names import resolve_strategy

    tag = hashlib.sha256(json.dumps(dict(params), sort_keys=True).encode()).hexdigest()[:8]
    out = work / f"{dataset}-{model}-{tag}"
    if not (out / "manifest.json").exists():
        print(f"training {model} {dict(params)} on {dataset} -> {out}", flush=True)
        data = load_dataset(dataset)
        vectors = identity = None
        if resolve_strategy(model).uses_text:
            from lmrec.serving.encoders import MINILM_IDENTITY
            from lmrec.text import EmbeddingCache, encode_catalog, make_encoder

            vectors, _ = encode_catalog(data.catalog, make_encoder(), EmbeddingCache())
            identity = MINILM_IDENTITY
        train_artifact(
            data, model, out, dict(params), item_vectors=vectors, text_model_identity=identity
        )
    return out


def needs_encoder(model: Path) -> str:
    """`lmrec serve --encoder` for an artefact: minilm when it carries text vectors."""
    manifest = json.loads((model / "manifest.json").read_text())
    return "minilm" if manifest.get("text_model") else "none"


def id_files(model: Path, out: Path) -> tuple[Path, Path]:
    """The artefact's user and item ids, one per line, for the wrk script to pick from."""
    paths = []
    for name in ("users", "items"):
        ids = json.loads((model / f"{name}.json").read_text())
        path = out / f"{name}.txt"
        path.write_text("".join(f"{i}\n" for i in ids))
        paths.append(path)
    return paths[0], paths[1]


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    """Block until the server answers /health/ready (loading a Beauty EASE takes seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server was not ready after {timeout:g} s")


@dataclass(frozen=True)
class Served:
    """A running `lmrec serve` and what clients need to call it."""

    url: str
    key: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(
    model: Path,
    root: Path,
    port: int,
    scopes: Sequence[str],
    src: Path | None = None,
    encoder: str = "none",
    extra: Sequence[str] = (),
) -> Iterator[Served]:
    """Run `lmrec serve` on `model` with a fresh state file and one API key, in its own process.

    `src` runs another checkout's `src` folder (a baseline commit, side by side);
    `encoder` is `lmrec serve --encoder` (minilm for a model that reads text); `extra`
    more `lmrec serve` flags (e.g. `--store redis://... --workers 2`).
    """
    from lmrec.serving.auth import ApiKeys, new_api_key

    key, entry = new_api_key("bench", tuple(scopes))  # type: ignore[arg-type]
    keys = root / "keys.json"
    keys.write_text(ApiKeys(keys=(entry,)).model_dump_json())
    db = root / "state.db"
    for leftover in root.glob("state.db*"):
        leftover.unlink()
    lmrec = shutil.which("lmrec", path=str(Path(sys.executable).parent)) or "lmrec"
    command = [lmrec, "serve", "--model-dir", str(model), "--db", str(db)]
    command += [
        "--api-keys-file",
        str(keys),
        "--port",
        str(port),
        "--model-root",
        str(model.parent),
        "--encoder",
        encoder,
        *extra,
    ]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    with open(root / "server.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield Served(url, key, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """CPU time (user + system) the process and its live children (`--workers`) have
    used so far, from /proc (Linux)."""
    total, todo = 0, [process.pid]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:  # exited meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
        todo += [int(c) for c in children]
    return total / os.sysconf("SC_CLK_TCK")


def start_wrk(
    served: Served,
    mode: str,
    rate: float,
    connections: int,
    seconds: float,
    ids: tuple[Path, Path],
    batch: int = 100,
) -> subprocess.Popen[str]:
    """Start wrk: `connections` open-loop connections (one per thread), `rate` requests/s in all."""
    per_connection = rate / connections
    command = ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--timeout", "10s", "-s", str(LUA), served.url, "--", mode, f"{per_connection:g}"]
    command += [str(ids[0]), str(ids[1]), served.key, str(batch)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=dict(os.environ))


def wrk_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON that `serving_wrk.lua` prints when wrk finishes."""
    out, _ = process.communicate()
    for line in out.splitlines():
        if line.startswith("LMREC_RESULT "):
            return json.loads(line.removeprefix("LMREC_RESULT "))  # type: ignore[no-any-return]
    raise SystemExit(f"wrk printed no result:\n{out}")


def summary(result: Mapping[str, Any], per_request: int = 1) -> dict[str, Any]:
    """Throughput, latency percentiles (from scheduled send time) and failures of one wrk run."""
    latencies = np.concatenate([np.asarray(c["latencies"], float) for c in result["connections"]])
    statuses: dict[str, int] = {}
    for c in result["connections"]:
        for status, n in (c["statuses"] or {}).items():
            statuses[status] = statuses.get(status, 0) + int(n)
    failed = sum(n for s, n in statuses.items() if s != "200") + int(result["socket_errors"])
    if not len(latencies):  # nothing was answered within the run
        nothing = round(float(result["duration_s"]) * 1000, 2)
        times = dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "max_ms", "wrk_p99_ms"), nothing)
        return {"requests": 0, "per_s": 0.0, **times, "failed": failed}
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) * per_request / result["duration_s"], 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p90_ms": round(float(np.percentile(latencies, 90)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "max_ms": round(float(latencies.max()), 2),
        "wrk_p99_ms": round(float(result["wrk_p99_ms"]), 2),
        "failed": failed,
    }
