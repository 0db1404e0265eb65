"""Language-model item understanding: text encoders, item text and the embedding cache.

- `TextEncoder`: the protocol (`encode`, `dim`, `identity`); `make_encoder(EncoderConfig)`
  builds one: `SentenceTransformerEncoder` (torch, default bundled all-MiniLM-L6-v2) or
  `OnnxEncoder` (ONNX Runtime fp32 or int8, exported once and cached).
- `ItemTextConfig` / `item_texts`: which catalogue fields make an item's text.
- `EmbeddingCache`: vectors on disk keyed by encoder identity and text sha256.
- `encode_catalog`: all of the above for a whole `Catalog`.

Models load on first use, from local files only; nothing is downloaded.
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
from lmrec.text._onnx import OnnxEncoder, export_onnx, quantize_onnx
from lmrec.text._template import ItemTextConfig, TextStats, item_texts

__all__ = [
    "BUNDLED_MODEL_NAME",
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
    "item_texts",
    "make_encoder",
    "quantize_onnx",
    "text_key",
]
