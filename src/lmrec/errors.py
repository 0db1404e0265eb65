"""Errors that are the user's to fix.

Every error a user can cause (a bad file, an unknown id, a wrong option) is raised
as an `LmrecError` whose message says what is wrong and what to do. The command
line prints that one line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["ConfigError", "DataError", "LmrecError", "NotFittedError", "first_problem"]


def first_problem(exc: ValidationError) -> str:
    """A pydantic validation error as one line: `where: what` of its first problem."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


class LmrecError(Exception):
    """A problem the user can fix; its message is shown as it is."""


class DataError(LmrecError):
    """A data file is missing, malformed or inconsistent.

    `path` and `line` (1-based) point at the offending place when known.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class ConfigError(LmrecError):
    """A configuration value is unknown or invalid."""


class NotFittedError(LmrecError):
    """A model was asked to score before `fit` (or `load`) gave it learned state."""
