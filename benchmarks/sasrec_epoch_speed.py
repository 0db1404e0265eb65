"""Seconds per training epoch of a (text-)SASRec, by thread count: the 2-core time check.

Usage:
    LMREC_DATA_DIR=/path/to/datasets python benchmarks/sasrec_epoch_speed.py \
        --dataset amazon-beauty --text none,init,fuse --threads 2,1 --epochs 3

Trains `--epochs` epochs (with the per-epoch validation, as a real run does) for each
thread count and prints wall and CPU seconds per epoch and their median. Multiply a run's
CPU minutes to its best epoch (from `sasrec_loo.py`) by the 2-thread/1-thread ratio to
project its wall time on 2 cores.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from lmrec.data.loaders import load_dataset
from lmrec.data.splitting import leave_one_out
from lmrec.models.base import TrainingData
from lmrec.models.sasrec import SASRec, TextSASRec
from sasrec_loo import text_vectors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="amazon-beauty", help="a name `lmrec datasets` lists")
    ap.add_argument(
        "--text", default="none,init,fuse", help="TextSASRec views ('' = ID-only SASRec)"
    )
    ap.add_argument("--threads", default="2,1", help="comma list of torch thread counts")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    ds = load_dataset(args.dataset)
    split = leave_one_out(ds.interactions)
    vectors = text_vectors(ds) if args.text else None
    medians = {}
    for threads in (int(t) for t in args.threads.split(",")):
        config = {"epochs": args.epochs, "num_threads": threads, "progress": False}
        model = TextSASRec({**config, "text": args.text}) if args.text else SASRec(config)
        model.fit(TrainingData(split.train, item_vectors=vectors, valid=split.valid))
        wall = [round(r["seconds"], 1) for r in model.training_log_]
        cpu = [round(r["cpu_seconds"], 1) for r in model.training_log_]
        medians[threads] = float(np.median(wall))
        print(
            json.dumps(
                {
                    "threads": threads,
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "median_wall_s": medians[threads],
                }
            )
        )
    fewest = min(medians)
    for threads, median in medians.items():
        print(
            f"{threads} threads: {median:.1f} s/epoch, {median / medians[fewest]:.2f}x of {fewest}"
        )


if __name__ == "__main__":
    main()
