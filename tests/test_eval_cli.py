"""``deepmot eval``: tables, JSON/CSV/events files, errors, and no torch import."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import synthetic_sequence, write_synthetic

from deepmot.cli import main
from deepmot.metrics import evaluate


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    gt_root, res_dir = tmp_path / "gt", tmp_path / "res"
    res_dir.mkdir()
    for name, frames in (("SEQ-A", 30), ("SEQ-B", 45)):
        gt, results = synthetic_sequence(rng, num_frames=frames)
        write_synthetic(gt_root, name, gt, results, frames, res_dir)
    return gt_root, res_dir


def test_tables_and_files(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    gt_root, res_dir = folders
    out, table, events = (
        tmp_path / "o" / "summary.json",
        tmp_path / "summary.csv",
        tmp_path / "events.csv",
    )
    rc = main(
        [
            "eval",
            str(gt_root),
            str(res_dir),
            "--out",
            str(out),
            "--csv",
            str(table),
            "--events",
            str(events),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    for word in ("HOTA", "CLEAR", "Identity", "MOTA", "IDF1", "SEQ-A", "SEQ-B", "COMBINED"):
        assert word in printed
    expected = evaluate(gt_root, res_dir)

    summary = json.loads(out.read_text())
    assert summary["metrics"] == ["hota", "clear", "identity"]
    assert summary["results"]["COMBINED"]["clear"]["MOTA"] == expected.combined["clear"]["MOTA"]
    assert (
        summary["results"]["SEQ-A"]["hota"]["HOTA"]
        == expected.sequences["SEQ-A"]["hota"]["HOTA"].tolist()
    )
    assert "any number of frames" in summary["id_switches"]

    with open(table) as handle:
        rows = {row["seq"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"SEQ-A", "SEQ-B", "COMBINED"}
    assert float(rows["SEQ-B"]["IDF1"]) == expected.sequences["SEQ-B"]["identity"]["IDF1"]
    assert int(rows["COMBINED"]["IDSW"]) == expected.combined["clear"]["IDSW"]
    assert float(rows["SEQ-A"]["HOTA___50"]) == expected.sequences["SEQ-A"]["hota"]["HOTA"][9]

    with open(events) as handle:
        ev = list(csv.DictReader(handle))
    for kind, field in (("IDSW", "IDSW"), ("FP", "CLR_FP"), ("FN", "CLR_FN")):
        assert sum(e["type"] == kind for e in ev) == expected.combined["clear"][field]
    switch = next(e for e in ev if e["type"] == "IDSW")
    assert switch["prev_tracker_id"] != switch["tracker_id"] and float(switch["iou"]) >= 0.5
    assert not list(tmp_path.glob("**/.*.tmp"))  # atomic writes leave nothing behind


def test_metrics_choice_and_sequences(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    gt_root, res_dir = folders
    assert (
        main(["eval", str(gt_root), str(res_dir), "--metrics", "clear", "--sequences", "SEQ-B"])
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "MOTA" in printed
        and "IDF1" not in printed
        and "HOTA" not in printed
        and "SEQ-A" not in printed
    )


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda res: (res / "SEQ-A.txt").unlink(), "no result file for sequence SEQ-A"),
        (lambda res: (res / "SEQ-C.txt").write_text(""), "unknown sequence SEQ-C"),
        (
            lambda res: (res / "SEQ-A.txt").write_text("1,2,3\n"),
            "SEQ-A.txt:1: expected 6 to 10 columns",
        ),
        (
            lambda res: (res / "SEQ-A.txt").write_text("2,9,0,0,5,5,1\n2,9,1,1,5,5,1\n"),
            "SEQ-A.txt:2: id 9 appears twice in frame 2",
        ),
    ],
)
def test_errors_are_clear(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture, damage, message: str
) -> None:
    gt_root, res_dir = folders
    damage(res_dir)
    assert main(["eval", str(gt_root), str(res_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepmot eval: error:") and message in err


def test_help_names_the_id_switch_definition(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "TrackEval" in text and "py-motmetrics counts differently" in text


def test_help_and_json_give_the_same_id_switch_definition() -> None:
    from deepmot.commands.eval import IDSW_HELP
    from deepmot.metrics.writers import ID_SWITCHES

    assert IDSW_HELP == ID_SWITCHES


def test_eval_does_not_import_torch(folders: tuple[Path, Path]) -> None:
    gt_root, res_dir = folders
    code = (
        "import sys\n"
        "from deepmot.cli import main\n"
        f"rc = main(['eval', {str(gt_root)!r}, {str(res_dir)!r}])\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in ('torch', 'torchvision') or m == 'deepmot.boxes')\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "deepmot.boxes" not in done.stdout


def test_eval_imports_neither_scipy_optimize_nor_sparse(folders: tuple[Path, Path]) -> None:
    """Importing scipy.optimize cost 0.3-0.4 s, more than evaluating two MOT17 sequences; the
    scipy package itself (its __init__), numpy.ma and the other commands cost 60-80 ms more."""
    gt_root, res_dir = folders
    code = (
        "import sys\n"
        "from deepmot.cli import main\n"
        f"rc = main(['eval', {str(gt_root)!r}, {str(res_dir)!r}, '--workers', '1'])\n"
        "print('HEAVY', sorted(m for m in sys.modules if m in ('scipy.optimize', 'scipy.sparse',"
        " 'scipy.linalg', 'matplotlib', 'scipy', 'numpy.ma', 'deepmot.commands.train',"
        " 'deepmot.commands.dhn', 'deepmot.commands.track')))\n"
        "from deepmot.metrics import _lsa\n"
        "import scipy.optimize\n"
        "print('SAME', _lsa._SOLVER is scipy.optimize.linear_sum_assignment)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout and "SAME True" in done.stdout


def test_the_process_skips_teardown_but_loses_no_output(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    """``python -m deepmot eval`` ends without the interpreter's teardown: its piped (so
    block-buffered) tables, its files and its exit codes are those of ``main``."""
    gt_root, res_dir = folders
    out = tmp_path / "o.json"
    command = [sys.executable, "-m", "deepmot", "eval", str(gt_root), str(res_dir)]
    done = subprocess.run(
        [*command, "--out", str(out), "--workers", "2"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("COMBINED") == 3
    assert done.stdout.rstrip().splitlines()[-1].startswith("COMBINED")  # the last table whole
    expected = evaluate(gt_root, res_dir)
    written = json.loads(out.read_text())["results"]["COMBINED"]
    assert written["clear"]["MOTA"] == expected.combined["clear"]["MOTA"]
    assert "wrote" in done.stderr  # the log line, flushed
    failed = subprocess.run(
        [*command, "--sequences", "NOPE"], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 2 and "no sequence is named or starts with NOPE" in failed.stderr


def test_connected_components_agree_with_scipy() -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    from deepmot.metrics.identity import connected_components

    rng = np.random.default_rng(0)
    for n, e in ((1, 0), (5, 3), (40, 30), (200, 150), (300, 600)):
        u, v = rng.integers(0, n, size=e), rng.integers(0, n, size=e)
        ours = connected_components(n, u, v)
        graph = coo_matrix((np.ones(e), (u, v)), shape=(n, n))
        _, theirs = scipy_components(graph, directed=False)
        # the same partition: labels map one-to-one
        pairs = set(zip(ours.tolist(), theirs.tolist(), strict=True))
        assert len(pairs) == len(set(ours.tolist())) == len(set(theirs.tolist()))
