"""A hot swap and a restart with 1,000 items added online: how long they take, and who waits.

The server runs a text-reading artefact with `--encoder minilm`, so every item added
online gets a MiniLM vector. After `--items` upserts, a client keeps upserting one
item at a time (and asking for recommendations) while the admin loads a copy of the
artefact; the figures are the swap's duration, the slowest upsert and recommendation
during it, and then the time a restart takes to be ready on the same state file.
`--src` runs another checkout (a baseline commit) under the same script.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/serving_swap_items.py \
        --dataset ml-100k --model content --items 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from _serving_common import cached_artifact, load_arguments, serve, wait_ready

_WORDS = [
    "space",
    "love",
    "comet",
    "rose",
    "garden",
    "rocket",
    "letter",
    "dawn",
    "galaxy",
    "wedding",
    "moon",
    "kiss",
]


def _item(n: int) -> dict[str, Any]:
    words = [_WORDS[(n * 7 + k) % len(_WORDS)] for k in range(4)]
    return {"item_id": f"online-{n}", "title": " ".join(words), "description": f"part {n}"}


def one_run(model: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    copy = model.parent / f"{model.name}-swap-copy"
    if not copy.exists():
        shutil.copytree(model, copy)
    scopes = ("read", "ingest", "admin")
    with serve(model, root, args.port, scopes, args.src, "minilm") as served:
        http = httpx.Client(
            base_url=served.url, headers={"Authorization": f"Bearer {served.key}"}, timeout=600
        )
        for start in range(0, args.items, 100):
            batch = [_item(n) for n in range(start, min(start + 100, args.items))]
            http.post("/v1/items", json={"items": batch}).raise_for_status()
        waits: dict[str, list[float]] = {"upsert": [], "recommend": []}
        done = threading.Event()

        def client() -> None:
            with httpx.Client(
                base_url=served.url, headers={"Authorization": f"Bearer {served.key}"}, timeout=600
            ) as c:
                n = 0
                while not done.is_set():
                    n += 1
                    t = time.perf_counter()
                    c.post("/v1/items", json={"items": [_item(10_000_000 + n)]})
                    waits["upsert"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    c.post("/v1/recommendations", json={"history": ["online-1"], "k": 10})
                    waits["recommend"].append(time.perf_counter() - t)

        thread = threading.Thread(target=client)
        thread.start()
        time.sleep(0.5)
        t = time.perf_counter()
        swap = http.post("/v1/admin/models", json={"path": str(copy)})
        swap_s = time.perf_counter() - t
        done.set()
        thread.join()
        swap.raise_for_status()
    # The same state file, a fresh process: how long until it answers ready.
    t = time.perf_counter()
    with serve_again(model, root, args):
        restart_s = time.perf_counter() - t
    return {
        "swap_s": round(swap_s, 2),
        "restart_s": round(restart_s, 2),
        "max_upsert_ms": round(max(waits["upsert"]) * 1000, 1),
        "max_recommend_ms": round(max(waits["recommend"]) * 1000, 1),
        "upserts_during_swap": len(waits["upsert"]),
    }


def serve_again(model: Path, root: Path, args: argparse.Namespace) -> Any:
    """`lmrec serve` on the state file left by the run (serve() would start a fresh one)."""
    import contextlib
    import os
    import subprocess
    import sys

    @contextlib.contextmanager
    def running() -> Any:
        lmrec = shutil.which("lmrec", path=str(Path(sys.executable).parent)) or "lmrec"
        command = [lmrec, "serve", "--model-dir", str(model), "--db", str(root / "state.db")]
        command += ["--allow-anonymous", "--port", str(args.port), "--encoder", "minilm"]
        env = dict(os.environ)
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        with open(root / "server.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        try:
            wait_ready(f"http://127.0.0.1:{args.port}", process, timeout=600)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)

    return running()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, port=8951, seconds=0)
    parser.set_defaults(dataset="ml-100k", model="content")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = cached_artifact(args.work, args.dataset, args.model, {})
    runs = []
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(model, Path(tmp), args))
        print(f"run {r}: {runs[-1]}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "src": str(args.src) if args.src else "this checkout",
        "items": args.items,
        "median": {k: statistics.median(run[k] for run in runs) for k in runs[0]},
        "runs": runs,
    }
    print(json.dumps(result["median"]))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
