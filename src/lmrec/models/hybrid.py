"""Hybrid: a collaborative strategy blended with a text strategy, all picked on validation.

Each strategy's scores are standardised per user (mean 0, std 1 over all items)
and summed as (1 - weight) * cf + weight * text. With validation data, `cf` and
`text` may each name several candidates ("ease|als|itemknn") and `weight` may be
"auto": every (cf, text, weight) triple is scored on validation and one is kept,
after which the chosen CF side is refit on training plus validation interactions.
Which parts are best differs by dataset (EASE on Amazon Beauty but ALS on the tail
of MovieLens 100K; the LM adapter on Beauty, raw text on MovieLens), so the choice
is the data's, not ours.

The collaborative side carries the well-observed items; the text side lifts tail
and new items that the collaborative side cannot see. Validation NDCG@10 is
dominated by head items, so the default pick (`objective="balanced"`) keeps the
blend that beats the best single CF candidate by the widest margin on its weaker
front: the largest min(NDCG@10 / best CF NDCG@10, tail NDCG@10 / best CF tail
NDCG@10), where "best CF" is the best candidate alone on each measure.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.models.names import build_component, fit_component
from lmrec.tuning.space import Tunable

__all__ = ["Hybrid", "HybridConfig"]

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)


class HybridConfig(ModelConfig):
    """`cf`, `text`: a strategy name or import path each, or several separated by "|" to
    pick one on validation; `cf_params`, `text_params`: their parameters (with several
    names: `{name: {...}}`); `weight` of the text side in [0, 1], or "auto" to pick it
    from `WEIGHT_GRID` on validation; `objective` of the pick: "overall" (validation
    NDCG@10) or "balanced" (also the tail-item NDCG@10, see the module docstring)."""

    cf: Annotated[str, Tunable(choices=("ease|als|itemknn", "ease", "als", "itemknn"))] = (
        "ease|als|itemknn"
    )
    cf_params: dict[str, Any] = Field(default_factory=dict)
    text: Annotated[str, Tunable(choices=("lm-adapter|content", "content", "lm-adapter"))] = (
        "lm-adapter|content"
    )
    text_params: dict[str, Any] = Field(default_factory=dict)
    weight: Annotated[float | Literal["auto"], Tunable(choices=("auto", 0.3, 0.5, 0.7, 0.9))] = (
        "auto"
    )
    objective: Annotated[Literal["overall", "balanced"], Tunable()] = "balanced"


@dataclass(frozen=True)
class _Trial:
    """One (CF, text, weight) blend measured on validation."""

    cf: str
    text: str
    weight: float
    ndcg: float
    tail_ndcg: float


def _names(spec: str) -> list[str]:
    return [n.strip() for n in spec.split("|") if n.strip()]


def _params(spec: str, params: dict[str, Any], name: str) -> dict[str, Any]:
    """A part's parameters: `params` itself for a single name, `params[name]` for several."""
    return dict(params.get(name, {})) if len(_names(spec)) > 1 else dict(params)


def _standardise(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row at mean 0 and std 1, and the rows' spreads (std, at least 1e-12)."""
    mean = scores.mean(axis=1, keepdims=True)
    spread = np.maximum(scores.std(axis=1, keepdims=True), 1e-12)
    return (scores - mean) / spread, spread[:, 0]


#: Serving-sized calls to `Hybrid.score` remember their rows' part spreads, so that
#: explaining the list just ranked does not score each part of that history again.
_REMEMBER_ROWS = 64
_REMEMBERED = 1024


def _pick(trials: list[_Trial], objective: str, weights: tuple[float, ...]) -> _Trial:
    """The trial to keep among those with a weight in `weights` (ties keep the earlier one).

    "balanced" compares each trial with the best CF candidate alone (the weight-0 trials)
    on overall and on tail-item NDCG@10 and keeps the largest minimum of the two ratios;
    without a usable tail reference it falls back to "overall".
    """
    candidates = [t for t in trials if t.weight in weights]
    alone = [t for t in trials if t.weight == 0.0]
    ref = max((t.ndcg for t in alone), default=0.0)
    ref_tail = max((float(np.nan_to_num(t.tail_ndcg)) for t in alone), default=0.0)
    if objective == "overall" or ref <= 0.0 or ref_tail <= 0.0:
        return max(candidates, key=lambda t: t.ndcg)

    def margin(t: _Trial) -> float:
        return min(t.ndcg / ref, float(np.nan_to_num(t.tail_ndcg)) / ref_tail)

    return max(candidates, key=margin)


class Hybrid(Recommender):
    """(1 - w) * standardised CF scores + w * standardised text scores."""

    Config = HybridConfig
    uses_validation = True
    config: HybridConfig
    uses_text = True
    #: Learned state: the picked parts, their names and the text weight.
    cf_: Recommender
    text_: Recommender
    cf_name_: str
    text_name_: str
    weight_: float
    #: Validation NDCG@10 of the pick (None when nothing was picked on validation).
    valid_ndcg_: float | None = None

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        #: (cf spread, text spread) by history, for the newest `_REMEMBERED` histories.
        self._spreads: OrderedDict[bytes, tuple[float, float]] = OrderedDict()
        self._spreads_lock = threading.Lock()

    def _part(
        self, role: Literal["cf", "text"], name: str, data: TrainingData | None = None
    ) -> Recommender:
        """The `role` part `name`, fitted on `data` when given."""
        cfg = self.config
        spec, params = (cfg.cf, cfg.cf_params) if role == "cf" else (cfg.text, cfg.text_params)
        params = _params(spec, params, name)
        return build_component(name, params) if data is None else fit_component(name, params, data)

    def _fit(self, data: TrainingData) -> None:
        cfg = self.config
        cf_names, text_names = _names(cfg.cf), _names(cfg.text)
        has_valid = data.valid is not None and len(data.valid) > 0
        several = len(cf_names) > 1 or len(text_names) > 1
        if has_valid and (cfg.weight == "auto" or several):
            self._tune(data, cf_names, text_names)
            if not self.cf_.uses_validation:  # validation has done its job: refit CF on it too
                self.cf_ = self._part("cf", self.cf_name_, data.merged())
        else:  # nothing to pick with: the first candidates
            self.cf_name_, self.text_name_ = cf_names[0], text_names[0]
            self.cf_ = self._part("cf", self.cf_name_, data)
            self.text_ = self._part("text", self.text_name_, data)
            self.weight_ = 0.3 if cfg.weight == "auto" else float(cfg.weight)
        self.n_items = max(self.cf_.n_items, self.text_.n_items)

    def _tune(self, data: TrainingData, cf_names: list[str], text_names: list[str]) -> None:
        """Fit every candidate on training data, measure every blend, keep the pick."""
        cfg = self.config
        weights = WEIGHT_GRID if cfg.weight == "auto" else (float(cfg.weight),)
        texts = {name: self._part("text", name, data) for name in text_names}
        cfs: dict[str, Recommender] = {}
        trials: list[_Trial] = []
        self._fitted = True
        from tqdm.auto import tqdm

        bar = tqdm(cf_names, desc="hybrid: CF candidates", unit="model", disable=None)
        for cf_name in bar:
            bar.set_postfix_str(cf_name)
            self.cf_ = cfs[cf_name] = self._part("cf", cf_name, data)
            # Weight 0 is the CF candidate alone: the reference of the "balanced" pick.
            trials.append(self._trial(data, cf_name, text_names[0], texts, 0.0))
            trials += [
                self._trial(data, cf_name, text_name, texts, w)
                for text_name in text_names
                for w in weights
                if w > 0.0
            ]
        pick = _pick(trials, cfg.objective, weights)
        self.cf_name_, self.text_name_, self.weight_ = pick.cf, pick.text, pick.weight
        self.cf_, self.text_ = cfs[pick.cf], texts[pick.text]
        self.valid_ndcg_ = pick.ndcg
        self.trials_ = trials

    def _trial(
        self,
        data: TrainingData,
        cf_name: str,
        text_name: str,
        texts: dict[str, Recommender],
        weight: float,
    ) -> _Trial:
        """Validation NDCG@10, overall and on tail-item targets, of one blend."""
        assert data.valid is not None
        self.text_, self.weight_ = texts[text_name], weight
        self.n_items = max(self.cf_.n_items, self.text_.n_items)
        res = data.validator(self.score, data.interactions, data.valid)
        return _Trial(cf_name, text_name, weight, res.ndcg, res.tail_ndcg)

    def add_items(self, vectors: np.ndarray) -> None:
        """New items reach the text side; the CF side scores them lowest."""
        self._require_fitted()
        self.text_.add_items(vectors)  # type: ignore[attr-defined]
        self.n_items = max(self.cf_.n_items, self.text_.n_items)
        with self._spreads_lock:  # the text side's spreads now cover the new items
            self._spreads.clear()

    def _score(self, histories: Histories) -> np.ndarray:
        text, text_spread = _standardise(self.text_.score(histories))
        cf, cf_spread = _standardise(self.cf_.score(histories))
        if len(histories) <= _REMEMBER_ROWS:
            with self._spreads_lock:
                for q in range(len(histories)):
                    self._spreads[self._key(histories[q])] = (
                        float(cf_spread[q]),
                        float(text_spread[q]),
                    )
                while len(self._spreads) > _REMEMBERED:
                    self._spreads.popitem(last=False)
        out = self.weight_ * text
        out[:, : cf.shape[1]] += (1.0 - self.weight_) * cf
        if cf.shape[1] < out.shape[1]:  # items the CF side never saw: its lowest score
            out[:, cf.shape[1] :] += (1.0 - self.weight_) * cf.min(axis=1, keepdims=True)
        return out

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Each part's contributions, weighted as the blend weighs its standardised scores.

        The blend is `w * t / std(t) + (1 - w) * c / std(c)` plus per-row constants, so
        a history item's part in an item's score, as far as it moves the item against
        the others, is its part in each side's score over that side's spread (the
        spreads and means of the full history; a row constant shifts every item alike).
        The sides answer exactly (EASE and kNN terms, a profile's drop-one on these items
        only), and an inner-product side's spread comes from its item covariance, so this
        costs at most one full scoring per side, not one per history item.
        """
        self._require_fitted()
        h = np.asarray(history, dtype=np.int64)
        it = np.asarray(items, dtype=np.int64)
        out = np.zeros((len(it), len(h)), dtype=np.float64)
        with self._spreads_lock:
            spreads = self._spreads.get(self._key(h))
        if spreads is None:
            full = Histories.from_lists([h])
            spreads = (
                float(self.cf_.score_spread(full)[0]),
                float(self.text_.score_spread(full)[0]),
            )
        parts = ((self.cf_, 1.0 - self.weight_), (self.text_, self.weight_))
        for (part, weight), spread in zip(parts, spreads, strict=True):
            if weight != 0.0:
                out += weight * part.contributions(h, it) / max(spread, 1e-12)
        return out.astype(np.float32)

    def _key(self, history: np.ndarray) -> bytes:
        """A history's key in `_spreads`: the parts it was scored by and its items."""
        parts = np.array([id(self.cf_), id(self.text_)], dtype=np.uint64).tobytes()
        return parts + np.asarray(history, dtype=np.int64).tobytes()

    def describe(self) -> dict[str, Any]:
        """The parts and text weight picked on validation, and the validation NDCG@10."""
        out: dict[str, Any] = {"cf": self.cf_name_, "text": self.text_name_}
        out["weight"] = round(float(self.weight_), 6)
        if self.valid_ndcg_ is not None:
            out["validation_ndcg@10"] = round(float(self.valid_ndcg_), 6)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        cfg = self.config
        state = {f"cf.{k}": v for k, v in self.cf_.state().items()}
        state.update({f"text.{k}": v for k, v in self.text_.state().items()})
        state["weight"] = np.array([self.weight_], dtype=np.float64)
        state["n_items"] = np.array([self.cf_.n_items, self.text_.n_items], dtype=np.int64)
        state["picked"] = np.array(
            [_names(cfg.cf).index(self.cf_name_), _names(cfg.text).index(self.text_name_)],
            dtype=np.int64,
        )
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        cfg = self.config
        cf_index, text_index = (int(x) for x in state["picked"])
        self.cf_name_, self.text_name_ = _names(cfg.cf)[cf_index], _names(cfg.text)[text_index]
        self.cf_ = self._part("cf", self.cf_name_)
        self.text_ = self._part("text", self.text_name_)
        n_cf, n_text = (int(x) for x in state["n_items"])
        for part, prefix, n in ((self.cf_, "cf.", n_cf), (self.text_, "text.", n_text)):
            part.restore(n, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        self.weight_ = float(state["weight"][0])
