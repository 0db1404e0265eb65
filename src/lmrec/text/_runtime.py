"""A text encoder's runtime: the few files that encode text without torch.

`export_runtime` writes the int8 ONNX graph of an encoder's model (pooling and L2
normalisation inside), its fast tokenizer and `lmrec-onnx.json` (the export's
settings plus the identity of the vectors it makes) into a new directory. An
artefact carries one so that the server encodes new items and free-text queries
with ONNX Runtime and `tokenizers` alone; `OnnxEncoder.from_runtime` runs it.
Exporting needs the `text` extra (torch) unless the export is cached already;
running it does not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lmrec.errors import LmrecError
from lmrec.text._encoder import BatchEncoder, EncoderConfig
from lmrec.text._onnx import META_FILE, OnnxEncoder, export_onnx, quantize_onnx, read_runtime_meta

__all__ = ["RUNTIME", "export_runtime", "runtime_files"]

#: What runs a runtime directory, as manifests record it.
RUNTIME = "onnxruntime"
_MODEL = "model-int8.onnx"
_TOKENIZER = "tokenizer.json"


def runtime_files(directory: str | Path) -> list[str]:
    """The files a runtime directory is run from (its settings name the graph's file)."""
    model_file = str(read_runtime_meta(Path(directory))["model_file"])
    return [META_FILE, _TOKENIZER, model_file]


def export_runtime(
    encoder: BatchEncoder | EncoderConfig | None, out_dir: str | Path
) -> dict[str, Any]:
    """Write the int8 ONNX runtime of `encoder`'s model (None: the bundled MiniLM) into `out_dir`.

    `out_dir` must not exist. The graph is int8 whatever backend `encoder` runs
    (its quantisation settings are kept), so an fp32 encoder's vectors and the
    runtime's agree to a cosine of about 0.99. An encoder that runs a runtime
    directory already is copied as it is. Returns the runtime's metadata
    (`identity`, `dim`, `max_seq_length`, `source_id`, ...).
    """
    out = Path(out_dir)
    if out.exists():
        raise LmrecError(f"{out}: already exists")
    if isinstance(encoder, OnnxEncoder) and encoder.runtime_dir is not None:
        source = encoder.runtime_dir
        out.mkdir(parents=True)
        for name in runtime_files(source):
            shutil.copyfile(source / name, out / name)
        return read_runtime_meta(out)
    config = encoder.config if isinstance(encoder, BatchEncoder) else encoder or EncoderConfig()
    int8 = OnnxEncoder(config.model_copy(update={"backend": "onnx-int8"}))
    export_dir = export_onnx(config.model, config.onnx_dir)
    graph = quantize_onnx(export_dir, config.per_channel, config.reduce_range)
    meta = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))
    meta |= {
        "identity": int8.identity,
        "backend": "onnx-int8",
        "model_file": _MODEL,
        "max_seq_length": config.max_seq_length or int(meta["max_seq_length"]),
    }
    out.mkdir(parents=True)
    shutil.copyfile(graph, out / _MODEL)
    shutil.copyfile(export_dir / _TOKENIZER, out / _TOKENIZER)
    (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta
