"""Short names for the built-in strategies, as used by `lmrec evaluate --models`.

This is a plain table of import paths, not a registry: any class can also be
named by its full path (`package.module:ClassName`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, TrainingData, import_class

__all__ = [
    "STRATEGIES",
    "build_component",
    "fit_component",
    "resolve_strategy",
    "reuse_fitted_parts",
]

STRATEGIES: dict[str, str] = {
    "pop": "lmrec.models.popularity:Popularity",
    "random": "lmrec.models.popularity:Random",
    "itemknn": "lmrec.models.itemknn:ItemKNN",
    "ease": "lmrec.models.ease:EASE",
    "als": "lmrec.models.factorization:ALS",
    "bpr": "lmrec.models.factorization:BPR",
    "content": "lmrec.models.content:ContentProfile",
    "lm-adapter": "lmrec.models.lm_adapter:LMAdapter",
    "hybrid": "lmrec.models.hybrid:Hybrid",
    "sasrec": "lmrec.models.sasrec:SASRec",
    "text-sasrec": "lmrec.models.sasrec:TextSASRec",
    "multi-interest": "lmrec.models.multi_interest:MultiInterest",
    "fused": "lmrec.models.fused:Fused",
}


def resolve_strategy(name: str) -> type[Recommender]:
    """The strategy class for a short name or an import path."""
    path = STRATEGIES.get(name.strip().lower())
    if path is None:
        if ":" not in name and "." not in name:
            raise ConfigError(
                f"unknown model {name!r}; known: {', '.join(STRATEGIES)} (or an import path package.module:Class)"
            )
        path = name
    cls = import_class(path, label=name)
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ConfigError(f"{name!r} is not a Recommender")
    return cls


def build_component(name: str, params: dict | None = None) -> Recommender:
    """A strategy built as part of another that tunes itself on the validation split.

    Such a part must not train on validation targets, or its validation scores would be
    inflated and the tuning would trust it too much: options that fold validation into
    training (`fold_valid`) are off unless `params` sets them.
    """
    cls = resolve_strategy(name)
    params = dict(params or {})
    if "fold_valid" in cls.Config.model_fields:
        params.setdefault("fold_valid", False)
    return cls(params)


class _FittedParts:
    """Parts fitted inside `reuse_fitted_parts`, keyed by class, settings and data.

    Each entry also holds the catalogue and validator its key names by identity, so
    neither can be freed and its id reused while the entry lives.
    """

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple[str, str, str], tuple[Recommender, Any, Any]] = (
            OrderedDict()
        )
        self.fits = 0

    def get(self, part: Recommender, data: TrainingData) -> Recommender:
        key = (type(part).__qualname__, part.config.model_dump_json(), data.fingerprint())
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
            return hit[0]
        part.fit(data)
        self.fits += 1
        self.entries[key] = (part, data.catalog, data.validator)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return part


_reuse: list[_FittedParts] = []


@contextmanager
def reuse_fitted_parts(size: int = 16) -> Iterator[_FittedParts]:
    """Within this block a part of a composite strategy (fused, hybrid) is fitted once
    per settings and data, and shared by every composite that asks for it again.

    A tuning study fits the same parts trial after trial when only the fusion or the
    blend changes; this makes those trials cost the fusion alone. Fitted parts are
    shared, so nothing may refit or change one in place (composites refit by asking
    `fit_component` for the merged data instead). The `size` most recently used parts
    are kept.
    """
    cache = _FittedParts(size)
    _reuse.append(cache)
    try:
        yield cache
    finally:
        _reuse.remove(cache)


def fit_component(name: str, params: dict | None, data: TrainingData) -> Recommender:
    """`build_component(name, params)` fitted on `data` (or the same part fitted
    before, inside `reuse_fitted_parts`)."""
    part = build_component(name, params)
    if _reuse:
        return _reuse[-1].get(part, data)
    return part.fit(data)
