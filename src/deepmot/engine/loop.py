"""The one training loop every trainer runs (the DHN, the trackers, the detector).

A trainer builds its model, optimiser and data, then hands :func:`fit` a ``step(iteration)``
function that trains one step and reports what to log. The loop owns the rest, the same for
all of them: the progress bar, SIGINT/SIGTERM (finish the step, checkpoint, raise
:class:`~deepmot.engine.run.TrainingInterrupted`), a stop requested in another process, the log
row (step number first, elapsed seconds last), checkpoints every ``checkpoint_every`` steps and
after the last one, and closing the run folder's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deepmot.engine.run import TrainingRun, progress_bar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from deepmot.engine.distributed import Distributed

__all__ = ["Optimization", "StepReport", "fit"]


@dataclass(frozen=True)
class Optimization:
    """What every trainer's step trains with.

    Attributes:
        model: the whole model (what checkpoints and weights files hold).
        trained: what computes the step: ``model``, or its DDP wrapper when several processes
            train.
        optimizer: the optimiser of the trained parameters.
        scaler: the gradient scaler of fp16 autocast (disabled otherwise).
        precision: the autocast context of the forward pass (a null context in float32).
        dist: the process group (rank, world size, device).
        run: the run folder (log, checkpoints, interruption).
    """

    model: nn.Module
    trained: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    precision: AbstractContextManager
    dist: Distributed
    run: TrainingRun


@dataclass
class StepReport:
    """What one training step tells :func:`fit`.

    Attributes:
        row: the step's log columns between the step number and the elapsed time, formatted.
        postfix: the progress bar's figures (name -> text).
        stop_elsewhere: another process was asked to stop (its flag came through the step's
            sums): every process stops after this step.
        done: the run ends after this step although steps remain (e.g. a time budget is used
            up); an end, not an interruption.
    """

    row: list[Any]
    postfix: dict[str, str] = field(default_factory=dict)
    stop_elsewhere: bool = False
    done: bool = False


def fit(
    run: TrainingRun,
    step: Callable[[int], StepReport],
    start: int,
    total: int,
    checkpoint: Callable[[int], None],
    checkpoint_every: int,
    desc: str,
    progress: bool,
) -> int:
    """Train steps ``start, ..., total - 1`` with ``step`` (see the module doc); returns the
    number of steps done (``total`` unless a step reported ``done``).

    Raises:
        TrainingInterrupted: a signal (here or in another process) stopped the run; the last
            completed step is checkpointed first.
    """
    iteration = start
    began = time.monotonic()
    bar = progress_bar(total, start, desc, progress)
    try:
        with run.stop_on_signals():
            while iteration < total and run.stop_requested is None:
                report = step(iteration)
                if report.stop_elsewhere and run.stop_requested is None:
                    run.stop_requested = "a signal to another process"
                iteration += 1
                run.log([iteration, *report.row, f"{time.monotonic() - began:.2f}"])
                bar.update(1)
                bar.set_postfix(report.postfix, refresh=False)
                if report.done:
                    break
                if iteration % checkpoint_every == 0:
                    checkpoint(iteration)
    finally:
        bar.close()
        run.close()
    checkpoint(iteration)
    if run.stop_requested is not None:
        raise run.interrupted(iteration)
    return iteration
