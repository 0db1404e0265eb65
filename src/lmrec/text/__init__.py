"""Language-model item understanding: text encoders, item text and the embedding cache.

- `TextEncoder`: the protocol (`encode`, `dim`, `identity`); `make_encoder(EncoderConfig)`
  builds one: `SentenceTransformerEncoder` (torch, default bundled all-MiniLM-L6-v2) or
  `OnnxEncoder` (ONNX Runtime fp32 or int8, exported once and cached). Each is also a
  pipeline `Encoder` (called with texts, it returns their rows).
- `export_runtime`: an encoder's int8 ONNX graph and tokenizer as a directory that
  `OnnxEncoder.from_runtime` runs without torch (what an artefact carries).
- `ItemTextConfig` / `item_texts`: which catalogue fields make an item's text.
- `EmbeddingCache`: vectors on disk keyed by encoder identity and text sha256.
- `encode_catalog`: all of the above for a whole `Catalog`.

Models load on first use, from local files only; nothing is downloaded. The torch
backend and ONNX export need the `text` extra (`pip install 'lmrec[text]'`); running an
exported runtime needs only ONNX Runtime and `tokenizers`, which the core installs.
"""

from lmrec.text._cache import CacheStats, EmbeddingCache, text_key
from lmrec.text._catalog import EncodeStats, encode_catalog
from lmrec.text._encoder import (
    BUNDLED_MODEL_NAME,
    BatchEncoder,
    EncoderConfig,
    SentenceTransformerEncoder,
    TextEncoder,
    bundled_model_path,
    cache_root,
    make_encoder,
)
from lmrec.text._onnx import META_FILE, OnnxEncoder, export_onnx, quantize_onnx
from lmrec.text._runtime import RUNTIME, export_runtime, runtime_files
from lmrec.text._template import ItemTextConfig, TextStats, item_texts

__all__ = [
    "BUNDLED_MODEL_NAME",
    "META_FILE",
    "RUNTIME",
    "BatchEncoder",
    "CacheStats",
    "EmbeddingCache",
    "EncodeStats",
    "EncoderConfig",
    "ItemTextConfig",
    "OnnxEncoder",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "TextStats",
    "bundled_model_path",
    "cache_root",
    "encode_catalog",
    "export_onnx",
    "export_runtime",
    "item_texts",
    "make_encoder",
    "quantize_onnx",
    "runtime_files",
    "text_key",
]
