"""A checkpoint write that fails leaves the old checkpoint and names the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepmot.train.checkpoint import atomic_torch_save


def test_a_failed_checkpoint_write_is_an_os_error_naming_the_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"step": 1}, path)

    def full_disk(obj, f):  # what torch's zip writer raises when the disk is full
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as raised:
        atomic_torch_save({"step": 2}, path)
    assert raised.value.filename == str(path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left
