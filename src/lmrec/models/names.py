"""Short names for the built-in strategies, as used by `lmrec evaluate --models`.

This is a plain table of import paths, not a registry: any class can also be
named by its full path (`package.module:ClassName`).
"""

from __future__ import annotations

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, import_class

__all__ = ["STRATEGIES", "build_component", "resolve_strategy"]

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
