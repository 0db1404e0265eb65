"""The ranking queue: requests ranked together get exactly the lists they get alone."""

from __future__ import annotations

import threading

import pytest
from tests.test_api import frames

import lmrec
from lmrec.pipeline import Pipeline, Query
from lmrec.serving.batching import RankingQueue
from lmrec.serving.encoders import HashingEncoder


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    events, items = frames()
    return lmrec.fit(events, model="ease", items=items, encoder=HashingEncoder(dim=32))


def test_batched_lists_equal_lone_lists_and_a_bad_query_fails_alone(pipe: Pipeline) -> None:
    queries = [Query(user_id=f"u{u}", k=4, explain=True) for u in range(12)]
    queries.append(Query(user_id="u0", k=4, filters={"no_such_field": "x"}))
    sizes: list[int] = []
    ranking = RankingQueue(max_batch=5, on_batch=sizes.append)
    results: dict[int, object] = {}
    gate = threading.Event()

    def ask(i: int) -> None:
        gate.wait()
        try:
            results[i] = ranking.recommend(pipe, queries[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(queries))]
    for t in threads:
        t.start()
    ranking.start()
    gate.set()
    for t in threads:
        t.join(timeout=30)
    ranking.close()
    assert sum(sizes) == len(queries) and max(sizes) <= 5
    for i, q in enumerate(queries[:-1]):
        assert results[i] == pipe.recommend(q), i
    assert isinstance(results[len(queries) - 1], Exception)
    assert "no_such_field" in str(results[len(queries) - 1])


def test_recommend_before_start_is_refused(pipe: Pipeline) -> None:
    with pytest.raises(RuntimeError, match="start"):
        RankingQueue().recommend(pipe, Query(user_id="u0"))
