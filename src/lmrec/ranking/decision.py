"""The decision layer as a strategy: candidates from several strategies -> fusion -> re-rankers.

`Fused` is a `Recommender`, so `lmrec evaluate --models fused` and
`evaluate_model` measure the whole decision layer with the same full-ranking
protocol as any single strategy, and the serving `Pipeline` runs it like any
other model (with per-request knobs on top).

1. Candidates: each strategy's top `depth` items (history items left out).
2. Fusion: `learned` (a logistic ranker over `lmrec.ranking.fusion` features,
   trained on the validation split; falls back to RRF without validation data)
   or `rrf` (reciprocal rank fusion).
3. Re-rankers (`lmrec.ranking.rerank`): MMR with `mmr_lambda`, an exposure cap
   per `exposure_field` value, attribute `boosts`.

`score` returns a dense (queries x items) matrix whose order is the final list:
the re-ranked top `rerank_k` first, then the other candidates by fused
relevance, then every other item (below all candidates, in the first
strategy's order). `relevance` is the same before the re-rankers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from lmrec.data.interactions import Histories
from lmrec.errors import ConfigError
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.models.names import build_component
from lmrec.ranking.explain import contributions as _contributions
from lmrec.ranking.fusion import (
    FeatureContext,
    LogisticFusion,
    candidate_features,
    feature_names,
    reciprocal_rank_fusion,
)
from lmrec.ranking.rerank import MmrPenalty, MmrRelevance, RerankOptions, rerank
from lmrec.ranking.topk import top_k

__all__ = ["Attribution", "Fused", "FusedConfig"]


class FusedConfig(ModelConfig):
    """The decision layer's settings, flat so `--param fused.KEY=VALUE` reaches each one.

    `strategies`: names or import paths (a comma-separated string is accepted), each
    fitted with `strategy_params[name]`; `fusion`: `learned` or `rrf`; `depth`
    candidates per strategy; `rrf_k` the RRF constant; `reg` the logistic ranker's L2
    penalty; `train_queries` validation users sampled to train it with `negatives`
    negatives each; re-ranking: `mmr_lambda`, `exposure_field`, `exposure_cap`,
    `boosts` (token -> std devs; the string form is `brand=Acme:0.5,tags=vegan:1`),
    `rerank_depth` candidates the re-rankers choose from, `rerank_k` list places they fill
    (an evaluation at K <= `rerank_k` sees exactly the re-ranked list); `mmr_space` the
    item space MMR measures similarity in (`text` vectors, or `attributes`: the item's
    attribute tokens, e.g. genres, where text vectors of one domain are all alike) and
    `mmr_penalty` its redundancy term (`max` or `mean` similarity) and `mmr_relevance` how
    the fused relevance is scaled before mixing (`minmax` over the pool, or `exp`: the
    fused logit as odds against the best candidate; see `RerankOptions`); `seed`.
    """

    strategies: tuple[str, ...] = ("ease", "itemknn", "content", "multi-interest")
    strategy_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    fusion: Literal["learned", "rrf"] = "learned"
    depth: int = Field(100, ge=1)
    rrf_k: float = Field(60.0, gt=0.0)
    reg: float = Field(1.0, gt=0.0)
    train_queries: int = Field(5000, ge=1)
    negatives: int = Field(50, ge=1)
    mmr_lambda: float = Field(1.0, ge=0.0, le=1.0)
    exposure_field: str = "brand"
    exposure_cap: int | None = Field(None, ge=1)
    boosts: dict[str, float] = Field(default_factory=dict)
    rerank_depth: int = Field(100, ge=1)
    rerank_k: int = Field(20, ge=1)
    mmr_space: Literal["text", "attributes"] = "text"
    mmr_penalty: MmrPenalty = "max"
    mmr_relevance: MmrRelevance = "minmax"
    seed: int = 0

    @field_validator("strategies", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        if not value:
            raise ValueError("name at least one strategy")
        return value

    @field_validator("boosts", mode="before")
    @classmethod
    def _parse_boosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            out: dict[str, float] = {}
            for part in filter(None, (p.strip() for p in value.split(","))):
                token, _, amount = part.rpartition(":")
                if not token:
                    raise ValueError(f"boost {part!r}: expected field=value:amount")
                out[token] = float(amount)
            return out
        return value

    def rerank_options(self) -> RerankOptions:
        """The re-ranking knobs as `RerankOptions`."""
        return RerankOptions(
            mmr_lambda=self.mmr_lambda,
            exposure_field=self.exposure_field,
            exposure_cap=self.exposure_cap,
            boosts=self.boosts,
            depth=self.rerank_depth,
            mmr_penalty=self.mmr_penalty,
            mmr_relevance=self.mmr_relevance,
        )


@dataclass(frozen=True)
class Attribution:
    """Where a fused item came from: the strategy that ranked it best and every rank (0-based)."""

    strategy: str
    ranks: dict[str, int]


def _names_bytes(names: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(names).encode("utf-8"), dtype=np.uint8).copy()


def _bytes_names(data: np.ndarray) -> list[str]:
    text = bytes(np.asarray(data, dtype=np.uint8)).decode("utf-8")
    return text.split("\n") if text else []


class Fused(Recommender):
    """Several strategies fused and re-ranked (see the module docstring)."""

    Config = FusedConfig
    uses_validation = True
    config: FusedConfig
    uses_text = True

    def _parts(self) -> list[Recommender]:
        cfg = self.config
        unknown = set(cfg.strategy_params) - set(cfg.strategies)
        if unknown:
            raise ConfigError(f"strategy_params for strategies not in use: {sorted(unknown)}")
        return [build_component(s, cfg.strategy_params.get(s)) for s in cfg.strategies]

    # -- fitting -----------------------------------------------------------------------

    def _fit(self, data: TrainingData) -> None:
        self.parts_ = self._parts()
        for part in self.parts_:
            part.fit(data)
        self.n_items = max([data.n_items, *(p.n_items for p in self.parts_)])
        self._fit_context(data)
        self.fusion_ = "rrf"
        self.ranker_: LogisticFusion | None = None
        if self.config.fusion == "learned" and data.valid is not None and len(data.valid):
            self._fit_ranker(data)
        # Validation has done its job: strategies that do not use it are refit on it too.
        if data.valid is not None and len(data.valid):
            for part in self.parts_:
                if not part.uses_validation:
                    part.fit(data.merged())

    def _fit_context(self, data: TrainingData) -> None:
        n = self.n_items
        log = data.interactions
        pop = np.zeros(n, dtype=np.float32)
        pop[: log.n_items] = log.item_counts[:n]
        first = np.full(n, np.inf)
        if len(log):
            np.minimum.at(first, log.items, log.timestamps)
            lo, hi = float(log.timestamps.min()), float(log.timestamps.max())
            seen = np.isfinite(first)
            first[seen] = (first[seen] - lo) / max(hi - lo, 1e-12)
        first[~np.isfinite(first)] = 1.0
        if data.catalog is not None and len(data.catalog):
            attrs, tokens = data.catalog.attribute_matrix()
            attrs = sp.vstack([attrs, sp.csr_matrix((max(0, n - attrs.shape[0]), attrs.shape[1]))])
            attrs = sp.csr_matrix(attrs)[:n]
        else:
            attrs, tokens = sp.csr_matrix((n, 0), dtype=np.float32), []
        vectors = None
        if data.item_vectors is not None:
            v = np.asarray(data.item_vectors, dtype=np.float32)
            vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        self.context_ = FeatureContext(pop, first.astype(np.float32), sp.csr_matrix(attrs), vectors)
        self.tokens_ = list(tokens)

    def _fit_ranker(self, data: TrainingData) -> None:
        cfg = self.config
        assert data.valid is not None
        rng = np.random.default_rng(cfg.seed)
        users = np.flatnonzero(data.valid.user_counts > 0)
        if len(users) > cfg.train_queries:
            users = np.sort(rng.choice(users, cfg.train_queries, replace=False))
        xs, ys = [], []
        truth = data.valid.matrix(binary=True)
        for lo in range(0, len(users), 512):
            batch = users[lo : lo + 512]
            hist = data.interactions.histories(batch)
            scores = self._strategy_scores(hist)
            cands = self._candidates(scores, hist)
            feats = candidate_features(
                scores, cands, cfg.depth, self.context_, [hist[q] for q in range(len(hist))]
            )
            t = truth[batch]
            for q in range(len(batch)):
                row = cands[q]
                ok = row >= 0
                pos = set(t.indices[t.indptr[q] : t.indptr[q + 1]].tolist())
                labels = np.array([int(i) in pos for i in row[ok]], dtype=np.float64)
                f = feats[q][ok]
                neg = np.flatnonzero(labels == 0)
                if len(neg) > cfg.negatives:
                    neg = rng.choice(neg, cfg.negatives, replace=False)
                keep = np.concatenate([np.flatnonzero(labels == 1), neg])
                xs.append(f[keep])
                ys.append(labels[keep])
        x = np.concatenate(xs) if xs else np.zeros((0, 1))
        y = np.concatenate(ys) if ys else np.zeros(0)
        if y.sum() < 2 or (y == 0).sum() < 2:
            return  # too little signal: keep reciprocal rank fusion
        self.ranker_ = LogisticFusion(cfg.reg).fit(x, y)
        self.fusion_ = "learned"

    # -- scoring -----------------------------------------------------------------------

    @property
    def strategy_names(self) -> list[str]:
        """Display names of the fused strategies, in config order."""
        return list(self.config.strategies)

    @property
    def feature_weights(self) -> dict[str, float]:
        """The learned ranker's weight per (standardised) feature; empty under RRF."""
        if self.ranker_ is None or self.ranker_.coef is None:
            return {}
        names = feature_names(self.strategy_names)
        return dict(zip(names, self.ranker_.coef.tolist(), strict=True))

    def _strategy_scores(self, histories: Histories) -> list[np.ndarray]:
        out = []
        for part in self.parts_:
            s = part.score(histories)
            if s.shape[1] < self.n_items:
                low = s.min(axis=1, keepdims=True) if s.shape[1] else np.zeros((len(s), 1))
                s = np.hstack([s, np.repeat(low, self.n_items - s.shape[1], axis=1)])
            out.append(s[:, : self.n_items].astype(np.float32))
        return out

    def _candidates(self, scores: list[np.ndarray], histories: Histories) -> np.ndarray:
        """(queries x c) union of each strategy's top `depth`, history left out; -1 pads."""
        mask = histories.to_csr(self.n_items)
        tops = []
        for s in scores:
            s = s.copy()
            coo = mask.tocoo()
            s[coo.row, coo.col] = -np.inf
            tops.append(top_k(s, self.config.depth))
        rows = []
        for q in range(len(histories)):
            items = np.concatenate([t[q] for t in tops])
            rows.append(np.unique(items[items >= 0]))
        width = max((len(r) for r in rows), default=0)
        out = np.full((len(rows), max(width, 1)), -1, dtype=np.int64)
        for q, r in enumerate(rows):
            out[q, : len(r)] = r
        return out

    def _fuse(
        self,
        scores: list[np.ndarray],
        cands: np.ndarray,
        histories: Histories,
        query_vectors: np.ndarray | None,
        contexts: list[dict[str, Any]] | None,
    ) -> np.ndarray:
        """Fused relevance of each candidate (queries x c); -inf on padding."""
        if self.ranker_ is not None:
            feats = candidate_features(
                scores,
                cands,
                self.config.depth,
                self.context_,
                [histories[q] for q in range(len(histories))],
                query_vectors,
                contexts,
            )
            fused = self.ranker_.score(feats)
        else:
            masked = []
            hist = histories.to_csr(self.n_items).tocoo()
            for s in scores:
                s = s.copy()
                s[hist.row, hist.col] = -np.inf
                masked.append(top_k(s, self.config.depth))
            dense = reciprocal_rank_fusion(masked, self.n_items, self.config.rrf_k)
            fused = np.take_along_axis(dense, np.maximum(cands, 0), axis=1)
        return np.where(cands >= 0, fused, -np.inf)

    def relevance(
        self,
        histories: Histories,
        query_vectors: np.ndarray | None = None,
        contexts: list[dict[str, Any]] | None = None,
    ) -> np.ndarray:
        """Dense fused scores before re-ranking (queries x n_items), all finite.

        Candidates keep their fused relevance; every other item scores below all
        candidates, ordered by the first strategy. `query_vectors` (unit rows, zero =
        none) and `contexts` feed the learned ranker's query and context features.
        """
        self._require_fitted()
        if len(histories) == 0:
            return np.zeros((0, self.n_items), dtype=np.float32)
        scores = self._strategy_scores(histories)
        cands = self._candidates(scores, histories)
        fused = self._fuse(scores, cands, histories, query_vectors, contexts)
        first = scores[0].astype(np.float64)
        z = (first - first.mean(axis=1, keepdims=True)) / np.maximum(
            first.std(axis=1, keepdims=True), 1e-12
        )
        out = np.empty((len(histories), self.n_items), dtype=np.float64)
        for q in range(len(histories)):
            ok = cands[q] >= 0
            floor = float(fused[q][ok].min()) if ok.any() else 0.0
            out[q] = floor - 2.0 + 1.0 / (1.0 + np.exp(-z[q]))
            out[q, cands[q][ok]] = fused[q][ok]
        return out.astype(np.float32)

    def similarity_vectors(self, items: np.ndarray) -> np.ndarray | None:
        """Rows of `items` in the `mmr_space` (text vectors or attribute tokens); None = none."""
        if self.config.mmr_space == "attributes":
            attrs = self.context_.attributes
            if attrs.shape[1] == 0:
                return None
            return np.asarray(attrs[items].toarray(), dtype=np.float32)
        vectors = self.context_.vectors
        return None if vectors is None else vectors[items]

    def exposure_groups(self, field: str) -> np.ndarray:
        """Per item, the id of its first `field=` attribute token (-1 = none)."""
        groups = np.full(self.n_items, -1, dtype=np.int64)
        cols = [j for j, t in enumerate(self.tokens_) if t.startswith(field + "=")]
        if cols:
            sub = self.context_.attributes[:, cols].tocsr()
            for i in range(sub.shape[0]):
                row = sub.indices[sub.indptr[i] : sub.indptr[i + 1]]
                if len(row):
                    groups[i] = cols[int(row.min())]
        return groups

    def _score(self, histories: Histories) -> np.ndarray:
        return self.rerank_relevance(self.relevance(histories), histories)

    def rerank_relevance(
        self, relevance: np.ndarray, histories: Histories, options: RerankOptions | None = None
    ) -> np.ndarray:
        """Dense scores whose order is the re-ranked list, from `relevance(histories)`.

        Separate from `relevance` so that a sweep over re-ranking knobs (the MMR
        accuracy-diversity curve) scores the strategies once. `options` default to the
        config's; the first `rerank_k` places are re-ranked, then the other candidates
        follow by relevance.
        """
        opts = options or self.config.rerank_options()
        rel = np.array(relevance, dtype=np.float32)
        if not (opts.list_wise or opts.boosts):
            return rel
        groups = self.exposure_groups(opts.exposure_field) if opts.exposure_cap else None
        hist = histories.to_csr(self.n_items)
        depth = max(opts.depth, 1)
        k = min(self.config.rerank_k, depth)
        for q in range(len(histories)):
            row = rel[q].copy()
            seen = hist.indices[hist.indptr[q] : hist.indptr[q + 1]]
            row[seen] = -np.inf
            wide = 5 * depth if opts.exposure_cap is not None else depth  # room for a cap
            cand = top_k(row[None, :], wide)[0]
            cand = cand[cand >= 0]
            res = rerank(
                cand,
                row[cand],
                opts,
                k,
                mmr_vectors=self.similarity_vectors(cand),
                groups=None if groups is None else groups[cand],
                attributes=self.context_.attributes[cand],
                tokens=self.tokens_,
            )
            top_value = float(rel[q].max())
            rel[q, res.items] = top_value + 1.0 + np.arange(len(res.items), 0, -1)
        return rel

    # -- explanations ------------------------------------------------------------------

    def attribute(self, history: np.ndarray, items: np.ndarray) -> list[Attribution]:
        """For each item, the strategy that ranked it best and every strategy's rank."""
        h = Histories.from_lists([np.asarray(history, dtype=np.int64)])
        scores = self._strategy_scores(h)
        out = []
        ranks_by: dict[str, np.ndarray] = {}
        seen = h.to_csr(self.n_items).indices
        for name, s in zip(self.strategy_names, scores, strict=True):
            row = s[0].copy()
            row[seen] = -np.inf
            order = top_k(row[None, :], self.config.depth)[0]
            pos = np.full(self.n_items, -1, dtype=np.int64)
            pos[order[order >= 0]] = np.arange(int((order >= 0).sum()))
            ranks_by[name] = pos
        for item in np.asarray(items, dtype=np.int64):
            ranks = {
                n: int(r[item]) for n, r in ranks_by.items() if 0 <= item < len(r) and r[item] >= 0
            }
            best = min(ranks, key=lambda n: (ranks[n], n)) if ranks else self.strategy_names[0]
            out.append(Attribution(best, ranks))
        return out

    def part(self, name: str) -> Recommender:
        """The fitted strategy with this display name."""
        self._require_fitted()
        return self.parts_[self.strategy_names.index(name)]

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Each item's history contributions, read from the strategy that ranked it best."""
        h = np.asarray(history, dtype=np.int64)
        out = np.zeros((len(items), len(h)), dtype=np.float32)
        for row, (item, att) in enumerate(zip(items, self.attribute(h, items), strict=True)):
            out[row] = _contributions(self.part(att.strategy), h, np.array([item]))[0]
        return out

    # -- state -------------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for idx, part in enumerate(self.parts_):
            state.update({f"s{idx}.{k}": v for k, v in part._state().items()})
        state["part_n_items"] = np.array([p.n_items for p in self.parts_], dtype=np.int64)
        if self.ranker_ is not None:
            state.update({f"ranker.{k}": v for k, v in self.ranker_.state().items()})
        ctx = self.context_
        state["ctx.popularity"] = ctx.popularity
        state["ctx.first_seen"] = ctx.first_seen
        a = ctx.attributes
        state["ctx.attr_data"] = a.data.astype(np.float32)
        state["ctx.attr_indices"] = a.indices.astype(np.int64)
        state["ctx.attr_indptr"] = a.indptr.astype(np.int64)
        state["ctx.attr_shape"] = np.array(a.shape, dtype=np.int64)
        state["ctx.tokens"] = _names_bytes(self.tokens_)
        if ctx.vectors is not None:
            state["ctx.vectors"] = ctx.vectors
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.parts_ = self._parts()
        for idx, (part, n) in enumerate(zip(self.parts_, state["part_n_items"], strict=True)):
            prefix = f"s{idx}."
            part.n_items = int(n)
            part._set_state({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
            part._fitted = True
        ranker = {k[7:]: v for k, v in state.items() if k.startswith("ranker.")}
        self.ranker_ = LogisticFusion.from_state(ranker) if ranker else None
        self.fusion_ = "learned" if ranker else "rrf"
        shape = tuple(int(x) for x in state["ctx.attr_shape"])
        attrs = sp.csr_matrix(
            (state["ctx.attr_data"], state["ctx.attr_indices"], state["ctx.attr_indptr"]),
            shape=shape,
        )
        self.tokens_ = _bytes_names(state["ctx.tokens"])
        self.context_ = FeatureContext(
            state["ctx.popularity"], state["ctx.first_seen"], attrs, state.get("ctx.vectors")
        )
