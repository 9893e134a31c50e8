"""The project's exception hierarchy: one base class, one subclass per kind of bad input."""

from __future__ import annotations

from pathlib import Path


class DeepMOTError(Exception):
    """Base class of every error deepmot raises about bad data (not bad arguments)."""


class MOTFormatError(DeepMOTError):
    """A MOTChallenge file (gt, det, result, seqinfo.ini) is malformed.

    The message names the file and, where one is to blame, the 1-based line.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")
