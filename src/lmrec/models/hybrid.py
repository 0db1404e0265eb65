"""Hybrid: a collaborative strategy blended with a text strategy, weight tuned on validation.

Each strategy's scores are standardised per user (mean 0, std 1 over all items)
and summed as (1 - weight) * cf + weight * text. With validation data and
`weight="auto"`, the weight is the best of a small grid on validation NDCG@10,
after which the CF side is refit on training plus validation interactions.
The collaborative side carries the well-observed items; the text side lifts
tail and new items that the collaborative side cannot see.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.models.names import resolve_strategy

__all__ = ["Hybrid", "HybridConfig"]

WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)


class HybridConfig(ModelConfig):
    """`cf`/`text`: strategy names or import paths with their `*_params`; `weight` of the
    text side in [0, 1], or "auto" to pick it on validation data."""

    cf: str = "ease"
    cf_params: dict[str, Any] = Field(default_factory=dict)
    text: str = "lm-adapter"
    text_params: dict[str, Any] = Field(default_factory=dict)
    weight: float | Literal["auto"] = "auto"


def _standardise(scores: np.ndarray) -> np.ndarray:
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return (scores - mean) / np.maximum(std, 1e-12)


class Hybrid(Recommender):
    """(1 - w) * standardised CF scores + w * standardised text scores."""

    Config = HybridConfig
    uses_validation = True
    config: HybridConfig
    uses_text = True

    def _parts(self) -> tuple[Recommender, Recommender]:
        cfg = self.config
        return resolve_strategy(cfg.cf)(cfg.cf_params), resolve_strategy(cfg.text)(cfg.text_params)

    def _fit(self, data: TrainingData) -> None:
        self.cf_, self.text_ = self._parts()
        self.cf_.fit(data)
        self.text_.fit(data)
        self.n_items = max(self.cf_.n_items, self.text_.n_items)
        if self.config.weight != "auto":
            self.weight_ = float(self.config.weight)
        elif data.valid is not None and len(data.valid):
            self.weight_ = self._tune(data)
            if not self.cf_.uses_validation:  # validation has done its job: refit CF on it too
                self.cf_.fit(data.merged())
        else:
            self.weight_ = 0.3

    def _tune(self, data: TrainingData) -> float:
        from lmrec.evaluation.evaluator import EvalOptions, evaluate_model

        assert data.valid is not None
        self._fitted = True
        best, best_w = -1.0, 0.0
        for w in WEIGHT_GRID:
            self.weight_ = w
            res = evaluate_model(
                self, data.interactions, data.valid, options=EvalOptions(ks=(10,), save_top=10)
            )
            if res.summary["ndcg@10"] > best:
                best, best_w = res.summary["ndcg@10"], w
        self.valid_ndcg_ = best
        return best_w

    def add_items(self, vectors: np.ndarray) -> None:
        """New items reach the text side; the CF side scores them lowest."""
        self._require_fitted()
        self.text_.add_items(vectors)  # type: ignore[attr-defined]
        self.n_items = max(self.cf_.n_items, self.text_.n_items)

    def _score(self, histories: Histories) -> np.ndarray:
        text = _standardise(self.text_.score(histories))
        cf = _standardise(self.cf_.score(histories))
        out = self.weight_ * text
        out[:, : cf.shape[1]] += (1.0 - self.weight_) * cf
        if cf.shape[1] < out.shape[1]:  # items the CF side never saw: its lowest score
            out[:, cf.shape[1] :] += (1.0 - self.weight_) * cf.min(axis=1, keepdims=True)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        state = {f"cf.{k}": v for k, v in self.cf_._state().items()}
        state.update({f"text.{k}": v for k, v in self.text_._state().items()})
        state["weight"] = np.array([self.weight_], dtype=np.float64)
        state["n_items"] = np.array([self.cf_.n_items, self.text_.n_items], dtype=np.int64)
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.cf_, self.text_ = self._parts()
        n_cf, n_text = (int(x) for x in state["n_items"])
        for part, prefix, n in ((self.cf_, "cf.", n_cf), (self.text_, "text.", n_text)):
            part.n_items = n
            part._set_state({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
            part._fitted = True
        self.weight_ = float(state["weight"][0])
