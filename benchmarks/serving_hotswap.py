"""Hot swap under load: no failed request, and no connection ever sees the old model again.

Serves one artefact with `lmrec serve`, drives POST /v1/recommendations at `--rps`
(and events at `--eps`) from wrk on loopback as serving_load.py does, and a third of
the way into the run asks POST /v1/admin/models to switch to a second artefact (the
same strategy with other hyperparameters). Passes when every request got a 200, and
each connection's `model_version`s, in the order its responses completed, read
old ... old, new ... new: never new then old. Each wrk connection is its own thread
and sends one request at a time, so completion order per connection is well defined.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/serving_hotswap.py \
        --dataset amazon-beauty --old '{}' --new '{"reg": 150.0}' --rps 200 --eps 1000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _serving_common import (
    cached_artifact,
    id_files,
    load_arguments,
    serve,
    start_wrk,
    summary,
    wrk_result,
)


def swap(url: str, key: str, model: Path) -> dict[str, Any]:
    """Ask the server to serve `model`; returns the answer and how long the swap took."""
    start = time.perf_counter()
    r = httpx.post(
        f"{url}/v1/admin/models", json={"path": str(model)}, headers={"X-API-Key": key}, timeout=300
    )
    return {"status": r.status_code, "seconds": round(time.perf_counter() - start, 2), **r.json()}


def check(result: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Per connection: the versions seen in completion order, and whether any flipped back."""
    orders = [tuple(c["versions"] or ()) for c in result["connections"]]
    allowed = {(old,), (old, new), (new,)}
    return {
        "connections": len(orders),
        "saw_old_then_new": sum(o == (old, new) for o in orders),
        "flips_back": sum(int(c["flips"]) for c in result["connections"]),
        "bad_orders": [list(o) for o in orders if o not in allowed],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, port=8933, seconds=30)
    parser.add_argument("--old", default="{}", help="Hyperparameters of the first artefact.")
    parser.add_argument("--new", default='{"reg": 150.0}', help="... and of the second.")
    args = parser.parse_args()

    old = cached_artifact(args.work, args.dataset, args.model, json.loads(args.old))
    new = cached_artifact(args.work, args.dataset, args.model, json.loads(args.new))
    versions = [json.loads((m / "manifest.json").read_text())["version"] for m in (old, new)]
    root = Path(tempfile.mkdtemp(prefix="lmrec-hotswap-"))
    ids = id_files(old, root)
    with serve(old, root, args.port, ("read", "ingest", "admin")) as served:
        wrk_result(start_wrk(served, "recommend", 50, 2, 3, ids))  # warm-up
        events = None
        if args.eps > 0:
            rate = args.eps / args.batch
            events = start_wrk(served, "events", rate, 2, args.seconds + 2, ids, args.batch)
        recs = start_wrk(served, "recommend", args.rps, args.connections, args.seconds, ids)
        time.sleep(args.seconds / 3)
        swapped = swap(served.url, served.key, new)
        result = wrk_result(recs)
        out: dict[str, Any] = {"swap": swapped, "recommendations": summary(result)}
        out["order"] = check(result, *versions)
        if events is not None:
            out["events"] = summary(wrk_result(events), per_request=args.batch)
    ok = (
        swapped["status"] == 200
        and swapped["model_version"] == versions[1]
        and out["recommendations"]["failed"] == 0
        and out["order"]["flips_back"] == 0
        and not out["order"]["bad_orders"]
    )
    print(json.dumps({"passed": ok, **out}))
    if not ok:
        raise SystemExit("FAILED: a request failed or a connection saw the old model after the new")


if __name__ == "__main__":
    main()
