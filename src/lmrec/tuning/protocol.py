"""The honest protocol: trials never see the test split; the chosen configs meet it once.

`search_dataset` is the dataset with the test split's interactions removed, and it is
all a trial receives. Each trial runs the very procedure `lmrec evaluate` runs, on
that smaller log: split it again by the same protocol, fit, rank through the
`Pipeline`, measure. Under leave-one-out the re-split's targets are exactly the
outer validation items and its input is the outer training split, so a trial scores
on validation; strategies that early-stop or tune themselves get the item before
that as their own validation. After the search, `score_config` on the whole dataset
refits a config as `lmrec evaluate` would and scores it on test.

With `folds` > 1 (small data), fold f also drops each user's last f interactions
(leave-one-out and temporal) or re-splits with another seed (random, cold-items):
the score is the mean over folds, which trades time for less noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.data.catalog import Catalog
from lmrec.data.dataset import Dataset
from lmrec.data.splitting import split
from lmrec.errors import ConfigError
from lmrec.evaluation.evaluator import EvalOptions, ModelEvaluation
from lmrec.evaluation.runner import ModelSpec, pipeline_config, run_experiment
from lmrec.ranking.validation import Validator
from lmrec.tuning.space import FEATURES, RERANK

__all__ = ["TextVectors", "TrialConfig", "fold_dataset", "score_config", "search_dataset"]


@dataclass(frozen=True)
class TrialConfig:
    """One point of a search: the model's parameters, re-ranking knobs and text features.

    `to_json` is the `best.json` document `lmrec train --config` and
    `lmrec evaluate --config` read.
    """

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    rerank: dict[str, Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_values(cls, model: str, values: dict[str, Any]) -> TrialConfig:
        """From `{"ease.reg": 300, "rerank.mmr_lambda": 0.8, "text.fields": (...)}`."""
        groups: dict[str, dict[str, Any]] = {model: {}, RERANK: {}, FEATURES: {}}
        for name, value in values.items():
            prefix, _, key = name.rpartition(".")
            groups[prefix][key] = list(value) if isinstance(value, tuple) else value
        return cls(model, groups[model], groups[RERANK], groups[FEATURES])

    def to_json(self) -> dict[str, Any]:
        """The config as a plain JSON object."""
        return {
            "model": self.model,
            "params": self.params,
            "rerank": self.rerank,
            "text": self.text,
        }

    @classmethod
    def read(cls, path: str | Path) -> TrialConfig:
        """A `best.json` (or any file of that form); `tuning` (what the search found) is ignored."""
        where = f"--config {path}"
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("model"), str):
            raise ConfigError(f'{where}: expected an object with "model" (as `lmrec tune` writes)')
        unknown = set(doc) - {"model", "params", "rerank", "text", "tuning"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {sorted(unknown)}; a config has model, params, rerank, text"
            )
        parts = {k: doc.get(k) or {} for k in ("params", "rerank", "text")}
        for key, value in parts.items():
            if not isinstance(value, dict):
                raise ConfigError(f'{where}: "{key}" must be an object')
        return cls(doc["model"], parts["params"], parts["rerank"], parts["text"])


def search_dataset(dataset: Dataset, protocol: str, seed: int = 0) -> Dataset:
    """`dataset` without its test split: everything a trial may see."""
    outer = split(dataset.interactions, protocol, seed=seed)
    return replace(
        dataset,
        name=f"{dataset.name} (test split removed)",
        interactions=outer.train.concat(outer.valid),
        notes=[*dataset.notes, f"tuning on {protocol} without its test split"],
    )


def fold_dataset(search: Dataset, protocol: str, fold: int) -> tuple[Dataset, int]:
    """Fold `fold` of a search dataset and the seed its split takes (fold 0 is itself)."""
    if fold == 0:
        return search, 0
    if protocol in ("random", "cold-items"):
        return search, fold
    log = search.interactions
    keep = np.ones(len(log), dtype=bool)
    if protocol == "loo":
        # Each user's last `fold` interactions leave; the next ones become the targets.
        ends = log.user_indptr[1:]
        starts = log.user_indptr[:-1]
        for back in range(1, fold + 1):
            rows = ends - back
            keep[rows[rows >= starts + 3]] = False
    else:  # temporal: move the cut-off back by `fold` validation windows
        cut = np.quantile(log.timestamps, 1.0 - 0.1 * fold)
        keep = log.timestamps < cut
    return replace(search, interactions=log.select(keep)), 0


class TextVectors:
    """Item text vectors per feature choice (`{"fields": [...], "backend": "onnx-int8"}`),
    through the on-disk embedding cache and kept in memory for the process.

    `text_model` is the sentence-transformers directory (None: the bundled MiniLM).
    Calling it on a catalogue without text, or without the `text` extra, gives None.
    """

    def __init__(self, catalog: Catalog, text_model: str | None = None):
        self.catalog = catalog
        self.text_model = text_model
        self._done: dict[tuple[tuple[str, ...] | None, str], np.ndarray] = {}
        from lmrec._extras import text_extra_installed

        # Without the text extra there is no encoder: strategies that read text fail on
        # their own (naming the extra) and diversity is measured in attribute space.
        self.has_text = text_extra_installed() and catalog.has_titles

    def __call__(self, text: dict[str, Any]) -> np.ndarray | None:
        if not self.has_text:
            return None
        fields = tuple(text["fields"]) if "fields" in text else None
        backend = str(text.get("backend", "torch"))
        key = (fields, backend)
        if key not in self._done:
            from lmrec.text import EmbeddingCache, ItemTextConfig, encode_catalog, make_encoder

            encoder = make_encoder(model=self.text_model, backend=backend)
            config = ItemTextConfig(fields=fields) if fields else None
            self._done[key], _ = encode_catalog(self.catalog, encoder, EmbeddingCache(), config)
        return self._done[key]


def score_config(
    dataset: Dataset,
    protocol: str,
    config: TrialConfig,
    *,
    seed: int = 0,
    options: EvalOptions | None = None,
    vectors: Callable[[dict[str, Any]], np.ndarray | None] = lambda text: None,
    diversity_vectors: np.ndarray | None = None,
    validator: Validator | None = None,
) -> ModelEvaluation:
    """Fit `config` and measure it on `dataset`'s test split, as `lmrec evaluate` does.

    `vectors(text_settings)` gives the item text vectors for the config's text
    features (None when the model reads none).
    """
    spec = ModelSpec.parse(config.model, config.params)
    item_vectors = vectors(config.text)
    experiment = run_experiment(
        dataset,
        protocol,
        [spec],
        seed=seed,
        options=options,
        item_vectors=item_vectors,
        pipeline=pipeline_config({RERANK: config.rerank}),
        validator=validator,
        diversity_vectors=diversity_vectors,
    )
    return experiment.results[spec.name]
