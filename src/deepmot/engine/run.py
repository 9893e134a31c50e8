"""The run folder every trainer shares: resolved config, checkpoints, CSV log, resume, progress.

A run folder holds ``config.json`` (the resolved settings, written atomically),
``checkpoint.pt`` (written atomically, so a crash mid-write leaves the previous one), ``log.csv``
(one row per step, flushed every step; rows after the checkpoint a run resumes from are
dropped, so no step is logged twice) and the trained weights. Only the main process writes
(``RANK`` 0 under ``torchrun``; every process otherwise), so distributed training can use the
same plumbing.

Nothing is lost on interruption: inside :meth:`TrainingRun.stop_on_signals`, SIGINT (Ctrl-C) and
SIGTERM only ask the loop to stop; the loop finishes its step, writes a checkpoint of it and
raises :class:`TrainingInterrupted`, so ``--resume`` continues exactly from there.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from deepmot.engine.checkpoint import atomic_torch_save, load_checkpoint, training_state, trim_log
from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_text

__all__ = [
    "TrainingInterrupted",
    "TrainingRun",
    "is_main_process",
    "progress_bar",
    "resolve_resumed_config",
]


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after checkpointing its last completed step."""


Config = TypeVar("Config")


def is_main_process() -> bool:
    """Whether this process writes files: ``RANK`` 0 under torchrun, always otherwise."""
    return int(os.environ.get("RANK", "0")) == 0


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over training steps, shown only when ``enabled`` and in the main process."""
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=desc, disable=not (enabled and is_main_process())
    )


def resolve_resumed_config(
    stored: Config, given: Config | None, changeable: Iterable[str], where: Path
) -> Config:
    """The config a resumed run continues with.

    ``given`` None means the stored settings. Otherwise every field but ``changeable`` ones
    (e.g. the number of iterations, the device) must equal the stored value, and those are
    taken from ``given`` (so ``--resume --iterations 600`` trains on to 600).

    Raises:
        DeepMOTError: other settings differ (the message lists them).
    """
    if given is None:
        return stored
    changeable = set(changeable)
    new, old = dataclasses.asdict(given), dataclasses.asdict(stored)
    differ = sorted(k for k in new if k not in changeable and new[k] != old[k])
    if differ:
        raise DeepMOTError(
            f"{where}: resume with the stored settings; these differ: {', '.join(differ)} "
            f"(only {', '.join(sorted(changeable))} may change)"
        )
    return dataclasses.replace(stored, **{k: getattr(given, k) for k in changeable})


class TrainingRun:
    """One run folder (see the module doc). Use as a context manager around the training loop.

    Args:
        out: the folder.
        log_fields: the CSV log's columns; the first is the step number.
        resume: read ``out/checkpoint.pt`` (a DeepMOTError if there is none).
        main: whether this process writes (default: :func:`is_main_process`).
    """

    def __init__(
        self, out: str | Path, log_fields: Sequence[str], resume: bool, main: bool | None = None
    ) -> None:
        self.out = Path(out)
        self.log_fields = tuple(log_fields)
        self.main = is_main_process() if main is None else main
        self.checkpoint_path = self.out / "checkpoint.pt"
        self.log_path = self.out / "log.csv"
        self.state: dict[str, Any] | None = None
        if resume:
            if not self.checkpoint_path.is_file():
                raise DeepMOTError(f"{self.checkpoint_path}: nothing to resume")
            self.state = load_checkpoint(self.checkpoint_path)
        self._log_file = None
        self._writer = None
        self.stop_requested: str | None = None

    @contextlib.contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """While inside, SIGINT and SIGTERM set :attr:`stop_requested` (the signal's name)
        instead of killing the process; the previous handlers come back on exit. A second
        signal stops at once. (Outside the main thread, signals cannot be caught: no-op.)"""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def request_stop(signum: int, frame: object) -> None:
            if self.stop_requested is not None:
                raise KeyboardInterrupt
            self.stop_requested = signal.Signals(signum).name

        try:
            for sig in previous:
                signal.signal(sig, request_stop)
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def interrupted(self, iteration: int) -> TrainingInterrupted:
        """The exception to raise once the checkpoint of ``iteration`` is written."""
        return TrainingInterrupted(
            f"{self.stop_requested} at step {iteration}: checkpoint written to "
            f"{self.checkpoint_path}; continue with --resume"
        )

    @property
    def stored_config(self) -> dict[str, Any] | None:
        """The settings in the checkpoint being resumed, or None for a new run."""
        return None if self.state is None else self.state["config"]

    @property
    def start_iteration(self) -> int:
        """The step the run continues from (0 for a new run)."""
        return 0 if self.state is None else int(self.state["iteration"])

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, config: dict[str, Any]) -> None:
        """Write the resolved config, drop log rows after the resumed step, open the log."""
        if not self.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "config.json", json.dumps(config, indent=2) + "\n")
        trim_log(self.log_path, self.start_iteration)
        new_log = not self.log_path.is_file() or self.log_path.stat().st_size == 0
        self._log_file = self.log_path.open("a", newline="")
        self._writer = csv.writer(self._log_file)
        if new_log:
            self._writer.writerow(self.log_fields)
            self._log_file.flush()

    def log(self, row: Sequence[Any]) -> None:
        """Append one step's row (the columns of ``log_fields``) and flush it."""
        if self._writer is None:
            return
        if len(row) != len(self.log_fields):
            raise ValueError(f"log row has {len(row)} values for {len(self.log_fields)} columns")
        self._writer.writerow(row)
        self._log_file.flush()

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Write ``checkpoint.pt`` atomically (main process only)."""
        if self.main:
            atomic_torch_save(state, self.checkpoint_path)

    def checkpointer(
        self,
        config: Any,
        model: Any,
        optimizer: Any,
        scaler: Any,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> Callable[[int], None]:
        """The ``checkpoint(iteration)`` a trainer hands to :func:`~deepmot.engine.loop.fit`:
        saves :func:`~deepmot.engine.checkpoint.training_state` of ``config``, ``model``,
        ``optimizer`` and ``scaler`` (a GradScaler) at that iteration, with what ``extra()``
        returns at that moment (the DHN trainer's random-generator states)."""

        def checkpoint(iteration: int) -> None:
            more = extra() if extra is not None else {}
            state = training_state(config, model, optimizer, iteration, scaler, **more)
            self.save_checkpoint(state)

        return checkpoint

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = self._writer = None
