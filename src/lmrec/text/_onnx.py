"""Fast CPU encoding: export a sentence-transformers model to ONNX, optionally int8.

The transformer, pooling and L2 normalisation are exported as one ONNX graph
(TorchScript-based `torch.onnx.export`, works offline). The export is kept on
disk, keyed by the source model's identity, so it happens once; the int8 model
is derived from it with ONNX Runtime's dynamic quantisation. Tokenisation uses
the model's fast tokenizer (`tokenizers`), saved next to the graph: every text is
tokenised once, up front, so batches can be sorted by their exact token counts.
By default (`parallel_batches`) as many batches run at once as there are
threads, each on one ONNX Runtime thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmrec._cpu import usable_cores
from lmrec._extras import missing_text_extra, require_torch
from lmrec.errors import LmrecError
from lmrec.text._encoder import (
    BatchEncoder,
    EncoderConfig,
    cache_root,
    declared_max_seq_length,
    load_sentence_transformer,
    resolve_model,
)

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

__all__ = ["META_FILE", "OnnxEncoder", "export_onnx", "quantize_onnx", "read_runtime_meta"]

#: Bump when the exported graph changes, so old exports are not reused.
EXPORT_VERSION = 1
_OPSET = 17
#: An export's (and a runtime directory's) settings: dim, pooling, token limit, inputs.
META_FILE = "lmrec-onnx.json"
_FP32 = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Batches run at once with `parallel_batches` when `threads` is unset.
_MAX_DEFAULT_WORKERS = 8


def _export_key(source_id: str) -> str:
    return hashlib.sha256(f"{source_id}|v{EXPORT_VERSION}|opset{_OPSET}".encode()).hexdigest()[:20]


def _write_atomic_dir(tmp: Path, final: Path) -> None:
    """Move a finished temporary directory into place; a concurrent winner is kept."""
    try:
        os.rename(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / META_FILE).is_file():
            raise


def export_onnx(model: str | None = None, onnx_dir: str | Path | None = None) -> Path:
    """Export `model` (None = bundled all-MiniLM-L6-v2) to ONNX; returns the export directory.

    The directory holds `model.onnx` (inputs `input_ids`, `attention_mask` and,
    for BERT-like models, `token_type_ids`; output `sentence_embedding`, pooled
    and L2-normalised), the tokenizer and `lmrec-onnx.json`. An existing export
    of the same source model is reused. Writers race safely: each exports into
    its own temporary directory and renames it into place.
    """
    _, source_id = resolve_model(model)
    root = Path(onnx_dir) if onnx_dir is not None else cache_root() / "onnx"
    final = root / _export_key(source_id)
    if (final / META_FILE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{final.name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _export_into(model, source_id, tmp)
        _write_atomic_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _export_into(model: str | None, source_id: str, out: Path) -> None:
    require_torch("exporting a text model to ONNX")
    import torch

    st, _ = load_sentence_transformer(model, "cpu", model_kwargs={"attn_implementation": "eager"})
    modules: list[Any] = list(st)
    names = [type(m).__name__ for m in modules]
    if len(modules) < 2 or names[0] != "Transformer" or names[1] != "Pooling":
        raise LmrecError(
            f"the ONNX backend supports Transformer + Pooling models, not {' + '.join(names)}; "
            "use backend 'torch' for this model"
        )
    pooling = str(modules[1].get_config_dict().get("pooling_mode", "mean"))
    if pooling not in ("mean", "cls", "max"):
        raise LmrecError(
            f"the ONNX backend supports mean, cls and max pooling, not {pooling!r}; "
            "use backend 'torch' for this model"
        )
    transformer = modules[0].auto_model.eval()
    tokenizer = st.tokenizer
    inputs = [n for n in _INPUTS if n in tokenizer.model_input_names]

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            feed = dict(zip(inputs, args, strict=True))
            hidden = self.transformer(**feed).last_hidden_state
            mask = feed["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if pooling == "cls":
                pooled = hidden[:, 0]
            elif pooling == "max":
                pooled = (hidden - (1.0 - mask) * 1e9).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    # Two texts of different lengths, so nothing shape-dependent is traced as a constant.
    sample = tokenizer(
        ["a short text", "a somewhat longer text with more words in it"],
        padding=True,
        return_tensors="pt",
    )
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in inputs}
        axes["sentence_embedding"] = {0: "batch"}
        torch.onnx.export(
            Embed().eval(),
            tuple(sample[n] for n in inputs),
            str(out / _FP32),
            input_names=inputs,
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,
        )
    tokenizer.save_pretrained(str(out))
    if not (out / "tokenizer.json").is_file():
        raise LmrecError(
            "the ONNX backend needs a model with a fast tokenizer; use backend 'torch'"
        )
    meta = {
        "export_version": EXPORT_VERSION,
        "source_id": source_id,
        "dim": int(transformer.config.hidden_size),
        # Models that declare no limit get the common BERT-family one.
        "max_seq_length": int(st.max_seq_length or min(tokenizer.model_max_length, 512)),
        "pooling": pooling,
        "inputs": inputs,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_token": str(tokenizer.pad_token or "[PAD]"),
        "do_lower_case": bool(getattr(modules[0], "do_lower_case", False)),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    _check_export(st, out, meta)


def _check_export(st: Any, out: Path, meta: dict[str, Any]) -> None:
    """Compare the exported graph with torch on texts of different lengths."""
    texts = ["red lipstick", "a much longer sentence about shampoo for dry and curly hair", "x"]
    expected = st.encode(
        texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    session = _session(out / _FP32, threads=None)
    tokenizer = _tokenizer(out, meta, int(meta["max_seq_length"]))
    got = _run(session, tokenizer, meta, texts)
    cosine = float(np.min(np.sum(got * expected, axis=1)))
    if cosine < 0.999:
        raise LmrecError(
            f"the ONNX export of this model disagrees with torch (cosine {cosine:.4f}); "
            "use backend 'torch' for this model"
        )


def quantize_onnx(
    export_dir: str | Path, per_channel: bool = True, reduce_range: bool = False
) -> Path:
    """Dynamically quantise the fp32 export to int8 weights; returns the int8 model's path.

    Reused when it already exists; written to a temporary file and renamed into
    place so concurrent writers are safe.
    """
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ModuleNotFoundError:  # it needs the `onnx` package
        raise missing_text_extra("int8 quantisation of a text model") from None

    export_dir = Path(export_dir)
    final = export_dir / f"model-int8-pc{int(per_channel)}-rr{int(reduce_range)}.onnx"
    if final.is_file():
        return final
    tmp = export_dir / f".tmp-{uuid.uuid4().hex}.onnx"
    try:
        import logging

        quiet = logging.getLogger()
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # onnxruntime logs a pre-processing hint on the root logger
        try:
            quantize_dynamic(
                str(export_dir / _FP32),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                reduce_range=reduce_range,
                extra_options={"DefaultTensorType": 1},  # float, for nodes shape inference misses
            )
        finally:
            quiet.setLevel(level)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def read_runtime_meta(directory: Path) -> dict[str, Any]:
    """The `lmrec-onnx.json` of a runtime directory; `LmrecError` when it is not one."""
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LmrecError(f"{directory / META_FILE}: cannot read the text encoder ({exc})") from None
    needed = ("identity", "model_file", "dim", "max_seq_length", "inputs", "pad_id")
    if not isinstance(meta, dict) or not all(key in meta for key in needed):
        raise LmrecError(f"{directory / META_FILE}: not a text encoder runtime (needs {needed})")
    return meta


def _session(path: Path, threads: int | None) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        # The fused SkipLayerNormalization kernel is slower on CPU than the LayerNormalization
        # and Add it replaces: 6-9% of the int8 model's time on short texts (AVX2, ORT 1.31).
        disabled_optimizers=["SkipLayerNormFusion"],
    )


def _tokenizer(export_dir: Path, meta: dict[str, Any], max_length: int) -> tokenizers.Tokenizer:
    """The export's fast tokenizer, truncating at `max_length` and not padding (`_feed` pads)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()
    return tok


def _tokenize(
    tokenizer: tokenizers.Tokenizer, meta: dict[str, Any], texts: list[str]
) -> list[tokenizers.Encoding]:
    if meta.get("do_lower_case"):
        texts = [t.lower() for t in texts]
    return list(tokenizer.encode_batch(texts))


def _feed(encodings: list[tokenizers.Encoding], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The session's inputs for one batch, padded to its longest text."""
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), int(meta["pad_id"]), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        ids[row, :n] = e.ids
        mask[row, :n] = 1
        types[row, :n] = e.type_ids
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: arrays[name] for name in meta["inputs"]}


def _run(
    session: onnxruntime.InferenceSession,
    tokenizer: tokenizers.Tokenizer,
    meta: dict[str, Any],
    texts: list[str],
) -> np.ndarray:
    feed = _feed(_tokenize(tokenizer, meta, texts), meta)
    return np.asarray(session.run(None, feed)[0], dtype=np.float32)


class OnnxEncoder(BatchEncoder):
    """Encoder running an ONNX export of a sentence-transformers model on ONNX Runtime.

    `backend="onnx"` runs the fp32 graph; `backend="onnx-int8"` the dynamically
    quantised one (about 2x faster than torch fp32 on CPU, cosine to fp32 about
    0.99). The export (and quantisation) happens on first load and is cached in
    `config.onnx_dir`, keyed by the source model's identity. With
    `config.parallel_batches` (the default) `config.threads` batches run at
    once on one runtime thread each; otherwise one batch at a time, each
    operator split over `config.threads` threads.

    `OnnxEncoder.from_runtime(directory)` runs a runtime directory (`export_runtime`,
    as an artefact carries it) as it is: ONNX Runtime and `tokenizers` only, no torch.
    """

    def __init__(self, config: EncoderConfig | dict[str, Any] | None = None, **overrides: Any):
        data = config.model_dump() if isinstance(config, EncoderConfig) else dict(config or {})
        data.update(overrides)
        data.setdefault("backend", "onnx")
        super().__init__(data)
        if self.config.backend == "torch":
            raise LmrecError(
                "OnnxEncoder runs backend 'onnx' or 'onnx-int8', not 'torch'; "
                "use SentenceTransformerEncoder or make_encoder() for torch"
            )
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: tokenizers.Tokenizer | None = None
        self._meta: dict[str, Any] = {}
        self._model_path: Path | None = None
        self._identity: str | None = None
        self._workers = 1  # batches run at once (`parallel_batches`)
        self._runtime: Path | None = None  # a runtime directory run as it is (`from_runtime`)

    @classmethod
    def from_runtime(cls, directory: str | Path, threads: int | None = None) -> OnnxEncoder:
        """The encoder of a runtime directory (`export_runtime`); nothing is read until used."""
        encoder = cls(backend="onnx-int8", threads=threads)
        encoder._runtime = Path(directory)
        return encoder

    def __repr__(self) -> str:
        if self._runtime is not None:
            return f"OnnxEncoder.from_runtime({str(self._runtime)!r})"
        return super().__repr__()

    def load(self) -> OnnxEncoder:
        """Export/quantise if needed and open the ONNX Runtime session; returns `self`."""
        if self._session is not None:
            return self
        if self._runtime is not None:
            export_dir = self._runtime
            meta = read_runtime_meta(export_dir)
            path = export_dir / str(meta["model_file"])
        else:
            export_dir = export_onnx(self.config.model, self.config.onnx_dir)
            meta = json.loads((export_dir / META_FILE).read_text())
            path = export_dir / _FP32
            if self.config.backend == "onnx-int8":
                path = quantize_onnx(export_dir, self.config.per_channel, self.config.reduce_range)
        max_length = self.config.max_seq_length or int(meta["max_seq_length"])
        self._tokenizer = _tokenizer(export_dir, meta, max_length)
        self._meta = meta | {"max_seq_length": max_length}
        threads = self.config.threads
        if self.config.parallel_batches:
            # One runtime thread per batch; `threads` batches run at once. Unset, one per
            # core up to _MAX_DEFAULT_WORKERS: each batch in flight holds its own activations.
            self._workers = threads or min(usable_cores(), _MAX_DEFAULT_WORKERS)
            threads = 1
        self._session = _session(path, threads)
        self._model_path = path
        return self

    @property
    def loaded(self) -> bool:
        """Whether the ONNX Runtime session is open."""
        return self._session is not None

    @property
    def runtime_dir(self) -> Path | None:
        """The runtime directory this encoder runs as it is (`from_runtime`), else None."""
        return self._runtime

    @property
    def model_path(self) -> Path:
        """The ONNX file being run (loads the model)."""
        self.load()
        assert self._model_path is not None
        return self._model_path

    @property
    def dim(self) -> int:
        """Length of each vector (loads the model)."""
        self.load()
        return int(self._meta["dim"])

    @property
    def max_seq_length(self) -> int:
        """Token limit in effect; longer texts are truncated (loads the model)."""
        self.load()
        return int(self._meta["max_seq_length"])

    @property
    def identity(self) -> str:
        """Model source + backend (+ quantisation) + token limit.

        Computed without exporting or loading anything when the source is a
        local directory that declares its token limit (the bundled model does).
        """
        if self._identity is None and self._runtime is not None:
            self._identity = str(read_runtime_meta(self._runtime)["identity"])
        if self._identity is None:
            target, source_id = resolve_model(self.config.model)
            limit = self.config.max_seq_length or declared_max_seq_length(target)
            if limit is None:
                limit = self.max_seq_length
            self._identity = self._name(source_id, limit)
        return self._identity

    def _name(self, source_id: str, limit: int) -> str:
        if self.config.backend == "onnx-int8":
            variant = (
                f"onnx-int8(per_channel={self.config.per_channel},"
                f"reduce_range={self.config.reduce_range})"
            )
        else:
            variant = "onnx-fp32"
        return f"onnx:{source_id}|{variant}|export=v{EXPORT_VERSION}|max_seq_length={limit}|l2"

    def _prepare(self, texts: list[str]) -> tuple[Sequence[Any], np.ndarray]:
        """Every text tokenised once (in parallel, by the fast tokenizer), with its token count."""
        assert self._tokenizer is not None
        encodings = _tokenize(self._tokenizer, self._meta, texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        return encodings, lengths

    def _encode_batch(self, items: list[Any]) -> np.ndarray:
        assert self._session is not None
        return np.asarray(self._session.run(None, _feed(items, self._meta))[0], dtype=np.float32)

    def _run_batches(
        self, items: Sequence[Any], batches: list[np.ndarray]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """With `parallel_batches`, `threads` batches at a time (ONNX Runtime releases the GIL)."""
        if self._workers <= 1 or len(batches) <= 1:
            yield from super()._run_batches(items, batches)
            return
        from concurrent.futures import ThreadPoolExecutor

        def one(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return idx, self._encode_batch([items[i] for i in idx])

        with ThreadPoolExecutor(self._workers, thread_name_prefix="lmrec-onnx") as pool:
            yield from pool.map(one, batches)
