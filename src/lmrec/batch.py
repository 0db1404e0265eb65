"""Batch recommendation (`lmrec recommend`): every listed user's top-k from an artefact,
one JSON line each, in this process or sharded over Ray workers, byte for byte the same.

Users are ranked in chunks of `CHUNK` through `Pipeline.rank` (the path the server
answers from); a Ray worker loads the artefact once and ranks whole chunks, so both
paths rank the same batches and write the same lines in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmrec.distributed import Cluster
    from lmrec.pipeline import Pipeline

__all__ = ["CHUNK", "Ranked", "write_recommendations"]

#: Users ranked at once, and the unit of work of a Ray worker.
CHUNK = 1000


@dataclass(frozen=True)
class _Job:
    """What every chunk is ranked with: the artefact, the list length and the knobs."""

    model_dir: str
    k: int
    knobs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranked:
    """The outcome of `write_recommendations`: lists written and users the artefact did
    not know (they got the cold-start list)."""

    n_users: int
    n_unknown: int


def _open(job: _Job) -> tuple[Pipeline, _Job]:
    """The pipeline serving the artefact (loaded once per process)."""
    from lmrec.artifacts import load_artifact
    from lmrec.pipeline import Pipeline

    return Pipeline.from_artifact(load_artifact(job.model_dir)), job


def _rank_chunk(state: tuple[Pipeline, _Job], user_ids: Sequence[str]) -> tuple[str, int]:
    """One chunk's JSON lines (`{"user_id", "items"}`), and how many users were unknown."""
    from lmrec.pipeline import Query

    pipeline, job = state
    queries = [Query(user_id=u, k=job.k, knobs=job.knobs, explain=False) for u in user_ids]
    lines = [
        json.dumps({"user_id": user, "items": ranked.item_ids()}) + "\n"
        for user, ranked in zip(user_ids, pipeline.rank(queries), strict=True)
    ]
    return "".join(lines), sum(not pipeline.known_user(u) for u in user_ids)


def write_recommendations(
    model_dir: str | Path,
    user_ids: Sequence[str],
    out: str | Path,
    k: int = 10,
    knobs: dict[str, Any] | None = None,
    *,
    cluster: Cluster | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Ranked:
    """Write each user's top-`k` (with re-ranking `knobs`) as JSON lines to `out`, in the
    order of `user_ids`. With a Ray `cluster` the chunks are ranked by its workers (every
    node must read `model_dir`). `on_chunk(n)` is called as each chunk of n users is done.
    """
    job = _Job(str(Path(model_dir).resolve()), k, dict(knobs or {}))
    chunks = [list(user_ids[lo : lo + CHUNK]) for lo in range(0, len(user_ids), CHUNK)]
    report = on_chunk or (lambda n: None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if cluster is not None:
        from lmrec.distributed import map_ordered

        done = map_ordered(
            _rank_chunk, chunks, job, setup=_open, on_result=lambda i, _: report(len(chunks[i]))
        )
        out.write_text("".join(text for text, _ in done), encoding="utf-8")
        return Ranked(len(user_ids), sum(n for _, n in done))
    state = _open(job)
    unknown = 0
    with out.open("w", encoding="utf-8") as fh:
        for chunk in chunks:
            text, n_unknown = _rank_chunk(state, chunk)
            fh.write(text)
            unknown += n_unknown
            report(len(chunk))
    return Ranked(len(user_ids), unknown)
