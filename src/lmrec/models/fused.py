"""The decision layer's model: candidates from several strategies, fused into one relevance.

`Fused` is a `Recommender`, so `lmrec evaluate --models fused` measures it with the
same full-ranking protocol (through the same `Pipeline`, whose re-rankers then
apply MMR, exposure caps and boosts) as any single strategy.

1. Candidates: each strategy's top `depth` items (history items left out).
2. Fusion: `learned` (a logistic ranker over `lmrec.ranking.fusion` features,
   trained on the validation split) or `rrf` (reciprocal rank fusion).
3. Selection: with validation data, the fusion is compared on validation (NDCG@10,
   full ranking) with reciprocal rank fusion and with each strategy alone, and the
   best is kept, so the decision layer is never below its best part there. A part
   that adds nothing is dropped that way; `describe()` says what was chosen.

4. Refits: after `start_from(previous)`, `fit` fits each part once on all the data
   (warm-starting the parts that can) and keeps `previous`'s fusion, as a periodic
   retrain (`lmrec train --warm-start`, the simulator's refits) would.

Without validation data, the fusion is reciprocal rank fusion (said by `describe()`).
`score` returns dense (queries x items) relevance: candidates by fused relevance,
then every other item below all candidates, in the first strategy's order.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator, model_validator

from lmrec.data.interactions import Histories
from lmrec.errors import ConfigError
from lmrec.models.base import Attribution, ModelConfig, Recommender, TrainingData
from lmrec.models.names import build_component, fit_component
from lmrec.ranking.fusion import (
    FeatureContext,
    LogisticFusion,
    candidate_features,
    feature_names,
    reciprocal_rank_fusion,
)
from lmrec.ranking.metrics import accuracy_metrics
from lmrec.ranking.topk import exclude, top_k
from lmrec.tuning.space import Tunable

__all__ = ["Fused", "FusedConfig"]


#: Re-ranking settings that were once fused settings; they are the pipeline's now.
_MOVED_TO_PIPELINE = (
    "mmr_lambda",
    "exposure_field",
    "exposure_cap",
    "boosts",
    "rerank_depth",
    "rerank_k",
    "mmr_space",
    "mmr_penalty",
    "mmr_relevance",
)


class FusedConfig(ModelConfig):
    """The fused model's settings, flat so `--param fused.KEY=VALUE` reaches each one.

    `strategies`: names or import paths (a comma-separated string is accepted), each
    fitted with `strategy_params[name]`; `fusion`: `learned` or `rrf`; `depth`
    candidates per strategy; `rrf_k` the RRF constant; `reg` the logistic ranker's L2
    penalty; `train_queries` validation users sampled to train it (and to choose the
    fusion) with `negatives` negatives each; `select`: compare the fusion with each
    strategy alone on validation and keep the best; `seed`. Re-ranking (MMR, exposure
    caps, boosts) is the pipeline's (`RerankOptions`, `--param rerank.KEY=VALUE`).
    """

    strategies: Annotated[
        tuple[str, ...],
        Tunable(
            choices=(
                ("ease", "itemknn", "content", "multi-interest"),
                ("ease", "content"),
                ("ease", "itemknn", "content"),
                ("ease", "itemknn", "multi-interest"),
                ("ease", "als", "content", "multi-interest"),
            )
        ),
    ] = ("ease", "itemknn", "content", "multi-interest")
    strategy_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    fusion: Annotated[Literal["learned", "rrf"], Tunable()] = "learned"
    depth: Annotated[int, Tunable(20, 300, log=True)] = Field(100, ge=1)
    rrf_k: Annotated[float, Tunable(1.0, 200.0, log=True)] = Field(60.0, gt=0.0)
    reg: Annotated[float, Tunable(0.01, 100.0, log=True)] = Field(1.0, gt=0.0)
    train_queries: int = Field(5000, ge=1)
    negatives: int = Field(50, ge=1)
    select: bool = True
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict):
            moved = [k for k in _MOVED_TO_PIPELINE if k in data]
            if moved:
                raise ValueError(
                    f"{', '.join(moved)}: re-ranking is the pipeline's now; set it as "
                    f"rerank.{moved[0].replace('rerank_', '')} (e.g. --param rerank.mmr_lambda=0.7)"
                )
        return data

    @field_validator("strategies", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(s.strip() for s in value.split(",") if s.strip())
        if not value:
            raise ValueError("name at least one strategy")
        return value


def _names_bytes(names: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(names).encode("utf-8"), dtype=np.uint8).copy()


def _bytes_names(data: np.ndarray) -> list[str]:
    text = bytes(np.asarray(data, dtype=np.uint8)).decode("utf-8")
    return text.split("\n") if text else []


def _ndcg_sum(ranked: np.ndarray, truth: sp.csr_matrix) -> float:
    """Sum over rows of NDCG of `ranked` (rows x k item indexes, -1 = none) against `truth`."""
    dense = truth.toarray() > 0
    hits = np.take_along_axis(dense, np.maximum(ranked, 0), axis=1) & (ranked >= 0)
    return float(accuracy_metrics(hits, np.diff(truth.indptr), ranked.shape[1])["ndcg"].sum())


class Fused(Recommender):
    """Several strategies fused and re-ranked (see the module docstring)."""

    Config = FusedConfig
    uses_validation = True
    config: FusedConfig
    uses_text = True
    warm_starts = True
    _warm: tuple[Fused, np.ndarray | None] | None = None
    #: True when the last fit kept an earlier model's fusion (`start_from`).
    refit_ = False

    def _strategy_params(self) -> dict[str, dict[str, Any]]:
        """`strategy_params`, checked to name only strategies in use."""
        cfg = self.config
        unknown = set(cfg.strategy_params) - set(cfg.strategies)
        if unknown:
            raise ConfigError(f"strategy_params for strategies not in use: {sorted(unknown)}")
        return cfg.strategy_params

    def _parts(self) -> list[Recommender]:
        params = self._strategy_params()
        return [build_component(s, params.get(s)) for s in self.config.strategies]

    def _fit_parts(self, data: TrainingData, keep: list[Recommender] | None = None) -> None:
        """Fit every part on `data`, except those of `keep` that use validation."""
        params = self._strategy_params()
        self.parts_ = [
            old
            if keep is not None and (old := keep[i]).uses_validation
            else fit_component(name, params.get(name), data)
            for i, name in enumerate(self.config.strategies)
        ]

    # -- fitting -----------------------------------------------------------------------

    def start_from(self, previous: Recommender, items: np.ndarray | None = None) -> Fused:
        """Make the next `fit` a refit: every part fitted once on all the data (from its
        own earlier weights where that part warm-starts), and `previous`'s fusion kept
        (the mode chosen, the ranker's weights, their validation scores), not learned
        again. A periodic retrain pays for the parts alone; fit from scratch to re-learn
        the fusion."""
        self._check_warm_source(previous)
        assert isinstance(previous, Fused)
        self._warm = (previous, None if items is None else np.asarray(items, dtype=np.int64))
        return self

    def _fit(self, data: TrainingData) -> None:
        warm, self._warm = self._warm, None
        if warm is not None:
            self._refit(data, *warm)
            return
        self._fit_parts(data)
        self.n_items = max([data.n_items, *(p.n_items for p in self.parts_)])
        self._fit_context(data)
        self.fusion_ = "rrf"
        self.ranker_: LogisticFusion | None = None
        self.validation_: dict[str, float] = {}
        has_valid = data.valid is not None and len(data.valid) > 0
        if has_valid:
            users, rng = self._validation_users(data)
            if self.config.fusion == "learned":
                self._fit_ranker(data, users, rng)
            if self.config.select:
                self._select(data, users)
            # Validation has done its job: strategies that do not use it are refit on it too.
            self._fit_parts(data.merged(), keep=self.parts_)

    def _refit(self, data: TrainingData, previous: Fused, items: np.ndarray | None) -> None:
        """Parts fitted once, `previous`'s fusion kept (`start_from`)."""
        params = self._strategy_params()
        full = data.merged()
        self.parts_ = []
        for name, old in zip(self.config.strategies, previous.parts_, strict=True):
            part = build_component(name, params.get(name))
            if part.warm_starts:
                part.start_from(old, items)
            self.parts_.append(part.fit(data if part.uses_validation else full))
        self.n_items = max([data.n_items, *(p.n_items for p in self.parts_)])
        self._fit_context(full)
        self.fusion_, self.ranker_ = previous.fusion_, previous.ranker_
        self.validation_ = dict(previous.validation_)
        self.refit_ = True

    def _validation_users(self, data: TrainingData) -> tuple[np.ndarray, np.random.Generator]:
        """The validation users the ranker trains on and the fusion is chosen on (a sample),
        and the seeded generator that drew them (the ranker's negatives come from it next)."""
        assert data.valid is not None
        rng = np.random.default_rng(self.config.seed)
        users = np.flatnonzero(data.valid.user_counts > 0)
        if len(users) > self.config.train_queries:
            users = np.sort(rng.choice(users, self.config.train_queries, replace=False))
        return users, rng

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
        first[~np.isfinite(first)] = 0.0  # never seen: no recency credit (FeatureContext)
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

    def _fit_ranker(self, data: TrainingData, users: np.ndarray, rng: np.random.Generator) -> None:
        cfg = self.config
        assert data.valid is not None
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

    def _select(self, data: TrainingData, users: np.ndarray) -> None:
        """Keep whichever of the fusion, RRF and each part alone ranks validation best."""
        assert data.valid is not None
        truth = data.valid.matrix(binary=True)
        modes = [self.fusion_, *(["rrf"] if self.fusion_ != "rrf" else [])]
        modes += [f"part:{name}" for name in self.strategy_names]
        gains = dict.fromkeys(modes, 0.0)
        for lo in range(0, len(users), 512):
            batch = users[lo : lo + 512]
            hist = data.interactions.histories(batch)
            scores = self._strategy_scores(hist)
            seen = hist.to_csr(self.n_items)
            for mode in modes:
                rel = self._relevance(mode, scores, hist, None)
                exclude(rel, seen)
                gains[mode] += float(_ndcg_sum(top_k(rel, 10), truth[batch]))
        self.validation_ = {m: g / max(len(users), 1) for m, g in gains.items()}
        self.fusion_ = max(modes, key=lambda m: self.validation_[m])  # ties: earliest mode

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

    def describe(self) -> dict[str, Any]:
        """The fusion kept (`learned`, `rrf` or `part:NAME`), its weights and the validation NDCG@10."""
        out: dict[str, Any] = {"fusion": self.fusion_}
        if not self.validation_:
            out["reason"] = "no validation data: reciprocal rank fusion, nothing chosen"
        if self.fusion_ == "learned":
            out["weights"] = {k: round(v, 6) for k, v in self.feature_weights.items()}
        if self.refit_:
            out["refit"] = "parts refit on all the data; fusion kept from the model replaced"
        if self.validation_:
            out["validation_ndcg@10"] = {k: round(v, 6) for k, v in self.validation_.items()}
        return out

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
        tops = [top_k(exclude(s.copy(), mask), self.config.depth) for s in scores]
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
        mode: str,
        scores: list[np.ndarray],
        cands: np.ndarray,
        histories: Histories,
        query_vectors: np.ndarray | None,
    ) -> np.ndarray:
        """Fused relevance of each candidate (queries x c); -inf on padding."""
        if mode == "learned":
            assert self.ranker_ is not None
            feats = candidate_features(
                scores,
                cands,
                self.config.depth,
                self.context_,
                [histories[q] for q in range(len(histories))],
                query_vectors,
            )
            fused = self.ranker_.score(feats)
        else:
            seen = histories.to_csr(self.n_items)
            masked = [top_k(exclude(s.copy(), seen), self.config.depth) for s in scores]
            dense = reciprocal_rank_fusion(masked, self.n_items, self.config.rrf_k)
            fused = np.take_along_axis(dense, np.maximum(cands, 0), axis=1)
        return np.where(cands >= 0, fused, -np.inf)

    def _relevance(
        self,
        mode: str,
        scores: list[np.ndarray],
        histories: Histories,
        query_vectors: np.ndarray | None,
    ) -> np.ndarray:
        """Dense relevance (queries x n_items, all finite) of one fusion mode."""
        if mode.startswith("part:"):
            return scores[self.strategy_names.index(mode[5:])].copy()
        cands = self._candidates(scores, histories)
        fused = self._fuse(mode, scores, cands, histories, query_vectors)
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

    def relevance(
        self, histories: Histories, query_vectors: np.ndarray | None = None
    ) -> np.ndarray:
        """Dense fused scores (queries x n_items), all finite.

        Candidates keep their fused relevance; every other item scores below all
        candidates, ordered by the first strategy. `query_vectors` (unit rows, zero =
        none) feed the learned ranker's query feature.
        """
        self._require_fitted()
        if len(histories) == 0:
            return np.zeros((0, self.n_items), dtype=np.float32)
        return self._relevance(
            self.fusion_, self._strategy_scores(histories), histories, query_vectors
        )

    query_aware = True

    def score_queries(
        self, histories: Histories, query_vectors: np.ndarray | None = None
    ) -> np.ndarray:
        """`relevance` with the query vectors as the learned ranker's query feature."""
        return self.relevance(histories, query_vectors)

    def _score(self, histories: Histories) -> np.ndarray:
        return self.relevance(histories)

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
            out[row] = self.part(att.strategy).contributions(h, np.array([item]))[0]
        return out

    # -- state -------------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for idx, part in enumerate(self.parts_):
            state.update({f"s{idx}.{k}": v for k, v in part.state().items()})
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
        state["fusion"] = _names_bytes([self.fusion_])
        state["refit"] = np.array([self.refit_], dtype=np.bool_)
        if self.validation_:
            state["validation.modes"] = _names_bytes(list(self.validation_))
            state["validation.ndcg"] = np.array(list(self.validation_.values()), np.float64)
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.parts_ = self._parts()
        for idx, (part, n) in enumerate(zip(self.parts_, state["part_n_items"], strict=True)):
            prefix = f"s{idx}."
            part.restore(
                int(n), {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            )
        ranker = {k[7:]: v for k, v in state.items() if k.startswith("ranker.")}
        n_features = len(feature_names(self.strategy_names))
        if ranker and len(ranker["coef"]) == n_features + 3:
            # Saved before the three context features (always weight 0) were dropped.
            ranker = {k: v if k == "intercept" else v[:n_features] for k, v in ranker.items()}
        self.ranker_ = LogisticFusion.from_state(ranker) if ranker else None
        if "fusion" in state:
            self.fusion_ = _bytes_names(state["fusion"])[0]
        else:
            self.fusion_ = "learned" if ranker else "rrf"
        self.refit_ = bool(state["refit"][0]) if "refit" in state else False
        modes = _bytes_names(state["validation.modes"]) if "validation.modes" in state else []
        ndcg = state.get("validation.ndcg", np.zeros(0))
        self.validation_ = {m: float(v) for m, v in zip(modes, ndcg, strict=True)}
        shape = tuple(int(x) for x in state["ctx.attr_shape"])
        attrs = sp.csr_matrix(
            (state["ctx.attr_data"], state["ctx.attr_indices"], state["ctx.attr_indptr"]),
            shape=shape,
        )
        self.tokens_ = _bytes_names(state["ctx.tokens"])
        self.context_ = FeatureContext(
            state["ctx.popularity"], state["ctx.first_seen"], attrs, state.get("ctx.vectors")
        )
