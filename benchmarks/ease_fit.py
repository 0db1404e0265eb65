"""EASE fit time on a dataset: lmrec's EASE against the same fit with a dense symmetrise.

The baseline is EASE as lmrec fitted it before 2026-12-07: the potri upper triangle
mirrored into a full float64 matrix, divided, then cast (three more items^2 float64
arrays). Both must give identical weights; the script checks that, then reports the
median of `--repeats` alternating fits of each.

    LMREC_DATA_DIR=../shared/datasets python benchmarks/ease_fit.py --dataset amazon-beauty
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from lmrec.data.loaders import load_dataset
from lmrec.models import ease
from lmrec.models.base import TrainingData


def dense_weights_from_upper(p: np.ndarray) -> np.ndarray:
    """The baseline's last step: P symmetrised, divided and cast as whole matrices."""
    p = np.triu(p) + np.triu(p, 1).T
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def fit(data: TrainingData, weights_from_upper: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """EASE's own fit, with its last step (B from potri's upper triangle) swapped in."""
    own = ease._weights_from_upper
    ease._weights_from_upper = weights_from_upper
    try:
        return ease.EASE().fit(data).weights_
    finally:
        ease._weights_from_upper = own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    data = TrainingData(ds.interactions, ds.catalog)
    times: dict[str, list[float]] = {"lmrec": [], "dense symmetrise": []}
    for rep in range(args.repeats):
        fitted = {}
        steps = (
            ("dense symmetrise", dense_weights_from_upper),
            ("lmrec", ease._weights_from_upper),
        )
        for name, step in steps:
            t0 = time.perf_counter()
            fitted[name] = fit(data, step)
            times[name].append(time.perf_counter() - t0)
        if rep == 0 and not np.array_equal(fitted["lmrec"], fitted["dense symmetrise"]):
            raise SystemExit("the two fits differ: the benchmark compares nothing")
        del fitted
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "n_items": ds.n_items,
                "seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
                "median_seconds": {k: round(v, 2) for k, v in med.items()},
                "speedup": round(med["dense symmetrise"] / med["lmrec"], 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
