"""The model now serving, and how a new artefact version replaces it without downtime."""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.artifacts import Artifact, load_artifact
from lmrec.errors import LmrecError
from lmrec.pipeline import Encoder, Pipeline
from lmrec.serving.store import StateStore, StoredItem

__all__ = ["ModelLoad", "ModelRegistry"]

#: Model loads remembered for the dashboard (the process's own, newest last).
_LOADS_KEPT = 100


@dataclass(frozen=True)
class ModelLoad:
    """One attempt to serve an artefact: when (epoch seconds), from where, and the outcome.

    `version`/`strategy` are None for a rejected artefact, whose `reason` says why.
    """

    at: float
    path: str
    accepted: bool
    version: str | None = None
    strategy: str | None = None
    reason: str | None = None


class ModelRegistry:
    """Holds the serving `Pipeline`; `load` builds the next one aside and swaps it in.

    A swap is: load and verify the artefact, replay the online item changes from
    the state store onto it, run warm-up queries, then replace the reference in
    one assignment. Requests in flight finish on the pipeline they started with;
    any failure before the swap leaves the old pipeline serving.

    Experiments can rank with other artefacts beside the serving one
    (`load_variant`): they are loaded the same way, receive the same item changes,
    and stay until the process ends.
    """

    def __init__(
        self,
        store: StateStore,
        encoder: Encoder | None = None,
        trusted_classes: Sequence[str] = (),
        encoder_identity: str | None = None,
    ):
        self.store = store
        self.encoder = encoder
        #: Names the encoder's vectors; stored vectors of another (or no) name are re-made.
        self.encoder_identity = encoder_identity
        self.trusted_classes = tuple(trusted_classes)
        self._pipeline: Pipeline | None = None
        self._variants: dict[str, Pipeline] = {}
        self.text_model: str | None = None
        #: The serving artefact's manifest (what it was trained on, how, its validation).
        self.manifest: dict[str, Any] = {}
        #: Loads of the serving model in this process, start-up first (experiment
        #: variants' models are not listed); at most the last 100.
        self.loads: deque[ModelLoad] = deque(maxlen=_LOADS_KEPT)
        # Serialises item writes with swaps so no upsert is lost between replay and swap.
        self.items_lock = threading.Lock()
        self._load_lock = threading.Lock()
        #: The newest stored item change every loaded pipeline has (see `follow_items`).
        self.items_seen = 0
        #: The store's model announcement this process serves (see `follow_model`).
        self.announcement_seen = 0

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline serving now."""
        if self._pipeline is None:
            raise LmrecError("no model is loaded")
        return self._pipeline

    @property
    def ready(self) -> bool:
        return self._pipeline is not None

    def pipeline_for(self, model_path: str | None) -> Pipeline:
        """The serving pipeline, or (for a variant) the one loaded from `model_path`."""
        if model_path is None:
            return self.pipeline
        try:
            return self._variants[model_path]
        except KeyError:
            raise LmrecError(f"the variant model {model_path} is not loaded") from None

    def pipelines(self) -> list[Pipeline]:
        """Every loaded pipeline: the serving one, then the variants' (item changes go to all)."""
        return [self.pipeline, *self._variants.values()]

    def _check_encoder(self, artifact: Artifact) -> None:
        if artifact.item_vectors is None or self.encoder is None:
            return
        dim = self.encoder(["probe"]).shape[-1]
        if dim != artifact.item_vectors.shape[1]:
            raise LmrecError(
                f"{artifact.path}: item vectors have {artifact.item_vectors.shape[1]} dimensions but the "
                f"configured encoder makes {dim} (artefact text model: {artifact.text_model})"
            )

    def with_vectors(self, items: Sequence[StoredItem]) -> list[StoredItem]:
        """`items` with a text vector each from this encoder (encoding only those without).

        Encoding is slow (MiniLM: milliseconds an item): callers do it before taking
        `items_lock`, never under it.
        """
        if self.encoder is None:
            return list(items)
        todo = [
            i
            for i, item in enumerate(items)
            if not item.deleted
            and (
                item.vector is None
                or self.encoder_identity is None
                or item.encoder != self.encoder_identity
            )
        ]
        if not todo:
            return list(items)
        from lmrec.data import Catalog

        frame = Catalog(pd.DataFrame([dict(items[i].fields) for i in todo], index=range(len(todo))))
        vectors = self.encoder(frame.texts())
        out = list(items)
        for row, i in enumerate(todo):
            out[i] = dataclasses.replace(
                items[i], vector=vectors[row], encoder=self.encoder_identity
            )
        return out

    @staticmethod
    def apply(pipeline: Pipeline, items: Sequence[StoredItem]) -> tuple[int, int]:
        """Apply item changes (upserts with their vectors, deletions) to one pipeline.

        Returns how many items are new and how many active ones were deleted.
        """
        live = [i for i in items if not i.deleted]
        added = 0
        if live:
            vectors = None
            if pipeline.has_vectors and all(i.vector is not None for i in live):
                vectors = np.vstack([np.asarray(i.vector, np.float32) for i in live])
            added = pipeline.add_items([i.item_id for i in live], [i.fields for i in live], vectors)
        gone = [i.item_id for i in items if i.deleted]
        return added, pipeline.remove_items(gone) if gone else 0

    @contextmanager
    def _replayed(self, pipeline: Pipeline) -> Iterator[None]:
        """Bring a pipeline that is not serving yet up to date with the online items; the
        body runs under `items_lock` with it current (so no upsert is missed by the swap).

        The bulk (every change so far, encoded if its vector is missing) is applied
        without the lock, so upserts are not blocked meanwhile; under the lock only the
        changes made since remain, and those carry their vectors already.
        """
        snapshot = self.with_vectors(self.store.items())
        self.apply(pipeline, snapshot)
        seen = max((i.seq for i in snapshot), default=0)
        with self.items_lock:
            rest = self.with_vectors(self.store.items(after=seen))
            self.apply(pipeline, rest)
            self.items_seen = max(self.items_seen, seen, *(i.seq for i in rest))
            # Users erased since the artefact was trained are not served from its copy.
            pipeline.forget_users(self.store.erased_among(pipeline.histories.users.to_list()))
            yield

    def follow_items(self) -> int:
        """Apply item changes other workers stored since the last call to every loaded
        pipeline; returns how many. Read and applied under `items_lock`, so a change
        this worker makes meanwhile is never overtaken by an older one."""
        with self.items_lock:
            changes = self.with_vectors(self.store.items(after=self.items_seen))
            if not changes:
                return 0
            for pipeline in self.pipelines():
                self.apply(pipeline, changes)
            self.items_seen = max(self.items_seen, *(i.seq for i in changes))
        return len(changes)

    def follow_model(self) -> Pipeline | None:
        """Serve the artefact another worker announced, if it is newer than this one's;
        returns the new pipeline, or None when nothing changed.

        The load is `load`'s (verify, replay, warm, then switch), so requests never see
        a half-loaded model; a newer announcement only moves forwards, so the version a
        worker reports never flips back. An artefact this worker cannot load is
        recorded in `loads` and not retried until the next announcement.
        """
        current = self.store.announced_model()
        if current is None or current.seq <= self.announcement_seen:
            return None
        self.announcement_seen = current.seq
        if self._pipeline is not None and self._pipeline.version == current.version:
            return None
        try:
            return self.load(current.path)
        except (LmrecError, OSError):
            return None

    def forget_user(self, user_id: str) -> None:
        """Drop an erased user's history from every loaded pipeline."""
        with self.items_lock:
            for pipeline in self.pipelines():
                pipeline.forget_users([user_id])

    def _build(self, path: str | Path) -> tuple[Pipeline, Artifact]:
        """Load, check and warm an artefact; any failure is an `LmrecError` naming the path.

        Checksums prove the files are the ones written, not that they belong together
        (a model from another dataset beside these vocabularies): such a model fails
        in warm-up, which is reported like any other rejected artefact.
        """
        artifact = load_artifact(path, self.trusted_classes)
        self._check_encoder(artifact)
        try:
            pipeline = Pipeline.from_artifact(artifact, self.encoder)
            pipeline.warm()
        except LmrecError:
            raise
        except Exception as exc:
            raise LmrecError(
                f"{Path(path) / 'model'}: the model does not fit this artefact's users and items "
                f"({type(exc).__name__}: {exc})"
            ) from None
        return pipeline, artifact

    def load(self, path: str | Path) -> Pipeline:
        """Load, validate and warm the artefact at `path`, then make it the serving one."""
        with self._load_lock:
            try:
                pipeline, artifact = self._build(path)
            except (LmrecError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.loads.append(ModelLoad(time.time(), str(path), False, reason=reason))
                raise
            with self._replayed(pipeline):
                self._pipeline = pipeline
                self.text_model = artifact.text_model
                self.manifest = artifact.manifest
            self.loads.append(
                ModelLoad(time.time(), str(path), True, pipeline.version, pipeline.strategy)
            )
            _settle_heap()
            return pipeline

    def load_variant(self, model_path: str) -> Pipeline:
        """Load the artefact at `model_path` for experiment variants (once; later calls reuse it)."""
        with self._load_lock:
            if model_path in self._variants:
                return self._variants[model_path]
            pipeline, _ = self._build(model_path)
            with self._replayed(pipeline):
                self._variants[model_path] = pipeline
            _settle_heap()
            return pipeline


def _settle_heap() -> None:
    """Collect the replaced model's garbage once, then exempt the long-lived heap from GC.

    A served model is ~10^5 Python objects (catalogue, vocabularies); every full
    collection walks them all, a 50-100 ms stop of every request on Beauty, which
    set the p99. Frozen objects are skipped by the collector but still freed by
    reference counting; unfreezing first lets the one collection here reclaim the
    previous model's reference cycles, so swaps do not leak.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
