"""SIGINT or SIGTERM during training checkpoints the last step; --resume then ends exactly as an
uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.train.config import TrackerTrainConfig
from deepmot.engine.run import TrainingInterrupted
from deepmot.train.tracker import train_tracker
seqs = [generate_scene(SceneConfig(frames=60, people=6, seed=s)).to_sequence() for s in (1, 2)]
config = TrackerTrainConfig(matcher="sinkhorn", iterations=int(sys.argv[2]), batch_size=2,
                            checkpoint_every=1000, det_file="det.txt")
try:
    train_tracker(seqs, sys.argv[1], config, resume=sys.argv[3] == "resume", progress=False)
except TrainingInterrupted as error:
    print(error)
    sys.exit(130)
"""


def _train(out: Path, iterations: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out), str(iterations), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_first_checkpoint_loses_nothing(tmp_path: Path, sig) -> None:
    straight = _train(tmp_path / "straight", 400, "new")
    interrupted = _train(tmp_path / "cut", 400, "new")
    log = tmp_path / "cut" / "log.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) > 3:
            break
        time.sleep(0.1)
    interrupted.send_signal(sig)
    out, err = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130, err
    assert "checkpoint written" in out and sig.name in out
    step = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["iteration"]
    assert 3 <= step < 400
    assert len(log.read_text().splitlines()) == step + 1  # header + one row per step
    resumed = _train(tmp_path / "cut", 400, "resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert a["iteration"] == b["iteration"] == 400
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
