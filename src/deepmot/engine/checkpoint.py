"""Run-folder plumbing shared by the trainers: atomic checkpoints and resumable CSV logs."""

from __future__ import annotations

import csv
import errno
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_path

__all__ = [
    "atomic_torch_save",
    "load_checkpoint",
    "restore_training_state",
    "training_state",
    "trim_log",
]


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: a crash mid-write
    leaves the previous checkpoint intact.

    Raises:
        OSError: the write failed (torch's zip writer reports a full disk as a RuntimeError);
            it names ``path``.
    """
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as error:
            raise OSError(errno.EIO, f"writing failed ({error})", str(path)) from error


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by :func:`atomic_torch_save`, read with ``weights_only=True``:
    tensors, numbers, strings and containers of them, nothing that runs code when unpickled (a
    run folder or checkpoint received from someone else is safe to open).

    Raises:
        DeepMOTError: no such file, not a checkpoint, or one holding other objects (refused).
    """
    path = Path(path)
    if not path.is_file():
        raise DeepMOTError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsupported = re.search(r"Unsupported global[^.\n]*", str(error))
        if unsupported is None:  # torch reports a file that is no pickle the same way
            raise DeepMOTError(f"{path}: not a checkpoint (no torch.save file)") from None
        raise DeepMOTError(
            f"{path}: refused: it holds objects other than tensors, numbers and strings, and "
            f"opening it could run code ({unsupported.group(0).strip()})"
        ) from None
    except Exception as error:  # a zip, pickle or torch error: not a checkpoint
        detail = " ".join(str(error).split())
        raise DeepMOTError(
            f"{path}: not a checkpoint (torch.load: {type(error).__name__}: {detail})"
        ) from None
    if not isinstance(state, dict):
        raise DeepMOTError(f"{path}: not a checkpoint (holds a {type(state).__name__})")
    return state


def training_state(
    config: Any,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    scaler: torch.amp.GradScaler,
    **extra: Any,
) -> dict[str, Any]:
    """What a trainer's checkpoint holds: its config (``to_dict``), the model's and the
    optimizer's state, the iteration, the fp16 loss scaler's state where it is on, and
    ``extra`` (e.g. a trainer's random-generator states)."""
    return {
        "config": config.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "iteration": iteration,
        **extra,
        **({"scaler": scaler.state_dict()} if scaler.is_enabled() else {}),
    }


def restore_training_state(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
) -> None:
    """Load what :func:`training_state` saved into ``model``, ``optimizer`` and ``scaler``
    (a checkpoint written without the scaler leaves it fresh)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])


def trim_log(path: str | Path, iteration: int) -> None:
    """Drop the rows of a CSV log (first column: iteration) written after ``iteration``.

    A run that resumes from a checkpoint at ``iteration`` would otherwise log the iterations
    between that checkpoint and the crash twice.
    """
    path = Path(path)
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= iteration]
    if len(kept) == len(rows):
        return
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)
