"""The one object that turns a query into recommendations, offline and online.

A `Pipeline` is built from an `Artifact` (model, vocabularies, catalogue, item
vectors) and answers a `Query` with a list of `Recommendation`s. The HTTP server
holds one and never ranks anything itself; evaluation and simulation use the same
object. The decision layer runs here: the model (one strategy, or `Fused` for several)
scores, a free-text query steers (negated phrases lower matching items),
filters and exclusions mask, the re-rankers of `lmrec.ranking.rerank` apply the
request's knobs (MMR, exposure cap, boosts, not-interested suppression), and
every item gets a faithful `ItemExplanation` (`lmrec.ranking.explain`).

Items added after training (`add_items`) get indexes beyond the model's range;
they are scored from their text vectors (similarity to the user's history and
query) when vectors and an encoder are available, and are otherwise not
recommendable until the next training run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec.data.catalog import LIST_FIELDS, Catalog
from lmrec.data.interactions import Histories
from lmrec.data.vocabulary import Vocabulary
from lmrec.errors import LmrecError
from lmrec.models.base import Recommender
from lmrec.ranking.rerank import MmrPenalty, MmrRelevance, RerankOptions, rerank
from lmrec.ranking.topk import top_k

if TYPE_CHECKING:
    from lmrec.artifacts import Artifact

__all__ = ["Encoder", "ItemExplanation", "Pipeline", "Query", "Recommendation"]

#: A text encoder: texts in, one L2-normalisable float32 row per text out.
Encoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Query:
    """Who to recommend for and under which constraints.

    `history` (external item ids, oldest first) is appended to the known user's
    training history; `negative` items (not interested) and `exclude` ids are never
    returned; with `exclude_seen`, nor is anything in the combined history.
    `filters` keep items whose field equals the value (or, for list fields like
    `categories`, contains it); a list of values means any of them.
    `use_trained_history=False` ignores the artefact's copy of the user's history
    (after the user asked to be erased). `text` is a free-text query, used when an
    encoder is available; negated phrases in it ("nothing scary", "fragrance-free")
    lower the items that match them.

    Re-ranking knobs (None = the model's default, see `RerankOptions`):
    `mmr_lambda` (1 = relevance only), `mmr_penalty` ("max" or "mean" similarity),
    `mmr_relevance` ("minmax" or "exp" scaling), `exposure_cap` items per `exposure_field`
    value, `boosts` attribute token -> boost in standard deviations
    (`{"brand=Acme": 1.0}`). `context` (e.g. `{"hour": 21, "device": "mobile"}`)
    feeds a learned fusion's context features. `explain=False` skips explanations.
    """

    user_id: str | None = None
    history: Sequence[str] = ()
    k: int = 10
    exclude: Sequence[str] = ()
    negative: Sequence[str] = ()
    filters: Mapping[str, Any] = field(default_factory=dict)
    exclude_seen: bool = True
    use_trained_history: bool = True
    text: str | None = None
    mmr_lambda: float | None = None
    mmr_penalty: MmrPenalty | None = None
    mmr_relevance: MmrRelevance | None = None
    exposure_cap: int | None = None
    exposure_field: str | None = None
    boosts: Mapping[str, float] = field(default_factory=dict)
    context: Mapping[str, Any] = field(default_factory=dict)
    explain: bool = True


@dataclass(frozen=True)
class ItemExplanation:
    """Why one item was recommended, as facts (external ids) and the text composed from them.

    `contributions`: (history item id, weight) from the scoring computation of
    `contributor`, largest first; `strategy`: the strategy that proposed the item,
    `strategy_ranks` every fused strategy's 0-based rank of it; `interest`: the
    label of the user's interest it serves; `shared_attributes` with the history;
    `rank_changes`: places gained (+) or lost (-) per knob (`query`, `mmr`,
    `exposure_cap`, `boosts`, `not_interested`); `text`: plain language.
    """

    strategy: str
    contributor: str
    contributions: list[tuple[str, float]]
    strategy_ranks: dict[str, int]
    interest: str | None
    shared_attributes: list[str]
    rank_changes: dict[str, int]
    text: str


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its score, the reasons it was chosen and their facts."""

    item_id: str
    score: float
    reasons: list[str]
    explanation: ItemExplanation | None = None


@dataclass(frozen=True, eq=False)
class _ItemSpace:
    """An immutable snapshot of the item side; replaced whole when items change."""

    ids: Vocabulary
    catalog: Catalog
    active: np.ndarray  # bool: False for deleted items
    vectors: np.ndarray | None  # (n, d) L2-normalised; zero rows where unknown
    has_vector: np.ndarray  # bool
    filter_cache: dict[tuple[str, frozenset[str]], np.ndarray] = field(default_factory=dict)


def _token(value: object) -> str | None:
    """A catalogue or filter value as the string filters compare (2025.0 and 2025 are "2025")."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def _attribute_rows(catalog: Catalog, items: np.ndarray) -> tuple[sp.csr_matrix, list[str]]:
    """The binary attribute-token matrix of some items and its column names."""
    index: dict[str, int] = {}
    rows, cols = [], []
    for r, i in enumerate(items):
        if 0 <= int(i) < len(catalog):
            for token in catalog.attributes(int(i)):
                rows.append(r)
                cols.append(index.setdefault(token, len(index)))
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(items), len(index))
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, list(index)


def _groups(catalog: Catalog, items: np.ndarray, field_name: str) -> np.ndarray:
    """Exposure group per item: an id for the first value of `field_name` (-1 = none)."""
    frame = catalog.frame
    if field_name not in frame.columns:
        raise LmrecError(f"unknown exposure field {field_name!r}")
    ids: dict[str, int] = {}
    out = np.full(len(items), -1, dtype=np.int64)
    for r, i in enumerate(items):
        if not 0 <= int(i) < len(frame):
            continue
        value = frame.at[int(i), field_name]
        if isinstance(value, list):
            value = value[0] if value else None
        token = _token(value)
        if token:
            out[r] = ids.setdefault(token, len(ids))
    return out


class Pipeline:
    """One strategy plus the item space around it: `recommend(Query) -> [Recommendation]`.

    Thread-safe: readers take a snapshot of the item space; `add_items` and
    `remove_items` build a new one and swap it in under a lock.
    """

    def __init__(
        self,
        model: Recommender,
        items: Vocabulary,
        catalog: Catalog,
        users: Vocabulary | None = None,
        history_indptr: np.ndarray | None = None,
        history_items: np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        encoder: Encoder | None = None,
        version: str = "unversioned",
        strategy: str | None = None,
    ):
        n = len(items)
        self.model = model
        self.users = users or Vocabulary()
        self._indptr = (
            history_indptr
            if history_indptr is not None
            else np.zeros(len(self.users) + 1, np.int64)
        )
        self._hist = history_items if history_items is not None else np.zeros(0, np.int32)
        self.encoder = encoder
        self.version = version
        self.strategy = strategy or type(model).__name__
        vectors = None if item_vectors is None else _normalise(item_vectors)
        self._space = _ItemSpace(
            ids=items.copy(),
            catalog=catalog,
            active=np.ones(n, dtype=bool),
            vectors=vectors,
            has_vector=np.full(n, vectors is not None, dtype=bool),
        )
        self._lock = threading.Lock()
        self._popular: np.ndarray | None = None

    @classmethod
    def from_artifact(cls, artifact: Artifact, encoder: Encoder | None = None) -> Pipeline:
        """A pipeline serving a loaded artefact; `encoder` makes new items' vectors."""
        return cls(
            artifact.model,
            artifact.items,
            artifact.catalog,
            users=artifact.users,
            history_indptr=artifact.history_indptr,
            history_items=artifact.history_items,
            item_vectors=artifact.item_vectors,
            encoder=encoder,
            version=artifact.version,
            strategy=artifact.strategy,
        )

    # -- item side ---------------------------------------------------------------

    @property
    def n_items(self) -> int:
        """Items known now (trained plus added), deleted ones included."""
        return len(self._space.ids)

    @property
    def has_vectors(self) -> bool:
        """Whether items carry text vectors (so new items can be scored from text)."""
        return self._space.vectors is not None

    def item_ids(self) -> list[str]:
        """Ids of all items that can be recommended (not deleted)."""
        space = self._space
        return [space.ids.id(int(i)) for i in np.flatnonzero(space.active)]

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
        rows: Sequence[Mapping[str, Any]],
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
            space = self._space
            vocab = space.ids.copy()
            idx = vocab.extend(ids)
            n_old, n_new = len(space.ids), len(vocab)
            old_frame = space.catalog.frame
            updated = old_frame.copy()
            is_new = idx >= n_old
            for pos in np.flatnonzero(~is_new):
                row = frame.frame.iloc[int(pos)]
                for column, value in row.items():
                    if column not in updated:
                        updated[column] = pd.Series([None] * len(updated), dtype=object)
                    elif updated[column].dtype != object:
                        updated[column] = updated[column].astype(object)
                    updated.at[int(idx[pos]), column] = value
            # Only the first occurrence of a repeated new id is appended; later ones replace it.
            new_rows = frame.frame.iloc[np.flatnonzero(is_new)]
            new_rows = (
                new_rows.assign(_idx=idx[is_new])
                .drop_duplicates("_idx", keep="last")
                .drop(columns="_idx")
            )
            catalog = Catalog(updated).extend(new_rows) if len(new_rows) else Catalog(updated)
            active = np.concatenate([space.active, np.ones(n_new - n_old, dtype=bool)])
            active[idx] = True
            has_vector = np.concatenate([space.has_vector, np.zeros(n_new - n_old, dtype=bool)])
            vecs = space.vectors
            if vecs is not None:
                vecs = np.concatenate([vecs, np.zeros((n_new - n_old, vecs.shape[1]), np.float32)])
                if vectors is not None:
                    vectors = np.asarray(vectors, dtype=np.float32)
                    if vectors.shape != (len(ids), vecs.shape[1]):
                        raise LmrecError(
                            f"item vectors have shape {vectors.shape}, expected ({len(ids)}, {vecs.shape[1]}) "
                            "(was the encoder the one the artefact was built with?)"
                        )
                    vecs[idx] = _normalise(vectors)
                    has_vector[idx] = True
            self._space = _ItemSpace(vocab, catalog, active, vecs, has_vector)
            return int(n_new - n_old)

    def remove_items(self, ids: Sequence[str]) -> int:
        """Stop recommending these items; returns how many were active."""
        with self._lock:
            space = self._space
            idx = space.ids.indexes(ids, missing="drop")
            idx = idx[space.active[idx]]
            if not len(idx):
                return 0
            active = space.active.copy()
            active[idx] = False
            self._space = _ItemSpace(
                space.ids, space.catalog, active, space.vectors, space.has_vector
            )
            return len(np.unique(idx))

    # -- queries -----------------------------------------------------------------

    def known_user(self, user_id: str) -> bool:
        """Whether the artefact holds training history for this user."""
        return user_id in self.users

    def _trained_history(self, user_id: str) -> np.ndarray:
        u = self.users.get(user_id)
        if u < 0:
            return np.zeros(0, dtype=np.int64)
        return self._hist[self._indptr[u] : self._indptr[u + 1]].astype(np.int64)

    def _filter_mask(self, space: _ItemSpace, filters: Mapping[str, Any]) -> np.ndarray:
        keep = np.ones(len(space.ids), dtype=bool)
        frame = space.catalog.frame
        for name, wanted in filters.items():
            raw = [wanted] if isinstance(wanted, (str, int, float)) else list(wanted)
            values = frozenset(t for t in map(_token, raw) if t is not None)
            key = (name, values)
            mask = space.filter_cache.get(key)
            if mask is None:
                if name not in frame.columns or name == "item":
                    known = sorted(
                        c for c in frame.columns if c not in ("item", "description", "summary")
                    )
                    raise LmrecError(f"unknown filter field {name!r}; known: {', '.join(known)}")
                column = frame[name]
                if name in LIST_FIELDS or column.map(lambda v: isinstance(v, list)).any():
                    mask = np.fromiter(
                        (
                            bool(values.intersection(map(_token, v)))
                            if isinstance(v, list)
                            else _token(v) in values
                            for v in column
                        ),
                        dtype=bool,
                        count=len(column),
                    )
                else:
                    mask = np.fromiter(
                        (_token(v) in values for v in column), dtype=bool, count=len(column)
                    )
                space.filter_cache[key] = mask
            keep &= mask
        return keep

    def _encode_query(self, text: str | None) -> tuple[np.ndarray | None, np.ndarray]:
        """The unit vector of the query's positive part and those of its negated phrases."""
        empty = np.zeros((0, 0), dtype=np.float32)
        if not text or self.encoder is None or self._space.vectors is None:
            return None, empty
        from lmrec.ranking.steer import parse_query, steering_vectors

        return steering_vectors(parse_query(text), self.encoder)

    def rerank_options(self, query: Query) -> RerankOptions:
        """The model's default re-ranking knobs with the query's overrides."""
        base = getattr(self.model, "config", None)
        make = getattr(base, "rerank_options", None)
        opts: RerankOptions = make() if callable(make) else RerankOptions()
        changes: dict[str, Any] = {}
        if query.mmr_lambda is not None:
            changes["mmr_lambda"] = query.mmr_lambda
        if query.mmr_penalty is not None:
            changes["mmr_penalty"] = query.mmr_penalty
        if query.mmr_relevance is not None:
            changes["mmr_relevance"] = query.mmr_relevance
        if query.exposure_cap is not None:
            changes["exposure_cap"] = query.exposure_cap
        if query.exposure_field is not None:
            changes["exposure_field"] = query.exposure_field
        if query.boosts:
            changes["boosts"] = {**opts.boosts, **dict(query.boosts)}
        return opts.model_copy(update=changes) if changes else opts

    def _history(self, query: Query, space: _ItemSpace) -> np.ndarray:
        trained = (
            self._trained_history(query.user_id)
            if query.user_id is not None and query.use_trained_history
            else np.zeros(0, np.int64)
        )
        extra = (
            space.ids.indexes(query.history, missing="drop")
            if query.history
            else np.zeros(0, np.int64)
        )
        return np.concatenate([trained, extra]).astype(np.int64)

    def recommend(self, query: Query) -> list[Recommendation]:
        """The top `query.k` items for a query, best first, with reasons and explanations."""
        if query.k < 1:
            return []
        space = self._space
        n = len(space.ids)
        history = self._history(query, space)
        options = self.rerank_options(query)
        query_vec, negative_vecs = self._encode_query(query.text)

        m = self.model.n_items
        cold = len(history) == 0
        if cold:
            # Nothing known about the user yet: popularity, until their first event arrives.
            model_scores = self._popularity()
        else:
            hist = Histories.from_lists([history])
            relevance = getattr(self.model, "relevance", None)
            if callable(relevance):
                qv = None if query_vec is None else query_vec[None, :]
                model_scores = relevance(hist, qv, [dict(query.context)])[0]
            else:
                model_scores = self.model.score(hist)[0]
        scores = np.full(n, -np.inf, dtype=np.float32)
        scores[: min(m, n)] = model_scores[: min(m, n)]
        finite = model_scores[np.isfinite(model_scores)]
        scale = float(np.abs(finite).max()) if len(finite) else 1.0
        scale = scale if scale > 0 else 1.0

        content_only = np.zeros(n, dtype=bool)
        steered = query_vec is not None or len(negative_vecs) > 0
        base = scores.copy()
        if space.vectors is not None:
            vec_hist = history[space.has_vector[history]] if len(history) else history
            profile = space.vectors[vec_hist].mean(axis=0) if len(vec_hist) else None
            if profile is not None and query_vec is not None:
                profile = profile / max(float(np.linalg.norm(profile)), 1e-12) + query_vec
            elif profile is None:
                profile = query_vec
            if n > m and profile is not None:
                # Items newer than the model: similarity of their text to the user's history.
                new = np.arange(m, n)[space.has_vector[m:]]
                profile = profile / max(float(np.linalg.norm(profile)), 1e-12)
                scores[new] = (space.vectors[new] @ profile) * scale
                content_only[new] = True
            base = scores.copy()
            if steered:
                from lmrec.ranking.steer import steer

                # A free-text query steers every item with a vector, negated phrases downwards.
                scores[: min(m, n)] = steer(
                    scores[: min(m, n)],
                    space.vectors[: min(m, n)],
                    query_vec,
                    negative_vecs,
                    scale,
                )

        banned = ~space.active
        if query.exclude_seen and len(history):
            banned[history] = True
        negative_idx = (
            space.ids.indexes(query.negative, missing="drop")
            if query.negative
            else np.zeros(0, np.int64)
        )
        for ids in (query.exclude, query.negative):
            if ids:
                banned[space.ids.indexes(ids, missing="drop")] = True
        if query.filters:
            banned |= ~self._filter_mask(space, query.filters)
        scores[banned] = -np.inf
        base[banned] = -np.inf

        depth = max(options.depth, query.k)
        wide = 5 * depth if options.exposure_cap is not None else depth
        cand = top_k(scores[None, :], wide)[0]
        cand = cand[cand >= 0]
        if not len(cand):
            return []
        vectors = space.vectors[cand] if space.vectors is not None else None
        neg_vectors = None
        if space.vectors is not None and len(negative_idx):
            neg_vectors = space.vectors[negative_idx[space.has_vector[negative_idx]]]
        attrs: sp.csr_matrix | None = None
        tokens: list[str] = []
        if options.boosts:
            attrs, tokens = _attribute_rows(space.catalog, cand)
        groups = (
            _groups(space.catalog, cand, options.exposure_field) if options.exposure_cap else None
        )
        result = rerank(
            cand,
            scores[cand],
            options,
            query.k,
            vectors=vectors,
            groups=groups,
            attributes=attrs,
            tokens=tokens,
            negative_vectors=neg_vectors,
            mmr_vectors=self._mmr_vectors(cand),
        )
        top = result.items
        final_scores = scores.copy()
        final_scores[top] = result.scores
        moved = {int(i): result.moved(int(i)) for i in top}
        if steered:
            for i in top:
                before = int((base > base[i]).sum())
                after = int((scores > scores[i]).sum())
                if before != after and np.isfinite(base[i]):
                    moved[int(i)] = {"query": before - after, **moved[int(i)]}
        return self._explain(
            space,
            top,
            final_scores,
            history,
            content_only,
            query_vec is not None,
            cold,
            moved,
            query.explain,
        )

    def _mmr_vectors(self, cand: np.ndarray) -> np.ndarray | None:
        """The model's own MMR similarity space (`Fused.mmr_space`) when it covers `cand`."""
        own = getattr(self.model, "similarity_vectors", None)
        if not callable(own) or not len(cand) or int(cand.max()) >= self.model.n_items:
            return None  # new items: text vectors (the default) are all there is
        out = own(cand)
        return None if out is None else np.asarray(out, dtype=np.float32)

    def _popularity(self) -> np.ndarray:
        """Training interactions per item: the answer for a user with no history yet."""
        if self._popular is None:
            counts = np.bincount(self._hist, minlength=self.model.n_items)[: self.model.n_items]
            self._popular = counts.astype(np.float32)
        return self._popular

    def _interests(self, space: _ItemSpace, history: np.ndarray) -> Any:
        """The user's interests in text space (None without vectors)."""
        if space.vectors is None or not len(history):
            return None
        from lmrec.models.multi_interest import MultiInterest

        model = getattr(self.model, "interests", None) and self.model
        if model is None:
            fused_parts = getattr(self.model, "parts_", [])
            model = next((p for p in fused_parts if isinstance(p, MultiInterest)), None)
        if model is None or getattr(model, "n_items", 0) < len(space.vectors):
            model = MultiInterest()
            model.vectors_ = space.vectors
            model.n_items = len(space.vectors)
            model._fitted = True
        return model

    def _explain(
        self,
        space: _ItemSpace,
        top: np.ndarray,
        scores: np.ndarray,
        history: np.ndarray,
        content_only: np.ndarray,
        used_query: bool,
        cold: bool = False,
        moved: Mapping[int, dict[str, int]] | None = None,
        explain: bool = True,
    ) -> list[Recommendation]:
        from lmrec.models.multi_interest import interest_label
        from lmrec.ranking.explain import (
            Explanation,
            contributions,
            shared_attributes,
            top_contributions,
        )

        moved = moved or {}
        m = self.model.n_items
        trained = top[(top < m) & ~content_only[top]] if len(top) else top
        contrib_rows: dict[int, np.ndarray] = {}
        attributions: dict[int, Any] = {}
        if explain and not cold and len(trained):
            rows = contributions(self.model, history, trained)
            contrib_rows = {int(i): rows[r] for r, i in enumerate(trained)}
            attribute = getattr(self.model, "attribute", None)
            if callable(attribute):
                attributions = dict(zip(trained.tolist(), attribute(history, trained), strict=True))
        new_items = top[content_only[top]] if len(top) else top
        if explain and len(new_items) and space.vectors is not None and len(history):
            from lmrec.ranking.explain import _profile_terms

            terms = _profile_terms(space.vectors, history, new_items, 0.0, len(history))
            contrib_rows.update({int(i): terms[r] for r, i in enumerate(new_items)})
        vec_history = history[space.has_vector[history]] if space.vectors is not None else history
        interest_model = self._interests(space, vec_history) if explain else None
        found = interest_model.interests(vec_history) if interest_model is not None else []
        serving = (
            interest_model.serving_interest(vec_history, top) if interest_model is not None else []
        )

        def name(j: int) -> str:
            return space.catalog.title(j) or space.ids.id(j)

        out = []
        for pos, i in enumerate(top):
            i = int(i)
            att = attributions.get(i)
            if content_only[i]:
                strategy = "content"
                reasons = ["content: text similarity to your history"]
            else:
                strategy = "popular" if cold else (att.strategy if att else self.strategy)
                reasons = ["popular" if cold else f"strategy: {strategy}"]
            if used_query:
                reasons.append("matches your query")
            cited = top_contributions(history, contrib_rows[i]) if i in contrib_rows else []
            if cited:
                reasons.append(f"similar to: {name(cited[0][0])}")
            explanation = None
            if explain:
                interest = None
                if found and pos < len(serving) and serving[pos] >= 0:
                    interest = interest_label(space.catalog, found[serving[pos]].members)
                facts = Explanation(
                    item=i,
                    strategy=strategy,
                    contributor=strategy if content_only[i] or not att else att.strategy,
                    contributions=cited,
                    strategy_ranks=dict(att.ranks) if att else {},
                    interest=interest,
                    shared_attributes=shared_attributes(space.catalog, i, history),
                    rank_changes=dict(moved.get(i, {})),
                    query_match=(1.0 if used_query else None),
                )
                explanation = ItemExplanation(
                    strategy=facts.strategy,
                    contributor=facts.contributor,
                    contributions=[(space.ids.id(j), round(w, 6)) for j, w in cited],
                    strategy_ranks=facts.strategy_ranks,
                    interest=facts.interest,
                    shared_attributes=facts.shared_attributes,
                    rank_changes=facts.rank_changes,
                    text=facts.sentence(name),
                )
            out.append(Recommendation(space.ids.id(i), float(scores[i]), reasons, explanation))
        return out

    def similar(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Items most like one item: by the model for trained items, else by text vectors."""
        space = self._space
        i = space.ids.get(item_id)
        if i < 0 or not space.active[i]:
            raise LmrecError(f"unknown item {item_id!r}")
        n, m = len(space.ids), self.model.n_items
        scores = np.full(n, -np.inf, dtype=np.float32)
        if i < m:
            s = self.model.score(Histories.from_lists([[i]]))[0]
            scores[: min(m, n)] = s[: min(m, n)]
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

    def warm(self) -> None:
        """Run one query of each kind so the first real request pays no start-up cost."""
        self.recommend(Query(k=10))
        if len(self.users):
            self.recommend(Query(user_id=self.users.id(0), k=10))
