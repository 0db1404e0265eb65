"""What an experiment costs a request: /v1/recommendations latency with an A/A test running vs none.

Alternating rounds in one run, each on a fresh server and state file: one with no
experiment, one with a 50/50 experiment whose arms are both the serving config (an
A/A, so the ranking work is the same and only the experiment machinery differs:
assignment, the group-committed exposure log written before each answer, the
response fields); repeated `--repeats` times, the order flipping every round. Recommendations come
at `--rps` (open loop, latency from the scheduled send time) while events arrive at
`--eps`, as in the other load benchmarks. The figure is the median over rounds of
each round's p99 and the ratio on/off.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/experiment_overhead.py \
        --dataset ml-100k --model ease --rps 100 --eps 500 --seconds 20 --repeats 5 \
        --out benchmarks/results/experiment-overhead-ml-100k.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _serving_common import (
    cached_artifact,
    id_files,
    load_arguments,
    needs_encoder,
    serve,
    start_wrk,
    summary,
    wrk_result,
)


def _round(served: Any, ids: tuple[Path, Path], args: argparse.Namespace) -> dict[str, Any]:
    events = start_wrk(served, "events", args.eps / args.batch, 2, args.seconds, ids, args.batch)
    recs = start_wrk(served, "recommend", args.rps, args.connections, args.seconds, ids)
    out = {"recommend": summary(wrk_result(recs)), "events": summary(wrk_result(events))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, port=8941, seconds=20)
    parser.set_defaults(dataset="ml-100k")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    model = cached_artifact(args.work, args.dataset, args.model, {})
    rounds: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    scopes = ("read", "ingest", "admin")
    for r in range(args.repeats):
        # A fresh server and state file per measurement (events make histories grow, and
        # longer histories cost more to explain), off and on in alternating order.
        for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                ids = id_files(model, root)
                with serve(
                    model, root, args.port, scopes, args.src, needs_encoder(model)
                ) as served:
                    headers = {"Authorization": f"Bearer {served.key}"}
                    if mode == "on":
                        spec = {
                            "id": f"overhead-{r}",
                            "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
                        }
                        made = httpx.post(
                            f"{served.url}/v1/admin/experiments", json=spec, headers=headers
                        )
                        made.raise_for_status()
                    wrk_result(start_wrk(served, "recommend", 50, 2, 3, ids))  # warm-up
                    rounds[mode].append(_round(served, ids, args))
                    if mode == "on":
                        report = httpx.get(
                            f"{served.url}/v1/experiments/overhead-{r}/report",
                            headers=headers,
                            timeout=120,
                        ).json()
                        rounds["on"][-1]["exposures_logged"] = report["exposures_total"]
        p99 = {k: v[-1]["recommend"]["p99_ms"] for k, v in rounds.items()}
        print(f"round {r}: p99 off {p99['off']} ms, on {p99['on']} ms", flush=True)
    median = {k: statistics.median(x["recommend"]["p99_ms"] for x in v) for k, v in rounds.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/experiment_overhead.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "model": str(model.name),
        "rps": args.rps,
        "eps": args.eps,
        "seconds": args.seconds,
        "median_p99_ms": median,
        "ratio_on_off": round(median["on"] / median["off"], 3),
        "rounds": rounds,
    }
    print(json.dumps({k: result[k] for k in ("median_p99_ms", "ratio_on_off")}))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
