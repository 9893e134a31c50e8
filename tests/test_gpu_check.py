"""benchmarks/gpu_check.py's dry run: the GPU check's code on the CPU (gloo, tiny sizes, marked
slow), its refusal without a GPU, and docs/full-scale.md's commands parsing."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
PARTS = (
    "process_group",
    "data",
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


@pytest.mark.slow  # 42-155 s of wall time measured on the shared 2-core machine (20-30 s of CPU)
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


PAGE = Path(__file__).parents[1] / "docs" / "full-scale.md"


def _page_commands() -> list[list[str]]:
    """Every command of the page's shell blocks, run or not (continuations joined, comments
    dropped), as words."""
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```$", PAGE.read_text(), flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line:
                out.append(shlex.split(line))
    return out


def _deepmot_words(words: list[str]) -> list[str] | None:
    """The deepmot arguments of ``deepmot ...`` or ``torchrun ... -m deepmot ...``."""
    if words[0] == "deepmot":
        return words[1:]
    if words[0] == "torchrun" and "-m" in words and words[words.index("-m") + 1] == "deepmot":
        return words[words.index("-m") + 2 :]
    return None


def _script_words(words: list[str]) -> list[str] | None:
    """The arguments of ``python benchmarks/gpu_check.py ...`` or under torchrun."""
    target = "benchmarks/gpu_check.py"
    return words[words.index(target) + 1 :] if target in words else None


def test_the_full_scale_page_commands_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's commands (most need a GPU and MOT17, so the docs test does not run them)
    name real commands and options: each parses with deepmot's own parser or the script's,
    in a folder holding (empty) the files and folders they name."""
    from deepmot.cli import build_parser

    commands = _page_commands()
    monkeypatch.chdir(tmp_path)
    for words in commands:
        for word in words[1:]:
            path = Path(word.removeprefix("dhn:"))
            if word.startswith("-") or ("/" not in word and not path.suffix):
                continue
            if path.suffix in (".pt", ".safetensors", ".json"):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            elif not path.suffix:
                path.mkdir(parents=True, exist_ok=True)
    deepmot = [w for w in map(_deepmot_words, commands) if w is not None]
    script = [w for w in map(_script_words, commands) if w is not None]
    assert len(deepmot) + len(script) == len(commands), "a command that is neither"
    assert len(script) >= 2 and len(deepmot) >= 10
    assert any(w[:1] == ["train"] and "fp16" in w for w in deepmot)
    for words in deepmot:
        args = build_parser(words[0]).parse_args(words)
        assert callable(args.run), words
    for words in script:
        _script().parse_args(words)
