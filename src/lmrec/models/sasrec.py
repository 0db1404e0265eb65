"""SASRec: a causal transformer for next-item prediction, optionally fed by item text vectors.

Trained at every position of every history with a softmax cross-entropy over the items
(Klenitskiy & Vasilev, RecSys 2023: this loss, not the architecture, is what makes SASRec
strong); histories longer than `max_len` train as overlapping windows, so every item is
a target once (on MovieLens, with a hundred items a user, that alone took the ID-only
transformer from below EASE to well above it; BENCHMARKS.md).
`TextSASRec` builds the item table (input and tied output layer) from frozen language-model
item vectors as well, so tail and new items get a representation from their text.

Both can train several transformers side by side ("views": each its own item table and
encoder, loss and early stopping) and score with the sum of their logits, a product of
experts. On Amazon Beauty two views beat any single one by more than any item-table
change did (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, cast, get_args

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from lmrec._cpu import usable_cores
from lmrec._extras import require_torch
from lmrec.data.interactions import Histories, Interactions
from lmrec.errors import LmrecError
from lmrec.models._sequence import CausalTransformer, training_sequences
from lmrec.models.base import ModelConfig, Recommender, TrainingData
from lmrec.tuning.space import Tunable

__all__ = ["SASRec", "SASRecConfig", "TextMode", "TextSASRec", "TextSASRecConfig"]

require_torch("sasrec and text-sasrec")  # the tested torch range, checked once at import

#: Config fields that may change when a checkpointed run is resumed.
_RESUMABLE = {
    "epochs",
    "patience",
    "checkpoint_dir",
    "progress",
    "num_threads",
    "device",
    "valid_users",
    "warm_patience",
}


@dataclass
class _Track:
    """Early-stopping state of one view: its best validation NDCG@10 and weights so far."""

    best_score: float = -1.0
    best_epoch: int = 0
    bad: int = 0
    best_state: dict[str, torch.Tensor] | None = None

    def update(self, ndcg: float, epoch: int, net: nn.Module) -> None:
        if ndcg > self.best_score:
            self.best_score, self.best_epoch, self.bad = ndcg, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            self.bad += 1


def _stopped(track: _Track, valid: Interactions | None, patience: int) -> bool:
    """Whether a view has gone `patience` validated epochs without a gain (0: never stops)."""
    return bool(patience) and valid is not None and track.bad >= patience


class SASRecConfig(ModelConfig):
    """Hyperparameters of `SASRec`.

    Defaults are the eSASRec paper's SASRec+SS setting for Amazon Beauty (1 block, 1 head,
    dimension 64, dropout 0.2, 256 sampled negatives, lr 1e-3, patience 50), measured in
    BENCHMARKS.md (with patience 20, two of three seeds stopped long before their best).

    `loss`: "sampled" (softmax over the target and `n_negatives` uniformly drawn items
    shared by a batch, accidental hits masked: about 6x cheaper per epoch than "full" on
    Beauty, which pays for the 100+ epochs this setting trains) or "full" (softmax
    cross-entropy over every item at every position); `patience`: epochs without a better
    validation NDCG@10 before stopping (0: never stop early); `valid_users`: users sampled
    (fixed under `seed`) for the per-epoch validation (0: all); `fold_valid`: the
    validation interactions of users outside that sample join training (they come before
    every test item, so nothing leaks into the test; only the sampled users' validation
    items stay unseen); `checkpoint_dir`: save model, optimizer and epoch there after
    every epoch and resume from it when `fit` is called again; `num_threads`: torch CPU
    threads (None: the cores this process may use); `copies`: independently initialised
    transformers (views) per item-table kind, trained side by side, each stopping early
    on its own validation NDCG@10 and keeping its best epoch; scores are their summed
    logits. Each copy costs as much training and scoring time as the first.
    `warm_patience`: the patience of a fit that `start_from` seeded with an earlier
    model's weights (a periodic refit: it starts near its best, so it needs few epochs).
    `whole_history`: histories longer than `max_len + 1` train as overlapping windows, so
    every item is a target once (False: only each history's last `max_len + 1` items, how
    lmrec trained before 2026-12; on ml-100k that left half the log unused at `max_len` 50).
    """

    embedding_dim: Annotated[int, Tunable(choices=(32, 64, 128))] = Field(64, ge=2)
    n_blocks: Annotated[int, Tunable(1, 3)] = Field(1, ge=1)
    n_heads: int = Field(1, ge=1)
    max_len: int = Field(50, ge=1)
    whole_history: bool = True
    dropout: Annotated[float, Tunable(0.0, 0.5)] = Field(0.2, ge=0.0, lt=1.0)
    learning_rate: Annotated[float, Tunable(1e-4, 1e-2, log=True)] = Field(1e-3, gt=0.0)
    weight_decay: Annotated[float, Tunable(choices=(0.0, 1e-5, 1e-4))] = Field(0.0, ge=0.0)
    batch_size: int = Field(128, ge=1)
    loss: Literal["full", "sampled"] = "sampled"
    n_negatives: int = Field(256, ge=1)
    epochs: int = Field(200, ge=0)
    patience: int = Field(50, ge=0)
    warm_patience: int = Field(5, ge=0)
    valid_users: int = Field(3000, ge=0)
    fold_valid: bool = True
    seed: int = 0
    device: str = "cpu"
    num_threads: int | None = Field(None, ge=1)
    checkpoint_dir: str | None = None
    progress: bool = True
    copies: int = Field(1, ge=1)


class SASRec(Recommender):
    """Self-attentive sequential recommender (Kang & McAuley 2018) with full cross-entropy.

    Scores any fresh history at request time from its last `max_len` items (no retraining);
    history items outside the trained range are ignored. With `TrainingData.valid`, trains
    with early stopping on validation NDCG@10 and keeps the best epoch's weights (per view).
    `training_log_` holds per-epoch loss, validation NDCG@10 (`valid_ndcg@10`, or per view
    `valid_ndcg@10_view<i>` for the views still training), wall and CPU seconds. `best_epoch_` is the epoch the last view
    reached its best; `valid_ndcg_` the final model's validation NDCG@10.
    """

    Config: ClassVar[type[SASRecConfig]] = SASRecConfig
    uses_validation = True
    validates_per_epoch = True
    warm_starts = True
    config: SASRecConfig
    #: Weights `start_from` took from an earlier model and its item map, for the next `fit`.
    _warm: tuple[dict[str, torch.Tensor], np.ndarray | None] | None = None
    #: `item_embeddings` of the item tables and views it was built from.
    _embeddings: tuple[list[torch.Tensor], tuple[int, ...], np.ndarray] | None = None

    def _view_modes(self) -> list[str]:
        """How each view builds its item table (a `CausalTransformer` text_mode)."""
        return ["none"] * self.config.copies

    def _text_dropout(self) -> float:
        return 0.0

    @property
    def _views(self) -> list[CausalTransformer]:
        return cast(list[CausalTransformer], list(self.net_))

    # ---- training -------------------------------------------------------------------

    def _build(self, item_vectors: np.ndarray | None) -> nn.ModuleList:
        c = self.config
        return nn.ModuleList(
            CausalTransformer(
                self.n_items,
                c.embedding_dim,
                c.n_blocks,
                c.n_heads,
                c.max_len,
                c.dropout,
                text=item_vectors if mode != "none" else None,
                text_mode=mode,
                text_dropout=self._text_dropout(),
            )
            for mode in self._view_modes()
        ).to(c.device)

    def _fit(self, data: TrainingData) -> None:
        c = self.config
        started = time.perf_counter()
        torch.set_num_threads(c.num_threads or usable_cores())
        torch.manual_seed(c.seed)
        vectors = (
            None if data.item_vectors is None else np.asarray(data.item_vectors, dtype=np.float32)
        )
        self.net_ = self._build(vectors if self.uses_text else None)
        warm, self._warm = self._warm, None
        if warm is not None:
            self._load_warm(*warm)
        patience = c.warm_patience if warm is not None else c.patience
        self.warm_started_ = warm is not None
        self._tables: list[torch.Tensor] | None = None
        self._views_scored: list[int] | None = None
        valid = self._valid_sample(data)
        hist = self._training_log(data, valid).histories()
        inputs, targets = training_sequences(
            hist.indptr, hist.items, c.max_len, whole=c.whole_history
        )
        lengths = (inputs > 0).sum(1)
        optimizer = torch.optim.AdamW(
            self.net_.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
        )

        self.training_log_: list[dict[str, float]] = []
        tracks, start = [_Track() for _ in self.net_], 1
        ckpt = Path(c.checkpoint_dir) if c.checkpoint_dir else None
        if ckpt is not None and (ckpt / "checkpoint.json").exists():
            start, tracks = self._resume(ckpt, optimizer)

        self._fitted = True  # validation scores through the public API
        bar = tqdm(
            range(start, c.epochs + 1),
            desc=type(self).__name__,
            disable=None if c.progress else True,  # None: only on a terminal
            unit="epoch",
        )
        for epoch in bar:
            live = [i for i, t in enumerate(tracks) if not _stopped(t, valid, patience)]
            if not live:
                break
            t0, cpu0 = time.perf_counter(), time.process_time()
            loss = self._train_epoch(inputs, targets, lengths, optimizer, epoch, live)
            row: dict[str, float] = {"epoch": epoch, "loss": loss}
            if valid is not None:
                for i in live:
                    ndcg = self._valid_ndcg(data, valid, [i])
                    tracks[i].update(ndcg, epoch, self._views[i])
                    best = tracks[i].best_state
                    if _stopped(tracks[i], valid, patience) and best is not None:
                        self._views[i].load_state_dict(best)  # frozen at its best from now on
                    row["valid_ndcg@10" if len(tracks) == 1 else f"valid_ndcg@10_view{i}"] = ndcg
            row["seconds"] = time.perf_counter() - t0
            row["cpu_seconds"] = time.process_time() - cpu0
            row["elapsed_seconds"] = time.perf_counter() - started  # since fit began
            self.training_log_.append(row)
            bar.set_postfix(
                loss=f"{loss:.4f}",
                best_ndcg="/".join(f"{t.best_score:.4f}" for t in tracks),
                best_epoch="/".join(str(t.best_epoch) for t in tracks),
            )
            if ckpt is not None:
                self._checkpoint(ckpt, optimizer, epoch, tracks)
        bar.close()
        for net, track in zip(self.net_, tracks, strict=True):
            if track.best_state is not None:
                net.load_state_dict(track.best_state)
        self._finish(data)
        self.best_epoch_ = max(t.best_epoch for t in tracks)
        self.valid_ndcg_ = None
        if valid is not None:
            self.valid_ndcg_ = (
                tracks[0].best_score if len(tracks) == 1 else self._valid_ndcg(data, valid, None)
            )

    def describe(self) -> dict[str, Any]:
        """Training cost and outcome: the best epoch, how many ran, wall seconds from the
        start of `fit` to the end of the best epoch (end to end, data preparation and
        validation included), the validation NDCG@10 kept and whether `start_from`
        seeded the fit."""
        self._require_fitted()
        log = getattr(self, "training_log_", None)
        if log is None:  # loaded from an artefact: the training record stays with the run
            return {}
        out: dict[str, Any] = {"best_epoch": int(self.best_epoch_), "epochs_run": len(log)}
        best = [r for r in log if int(r["epoch"]) == self.best_epoch_ and "elapsed_seconds" in r]
        if best:
            out["seconds_to_best_epoch"] = round(float(best[0]["elapsed_seconds"]), 1)
        valid_ndcg: float | None = getattr(self, "valid_ndcg_", None)
        if valid_ndcg is not None:
            out["validation_ndcg@10"] = round(valid_ndcg, 6)
        if self.warm_started_:
            out["warm_start"] = True
        return out

    # ---- warm starts ----------------------------------------------------------------

    def start_from(self, previous: Recommender, items: np.ndarray | None = None) -> Self:
        """Seed the next `fit` with `previous`'s weights: every layer as it was, the item
        table's rows for the items it knew (`items`, see `Recommender.start_from`), new
        items' rows freshly initialised (from their text where the view reads text).
        That fit stops after `warm_patience` epochs without a better validation NDCG@10."""
        self._check_warm_source(previous, _RESUMABLE)
        assert isinstance(previous, SASRec)
        state = {k: v.detach().clone() for k, v in previous.net_.state_dict().items()}
        self._warm = (state, None if items is None else np.asarray(items, dtype=np.int64))
        return self

    def _load_warm(self, state: dict[str, torch.Tensor], items: np.ndarray | None) -> None:
        """Copy an earlier model's weights in; each item table's rows by `items`."""
        own = self.net_.state_dict()
        old_n = next(len(v) for k, v in state.items() if k.endswith("item.weight")) - 1
        if items is None:  # the same items first, new ones appended
            if old_n > self.n_items:
                raise LmrecError(
                    f"{type(self).__name__}: cannot start from a model of {old_n} items with "
                    f"{self.n_items}; a warm start needs the same items first, new ones "
                    "appended (or the map of items to the earlier model's)"
                )
            items = np.where(np.arange(self.n_items) < old_n, np.arange(self.n_items), -1)
        if len(items) != self.n_items or items.max(initial=-1) >= old_n:
            raise LmrecError(
                f"{type(self).__name__}: the item map covers {len(items)} items (this fit has "
                f"{self.n_items}) with indexes below {items.max(initial=-1) + 1} (the earlier "
                f"model has {old_n})"
            )
        known = np.flatnonzero(items >= 0)
        to_rows, from_rows = (torch.from_numpy(known + 1), torch.from_numpy(items[known] + 1))
        with torch.no_grad():
            for key, old in state.items():
                new = own[key]
                if key.endswith(".text"):  # frozen text vectors: this fit's own
                    continue
                if key.endswith("item.weight"):  # row 0 is padding, then one row per item
                    new[0].copy_(old[0])
                    new[to_rows] = old[from_rows].to(new.dtype)
                elif old.shape == new.shape:
                    new.copy_(old)
                else:
                    raise LmrecError(
                        f"{type(self).__name__}: cannot start from a model with {key} of "
                        f"shape {tuple(old.shape)} (this one: {tuple(new.shape)})"
                    )

    def _valid_ndcg(
        self, data: TrainingData, valid: Interactions, views: list[int] | None
    ) -> float:
        """Validation NDCG@10 of the given views' summed scores (None: all views)."""
        self._views_scored, self._tables = views, None
        try:
            return data.validator(self.score, data.interactions, valid).ndcg
        finally:
            self._views_scored, self._tables = None, None

    def _finish(self, data: TrainingData) -> None:
        """Hook after the best weights are restored."""
        self._tables = None

    def _valid_sample(self, data: TrainingData) -> Interactions | None:
        if data.valid is None or len(data.valid) == 0:
            return None
        v = data.valid
        users = np.unique(v.users)
        n = self.config.valid_users
        if n and n < len(users):
            keep = np.random.default_rng(self.config.seed).choice(users, n, replace=False)
            v = v.select(np.isin(v.users, keep))
        return v

    def _training_log(self, data: TrainingData, valid: Interactions | None) -> Interactions:
        """What the model trains on: the training split, plus validation rows if folded."""
        if valid is None or not self.config.fold_valid or data.valid is None:
            return data.interactions
        sampled = np.isin(data.valid.users, np.unique(valid.users))
        return data.interactions.concat(data.valid.select(~sampled))

    def _train_epoch(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        lengths: np.ndarray,
        optimizer: torch.optim.Optimizer,
        epoch: int,
        live: list[int],
    ) -> float:
        """One pass over the training sequences for the `live` views; their mean loss."""
        c = self.config
        # Seeds per epoch: a resumed run repeats exactly what an uninterrupted one would do.
        rng = np.random.default_rng([c.seed, epoch])
        torch.manual_seed(c.seed * 1_000_003 + epoch)
        self.net_.train()
        self._tables = None
        # Batches of similar length (sorted within shuffled chunks) waste little on padding.
        order = rng.permutation(len(inputs))
        chunk = c.batch_size * 32
        batches = []
        for lo in range(0, len(order), chunk):
            part = order[lo : lo + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches += [part[i : i + c.batch_size] for i in range(0, len(part), c.batch_size)]
        total, count, views = 0.0, 0, self._views
        for b in rng.permutation(len(batches)):
            idx = batches[b]
            length = max(1, int(lengths[idx].max()))
            seq = torch.from_numpy(inputs[idx, -length:]).to(c.device)
            tgt = torch.from_numpy(targets[idx, -length:]).to(c.device)
            loss = torch.stack([self._batch_loss(views[i], seq, tgt) for i in live]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = int((tgt > 0).sum())
            total += loss.item() * n
            count += n
        self.net_.eval()
        return total / max(1, count)

    def _batch_loss(
        self, net: CausalTransformer, seq: torch.Tensor, tgt: torch.Tensor
    ) -> torch.Tensor:
        """One view's mean next-item cross-entropy over the batch's non-padding positions."""
        sel = tgt > 0
        if self.config.loss == "full":
            table = net.item_table()
            logits = net.encode(seq, table)[sel] @ table[1:].T
            return F.cross_entropy(logits, tgt[sel] - 1)
        negatives = torch.randint(
            1, self.n_items + 1, (self.config.n_negatives,), device=seq.device
        )
        # Build only the rows this batch touches; token 0 (padding) stays row 0.
        zero = torch.zeros(1, dtype=seq.dtype, device=seq.device)
        tokens = torch.unique(torch.cat([zero, seq.flatten(), tgt[sel], negatives]))
        rows = net.item_rows(tokens)
        hidden = net.encode(torch.searchsorted(tokens, seq), rows)[sel]
        target = tgt[sel]
        positive = (hidden * rows[torch.searchsorted(tokens, target)]).sum(-1, keepdim=True)
        negative = hidden @ rows[torch.searchsorted(tokens, negatives)].T
        negative = negative.masked_fill(negatives[None, :] == target[:, None], float("-inf"))
        logits = torch.cat([positive, negative], dim=1)
        return F.cross_entropy(
            logits, torch.zeros(len(target), dtype=torch.long, device=seq.device)
        )

    # ---- checkpoints ----------------------------------------------------------------

    def _checkpoint(
        self, folder: Path, optimizer: torch.optim.Optimizer, epoch: int, tracks: list[_Track]
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"model.{k}": v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()
        }
        for i, track in enumerate(tracks):
            for k, v in (track.best_state or {}).items():
                tensors[f"best.{i}.{k}"] = v.cpu().contiguous()
        opt = optimizer.state_dict()
        for pid, st in opt["state"].items():
            for name, value in st.items():
                tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        meta = {
            "epoch": epoch,
            "views": [
                {"best_score": t.best_score, "best_epoch": t.best_epoch, "bad_epochs": t.bad}
                for t in tracks
            ],
            "n_items": self.n_items,
            "config": self.config.model_dump(mode="json"),
            "param_groups": opt["param_groups"],
            "training_log": self.training_log_,
        }
        # Write then rename, so an interrupted save never leaves a half-written checkpoint.
        save_file(tensors, str(folder / "checkpoint.safetensors.tmp"))
        (folder / "checkpoint.json.tmp").write_text(json.dumps(meta, indent=1))
        os.replace(folder / "checkpoint.safetensors.tmp", folder / "checkpoint.safetensors")
        os.replace(folder / "checkpoint.json.tmp", folder / "checkpoint.json")

    def _resume(self, folder: Path, optimizer: torch.optim.Optimizer) -> tuple[int, list[_Track]]:
        """Load a checkpoint: the next epoch to run and each view's early-stopping state."""
        meta = json.loads((folder / "checkpoint.json").read_text())
        saved = {k: v for k, v in meta["config"].items() if k not in _RESUMABLE}
        mine = {k: v for k, v in self.config.model_dump(mode="json").items() if k not in _RESUMABLE}
        if "views" not in meta:
            raise LmrecError(
                f"{folder}: checkpoint was written by an older lmrec (before views); "
                "use another checkpoint_dir or delete this one"
            )
        if saved != mine or meta["n_items"] != self.n_items:
            diff = sorted(k for k in mine if saved.get(k) != mine[k]) or ["n_items"]
            raise LmrecError(
                f"{folder}: checkpoint was made with a different setup ({', '.join(diff)}); "
                "use another checkpoint_dir or delete this one"
            )
        tensors = load_file(str(folder / "checkpoint.safetensors"))
        self.net_.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        tracks = []
        for i, view in enumerate(meta["views"]):
            prefix = f"best.{i}."
            best = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            tracks.append(
                _Track(view["best_score"], view["best_epoch"], view["bad_epochs"], best or None)
            )
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        self.training_log_ = list(meta["training_log"])
        return meta["epoch"] + 1, tracks

    # ---- scoring --------------------------------------------------------------------

    def _item_tables(self) -> list[torch.Tensor]:
        if self._tables is None:
            with torch.inference_mode():
                self._tables = [net.item_table().detach() for net in self._views]
        return self._tables

    def item_embeddings(self) -> np.ndarray:
        """The scored views' item tables side by side (the scores sum over views)."""
        self._require_fitted()
        tables, views = self._item_tables(), tuple(self._scored_views())
        cached = self._embeddings
        if cached is None or cached[0] is not tables or cached[1] != views:
            rows = np.hstack([tables[i][1:].cpu().numpy() for i in views])
            self._embeddings = cached = (tables, views, rows)
        return cached[2]

    def query_embeddings(self, histories: Histories) -> np.ndarray:
        seq = self._sequences(histories)
        tables, nets = self._item_tables(), self._views
        with torch.inference_mode():
            parts = [nets[i].encode_last(seq, tables[i]) for i in self._scored_views()]
            return torch.cat(parts, dim=1).cpu().numpy()

    def _scored_views(self) -> Sequence[int]:
        return self._views_scored if self._views_scored is not None else range(len(self._views))

    def _sequences(self, histories: Histories) -> torch.Tensor:
        """Histories as padded item-token sequences (items the model never saw dropped)."""
        items = histories.items
        keep = (items >= 0) & (items < self.n_items)
        if not keep.all():  # drop items the model has never seen
            rows = histories.row_ids()[keep]
            indptr = np.zeros(len(histories) + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=len(histories)), out=indptr[1:])
            histories = Histories(indptr, items[keep])
        length = int(min(self.config.max_len, max(1, histories.lengths.max(initial=0))))
        self.net_.eval()
        return torch.from_numpy(histories.padded(length, pad=0, offset=1)).to(self.config.device)

    def _score(self, histories: Histories) -> np.ndarray:
        seq = self._sequences(histories)
        tables, nets, views = self._item_tables(), self._views, self._scored_views()
        with torch.inference_mode():
            # Summed logits: the views' next-item distributions multiplied (a product of experts).
            scores = torch.stack(
                [nets[i].encode_last(seq, tables[i]) @ tables[i][1:].T for i in views]
            ).sum(0)
            return scores.cpu().numpy()

    # ---- artefacts ------------------------------------------------------------------

    def _state(self) -> dict[str, np.ndarray]:
        return {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        if "net.item.weight" in state:  # saved before views existed: one transformer
            state = {f"net.0.{k[4:]}": v for k, v in state.items()}
        # Every text view holds the same frozen text vectors (row 0: padding).
        text = next((v for k, v in state.items() if k.endswith(".text")), None)
        self.net_ = self._build(text[1:] if text is not None else None)
        self.net_.load_state_dict({k[4:]: torch.from_numpy(np.array(v)) for k, v in state.items()})
        self.net_.eval()
        self._tables, self._views_scored = None, None


TextMode = Literal["none", "fuse", "init", "init-fuse", "dual"]


class TextSASRecConfig(SASRecConfig):
    """`SASRec` hyperparameters plus how item text vectors enter the item table.

    `text`: how each view builds its item table, one view per entry (a comma-separated
    string is accepted; `copies` repeats the list): "fuse" (ID embedding + learned adapter
    of the text vector), "init" (ID embeddings initialised from the text vectors'
    principal components), "init-fuse" (both), "dual" (normalised ID and text halves side
    by side) or "none" (ID embeddings only); `text_dropout`: dropout on the text vector at
    the adapter's input while training (used by "fuse", "init-fuse" and "dual").

    The default, "none,init,fuse", is a collaborative view, a text-initialised one and a
    text-adapter one: the best measured on Amazon Beauty (BENCHMARKS.md), at three times
    the training and scoring cost of one view; "fuse" alone is the cheap setting.
    """

    text: tuple[TextMode, ...] = ("none", "init", "fuse")
    text_dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("text", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part for v in value.split(",") if (part := v.strip()))
        if not value:
            raise ValueError(f"give at least one of {', '.join(get_args(TextMode))}")
        return value


class TextSASRec(SASRec):
    """`SASRec` whose item tables are built from frozen language-model item vectors as well.

    Needs `TrainingData.item_vectors` (row i = item i). Items with a text vector but no
    training interactions (new items) are scored from their text alone: their ID
    embeddings are zeroed after training (except where "init" gave them text rows).
    """

    Config = TextSASRecConfig
    config: TextSASRecConfig
    uses_text = True

    def _view_modes(self) -> list[str]:
        return [str(mode) for mode in self.config.text] * self.config.copies

    def _text_dropout(self) -> float:
        return self.config.text_dropout

    def _finish(self, data: TrainingData) -> None:
        super()._finish(data)
        counts = np.bincount(data.interactions.items, minlength=self.n_items)[: self.n_items]
        unseen = torch.from_numpy(np.flatnonzero(counts == 0) + 1)
        with torch.no_grad():
            for net, mode in zip(self._views, self._view_modes(), strict=True):
                if mode not in ("init", "init-fuse"):  # those keep text-initialised ID rows
                    net.item.weight[unseen] = 0.0
