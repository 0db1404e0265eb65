"""LM adapter: a learned map from language-model item vectors into a collaborative space.

In the spirit of AlphaRec ("Language representations can be what recommenders
need", Sheng et al. 2024): a small MLP maps frozen text vectors; a user is the
(recency-weighted) mean of their mapped history; the score is a cosine. It is
trained on interactions with a full-softmax cross-entropy over the items seen in
training: each epoch hides a random share of every user's history and predicts
each hidden item from the rest (a denoising objective, as in Mult-DAE). Because
items are represented only through their text, any item with text (new, cold or
long-tail) gets a usable vector.

Three choices keep it useful for items it never saw in training:

- a residual path: the output is `normalise(text + MLP(text))` with the MLP's last
  layer starting at zero, so training starts from the raw text similarity and only
  moves away from it as far as validation says it helps;
- input dropout on the text fed to the MLP, so the MLP cannot memorise the exact
  vectors of training items and treats every item more like an unseen one;
- a final blend with the raw text cosine (`text_weight`), picked on validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, cast

import numpy as np
from pydantic import Field

from lmrec._extras import require_torch
from lmrec.data.interactions import Histories, Interactions
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.models.content import profiles
from lmrec.models.itemknn import recent_weights
from lmrec.tuning.space import Tunable

if TYPE_CHECKING:
    import torch

__all__ = ["LMAdapter", "LMAdapterConfig"]

#: Candidate weights of the raw text cosine when `text_weight="auto"`.
TEXT_WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0)


class LMAdapterConfig(ModelConfig):
    """Adapter size and training.

    `residual`: output = normalise(text + MLP(text)), starting from the raw text
    space (output size = text size; `embedding_dim` is then unused); without it
    the output is normalise(MLP(text)) of size `embedding_dim`. `hidden_dim` MLP
    width; `input_dropout` share of text features dropped at the MLP's input in
    training; `temperature` of the cosine softmax; `recency` history weighting (as
    in `content`); `max_history` newest items that count; `mask_rate` share of
    each history hidden and predicted from the rest in training; `text_weight`
    weight of the raw text cosine added to the adapter cosine at scoring time, or
    "auto" to pick it from `TEXT_WEIGHT_GRID` on validation (0 without validation);
    `epochs`, `batch_size`, `learning_rate`, `weight_decay`, `dropout`;
    `patience` epochs without validation gain before stopping (needs validation
    data); `seed`.
    """

    residual: bool = True
    embedding_dim: Annotated[int, Tunable(choices=(64, 128, 256))] = Field(128, ge=2)
    hidden_dim: int = Field(512, ge=2)
    input_dropout: Annotated[float, Tunable(0.0, 0.7)] = Field(0.5, ge=0.0, lt=1.0)
    temperature: Annotated[float, Tunable(0.02, 0.2, log=True)] = Field(0.07, gt=0.0)
    recency: float = Field(0.0, ge=0.0)
    max_history: int = Field(50, ge=1)
    text_weight: Annotated[float | Literal["auto"], Tunable(choices=("auto", 0.3, 0.5, 0.7))] = (
        "auto"
    )
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(512, ge=1)
    learning_rate: Annotated[float, Tunable(1e-4, 3e-3, log=True)] = Field(3e-4, gt=0.0)
    weight_decay: float = Field(1e-6, ge=0.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    mask_rate: float = Field(0.3, gt=0.0, lt=1.0)
    patience: int = Field(5, ge=1)
    seed: int = 0
    progress: bool = True


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _mlp_numpy(
    x: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    residual: bool,
) -> np.ndarray:
    """The adapter's forward pass in numpy (scoring needs no torch)."""
    h = x @ w1.T + b1
    h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))  # GELU (tanh form)
    out = h @ w2.T + b2
    if residual:
        out = out + x
    return _normalise(out)


def _linears(mlp: torch.nn.Sequential) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """The MLP's two linear layers (see `LMAdapter._build` for the layout)."""
    return cast("torch.nn.Linear", mlp[1]), cast("torch.nn.Linear", mlp[4])


def _denoise_split(
    hist: Histories, mask_rate: float, rng: np.random.Generator
) -> tuple[Histories, np.ndarray]:
    """Hide a random share of each history: (kept inputs, boolean mask of hidden positions).

    Every user keeps at least one item and hides at least one (histories have >= 2).
    """
    n = len(hist)
    rows = hist.row_ids()
    hidden = rng.random(len(hist.items)) < mask_rate
    first = hist.indptr[:-1]
    forced = first + (rng.random(n) * hist.lengths).astype(np.int64)
    hidden[forced] = True
    kept_any = np.bincount(rows[~hidden], minlength=n) > 0
    lonely = forced[~kept_any]
    hidden[lonely + np.where(lonely == first[~kept_any], 1, -1)] = False
    counts = np.bincount(rows[~hidden], minlength=n)
    kept = Histories(np.concatenate([[0], np.cumsum(counts)]), hist.items[~hidden])
    return kept, hidden


class LMAdapter(Recommender):
    """Text vectors -> (residual) MLP -> collaborative item space; users as mean of their items."""

    Config = LMAdapterConfig
    uses_validation = True
    validates_per_epoch = True
    config: LMAdapterConfig
    uses_text = True

    def _build(self, dim_in: int) -> torch.nn.Sequential:
        """The MLP; with `residual` its last layer starts at zero (output = the text)."""
        from torch import nn

        cfg = self.config
        dim_out = dim_in if cfg.residual else cfg.embedding_dim
        mlp = nn.Sequential(
            nn.Dropout(cfg.input_dropout),
            nn.Linear(dim_in, cfg.hidden_dim),
            nn.GELU(approximate="tanh"),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, dim_out),
        )
        if cfg.residual:
            last = _linears(mlp)[1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        return mlp

    def _forward(self, mlp: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        import torch

        out = mlp(x)
        if self.config.residual:
            out = out + x
        return torch.nn.functional.normalize(out, dim=-1)

    def _fit(self, data: TrainingData) -> None:
        torch = require_torch("lm-adapter")  # scoring is numpy: a fitted adapter serves without

        cfg = self.config
        assert data.item_vectors is not None
        self.vectors_ = _normalise(np.asarray(data.item_vectors, dtype=np.float32))
        self.n_items = len(self.vectors_)
        self.text_weight_ = 0.0
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        mlp = self._build(self.vectors_.shape[1])
        opt = torch.optim.AdamW(
            mlp.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        log = data.interactions
        # Candidates are items seen in training: unseen items never act as negatives,
        # so cold items are not pushed down for lack of data.
        seen = np.flatnonzero(np.bincount(log.items, minlength=self.n_items) > 0)
        users = np.flatnonzero(log.user_counts >= 2)
        has_valid = data.valid is not None and len(data.valid) > 0
        fixed_weight = 0.0 if cfg.text_weight == "auto" else float(cfg.text_weight)
        best, best_state, bad = -1.0, None, 0
        epochs = range(cfg.epochs)
        if cfg.progress:
            from tqdm import tqdm

            # disable=None: a bar on a terminal, nothing in logs and pipes.
            epochs = tqdm(epochs, desc="lm-adapter", unit="epoch", disable=None)
        self.best_epoch_ = 0
        self.valid_curve_: list[float] = []
        for epoch in epochs:
            self._train_epoch(mlp, opt, log, users, seen, rng)
            if not has_valid:
                continue
            self.text_weight_ = fixed_weight
            score = self._valid_ndcg(data)
            self.valid_curve_.append(score)
            if score > best:
                best, best_state, bad = score, self._state(), 0
                self.best_epoch_ = epoch + 1
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        if best_state is not None:
            self._set_state(best_state)
        self.text_weight_ = fixed_weight
        if cfg.text_weight == "auto" and has_valid:
            best = self._tune_text_weight(data)
        self.valid_ndcg_ = best

    def _train_epoch(
        self,
        mlp: torch.nn.Sequential,
        opt: torch.optim.Optimizer,
        log: Interactions,
        users: np.ndarray,
        seen: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """One pass over `users` in random batches; then refresh the numpy item vectors."""
        mlp.train()
        order = rng.permutation(users)
        for lo in range(0, len(order), self.config.batch_size):
            batch = log.histories(order[lo : lo + self.config.batch_size])
            loss = self._batch_loss(mlp, batch, seen, rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self._set_from_torch(mlp)

    def _batch_loss(
        self,
        mlp: torch.nn.Sequential,
        hist: Histories,
        seen: np.ndarray,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Softmax cross-entropy of each hidden item against all seen items, given the kept ones."""
        import torch

        cfg = self.config
        inputs, hidden = _denoise_split(hist, cfg.mask_rate, rng)
        seen_pos = np.full(self.n_items, -1, dtype=np.int64)
        seen_pos[seen] = np.arange(len(seen))
        emb = self._forward(mlp, torch.from_numpy(self.vectors_[seen]))
        w = torch.from_numpy(recent_weights(inputs, cfg.recency, cfg.max_history))
        rows = torch.from_numpy(inputs.row_ids())
        kept_cols = torch.from_numpy(seen_pos[inputs.items])
        user = torch.zeros(len(hist), emb.shape[1]).index_add(0, rows, emb[kept_cols] * w[:, None])
        user = torch.nn.functional.normalize(user, dim=-1)
        logits = user @ emb.T / cfg.temperature
        # The kept (input) items are known: mask them out of the softmax.
        logits = logits.index_put((rows, kept_cols), torch.tensor(-1e9))
        log_probs = torch.log_softmax(logits, dim=1)
        target_rows = torch.from_numpy(hist.row_ids()[hidden])
        target_cols = torch.from_numpy(seen_pos[hist.items[hidden]])
        return -log_probs[target_rows, target_cols].mean()

    def _valid_ndcg(self, data: TrainingData) -> float:
        """Validation NDCG@10 of the model as it stands (`data.valid` given)."""
        assert data.valid is not None
        self._fitted = True
        return data.validator(self.score, data.interactions, data.valid).ndcg

    def _tune_text_weight(self, data: TrainingData) -> float:
        """Pick the raw-text weight on validation NDCG@10; returns the best score."""
        best, best_w = -1.0, 0.0
        for w in TEXT_WEIGHT_GRID:
            self.text_weight_ = w
            score = self._valid_ndcg(data)
            if score > best:
                best, best_w = score, w
        self.text_weight_ = best_w
        return best

    def _set_from_torch(self, mlp: torch.nn.Sequential) -> None:
        first, last = _linears(mlp)
        self.w1_ = first.weight.detach().numpy().copy()
        self.b1_ = first.bias.detach().numpy().copy()
        self.w2_ = last.weight.detach().numpy().copy()
        self.b2_ = last.bias.detach().numpy().copy()
        self.item_embeddings_ = self.embed(self.vectors_)

    def embed(self, vectors: np.ndarray) -> np.ndarray:
        """Collaborative-space embeddings of any items given their text vectors."""
        x = _normalise(np.asarray(vectors, dtype=np.float32))
        return _mlp_numpy(x, self.w1_, self.b1_, self.w2_, self.b2_, self.config.residual)

    def add_items(self, vectors: np.ndarray) -> None:
        """Append new items from their text vectors; scored from the next call on."""
        self._require_fitted()
        vectors = np.asarray(vectors, dtype=np.float32)
        self.item_embeddings_ = np.vstack([self.item_embeddings_, self.embed(vectors)])
        self.vectors_ = np.vstack([self.vectors_, _normalise(vectors)])
        self.n_items = len(self.item_embeddings_)

    def _score(self, histories: Histories) -> np.ndarray:
        return self._scores(histories, slice(None))

    def score_items(self, histories: Histories, items: np.ndarray) -> np.ndarray:
        """Scores of only these items (unknown items score 0)."""
        self._require_fitted()
        items = np.asarray(items, dtype=np.int64)
        inside = (items >= 0) & (items < self.n_items)
        scores = self._scores(histories, np.where(inside, items, 0))
        return np.where(inside, scores, 0.0).astype(np.float32)  # type: ignore[no-any-return]

    def _scores(self, histories: Histories, items: np.ndarray | slice) -> np.ndarray:
        cfg = self.config
        users = profiles(self.item_embeddings_, histories, cfg.recency, cfg.max_history)
        scores = users @ self.item_embeddings_[items].T
        if self.text_weight_ > 0:
            text = profiles(self.vectors_, histories, cfg.recency, cfg.max_history)
            scores += self.text_weight_ * (text @ self.vectors_[items].T)
        return scores

    def item_embeddings(self) -> np.ndarray:
        """Collaborative embeddings, then the raw text vectors when the text weight is on."""
        self._require_fitted()
        if self.text_weight_ <= 0:
            return self.item_embeddings_
        return np.hstack([self.item_embeddings_, self.vectors_])

    def query_embeddings(self, histories: Histories) -> np.ndarray:
        cfg = self.config
        users = profiles(self.item_embeddings_, histories, cfg.recency, cfg.max_history)
        if self.text_weight_ <= 0:
            return users
        text = profiles(self.vectors_, histories, cfg.recency, cfg.max_history)
        return np.hstack([users, self.text_weight_ * text]).astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "w1": self.w1_,
            "b1": self.b1_,
            "w2": self.w2_,
            "b2": self.b2_,
            "item_embeddings": self.item_embeddings_,
            "vectors": self.vectors_,
            "text_weight": np.array([self.text_weight_], dtype=np.float64),
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.w1_, self.b1_ = state["w1"], state["b1"]
        self.w2_, self.b2_ = state["w2"], state["b2"]
        self.item_embeddings_ = state["item_embeddings"]
        self.vectors_ = state["vectors"]
        self.text_weight_ = float(state["text_weight"][0])
