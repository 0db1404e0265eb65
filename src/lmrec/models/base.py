"""The strategy protocol every recommender implements, and artefact save/load.

A strategy (`Recommender`) is built from a typed config that rejects unknown
keys, learns in `fit` (which returns `self`), and scores all items for a batch
of `Histories`. Scoring depends only on the histories given, so the same model
answers offline evaluation and live requests whose history changed a second ago.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError

from lmrec._arrays import read_arrays, write_arrays
from lmrec._extras import TEXT_MODULES, missing_text_extra
from lmrec.data.catalog import Catalog
from lmrec.data.interactions import Histories, Interactions
from lmrec.errors import ConfigError, LmrecError, NotFittedError, first_problem
from lmrec.ranking.validation import Validator, full_ranking_ndcg

__all__ = [
    "Attribution",
    "ModelConfig",
    "Recommender",
    "TrainingData",
    "class_path",
    "drop_one_contributions",
    "import_class",
    "inner_products",
    "item_item_terms",
    "last_occurrence",
    "load_model",
]

FORMAT_VERSION = 1


class ModelConfig(BaseModel):
    """Base of every strategy's hyperparameters: typed, immutable, unknown keys fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What a strategy learns from.

    `interactions` is the training log; `valid` holds validation targets (their
    history is `interactions`) for early stopping; `catalog` and `item_vectors`
    (text vectors, row `i` = item `i`, L2-normalised) serve strategies that read
    item content. `item_vectors` may cover more items than have interactions.
    `validator` is how a strategy measures itself on validation (its scorer, a
    history, targets -> NDCG@10): full ranking by default, so models need not
    import the evaluation package.
    """

    interactions: Interactions
    catalog: Catalog | None = None
    item_vectors: np.ndarray | None = None
    valid: Interactions | None = None
    validator: Validator = full_ranking_ndcg

    @property
    def n_items(self) -> int:
        """Items a model should score: those with interactions or with text vectors."""
        n = self.interactions.n_items
        if self.item_vectors is not None:
            n = max(n, len(self.item_vectors))
        return n

    def merged(self) -> TrainingData:
        """The same data with the validation interactions folded into training (no validation).

        What a model refits on for the final test once validation has done its job
        (early stopping, blend or fusion weights).
        """
        if self.valid is None or len(self.valid) == 0:
            return self
        return TrainingData(
            self.interactions.concat(self.valid),
            self.catalog,
            self.item_vectors,
            None,
            self.validator,
        )

    def fingerprint(self) -> str:
        """A digest of the logs and text vectors: equal for equal data, whichever objects
        hold it (the catalogue and the validator are compared by identity instead)."""
        digest = hashlib.blake2b(digest_size=16)
        for log in (self.interactions, self.valid):
            if log is None:
                digest.update(b"-")
                continue
            digest.update(f"{log.n_users},{log.n_items},{len(log)}".encode())
            for a in (log.users, log.items, log.timestamps, log.weights, log.events):
                digest.update(np.ascontiguousarray(a).tobytes())
        if self.item_vectors is not None:
            digest.update(str(self.item_vectors.shape).encode())
            digest.update(np.ascontiguousarray(self.item_vectors).tobytes())
        return f"{digest.hexdigest()}:{id(self.catalog)}:{id(self.validator)}"

    def matrix(self, binary: bool = True) -> sp.csr_matrix:
        """The training user x item matrix, widened to `n_items` columns."""
        x = self.interactions.matrix(binary=binary)
        if x.shape[1] < self.n_items:
            x = sp.csr_matrix((x.data, x.indices, x.indptr), shape=(x.shape[0], self.n_items))
        return x


@dataclass(frozen=True)
class Attribution:
    """Where a fused item came from: the strategy that ranked it best and every rank (0-based)."""

    strategy: str
    ranks: dict[str, int]


def last_occurrence(history: np.ndarray) -> np.ndarray:
    """Mask of each position that is the last occurrence of its item."""
    mask = np.zeros(len(history), dtype=bool)
    seen: set[int] = set()
    for p in range(len(history) - 1, -1, -1):
        if int(history[p]) not in seen:
            seen.add(int(history[p]))
            mask[p] = True
    return mask


def item_item_terms(
    block: Callable[[np.ndarray, np.ndarray], np.ndarray],
    history: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    n_items: int,
) -> np.ndarray:
    """(len(items) x len(history)) terms of a score `sum_p weights[p] * M[history[p], item]`.

    `block(rows, cols)` returns the dense `M[rows][:, cols]` of an item-item model (EASE
    weights, kNN similarities); items outside `0..n_items-1` contribute and get 0.
    """
    h = np.asarray(history, dtype=np.int64)
    it = np.asarray(items, dtype=np.int64)
    inside_h = (h >= 0) & (h < n_items)
    inside_i = (it >= 0) & (it < n_items)
    w = np.where(inside_h, weights, 0.0)
    out = (block(np.where(inside_h, h, 0), np.where(inside_i, it, 0)) * w[:, None]).T
    out[~inside_i] = 0.0
    return out.astype(np.float32)  # type: ignore[no-any-return]


#: Below this many queries, `inner_products` multiplies the other way round.
_FEW_QUERIES = 32


def inner_products(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`queries @ rows.T` (queries x len(rows), C-contiguous), in the faster of two forms.

    OpenBLAS multiplies a few query rows against a large item table about twice as fast
    as `(rows @ queries.T).T` than as `queries @ rows.T` (12,101 x 384 items on one
    thread: 3.4 vs 6.7 ms for 2 queries, 5.6 vs 7.6 ms for 16), and the other way
    round from a few dozen queries on (65.8 vs 33.1 ms for 256). Serving ranks
    the few requests that wait together; evaluation ranks thousands at a time.
    """
    if 1 < len(queries) < _FEW_QUERIES:
        return np.ascontiguousarray((rows @ queries.T).T)
    return queries @ rows.T  # type: ignore[no-any-return]


def drop_one_contributions(
    model: Recommender, history: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """Score of each item minus its score with one history position removed."""
    n = len(history)
    if n == 0:
        return np.zeros((len(items), 0), dtype=np.float32)
    # Row 0 the whole history, row 1 + p the history without position p: built as one
    # ragged array (this runs for every explained request).
    dropped = np.broadcast_to(history, (n, n))[~np.eye(n, dtype=bool)]
    indptr = np.concatenate([[0], n + np.arange(n + 1, dtype=np.int64) * (n - 1)])
    variants = Histories(indptr, np.concatenate([history, dropped]))
    scores = model.score_items(variants, items)
    return (scores[0][:, None] - scores[1:].T).astype(np.float32)  # type: ignore[no-any-return]


def class_path(cls: type) -> str:
    """`module:QualName` of a class, as written in configs and artefacts."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str, label: str | None = None) -> type:
    """The class named by `module:QualName` (or `module.QualName`); `label` names it in errors."""
    module_name, _, name = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in TEXT_MODULES:
            raise missing_text_extra(label or path) from None
        raise ConfigError(f"cannot import {path!r}: expected 'package.module:ClassName'") from None
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"cannot import {path!r}: expected 'package.module:ClassName'") from None
    if not isinstance(obj, type):
        raise ConfigError(f"{path!r} is not a class")
    return obj


class Recommender(ABC):
    """A retrieval strategy: `fit` on training data, then `score` histories.

    Subclasses set `Config` (a `ModelConfig`), implement `_fit`, `_score`,
    `_state` and `_set_state`. The constructor only stores the config.

    Optional abilities are base methods with a general default, overridden where a
    strategy can do better (never probed with `getattr`): `score_queries` (use a
    free-text query vector; `query_aware` says whether it does), `contributions`
    (each history item's part in a score; default drop-one), `attribute` (which part
    of a composite proposed an item; default None), `describe` (what fitting chose),
    `item_embeddings` / `query_embeddings` (for strategies whose score is an inner
    product, so an approximate nearest-neighbour index can find their candidates) and
    `start_from` (begin the next `fit` from another fitted model's weights;
    `warm_starts` says whether a strategy can).
    """

    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when `fit` needs `TrainingData.item_vectors`.
    uses_text: ClassVar[bool] = False
    #: True when `fit` uses `TrainingData.valid` (early stopping, tuning). Evaluation then
    #: trains it on the training split; other strategies are refit on train + validation.
    uses_validation: ClassVar[bool] = False
    #: True when `fit` calls `TrainingData.validator` once per training epoch (so a tuner
    #: can read the calls as a learning curve and stop a poor trial early).
    validates_per_epoch: ClassVar[bool] = False
    #: True when `start_from` can seed the next `fit` with an earlier model's weights.
    warm_starts: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any):
        if isinstance(config, ModelConfig):
            data = config.model_dump()
        else:
            data = dict(config or {})
        data.update(overrides)
        try:
            self.config = self.Config(**data)
        except ValidationError as exc:
            unknown = sorted(set(data) - set(self.Config.model_fields))
            extra = exc.errors()[0]["type"] == "extra_forbidden"  # not a config's own message
            hint = (
                f"unknown parameter {', '.join(unknown)}; valid: "
                f"{', '.join(self.Config.model_fields) or '(none)'} (see `lmrec models`)"
                if unknown and extra
                else first_problem(exc)
            )
            raise ConfigError(f"{type(self).__name__} config: {hint}") from None
        self.n_items = 0
        self._fitted = False
        #: (item rows, their covariance) behind `score_spread`, rebuilt when the rows change.
        self._spread_of: tuple[np.ndarray, np.ndarray] | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({args})"

    @property
    def fitted(self) -> bool:
        """Whether the model has learned state (from `fit` or `load`)."""
        return self._fitted

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    def fit(self, data: TrainingData) -> Self:
        """Learn from `data`; returns `self`."""
        if self.uses_text and data.item_vectors is None:
            raise LmrecError(
                f"{type(self).__name__} reads item text, and there are no text vectors: give "
                "the data a catalogue with titles or descriptions (`--catalog FILE` with "
                "`--item-columns item=ID,title=NAME`), then `lmrec train` encodes it; in "
                "Python, pass TrainingData(item_vectors=...)"
            )
        self.n_items = data.n_items
        self._fit(data)
        self._fitted = True
        return self

    def start_from(self, previous: Recommender, items: np.ndarray | None = None) -> Self:
        """Begin the next `fit` from what `previous` learned, instead of from scratch.

        `previous` is a fitted model of the same class and settings, trained on an
        earlier log, as a periodic retrain has. `items[i]` is the index that the coming
        fit's item `i` had in `previous` (-1: a new item); None means `previous`'s items
        come first, in order, and new ones were appended. Only strategies with
        `warm_starts` can; the rest say so.
        """
        raise ConfigError(
            f"{type(self).__name__} cannot warm-start (warm_starts is False): fit it from scratch"
        )

    def _check_warm_source(self, previous: Recommender, free: Collection[str] = ()) -> None:
        """Raise unless `previous` is a fitted model of this class whose settings match
        this one's, except the `free` ones (what a warm start may change)."""
        if type(previous) is not type(self) or not previous.fitted:
            raise ConfigError(
                f"{type(self).__name__} can start only from a fitted {type(self).__name__}, "
                f"not {'an unfitted ' if not previous.fitted else ''}{type(previous).__name__}"
            )
        theirs, mine = (
            {k: v for k, v in m.config.model_dump(mode="json").items() if k not in free}
            for m in (previous, self)
        )
        if theirs != mine:
            diff = sorted(k for k in mine if theirs.get(k) != mine[k])
            raise ConfigError(
                f"{type(self).__name__} cannot start from a model with other settings "
                f"({', '.join(diff)})"
            )

    def score(self, histories: Histories) -> np.ndarray:
        """Scores of all `n_items` items for each history: float32 (queries x n_items).

        Higher is better. Items in the history are not removed here (callers decide
        what to exclude). History items the model has never seen are ignored.
        """
        self._require_fitted()
        if len(histories) == 0:
            return np.zeros((0, self.n_items), dtype=np.float32)
        return np.asarray(self._score(histories), dtype=np.float32)

    def score_items(self, histories: Histories, items: np.ndarray) -> np.ndarray:
        """Scores of only `items` (queries x len(items)); items the model does not know score 0.

        Default: for an inner-product scorer, the query embeddings against those items'
        rows; otherwise `score`, then those columns. Explanations score many variants of
        one history against a handful of items, so this must not cost a full scoring.
        """
        items = np.asarray(items, dtype=np.int64)
        inside = (items >= 0) & (items < self.n_items)
        rows = self.item_embeddings()
        if rows is not None:  # an inner-product scorer: only these items' rows
            scores = self.query_embeddings(histories) @ rows[np.where(inside, items, 0)].T
            return np.where(inside, scores, 0.0).astype(np.float32)  # type: ignore[no-any-return]
        scores = self.score(histories)
        inside &= items < scores.shape[1]
        return np.where(inside, scores[:, np.where(inside, items, 0)], 0.0).astype(np.float32)  # type: ignore[no-any-return]

    #: True when `score_queries` uses the query vectors (otherwise it is `score`).
    query_aware: ClassVar[bool] = False

    def score_queries(
        self, histories: Histories, query_vectors: np.ndarray | None = None
    ) -> np.ndarray:
        """`score`, with unit free-text query vectors (queries x d; zero row = none) as input.

        Strategies that are not `query_aware` ignore them (the pipeline steers
        their scores by text instead).
        """
        return self.score(histories)

    def item_embeddings(self) -> np.ndarray | None:
        """Item rows of an inner-product scorer (n_items x d), or None (the default) when the
        score is not one: then `score(h)[:, i] == query_embeddings(h) @ item_embeddings()[i]`.
        """
        return None

    def query_embeddings(self, histories: Histories) -> np.ndarray:
        """The query side of an inner-product scorer (queries x d); see `item_embeddings`."""
        raise LmrecError(f"{type(self).__name__} does not score by an inner product")

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(len(items) x len(history)): each history position's part in each item's score.

        Default: drop-one, the score lost when that position is removed (exact for
        any strategy, one batched `score` call). Strategies whose score is a sum over
        history items return the terms of that sum instead.
        """
        self._require_fitted()
        return drop_one_contributions(
            self, np.asarray(history, dtype=np.int64), np.asarray(items, dtype=np.int64)
        )

    def score_spread(self, histories: Histories) -> np.ndarray:
        """Standard deviation of each query's scores over all `n_items` items (float64).

        An inner-product scorer answers from its item rows' covariance, `sqrt(q C q)`, in
        O(d^2) per query instead of a full scoring (an explanation of a blend needs each
        part's spread on every request); other strategies score and take the spread.
        """
        self._require_fitted()
        rows = self.item_embeddings()
        if rows is None:
            return self.score(histories).std(axis=1).astype(np.float64)  # type: ignore[no-any-return]
        if self._spread_of is None or self._spread_of[0] is not rows:
            centred = np.asarray(rows, dtype=np.float64) - rows.mean(axis=0, dtype=np.float64)
            self._spread_of = (rows, centred.T @ centred / max(len(rows), 1))
        cov = self._spread_of[1]
        q = np.asarray(self.query_embeddings(histories), dtype=np.float64)
        return np.sqrt(np.maximum(((q @ cov) * q).sum(axis=1), 0.0))  # type: ignore[no-any-return]

    def attribute(self, history: np.ndarray, items: np.ndarray) -> list[Attribution] | None:
        """For a composite strategy, which part proposed each item; None for a single one."""
        return None

    def describe(self) -> dict[str, Any]:
        """What fitting chose (e.g. fusion weights), for evaluation output; empty by default."""
        return {}

    @abstractmethod
    def _fit(self, data: TrainingData) -> None: ...

    @abstractmethod
    def _score(self, histories: Histories) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (plain numeric arrays only)."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore learned arrays saved by `_state`."""

    def state(self) -> dict[str, np.ndarray]:
        """The learned arrays (what `save` writes; a composite saves its parts' under prefixes)."""
        self._require_fitted()
        return self._state()

    def restore(self, n_items: int, state: dict[str, np.ndarray]) -> Self:
        """Set learned state saved by `state()`; with `fit`, the only way to become fitted."""
        self.n_items = n_items
        self._set_state(state)
        self._fitted = True
        return self

    def save(self, path: str | Path) -> Path:
        """Write `model.json` (class, config, sizes) and `state.safetensors` into directory `path`."""
        self._require_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            "class": class_path(type(self)),
            "config": self.config.model_dump(mode="json"),
            "n_items": self.n_items,
        }
        (path / "model.json").write_text(json.dumps(meta, indent=2))
        write_arrays(path / "state.safetensors", self.state())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by `save` (no pickle: JSON config and safetensors arrays)."""
        return load_model(path)


def load_model(path: str | Path, trusted: Collection[str] = ()) -> Recommender:
    """Load a saved strategy of lmrec's own classes, or one named in `trusted`.

    The class path in `model.json` is checked against that list before anything is
    imported: an artefact from elsewhere must not make the loader import a module of
    its choosing (importing runs the module's code).
    """
    from lmrec.models.names import STRATEGIES

    path = Path(path)
    try:
        meta = json.loads((path / "model.json").read_text())
    except FileNotFoundError:
        raise LmrecError(f"{path}: no model.json here; is this a saved model directory?") from None
    except json.JSONDecodeError as exc:
        raise LmrecError(f"{path / 'model.json'}: not valid JSON ({exc.msg})") from None
    name = meta.get("class") if isinstance(meta, dict) else None
    if name not in {*STRATEGIES.values(), *trusted}:
        raise LmrecError(
            f"{path / 'model.json'}: class {name!r} is not one of lmrec's strategies; a custom "
            "strategy must be trusted by the operator (`lmrec serve --trust-class MODULE:CLASS`)"
        )
    cls = import_class(name)
    if not issubclass(cls, Recommender):
        raise LmrecError(f"{meta['class']} is not a Recommender")
    state = read_arrays(path / "state.safetensors", "model arrays")
    return cls(meta["config"]).restore(int(meta["n_items"]), state)
