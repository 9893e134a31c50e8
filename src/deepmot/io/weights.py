"""Model weights on disk: a safetensors file with the model's config in its metadata, and a
JSON card beside it (``<name>.json``: the config plus how the weights were made).

Shared by every model that ships or trains weights (the DHN, the motion model), so that they
are written atomically and read with the same clear errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["save_weights", "read_weights", "load_state"]


def save_weights(
    model: nn.Module,
    config: dict[str, Any],
    path: str | Path,
    card: dict[str, Any] | None = None,
    half: bool = False,
) -> None:
    """Write ``model``'s state to ``path`` (config in the metadata) and its card, atomically.

    With ``half``, floating-point tensors are stored as float16 (half the file; loading copies
    them back into the model's float32 parameters)."""
    from safetensors.torch import save

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    atomic_write_bytes(path, save(state, metadata={"config": json.dumps(config)}))
    full_card = {"config": config, **(card or {})}
    atomic_write_text(path.with_suffix(".json"), json.dumps(full_card, indent=2) + "\n")


def read_weights(
    path: str | Path, what: str, map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config (from the metadata, else from the card beside the file) and the state.

    ``what`` names the kind of weights in error messages ("DHN", "motion-model").
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise DeepMOTError(f"{path}: no such {what} weights file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types
        raise DeepMOTError(f"{path}: not a safetensors file ({error})") from None
    if "config" in meta:
        config = json.loads(meta["config"])
    else:
        card = path.with_suffix(".json")
        if not card.is_file():
            raise DeepMOTError(f"{path}: no config in the file and no card {card.name}")
        config = json.loads(card.read_text())["config"]
    return config, load_file(str(path), device=str(map_location))


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """``model.load_state_dict(state)`` with a clear error naming ``path``; returns the model
    in eval mode."""
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise DeepMOTError(f"{path}: weights do not fit its config ({error})") from None
    return model.eval()
