"""Wall time of one study run by 1 process vs 2 (`lmrec tune --jobs`), same trials.

    python benchmarks/tune_parallel.py --dataset ml-100k --models itemknn,ease --trials 16 --repeats 3

Each repeat runs both settings back to back (alternating which goes first) into fresh
journals and times only the search (tune.json's `search_seconds`). Prints the median
per setting and their ratio. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def search_seconds(dataset: str, model: str, trials: int, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "lmrec.cli",
            "tune",
            "--dataset",
            dataset,
            "--model",
            model,
            "--trials",
            str(trials),
            "--jobs",
            str(jobs),
            "--out",
            tmp,
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        return float(json.loads((Path(tmp) / "tune.json").read_text())["search_seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--models", default="itemknn,ease")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="Write the figures as JSON here.")
    args = parser.parse_args()
    doc = {}
    for model in args.models.split(","):
        times: dict[int, list[float]] = {1: [], 2: []}
        for r in range(args.repeats):
            for jobs in (1, 2) if r % 2 == 0 else (2, 1):
                times[jobs].append(search_seconds(args.dataset, model, args.trials, jobs))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        doc[model] = {"jobs1_s": times[1], "jobs2_s": times[2], "median_ratio": round(two / one, 3)}
        print(model, json.dumps(doc[model]), flush=True)
    if args.out:
        args.out.write_text(
            json.dumps({"dataset": args.dataset, "trials": args.trials, **doc}, indent=2)
        )


if __name__ == "__main__":
    main()
