"""The plain Python API for the common case: a DataFrame in, a fitted `Pipeline` out.

```python
import lmrec

pipe = lmrec.fit(events, model="ease", items=catalogue)   # columns user, item[, timestamp]
pipe.recommend("u42", k=10)                               # a known user
pipe.recommend(history=["i1", "i7"], k=5)                 # anyone, from what they just did
pipe.similar("i1")
pipe.save("models/v1")                                    # a versioned, checksummed artefact
pipe = lmrec.load("models/v1")
```

Everything goes through the same `Pipeline` that `lmrec serve` runs and
`lmrec evaluate` measures.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.dataset import Dataset
from lmrec.errors import LmrecError
from lmrec.pipeline import Encoder, Pipeline, PipelineConfig, TrainingSource, UserHistories
from lmrec.ranking.rerank import RerankOptions

__all__ = ["fit", "load"]


def _text(dataset: Dataset, encoder: Encoder | None) -> tuple[np.ndarray, str | None, Encoder]:
    """Item text vectors, the identity of their text model, and the encoder for new items.

    Without an `encoder`, the packaged MiniLM model (vectors cached on disk)."""
    if encoder is None:
        from lmrec.serving.encoders import MINILM_IDENTITY, minilm_encoder
        from lmrec.text import EmbeddingCache, encode_catalog, make_encoder

        vectors, _ = encode_catalog(dataset.catalog, make_encoder(), EmbeddingCache())
        return vectors, MINILM_IDENTITY, minilm_encoder()
    vectors = np.asarray(encoder(dataset.catalog.texts()), dtype=np.float32)
    return vectors, getattr(encoder, "identity", None), encoder


def fit(
    interactions: pd.DataFrame,
    model: str = "ease",
    items: pd.DataFrame | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    text: bool | None = None,
    encoder: Encoder | None = None,
    rerank: Mapping[str, Any] | None = None,
    name: str = "frame",
) -> Pipeline:
    """Fit `model` (a short name such as `ease`, `fused`, `text-sasrec`, or an import path)
    on a log and return the pipeline that serves it.

    `interactions` has columns `user`, `item` and optionally `timestamp`, `rating`
    or `weight`, `event`; `items` has `item` plus text and attribute columns
    (`title`, `description`, `brand`, `categories`, ...). Item text is encoded when
    the model reads text or `text=True`, by `encoder` (texts -> vectors) or by the
    packaged MiniLM model; with vectors, items added later are scored from their
    text. A model that tunes on validation holds out each user's last interaction
    for it. `rerank` sets the pipeline's default re-ranking knobs (`RerankOptions`).
    """
    from lmrec.artifacts import fit_for_artifact
    from lmrec.models.names import resolve_strategy

    dataset = Dataset.from_frames(name, interactions, items, keep_catalog_only_items=True)
    cls = resolve_strategy(model)
    vectors, identity = None, None
    if text or (text is None and (cls.uses_text or encoder is not None)):
        vectors, identity, encoder = _text(dataset, encoder)
    elif cls.uses_text:
        raise LmrecError(f"{model} reads item text: leave text=None or pass text=True")
    fitted, validation = fit_for_artifact(dataset, cls, params, vectors)
    config = PipelineConfig(rerank=RerankOptions.model_validate(dict(rerank or {})))
    pipeline = Pipeline(
        fitted,
        dataset.items,
        dataset.catalog,
        histories=UserHistories.from_interactions(dataset.users, dataset.interactions),
        item_vectors=vectors,
        encoder=encoder,
        config=config,
        version="unsaved",
        source=TrainingSource(dataset, identity, validation),
    )
    return pipeline


def load(path: str | Path, encoder: Encoder | None = None) -> Pipeline:
    """The pipeline of a saved artefact (`Pipeline.save` or `lmrec train`).

    `encoder` makes new items' and queries' vectors; by default the int8 ONNX encoder
    the artefact carries, when it has one (no torch needed).
    """
    from lmrec.artifacts import artifact_encoder, load_artifact

    artifact = load_artifact(path)
    if encoder is None:
        encoder = artifact_encoder(artifact.path)
    return Pipeline.from_artifact(artifact, encoder)
