"""Building blocks for sequence models: a pre-LN causal transformer over item sequences.

Kept free of `Recommender` plumbing so other sequence strategies can reuse it. Sequences
are left-padded with 0 (item index `i` is token `i + 1`); the most recent item always sits
at the last position and gets the last position embedding, whatever the length.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CausalTransformer", "attention_mask", "training_sequences"]

#: Additive mask value: large enough to zero a softmax weight, finite so fully masked rows stay finite.
_MASKED = -1e9


def attention_mask(seq: torch.Tensor) -> torch.Tensor:
    """Additive (batch, 1, L, L) mask: causal, and padding keys (token 0) masked."""
    length = seq.shape[1]
    causal = torch.triu(torch.full((length, length), _MASKED, device=seq.device), diagonal=1)
    pad = torch.where(seq == 0, _MASKED, 0.0).to(causal.dtype)
    return causal[None, None] + pad[:, None, None, :]


class _Block(nn.Module):
    """Pre-LN self-attention block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"embedding_dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last: bool = False) -> torch.Tensor:
        """Every position's output, or with `last` only the last position's (b, 1, dim)."""
        b, length, dim = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, length, 3, self.n_heads, dim // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        if last:  # keys and values from every position, the query from the last one only
            q, mask, x = q[:, :, -1:], mask[:, :, -1:], x[:, -1:]
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, x.shape[1], dim)))
        return x + self.drop(self.ffn(self.ln2(x)))


class CausalTransformer(nn.Module):
    """Item sequence encoder with an item table that is both input and output layer.

    `text` (optional, (n_items, text_dim)) are frozen item text vectors. `text_mode`:
    - "none": item table = ID embeddings;
    - "init": ID embeddings start from the text vectors' principal components;
    - "fuse": item table = ID embedding + learned linear adapter(text vector);
    - "init-fuse": both: text-initialised ID embedding + adapter(text vector);
    - "dual": item table = [ID embedding | adapter(text)] halves, each normalised, so a
      collaborative and a semantic view share the dot product (in the spirit of LLM-ESR).
    `text_dropout` drops text-vector features at the adapter's input while training, so the
    adapter cannot memorise items from their exact vectors.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        n_blocks: int,
        n_heads: int,
        max_len: int,
        dropout: float,
        text: np.ndarray | None = None,
        text_mode: str = "none",
        text_dropout: float = 0.0,
    ):
        super().__init__()
        self.text_mode = text_mode
        self.max_len = max_len
        id_dim = dim // 2 if text_mode == "dual" else dim
        self.item = nn.Embedding(n_items + 1, id_dim, padding_idx=0)
        self.pos = nn.Embedding(max_len, dim)
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        with torch.no_grad():
            self.item.weight[0].zero_()
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, n_heads, dropout) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(dim)
        self.adapter: nn.Module | None = None
        self.text_drop = nn.Dropout(text_dropout)
        if text_mode != "none":
            if text is None:
                raise ValueError(f"text_mode {text_mode!r} needs item text vectors")
            buf = torch.zeros(n_items + 1, text.shape[1])
            buf[1 : len(text) + 1] = torch.as_tensor(text[:n_items], dtype=torch.float32)
            self.register_buffer("text", buf)
            if text_mode in ("init", "init-fuse"):
                self._init_from_text(buf[1:], dim)
            if text_mode != "init":
                self.adapter = nn.Linear(
                    text.shape[1], dim - id_dim if text_mode == "dual" else dim
                )

    def _init_from_text(self, text: torch.Tensor, dim: int) -> None:
        centred = text - text.mean(0, keepdim=True)
        k = min(dim, min(centred.shape))
        u, s, _ = torch.linalg.svd(centred, full_matrices=False)
        comps = u[:, :k] * s[:k]
        comps = comps / comps.std().clamp_min(1e-8) * 0.02
        with torch.no_grad():
            self.item.weight[1:, :k] = comps

    def item_table(self) -> torch.Tensor:
        """Representation of every token (row 0 = padding = zeros): (n_items + 1, dim)."""
        return self.item_rows(
            torch.arange(self.item.num_embeddings, device=self.item.weight.device)
        )

    def item_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """Representations of the given tokens only (padding token 0 -> zeros): (len, dim).

        Sampled-softmax training builds just the rows a batch touches, which is what makes
        a text adapter cheap there: it runs on a few thousand text vectors, not all of them.
        """
        ids = self.item(tokens)
        if self.adapter is None:
            table = ids
        else:
            text: torch.Tensor = self.text  # type: ignore[assignment]  # a registered buffer
            sem = self.adapter(self.text_drop(text[tokens]))
            if self.text_mode == "dual":
                table = torch.cat([F.normalize(ids, dim=-1), F.normalize(sem, dim=-1)], dim=-1)
                table = table * (0.02 * math.sqrt(table.shape[1] / 2))
            else:
                table = ids + sem
        return table * (tokens > 0).unsqueeze(-1)

    def encode(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position of left-padded token sequences (batch, L<=max_len)."""
        return self._run(seq, table, last=False)

    def encode_last(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden state at the last position only (batch, dim): what scoring needs, cheaper.

        The last block computes its attention query and feed-forward for that position alone.
        """
        return self._run(seq, table, last=True)[:, -1]

    def _run(self, seq: torch.Tensor, table: torch.Tensor, last: bool) -> torch.Tensor:
        length = seq.shape[1]
        x = table[seq] + self.pos.weight[self.max_len - length :]
        x = self.drop(x) * (seq > 0).unsqueeze(-1)
        mask = attention_mask(seq)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, last=last and i == len(self.blocks) - 1)
        return self.norm(x)


def training_sequences(
    indptr: np.ndarray, items: np.ndarray, max_len: int, whole: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets (tokens, left-padded) covering every history.

    A history of up to `max_len + 1` items is one row, predicting each item from all
    before it. A longer one, with `whole`, becomes windows of `max_len + 1` items that
    start every `max_len // 2` items; each target is kept (non-zero) in the first window
    that holds it only, so every item is predicted exactly once, from at least
    `max_len - max_len // 2` items of context past the first window. Without `whole`,
    only the last `max_len + 1` items are used (the older items are never a target).
    Histories shorter than 2 give nothing to predict and are left out.
    """
    stride = max(1, max_len // 2)
    rows_in, rows_tgt = [], []
    for u in range(len(indptr) - 1):
        s = items[indptr[u] : indptr[u + 1]] + 1
        if len(s) < 2:
            continue
        if len(s) <= max_len + 1 or not whole:
            ends, firsts = [len(s)], [max(1, len(s) - max_len)]
        else:
            ends = [*range(max_len + 1, len(s), stride), len(s)]
            firsts = [1, *ends[:-1]]  # the first target index no earlier window holds
        for end, first in zip(ends, firsts, strict=True):
            start = max(0, end - max_len - 1)
            window = s[start:end]
            inp = np.zeros(max_len, dtype=np.int64)
            tgt = np.zeros(max_len, dtype=np.int64)
            inp[max_len - len(window) + 1 :] = window[:-1]
            tgt[max_len - len(window) + 1 :] = window[1:]
            tgt[: max_len - (end - first)] = 0  # targets an earlier window predicts
            rows_in.append(inp)
            rows_tgt.append(tgt)
    if not rows_in:
        return np.zeros((0, max_len), np.int64), np.zeros((0, max_len), np.int64)
    return np.stack(rows_in), np.stack(rows_tgt)
