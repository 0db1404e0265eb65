"""How `lmrec serve` sizes each server process's native thread pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lmrec.serving.workers import worker_threads


@pytest.mark.parametrize(
    ("cores", "workers", "wanted", "threads"),
    [(2, 1, 1, 1), (2, 1, 4, 2), (2, 2, 2, 1), (8, 2, 8, 4), (8, 3, 2, 2), (1, 4, 3, 1)],
)
def test_each_process_gets_what_it_asks_within_its_share_of_the_cores(
    cores: int, workers: int, wanted: int, threads: int
) -> None:
    assert worker_threads(cores, workers, wanted) == threads


def test_a_server_process_runs_blas_on_one_thread_by_default() -> None:
    script = (  # on every core (an xdist worker runs on its share), then numpy's pools
        "import json, os; os.sched_setaffinity(0, set(range(os.cpu_count())));"
        "import numpy, threadpoolctl;"
        "from lmrec.serving.settings import Settings;"
        "from lmrec.serving.workers import limit_native_threads;"
        "before = [p['num_threads'] for p in threadpoolctl.threadpool_info()];"
        "limit_native_threads(Settings(model_dir='m', db='d'));"
        "after = [p['num_threads'] for p in threadpoolctl.threadpool_info()];"
        "print(json.dumps([before, after]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout
    before, after = json.loads(out)
    assert after and set(after) == {1}
    if (os.cpu_count() or 1) > 1:
        assert max(before) > 1  # numpy's own default would have used more
