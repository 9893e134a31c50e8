"""Atomic writes: the target is replaced whole or not at all, with a normal file mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deepmot.io.atomic import atomic_path, atomic_write_text


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_mode_is_that_of_a_normal_file(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "sub" / "f.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "sub" / "f.txt").stat().st_mode) == 0o666 & ~mask
