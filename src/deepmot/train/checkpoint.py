"""Run-folder plumbing shared by the trainers: atomic checkpoints and resumable CSV logs."""

from __future__ import annotations

import csv
import errno
from pathlib import Path
from typing import Any

import torch

from deepmot.io.atomic import atomic_path

__all__ = ["atomic_torch_save", "restore_training_state", "training_state", "trim_log"]


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
