"""A checkpoint write that fails leaves the old checkpoint and names the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepmot.engine.checkpoint import atomic_torch_save, load_checkpoint
from deepmot.errors import DeepMOTError


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


class _RunsCode:
    """Unpickling this calls ``Path.touch`` on a marker: what a crafted checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_holding_code_is_refused_without_running_it(tmp_path: Path):
    marker = tmp_path / "ran"
    path = tmp_path / "checkpoint.pt"
    torch.save({"config": {}, "model": {}, "payload": _RunsCode(marker)}, path)
    with pytest.raises(DeepMOTError, match=r"checkpoint\.pt: refused: .*could run code"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_checkpoint_of_tensors_numbers_and_strings_loads(tmp_path: Path):
    path = tmp_path / "checkpoint.pt"
    state = {"config": {"lr": 1e-3, "name": "x"}, "model": {"w": torch.ones(2)}, "iteration": 3}
    atomic_torch_save(state, path)
    loaded = load_checkpoint(path)
    assert loaded["iteration"] == 3 and loaded["config"] == state["config"]
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])


def test_a_file_that_is_no_checkpoint_is_one_error(tmp_path: Path):
    path = tmp_path / "checkpoint.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(DeepMOTError, match="not a checkpoint"):
        load_checkpoint(path)


def test_resuming_from_a_crafted_checkpoint_is_one_line_exit_2(tmp_path: Path, capsys):
    from deepmot.cli import main

    marker = tmp_path / "ran"
    data, run = tmp_path / "data", tmp_path / "run"
    synth = ["synth", str(data), "--sequences", "1", "--frames", "20", "--people", "3"]
    assert main([*synth, "--no-images", "--no-progress", "--no-preview"]) == 0
    train = ["train", str(data), "--out", str(run), "--matcher", "sinkhorn", "--iterations", "1"]
    train += ["--batch-size", "2", "--det-file", "det.txt", "--no-progress"]
    assert main(train) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**state, "payload": _RunsCode(marker)}, run / "checkpoint.pt")
    capsys.readouterr()
    code = main(["train", str(data), "--out", str(run), "--resume", "--iterations", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "refused" in err, err
    assert not marker.exists()
