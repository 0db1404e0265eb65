"""`Pipeline`: the one object that turns queries into ranked lists, offline and online.

`rank(queries)` is the implementation; `recommend(query)` (the server) and
`recommend_batch(queries)` (the CLI, evaluation, simulation) are views of it. A
query's list is made in this order, each step its own part:

1. history (`UserHistories`: the known user's log, plus the query's own items),
2. scores (`score_batch`: the model, cold start, new items from text, steering),
3. masks (inactive, consumed, excluded, not-interested, filtered items),
4. re-ranking (`lmrec.ranking.rerank`, with the pipeline's `RerankOptions` updated
   by the query's knobs),
5. explanations (`explain`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lmrec.data.catalog import Catalog
from lmrec.data.dataset import Dataset
from lmrec.data.interactions import Histories
from lmrec.data.vocabulary import Vocabulary
from lmrec.errors import LmrecError
from lmrec.models.base import Recommender
from lmrec.pipeline._explainer import explain
from lmrec.pipeline._history import UserHistories
from lmrec.pipeline._items import ItemSpace
from lmrec.pipeline._query import PipelineConfig, Query, RankedList, Recommendation
from lmrec.pipeline._scoring import ScoredBatch, score_batch
from lmrec.ranking.ann import ItemIndex
from lmrec.ranking.explain import Explanation
from lmrec.ranking.rerank import RerankOptions, rerank
from lmrec.ranking.steer import parse_query, steering_vectors
from lmrec.ranking.topk import top_k

if TYPE_CHECKING:
    from lmrec.artifacts import Artifact

__all__ = ["Encoder", "Pipeline", "TrainingSource"]

#: A text encoder: texts in, one L2-normalisable float32 row per text out.
Encoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True, eq=False)
class TrainingSource:
    """What a pipeline's model was fitted on: the dataset, the text model of its vectors,
    and the validation it held out (as `lmrec.artifacts.fit_for_artifact` reports it)."""

    dataset: Dataset
    text_model: str | None = None
    validation: dict[str, Any] | None = None


#: Scores held at once while ranking a batch (queries x items), about 64 MB of float32.
_BATCH_CELLS = 16_000_000


class Pipeline:
    """A fitted strategy and the item space around it: queries in, ranked lists out.

    Thread-safe: a query works on one snapshot of the item space; `add_items` and
    `remove_items` build a new one and swap it in under a lock. `source` (the data
    the model was fitted on) lets `save` write an artefact of a pipeline built in
    Python (`lmrec.fit`).
    """

    def __init__(
        self,
        model: Recommender,
        items: Vocabulary,
        catalog: Catalog,
        histories: UserHistories | None = None,
        item_vectors: np.ndarray | None = None,
        encoder: Encoder | None = None,
        config: PipelineConfig | None = None,
        version: str = "unversioned",
        strategy: str | None = None,
        source: TrainingSource | None = None,
    ):
        self.model = model
        self.source = source
        self.histories = histories or UserHistories.empty()
        self.encoder = encoder
        self.config = config or PipelineConfig()
        self.version = version
        self.strategy = strategy or type(model).__name__
        self._space = ItemSpace.build(items, catalog, item_vectors, min(model.n_items, len(items)))
        self._lock = threading.Lock()
        self._popular = self.histories.item_counts(self._space.n_trained)
        self._index: ItemIndex | None = None
        self._index_lock = threading.Lock()

    @classmethod
    def from_artifact(cls, artifact: Artifact, encoder: Encoder | None = None) -> Pipeline:
        """A pipeline serving a loaded artefact; `encoder` makes new items' vectors."""
        return cls(
            artifact.model,
            artifact.items,
            artifact.catalog,
            histories=UserHistories(
                artifact.users, artifact.history_indptr, artifact.history_items
            ),
            item_vectors=artifact.item_vectors,
            encoder=encoder,
            config=artifact.pipeline_config,
            version=artifact.version,
            strategy=artifact.strategy,
        )

    # -- item side ---------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        """Items known now (trained plus added), deleted ones included."""
        return len(self._space)

    @property
    def has_vectors(self) -> bool:
        """Whether items carry text vectors (so new items can be scored from text)."""
        return self._space.vectors is not None

    @property
    def items(self) -> Vocabulary:
        """The item vocabulary now (trained plus added items)."""
        return self._space.ids

    def item_ids(self) -> list[str]:
        """Ids of all items that can be recommended (not deleted)."""
        space = self._space
        return [space.ids.id(int(i)) for i in np.flatnonzero(space.active)]

    def item_rows(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Catalogue rows (JSON-ready fields, with `id`) of the known items among `ids`.

        Deleted items are included (`is_active` says which are served); unknown ids are
        left out. One snapshot of the item space answers for all of them.
        """
        from lmrec.artifacts import catalog_rows

        space = self._space
        idx = space.ids.indexes(list(dict.fromkeys(ids)), missing="drop")
        frame = space.catalog.frame.iloc[idx]
        rows = catalog_rows(Catalog(frame), [space.ids.id(int(i)) for i in idx])
        return {row["id"]: row for row in rows}

    def knows_item(self, item_id: str) -> bool:
        """Whether the item was ever known (trained or added), deleted or not."""
        return item_id in self._space.ids

    def is_active(self, item_id: str) -> bool:
        """Whether the item exists and is not deleted."""
        space = self._space
        i = space.ids.get(item_id)
        return i >= 0 and bool(space.active[i])

    def add_items(
        self,
        ids: Sequence[str],
        rows: Sequence[dict[str, object]],
        vectors: np.ndarray | None = None,
    ) -> int:
        """Add or replace items (catalogue rows without the id); returns how many are new.

        When the pipeline has item vectors, `vectors` (one row per id) are used or,
        when absent, computed by the encoder from the items' text. Without either,
        new items are stored but cannot be scored (they are never recommended).
        Upserting a deleted item makes it recommendable again.
        """
        if len(ids) != len(rows):
            raise LmrecError("add_items: one catalogue row per id is needed")
        if not ids:
            return 0
        frame = Catalog(pd.DataFrame([dict(r) for r in rows], index=range(len(rows))))
        if vectors is None and self._space.vectors is not None and self.encoder is not None:
            vectors = self.encoder(frame.texts())
        with self._lock:
            before = len(self._space)
            self._space = self._space.with_items(ids, frame.frame, vectors)
            return len(self._space) - before

    def remove_items(self, ids: Sequence[str]) -> int:
        """Stop recommending these items; returns how many were active."""
        with self._lock:
            space = self._space
            idx = space.ids.indexes(ids, missing="drop")
            idx = np.unique(idx[space.active[idx]])
            if len(idx):
                self._space = space.without(idx)
            return len(idx)

    # -- queries -----------------------------------------------------------------------

    def forget_users(self, user_ids: Sequence[str]) -> None:
        """Drop these users' histories from the pipeline (erasure): they are served as new users."""
        with self._lock:
            self.histories = self.histories.without(user_ids)

    def known_user(self, user_id: str) -> bool:
        """Whether the pipeline holds a history for this user."""
        return user_id in self.histories

    def options(self, query: Query) -> RerankOptions:
        """The pipeline's re-ranking options with the query's knobs applied."""
        return self.config.rerank.updated(query.knobs)

    def recommend(self, query: Query | str | None = None, /, **fields: Any) -> list[Recommendation]:
        """The top `k` items for one query, best first, with reasons and explanations.

        `query` is a `Query`, or a user id with the other `Query` fields as keywords
        (`pipeline.recommend("u42", k=5)`, `pipeline.recommend(history=["i1"])`).
        """
        if not isinstance(query, Query):
            query = Query(user_id=query, **fields)
        elif fields:
            raise TypeError("pass either a Query or keyword fields, not both")
        return self.rank([query])[0].recommendations()

    def recommend_batch(self, queries: Sequence[Query]) -> list[list[Recommendation]]:
        """`recommend` for many queries at once (the same lists, scored in batches)."""
        return [r.recommendations() for r in self.rank(queries)]

    def rank(self, queries: Sequence[Query]) -> list[RankedList]:
        """The ranked list of every query: the one implementation behind every entry point."""
        space = self._space
        batch = max(1, _BATCH_CELLS // max(1, len(space)))
        out: list[RankedList] = []
        for lo in range(0, len(queries), batch):
            out += self._rank_batch(space, queries[lo : lo + batch])
        return out

    def candidate_index(self) -> ItemIndex | None:
        """The approximate index over the model's item embeddings, built on first use, when
        the model scores by an inner product over at least `config.ann.min_items` items.

        Items the model gained since (a content strategy's `add_items`) are inserted live.
        """
        options = self.config.ann
        if self.model.n_items < max(1, options.min_items):
            return None
        index = self._index
        if index is not None and len(index) >= self.model.n_items:
            return index  # the common case: no embeddings fetched (some build them)
        with self._index_lock:
            rows = self.model.item_embeddings()
            if rows is None:
                return None
            if self._index is None:
                self._index = ItemIndex(rows, options)
            elif len(self._index) < len(rows):
                self._index.add(rows[len(self._index) :])
            return self._index

    def _history(self, query: Query, space: ItemSpace) -> np.ndarray:
        trained = (
            self.histories.get(query.user_id)
            if query.user_id is not None and query.use_trained_history
            else np.zeros(0, np.int64)
        )
        if not query.history:
            return trained
        extra = space.ids.indexes(query.history, missing="drop")
        return np.concatenate([trained, extra]).astype(np.int64)

    def _steering(self, text: str | None) -> tuple[np.ndarray | None, np.ndarray]:
        """The unit vector of a query's positive part and those of its negated phrases."""
        if not text or self.encoder is None or self._space.vectors is None:
            return None, np.zeros((0, 0), dtype=np.float32)
        return steering_vectors(parse_query(text), self.encoder)

    def _banned(self, space: ItemSpace, query: Query, history: np.ndarray) -> np.ndarray:
        banned = ~space.active
        if query.exclude_seen and len(history):
            banned[history] = True
        for ids in (query.exclude, query.negative):
            if ids:
                banned[space.ids.indexes(ids, missing="drop")] = True
        if query.filters:
            banned |= ~space.filter_mask(query.filters)
        return banned

    def _rank_batch(self, space: ItemSpace, queries: Sequence[Query]) -> list[RankedList]:
        if not queries:
            return []
        histories = [self._history(q, space) for q in queries]
        options = [self.options(q) for q in queries]
        steering = [self._steering(q.text) for q in queries]
        depth = max(max(o.depth, q.k) for o, q in zip(options, queries, strict=True))
        widths = [
            (5 if o.exposure_cap is not None else 1) * max(o.depth, q.k)
            for o, q in zip(options, queries, strict=True)
        ]

        def scored_for(rows: list[int], index: ItemIndex | None) -> ScoredBatch:
            batch = score_batch(
                self.model,
                space,
                self._popular,
                [histories[r] for r in rows],
                [steering[r][0] for r in rows],
                [steering[r][1] for r in rows],
                depth,
                index,
                # The history is banned afterwards: ask for that many more.
                max(self.config.ann.candidates, max(widths)) + max(len(histories[r]) for r in rows),
            )
            for s, r in zip(batch.scores, rows, strict=True):
                s[self._banned(space, queries[r], histories[r])] = -np.inf
            return batch

        scored = scored_for(list(range(len(queries))), self.candidate_index())
        # Bans and filters can leave an approximate query too few candidates: score it whole.
        short = [
            r
            for r in np.flatnonzero(scored.approximate).tolist()
            if np.isfinite(scored.scores[r]).sum() < widths[r]
        ]
        if short:
            exact = scored_for(short, None)
            scored.scores[short] = exact.scores
            scored.approximate[short] = False
            for r, unsteered in zip(short, exact.unsteered, strict=True):
                scored.unsteered[r] = unsteered
        scores = scored.scores
        candidates = top_k(scores, max(widths))
        return [
            self._finish(
                space,
                q,
                o,
                histories[r],
                candidates[r, : widths[r]],
                scored,
                r,
                steering[r][0] is not None,
            )
            for r, (q, o) in enumerate(zip(queries, options, strict=True))
        ]

    def _finish(
        self,
        space: ItemSpace,
        query: Query,
        options: RerankOptions,
        history: np.ndarray,
        cand: np.ndarray,
        scored: ScoredBatch,
        r: int,
        used_query: bool,
    ) -> RankedList:
        """Re-rank one query's candidates and explain the list."""
        row = scored.scores[r]
        cand = cand[cand >= 0]
        negative = (
            space.ids.indexes(query.negative, missing="drop")
            if query.negative
            else np.zeros(0, np.int64)
        )
        neg_vectors = None
        if space.vectors is not None and len(negative):
            neg_vectors = space.vectors[negative[space.has_vector[negative]]]
        moved: dict[int, dict[str, int]] = {}
        if query.k < 1 or not len(cand):
            top, final = np.zeros(0, np.int64), np.zeros(0, np.float32)
        elif options.list_wise or options.boosts or neg_vectors is not None:
            attrs, tokens = space.attributes(cand) if options.boosts else (None, [])
            groups = space.groups(cand, options.exposure_field) if options.exposure_cap else None
            result = rerank(
                cand,
                row[cand],
                options,
                query.k,
                vectors=None if space.vectors is None else space.vectors[cand],
                groups=groups,
                attributes=attrs,
                tokens=tokens,
                negative_vectors=neg_vectors,
                mmr_vectors=space.similarity_rows(cand, options.mmr_space)
                if options.mmr_lambda < 1.0
                else None,
            )
            top, final = result.items, result.scores
            moved = {int(i): result.moved(int(i)) for i in top}
        else:
            top = cand[: query.k]
            final = row[top]
        cold = bool(scored.cold[r])
        unsteered = scored.unsteered[r]
        explanations = None
        if query.explain:
            if unsteered is not None:
                base = np.where(np.isfinite(row), unsteered, -np.inf)
                for i in top[: self.config.explain_limit].tolist():
                    before, after = int((base > base[i]).sum()), int((row > row[i]).sum())
                    if before != after and np.isfinite(base[i]):
                        moved[i] = {"query": before - after, **moved.get(i, {})}
            shown = top[: self.config.explain_limit]
            explained: list[Explanation | None] = list(
                explain(
                    self.model,
                    self.strategy,
                    space,
                    shown,
                    history,
                    scored.content_only,
                    used_query,
                    cold,
                    moved,
                )
            )
            explanations = explained + [None] * (len(top) - len(shown))
        return RankedList(
            items=top,
            scores=np.asarray(final, dtype=np.float32),
            ids=space.ids.id,
            reasons=self._reasons(space, scored.content_only, cold, used_query),
            explanations=explanations,
        )

    def _reasons(
        self, space: ItemSpace, content_only: np.ndarray, cold: bool, used_query: bool
    ) -> Callable[[int, Explanation | None], list[str]]:
        def reasons(i: int, explanation: Explanation | None) -> list[str]:
            if content_only[i]:
                out = ["content: text similarity to your history"]
            elif cold:
                out = ["popular"]
            else:
                out = [f"strategy: {explanation.strategy if explanation else self.strategy}"]
            if used_query:
                out.append("matches your query")
            if explanation is not None and explanation.contributions:
                cited = space.ids.get(explanation.contributions[0][0])
                out.append(f"similar to: {space.name(cited)}")
            return out

        return reasons

    def similar(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items most like one item: by the model for trained items, else by text vectors."""
        space = self._space
        i = space.ids.get(item_id)
        if i < 0 or not space.active[i]:
            raise LmrecError(f"unknown item {item_id!r}")
        n, m = len(space), space.n_trained
        scores = np.full(n, -np.inf, dtype=np.float32)
        if i < m:
            s = self.model.score(Histories.from_lists([[i]]))[0]
            scores[:m] = s[:m]
            reason = f"strategy: {self.strategy} (item-to-item)"
        elif space.vectors is not None and space.has_vector[i]:
            scores[space.has_vector] = space.vectors[space.has_vector] @ space.vectors[i]
            reason = "content: text similarity"
        else:
            return []
        scores[~space.active] = -np.inf
        scores[i] = -np.inf
        top = top_k(scores[None, :], k)[0]
        return [
            Recommendation(space.ids.id(int(t)), float(scores[t]), [reason]) for t in top if t >= 0
        ]

    def save(self, path: str | Path) -> Path:
        """Write this pipeline as a new versioned artefact (model, data, vectors, knobs).

        Items added since fitting are not part of the model; `lmrec serve` replays
        them from its state store. Needs the data the model was fitted on (`source`).
        With vectors from a `lmrec.text` encoder, the artefact carries its int8 ONNX
        runtime for new text (exported once; needs the `text` extra unless cached).
        """
        from lmrec.artifacts import build_artifact
        from lmrec.text import BatchEncoder

        if self.source is None:
            raise LmrecError(
                "this pipeline does not hold the data it was fitted on; it came from an "
                "artefact, which is saved already"
            )
        dataset = self.source.dataset
        vectors = self._space.vectors
        return build_artifact(
            dataset,
            self.model,
            path,
            item_vectors=None if vectors is None else vectors[: dataset.n_items],
            text_model_identity=self.source.text_model,
            pipeline=self.config,
            validation=self.source.validation,
            text_encoder=self.encoder if isinstance(self.encoder, BatchEncoder) else None,
        )

    def warm(self) -> None:
        """Run one query of each kind so the first real request pays no start-up cost."""
        self.candidate_index()
        self.recommend(Query(k=10))
        if len(self.histories.users):
            self.recommend(Query(user_id=self.histories.users.id(0), k=10))
