"""The server's ranking thread: requests that wait while it ranks are ranked together.

Ranking is numpy and Python work that holds the GIL for part of its time, so one
thread does it (several would only take turns). Under load, requests queue for that
thread; `RankingQueue` hands it every waiting request at once (at most `max_batch`),
and `Pipeline.recommend_batch` scores them in one pass: one product against all item
vectors instead of one each, one set of sparse matrices, one candidate selection.
Nothing waits for a batch to fill: an idle server ranks a lone request at once, so
batching only changes what a busy server does, and makes each request cheaper exactly
when requests pile up. Each list is the one `Pipeline.recommend` makes alone (the
batch path is the served path; `tests/pipeline/test_parity.py`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from lmrec.pipeline import Pipeline, Query, Recommendation

__all__ = ["RankingQueue"]

log = logging.getLogger("lmrec.serving")


@dataclass(frozen=True, eq=False)
class _Job:
    pipeline: Pipeline
    query: Query
    done: Future[list[Recommendation]] = field(default_factory=Future)


class RankingQueue:
    """One thread that ranks queued (pipeline, query) jobs, up to `max_batch` at a time.

    `recommend` blocks its caller (a request's worker thread) until the list is made.
    A query that fails (an unknown filter field, say) fails alone: a batch that
    raises is ranked again one query at a time, so each caller gets its own answer.
    `on_batch(size)` is told the size of every batch (the server's metrics).
    """

    def __init__(self, max_batch: int = 8, on_batch: Callable[[int], None] = lambda n: None):
        if max_batch < 1:
            raise ValueError("RankingQueue: max_batch must be at least 1")
        self.max_batch, self.on_batch = max_batch, on_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> RankingQueue:
        """Start the ranking thread; returns `self`."""
        self._thread = threading.Thread(target=self._run, name="lmrec-ranking", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Rank what is queued, then stop the thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=60)
            self._thread = None

    def recommend(self, pipeline: Pipeline, query: Query) -> list[Recommendation]:
        """`pipeline.recommend(query)`, ranked in the ranking thread with whatever else waits."""
        if self._thread is None:
            raise RuntimeError("RankingQueue: start() it before ranking")
        job = _Job(pipeline, query)
        self._jobs.put(job)
        return job.done.result()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                return
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:  # rank what came before the stop, then end
                    stopping = True
                    break
                jobs.append(nxt)
            self.on_batch(len(jobs))
            self._rank(jobs)

    @staticmethod
    def _rank(jobs: list[_Job]) -> None:
        groups: dict[int, list[_Job]] = {}
        for job in jobs:  # an experiment's arms may rank with other pipelines
            groups.setdefault(id(job.pipeline), []).append(job)
        for group in groups.values():
            try:
                lists = group[0].pipeline.recommend_batch([j.query for j in group])
            except Exception as exc:  # each caller gets its own outcome
                if len(group) == 1:
                    group[0].done.set_exception(exc)
                    continue
                for job in group:
                    try:
                        job.done.set_result(job.pipeline.recommend(job.query))
                    except Exception as one:
                        job.done.set_exception(one)
                continue
            for job, recs in zip(group, lists, strict=True):
                job.done.set_result(recs)
