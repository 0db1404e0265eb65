"""Reading and writing named arrays as safetensors (no pickle), with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from lmrec.errors import LmrecError

__all__ = ["read_arrays", "write_arrays"]


def read_arrays(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """The arrays in a safetensors file; `LmrecError` naming the file and `what` it held."""
    try:
        return load_file(str(path))
    except (OSError, ValueError, SafetensorError) as exc:
        raise LmrecError(f"{path}: cannot read {what} ({exc})") from None


def write_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays (made contiguous) to a safetensors file."""
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
