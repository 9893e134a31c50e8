"""benchmarks/gpu_check.py's dry run: the GPU check's code on the CPU (gloo, tiny sizes), and
its refusal without a GPU."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
PARTS = (
    "data",
    "process_group",
    "detector_fp32",
    "detector_amp",
    "sync_batchnorm",
    "tracktor_tracking",
    "tracker_training",
)


@functools.cache
def _script() -> ModuleType:
    """The script as a module (registered first: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _positive(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_dry_run_measures_every_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "check.json"
    code = _script().main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "work")])
    report = json.loads(out.read_text())
    parts = report["parts"]
    assert list(parts) == list(PARTS)
    assert code == 0 and report["ok"], {k: v.get("error") for k, v in parts.items()}
    assert all(p["ok"] and _positive(p["seconds"]) for p in parts.values())
    group = parts["process_group"]
    assert (group["backend"], group["world_size"]) == ("gloo", 1)
    assert group["all_sum_of_ranks"] == group["expected"] == 1.0
    assert _positive(group["all_reduce_4mb_ms"])
    for name in ("detector_fp32", "detector_amp", "sync_batchnorm", "tracker_training"):
        part = parts[name]
        assert part["steps"] >= 1 and _positive(part["steps_per_s"]), name
        assert part["losses_finite"] and math.isfinite(part["last_loss"]), name
    # the same seed, data and float32 settings: the amp part (amp off here) repeats fp32's run
    assert parts["detector_amp"]["last_loss"] == pytest.approx(parts["detector_fp32"]["last_loss"])
    assert parts["detector_amp"]["grad_scaler"] is False  # no loss scaling off CUDA
    assert parts["detector_amp"]["scaler_scale"] == 1.0
    assert (
        parts["sync_batchnorm"]["norm_layers"] > 0
        and parts["sync_batchnorm"]["running_stats_finite"]
    )
    assert not parts["sync_batchnorm"]["synchronised"]  # one CPU process: nothing to share
    tracking = parts["tracktor_tracking"]
    assert _positive(tracking["frames_per_s"]) and tracking["frames"] >= 1
    assert _positive(tracking["mean_tracks"])  # births at score 0: the detections became tracks
    assert report["machine"]["dry_run"] is True
    assert not torch.distributed.is_initialized()  # the check ends its process group


def test_without_a_gpu_it_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "check.json"
    assert _script().main(["--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("gpu_check: error: no CUDA device") and "--dry-run" in error
    assert "\n" not in error and not out.exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--dry-run", "--amp", "fp16"], "--amp fp16 needs CUDA"),
        (["--dry-run", "--budget", "0"], "--budget must be > 0"),
        (["--dry-run", "--data", "no/such/folder"], "--data no/such/folder"),
    ],
)
def test_bad_options_are_one_line_errors(
    argv: list[str], says: str, capsys: pytest.CaptureFixture
) -> None:
    assert _script().main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert says in error and "\n" not in error
