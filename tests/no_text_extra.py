"""Run Python in a fresh interpreter where the `text` extra's packages cannot be imported.

A meta-path finder makes `import torch` (and sentence-transformers, transformers, the
bundled MiniLM, onnx) raise `ModuleNotFoundError`, as in a core install. It is used
instead of `sys.modules["torch"] = None`, which scipy's array-API helpers trip over
(they look `torch` up in `sys.modules` and read attributes of what they find).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from lmrec._extras import TEXT_MODULES

__all__ = ["run_without_text_extra"]

_BLOCK = f"""
import sys

_BLOCKED = {sorted(TEXT_MODULES)!r}


class _NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


def run_without_text_extra(
    code: str, cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `code` with the text extra blocked; stdout and stderr are captured as text."""
    return subprocess.run(
        [sys.executable, "-c", _BLOCK + textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
