"""Full-ranking evaluation: a pipeline ranks all items for every test user.

The lists come from `Pipeline.rank`, the same code that answers the server's
requests (cold start, new items, filters and re-ranking included), so a figure
measured here is a figure of the served system. No sampled negatives. Each user's
input items (training plus validation, by default) are removed from the
candidates; the relevant items are the user's test targets. Ranking runs in
batches so memory stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.data.catalog import Catalog
from lmrec.data.interactions import Interactions
from lmrec.data.vocabulary import Vocabulary
from lmrec.evaluation.metrics import (
    accuracy_metrics,
    gini,
    head_items,
    intra_list_diversity,
    novelty,
)
from lmrec.models.base import Recommender
from lmrec.pipeline import Pipeline, Query, UserHistories

__all__ = ["EvalOptions", "ModelEvaluation", "evaluate_model", "evaluate_pipeline", "head_items"]


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate.

    `ks` cut-offs; `save_top` how many ranked items to keep per user (for
    `--save-rankings` and beyond-accuracy); `batch_size` users scored at once
    (None: sized so one batch of scores is ~64 MB); `head_share` share of items,
    by training popularity, that count as head; `short_history` users with at
    most this many input interactions count as short-history users.
    """

    ks: tuple[int, ...] = (10, 20)
    save_top: int = 100
    batch_size: int | None = None
    head_share: float = 0.2
    short_history: int = 5
    exclude_history: bool = True


@dataclass(eq=False)
class ModelEvaluation:
    """Everything measured for one model: per-user values, their means, and the rankings."""

    users: np.ndarray
    per_user: dict[str, np.ndarray]
    summary: dict[str, float]
    segments: dict[str, dict[str, float]]
    segment_users: dict[str, np.ndarray]
    rankings: np.ndarray
    eval_seconds: float
    fit_seconds: float = 0.0
    #: What the model was fit on: "train" or "train+valid".
    fit_on: str = "train"
    extra: dict[str, float] = field(default_factory=dict)
    #: What fitting chose (`Recommender.describe`: e.g. the fusion and its weights).
    chosen: dict[str, Any] = field(default_factory=dict)


def _batch_size(n_items: int, requested: int | None) -> int:
    if requested:
        return requested
    return int(max(64, min(4096, 16_000_000 // max(1, n_items))))


def evaluate_model(
    model: Recommender,
    history: Interactions,
    targets: Interactions,
    item_popularity: np.ndarray | None = None,
    item_vectors: np.ndarray | sp.spmatrix | None = None,
    options: EvalOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> ModelEvaluation:
    """`evaluate_pipeline` for a fitted model and its input log, without vocabularies.

    The model is wrapped in a `Pipeline` over index ids, with `history` as the
    users' histories (the model input and the exclusion set); `item_vectors` drive
    intra-list diversity only.
    """
    n_items = max(history.n_items, targets.n_items)
    users = Vocabulary(range(max(history.n_users, targets.n_users)))
    pipeline = Pipeline(
        model,
        Vocabulary(range(n_items)),
        Catalog.empty(n_items),
        histories=UserHistories.from_interactions(users, history.with_sizes(len(users), n_items)),
    )
    return evaluate_pipeline(pipeline, targets, item_popularity, item_vectors, options, progress)


def evaluate_pipeline(
    pipeline: Pipeline,
    targets: Interactions,
    item_popularity: np.ndarray | None = None,
    item_vectors: np.ndarray | sp.spmatrix | None = None,
    options: EvalOptions | None = None,
    progress: Callable[[int], None] | None = None,
    knobs: dict[str, object] | None = None,
) -> ModelEvaluation:
    """Rank all items for every user with targets, through `pipeline`, and measure.

    The pipeline's user histories are the model input (and the exclusion set);
    `targets` (same user and item indexes) the relevant items. `item_popularity`
    (training counts) drives novelty, popularity and head/tail segments;
    `item_vectors` drive intra-list diversity; `knobs` are every query's re-ranking
    knobs. `progress` is called with the number of users done after each batch.
    """
    opts = options or EvalOptions()
    start = time.perf_counter()
    n_items = targets.n_items
    kmax = max(max(opts.ks), opts.save_top)
    truth = targets.matrix(binary=True)
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    known = pipeline.histories
    history_lengths = np.diff(known.indptr)
    history_lengths = np.concatenate(
        [history_lengths, np.zeros(max(0, targets.n_users - len(history_lengths)), np.int64)]
    )
    popularity = item_popularity if item_popularity is not None else known.item_counts(n_items)
    head = head_items(np.asarray(popularity[:n_items]), opts.head_share)

    batch = _batch_size(max(n_items, pipeline.n_items), opts.batch_size)
    rankings = np.full((len(users), kmax), -1, dtype=np.int64)
    for lo in range(0, len(users), batch):
        rows = users[lo : lo + batch]
        queries = [
            Query(
                user_id=known.users.id(int(u)),
                k=kmax,
                exclude_seen=opts.exclude_history,
                knobs=knobs or {},
                explain=False,
            )
            for u in rows
        ]
        for r, answer in enumerate(pipeline.rank(queries)):
            top = answer.items[answer.items < n_items]
            rankings[lo + r, : len(top)] = top
        if progress:
            progress(len(rows))

    # Relevance of each ranked slot; -1 slots are never relevant.
    t = truth[users]
    n_rel = np.diff(t.indptr)
    hits = np.zeros(rankings.shape, dtype=bool)
    for lo in range(0, len(users), batch):
        dense = t[lo : lo + batch].toarray() > 0
        ranked = rankings[lo : lo + batch]
        hits[lo : lo + batch] = np.take_along_axis(dense, np.maximum(ranked, 0), axis=1) & (
            ranked >= 0
        )

    per_user: dict[str, np.ndarray] = {}
    for k in opts.ks:
        for name, per in accuracy_metrics(hits, n_rel, k).items():
            per_user[f"{name}@{k}"] = per

    summary = {name: float(v.mean()) if len(v) else float("nan") for name, v in per_user.items()}
    k0 = min(opts.ks)
    top = rankings[:, :k0]
    valid_top = np.where(top >= 0, top, 0)
    exposure = np.bincount(top[top >= 0], minlength=n_items)
    summary[f"coverage@{k0}"] = float((exposure > 0).mean())
    summary[f"gini@{k0}"] = gini(exposure)
    per_user[f"novelty@{k0}"] = novelty(
        valid_top, np.asarray(popularity[:n_items]), len(known.users)
    )
    per_user[f"avg_popularity@{k0}"] = np.asarray(popularity, dtype=np.float64)[valid_top].mean(
        axis=1
    )
    per_user[f"long_tail_share@{k0}"] = (~head[valid_top]).mean(axis=1)
    if item_vectors is not None:
        ild = (
            np.concatenate(
                [
                    intra_list_diversity(valid_top[lo : lo + 2048], item_vectors)
                    for lo in range(0, len(users), 2048)
                ]
            )
            if len(users)
            else np.zeros(0)
        )
        per_user[f"diversity@{k0}"] = ild
    for name in ("novelty", "avg_popularity", "long_tail_share", "diversity"):
        key = f"{name}@{k0}"
        if key in per_user:
            summary[key] = float(per_user[key].mean()) if len(users) else float("nan")

    segments, segment_users = _segments(
        hits, rankings, t, n_rel, head, history_lengths[users], per_user, opts
    )
    return ModelEvaluation(
        users=users,
        per_user=per_user,
        summary=summary,
        segments=segments,
        segment_users=segment_users,
        rankings=rankings[:, : opts.save_top],
        eval_seconds=time.perf_counter() - start,
    )


def _segments(
    hits: np.ndarray,
    rankings: np.ndarray,
    truth: sp.csr_matrix,
    n_rel: np.ndarray,
    head: np.ndarray,
    history_lengths: np.ndarray,
    per_user: dict[str, np.ndarray],
    opts: EvalOptions,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Accuracy on tail-item vs head-item targets, and short- vs long-history users.

    Item segments restrict each user's targets to that segment (users with at
    least one such target); user segments average the users' overall values.
    Per-user segment values are added to `per_user` as `SEGMENT:metric@k`.
    """
    segments: dict[str, dict[str, float]] = {}
    segment_users: dict[str, np.ndarray] = {}
    n_tail = np.diff(truth.multiply(sp.csr_matrix((~head).astype(np.float32))).tocsr().indptr)
    tail_hits = hits & ~head[np.maximum(rankings, 0)] & (rankings >= 0)
    item_segments = (
        ("tail_items", n_tail, tail_hits),
        ("head_items", n_rel - n_tail, hits & ~tail_hits),
    )
    for name, seg_rel, seg_hits in item_segments:
        idx = np.flatnonzero(seg_rel > 0)
        for k in opts.ks:
            seg = accuracy_metrics(seg_hits[idx], seg_rel[idx], k)
            for metric in ("ndcg", "recall"):
                per_user[f"{name}:{metric}@{k}"] = seg[metric]
        segment_users[name] = idx
    short = history_lengths <= opts.short_history
    for name, mask in (("short_history", short), ("long_history", ~short)):
        idx = np.flatnonzero(mask)
        for k in opts.ks:
            for metric in ("ndcg", "recall"):
                per_user[f"{name}:{metric}@{k}"] = per_user[f"{metric}@{k}"][idx]
        segment_users[name] = idx
    for name, idx in segment_users.items():
        values = {
            key.split(":", 1)[1]: float(v.mean()) if len(v) else float("nan")
            for key, v in per_user.items()
            if key.startswith(name + ":")
        }
        values["n_users"] = float(len(idx))
        segments[name] = values
    return segments, segment_users
