"""The frozen matcher the DeepMOT loss runs on a distance matrix, from its spelling in a
training config: the default shipped DHN (``dhn``), a shipped DHN by name (``dhn:seq_gru``), a
DHN the user trained (``dhn:PATH``) or Sinkhorn (``sinkhorn``).

Torch-free at import (the command line checks a spelling with :func:`parse_matcher`);
:func:`build_matcher` imports the networks it builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepmot.errors import DeepMOTError

__all__ = ["MATCHERS", "build_matcher", "parse_matcher"]

MATCHERS = ("dhn", "sinkhorn")


def parse_matcher(spec: str) -> tuple[str, str | None]:
    """``"dhn"``, ``"sinkhorn"``, ``"dhn:PATH"`` (a DHN the user trained) or ``"dhn:NAME"`` (a
    shipped DHN, e.g. ``dhn:seq_gru``) -> (kind, path or name).

    Raises:
        ValueError: any other spelling, or an empty path.
    """
    kind, colon, path = spec.partition(":")
    if kind not in MATCHERS or (kind == "sinkhorn" and colon) or (colon and not path):
        raise ValueError(
            f"matcher must be 'dhn', 'sinkhorn' or 'dhn:PATH/TO/weights.safetensors', got {spec!r}"
        )
    return kind, path or None


def build_matcher(spec: str) -> Any:
    """The frozen matcher of a config's ``matcher``: the default shipped DHN (``dhn``), a
    shipped DHN by name (``dhn:seq_gru``) or a DHN file (``dhn:PATH``), Sinkhorn."""
    kind, path = parse_matcher(spec)
    if kind == "sinkhorn":
        from deepmot.assign.sinkhorn import Sinkhorn

        return Sinkhorn()
    from deepmot.assign.dhn import create_dhn, default_dhn, list_dhns, load_dhn

    if path is None:
        return default_dhn()
    if path in list_dhns() and not Path(path).is_file():
        try:
            return create_dhn(path, pretrained=True)
        except ValueError as error:
            raise DeepMOTError(f"matcher {spec!r}: {error}") from None
    if not Path(path).is_file():
        raise DeepMOTError(f"{path}: no such DHN weights file (matcher {spec!r})")
    return load_dhn(path)
