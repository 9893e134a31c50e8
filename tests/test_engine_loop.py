"""The one training loop (deepmot.engine.loop.fit): log rows, checkpoints, early ends, stops."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from deepmot.engine.loop import StepReport, fit
from deepmot.engine.run import TrainingInterrupted, TrainingRun


def _run(tmp_path: Path) -> TrainingRun:
    run = TrainingRun(tmp_path, ("iteration", "value", "seconds"), resume=False)
    run.start({"name": "test"})
    return run


def _rows(tmp_path: Path) -> list[list[str]]:
    with (tmp_path / "log.csv").open(newline="") as handle:
        return list(csv.reader(handle))[1:]


def test_fit_logs_every_step_and_checkpoints_every_n_and_at_the_end(tmp_path: Path):
    saved: list[int] = []
    steps: list[int] = []

    def step(iteration: int) -> StepReport:
        steps.append(iteration)
        return StepReport([iteration * 10])

    done = fit(_run(tmp_path), step, 2, 7, saved.append, 2, "test", progress=False)
    assert done == 7 and steps == [2, 3, 4, 5, 6]
    assert saved == [4, 6, 7]  # every 2nd step number, then the last
    assert [row[:2] for row in _rows(tmp_path)] == [[str(i + 1), str(i * 10)] for i in steps]


def test_a_step_that_reports_done_ends_the_run_without_an_interruption(tmp_path: Path):
    saved: list[int] = []
    done = fit(
        _run(tmp_path), lambda i: StepReport([i], done=i == 3), 0, 10, saved.append, 100, "t", False
    )
    assert done == 4 and saved == [4]


def test_a_stop_in_another_process_checkpoints_then_raises(tmp_path: Path):
    saved: list[int] = []
    with pytest.raises(TrainingInterrupted):
        fit(
            _run(tmp_path),
            lambda i: StepReport([i], stop_elsewhere=i == 1),
            0,
            10,
            saved.append,
            100,
            "t",
            False,
        )
    assert saved == [2] and len(_rows(tmp_path)) == 2
