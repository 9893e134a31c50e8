"""Shared fixtures: where the real MOTChallenge files are, and a skip when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MOT_ROOT = SHARED_DATA / "mot"


@pytest.fixture
def mot_root() -> Path:
    """The folder of real MOTChallenge sequences; skips the test where it is absent."""
    if not MOT_ROOT.is_dir():
        pytest.skip(f"real MOTChallenge files not found at {MOT_ROOT}")
    return MOT_ROOT


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread: the tests' tensors are small, and on a busy 2-core machine torch's
    thread pool made them up to 60x slower (measured on Sinkhorn's logsumexp). Tracking runs
    the backbone in PyTorch unless a test asks for OpenVINO by name
    (``deepmot.detection.inference.AUTO_USES_OPENVINO``)."""
    import torch

    from deepmot.detection import inference

    torch.set_num_threads(1)
    inference.AUTO_USES_OPENVINO = False
