"""How `lmrec serve --workers N` sizes each worker's native thread pools."""

from __future__ import annotations

import pytest

from lmrec.serving.workers import worker_threads


@pytest.mark.parametrize(
    ("cores", "workers", "threads"),
    [(2, 1, 2), (2, 2, 1), (8, 2, 4), (8, 3, 2), (1, 4, 1), (16, 16, 1)],
)
def test_each_worker_gets_its_share_of_the_cores_and_at_least_one(
    cores: int, workers: int, threads: int
) -> None:
    assert worker_threads(cores, workers) == threads
