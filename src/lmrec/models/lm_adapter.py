"""LM adapter: a learned map from language-model item vectors into a collaborative space.

In the spirit of AlphaRec ("Language representations can be what recommenders
need", Sheng et al. 2024): a small MLP projects frozen text vectors; a user is
the (recency-weighted) mean of their projected history; the score is a scaled
cosine. It is trained on interactions with a full-softmax cross-entropy over the
items seen in training: each epoch hides a random share of every user's history
and predicts each hidden item from the rest (a denoising objective, as in
Mult-DAE). Because items are represented only through their
text, any item with text (new, cold or long-tail) gets a usable vector.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from lmrec.data.interactions import Histories
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.models.content import profiles
from lmrec.models.itemknn import recent_weights

__all__ = ["LMAdapter", "LMAdapterConfig"]


class LMAdapterConfig(ModelConfig):
    """Adapter size and training.

    `embedding_dim` output size; `hidden_dim` MLP width; `temperature` of the
    cosine softmax; `recency` history weighting (as in `content`); `mask_rate`
    share of each history hidden and predicted from the rest in training;
    `epochs`, `batch_size`, `learning_rate`, `weight_decay`, `dropout`;
    `patience` epochs without validation gain before stopping (needs validation
    data); `seed`.
    """

    embedding_dim: int = Field(128, ge=2)
    hidden_dim: int = Field(512, ge=2)
    temperature: float = Field(0.07, gt=0.0)
    recency: float = Field(0.0, ge=0.0)
    max_history: int = Field(50, ge=1)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-6, ge=0.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    mask_rate: float = Field(0.3, gt=0.0, lt=1.0)
    patience: int = Field(5, ge=1)
    seed: int = 0
    progress: bool = False


def _mlp_numpy(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray
) -> np.ndarray:
    h = x @ w1.T + b1
    h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))  # GELU (tanh form)
    out = h @ w2.T + b2
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class LMAdapter(Recommender):
    """Text vectors -> MLP -> collaborative item space; users as mean of their items."""

    Config = LMAdapterConfig
    uses_validation = True
    config: LMAdapterConfig
    uses_text = True

    def _fit(self, data: TrainingData) -> None:
        import torch
        from torch import nn

        cfg = self.config
        assert data.item_vectors is not None
        vectors = np.ascontiguousarray(data.item_vectors, dtype=np.float32)
        self.n_items = len(vectors)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        dim_in = vectors.shape[1]
        mlp = nn.Sequential(
            nn.Linear(dim_in, cfg.hidden_dim),
            nn.GELU(approximate="tanh"),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, cfg.embedding_dim),
        )
        opt = torch.optim.AdamW(
            mlp.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        log = data.interactions
        # Candidates are items seen in training: unseen items never act as negatives,
        # so cold items are not pushed down for lack of data.
        seen = np.flatnonzero(np.bincount(log.items, minlength=self.n_items) > 0)
        seen_pos = np.full(self.n_items, -1, dtype=np.int64)
        seen_pos[seen] = np.arange(len(seen))
        x_all = torch.from_numpy(vectors)
        users = np.flatnonzero(log.user_counts >= 2)
        best, best_state, bad = -1.0, None, 0
        epochs = range(cfg.epochs)
        if cfg.progress:
            from tqdm import tqdm

            epochs = tqdm(epochs, desc="lm-adapter", unit="epoch")
        for _epoch in epochs:
            mlp.train()
            order = rng.permutation(users)
            for lo in range(0, len(order), cfg.batch_size):
                batch = order[lo : lo + cfg.batch_size]
                hist = log.histories(batch)
                rows_all = hist.row_ids()
                # Denoising: hide a random share of each history and predict every hidden
                # item from the rest (at least one hidden and one kept per user).
                hidden = rng.random(len(hist.items)) < cfg.mask_rate
                first = hist.indptr[:-1]
                forced = first + (rng.random(len(batch)) * hist.lengths).astype(np.int64)
                hidden[forced] = True
                kept_any = np.bincount(rows_all[~hidden], minlength=len(batch)) > 0
                hidden[
                    forced[~kept_any] + np.where(forced[~kept_any] == first[~kept_any], 1, -1)
                ] = False
                inputs = Histories(
                    np.concatenate(
                        [[0], np.cumsum(np.bincount(rows_all[~hidden], minlength=len(batch)))]
                    ),
                    hist.items[~hidden],
                )
                target_rows = torch.from_numpy(rows_all[hidden])
                target_cols = torch.from_numpy(seen_pos[hist.items[hidden]])
                emb = nn.functional.normalize(mlp(x_all[torch.from_numpy(seen)]), dim=-1)
                full = torch.zeros(self.n_items, cfg.embedding_dim)
                full = full.index_copy(0, torch.from_numpy(seen), emb)
                w = torch.from_numpy(recent_weights(inputs, cfg.recency, cfg.max_history))
                rows = torch.from_numpy(inputs.row_ids())
                user = torch.zeros(len(batch), cfg.embedding_dim).index_add(
                    0, rows, full[torch.from_numpy(inputs.items)] * w[:, None]
                )
                user = nn.functional.normalize(user, dim=-1)
                logits = user @ emb.T / cfg.temperature
                # The kept (input) items are known: mask them out of the softmax.
                logits = logits.index_put(
                    (rows, torch.from_numpy(seen_pos[inputs.items])), torch.tensor(-1e9)
                )
                log_probs = torch.log_softmax(logits, dim=1)
                loss = -log_probs[target_rows, target_cols].mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            self._set_from_torch(mlp, vectors)
            if data.valid is not None and len(data.valid):
                from lmrec.evaluation.evaluator import EvalOptions, evaluate_model

                self._fitted = True
                res = evaluate_model(
                    self, log, data.valid, options=EvalOptions(ks=(10,), save_top=10)
                )
                score = res.summary["ndcg@10"]
                if score > best:
                    best, best_state, bad = score, self._state(), 0
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        break
        if best_state is not None:
            self._set_state(best_state)
        self.valid_ndcg_ = best

    def _set_from_torch(self, mlp, vectors: np.ndarray) -> None:  # type: ignore[no-untyped-def]
        self.w1_ = mlp[0].weight.detach().numpy().copy()
        self.b1_ = mlp[0].bias.detach().numpy().copy()
        self.w2_ = mlp[3].weight.detach().numpy().copy()
        self.b2_ = mlp[3].bias.detach().numpy().copy()
        self.item_embeddings_ = _mlp_numpy(vectors, self.w1_, self.b1_, self.w2_, self.b2_)

    def embed(self, vectors: np.ndarray) -> np.ndarray:
        """Collaborative-space embeddings of any items given their text vectors."""
        return _mlp_numpy(
            np.asarray(vectors, dtype=np.float32), self.w1_, self.b1_, self.w2_, self.b2_
        )

    def add_items(self, vectors: np.ndarray) -> None:
        """Append new items from their text vectors; scored from the next call on."""
        self._require_fitted()
        self.item_embeddings_ = np.vstack([self.item_embeddings_, self.embed(vectors)])
        self.n_items = len(self.item_embeddings_)

    def _score(self, histories: Histories) -> np.ndarray:
        users = profiles(
            self.item_embeddings_, histories, self.config.recency, self.config.max_history
        )
        return users @ self.item_embeddings_.T / self.config.temperature

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "w1": self.w1_,
            "b1": self.b1_,
            "w2": self.w2_,
            "b2": self.b2_,
            "item_embeddings": self.item_embeddings_,
        }

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.w1_, self.b1_ = state["w1"], state["b1"]
        self.w2_, self.b2_ = state["w2"], state["b2"]
        self.item_embeddings_ = state["item_embeddings"]
