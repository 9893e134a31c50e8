"""Every user mistake is one line naming the argument or file and what to do, exit code 2, no
traceback; fallbacks warn; a finished run is neither replaced nor "resumed" silently.

The mistakes are those a new user makes when trying the commands (``deepmot eval``'s are tested
with the evaluator).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepmot.cli import main

DHN_WEIGHTS = Path(__file__).parents[1] / "src/deepmot/weights/dhn_seq_gru.safetensors"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """``deepmot ARGV`` in-process: (exit code, stderr). Argparse's errors exit; they count."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def assert_clean_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small synthetic sequences, their DHN data, a finished 2-step tracker run and a
    finished 2-step DHN run."""
    root = tmp_path_factory.mktemp("cli")
    data, dd = root / "data", root / "dhn_data"
    synth = ["synth", str(data), "--sequences", "2", "--frames", "30", "--people", "5"]
    assert main([*synth, "--no-images", "--no-progress", "--no-preview"]) == 0
    dhn_data = ["dhn", "data", str(data), str(dd), "--test-sequences", "SYNTH-02"]
    assert main([*dhn_data, "--uniform-step", "299", "--uniform-per-size", "2"]) == 0
    run = root / "run"
    train = ["train", str(data), "--out", str(run), "--matcher", "sinkhorn", "--iterations", "2"]
    assert main([*train, "--batch-size", "2", "--det-file", "det.txt", "--no-progress"]) == 0
    bad = root / "badgt"  # a gt file with a short row on line 5
    shutil.copytree(data / "SYNTH-01", bad / "SYNTH-01")
    lines = (bad / "SYNTH-01" / "gt" / "gt.txt").read_text().splitlines(keepends=True)
    lines[4] = "1,2,3\n"
    (bad / "SYNTH-01" / "gt" / "gt.txt").write_text("".join(lines))
    nogt = root / "nogt"  # detections but no ground truth
    shutil.copytree(data / "SYNTH-01", nogt / "SYNTH-01", ignore=shutil.ignore_patterns("gt"))
    dhn_run = root / "dhn_run"
    dhn = ["dhn", "train", str(dd), "--out", str(dhn_run), "--hidden", "4", "--fc", "4"]
    assert main([*dhn, "--max-iters", "2", "--no-progress", "--threads", "1"]) == 0
    return {"root": root, "data": data, "dd": dd, "run": run, "dhn_run": dhn_run}


# (arguments, words the error line must contain); {name} is a path from the fixture
MISTAKES = [
    # a missing MOT_ROOT (once a FileNotFoundError traceback)
    (
        "track {root}/nosuch --out {root}/r",
        ["argument MOT_ROOT|VIDEO", "nosuch: no such file or folder"],
    ),
    ("train {root}/nosuch --out {root}/r", ["argument MOT_ROOT", "no such folder"]),
    ("dhn data {root}/nosuch {root}/d", ["argument MOT_ROOT", "no such folder"]),
    ("demo --data {root}/nosuch", ["argument --data", "no such folder"]),
    ("train {data}/SYNTH-01/seqinfo.ini --out {root}/r", ["MOT_ROOT", "not a folder"]),
    # ranges (once a ValueError from the config, torch's traceback for --lr)
    ("train {data} --out {root}/r --iterations 0", ["argument --iterations", ">= 1, got 0"]),
    ("train {data} --out {root}/r --iterations -5", ["argument --iterations", "got -5"]),
    ("train {data} --out {root}/r --batch-size 0", ["argument --batch-size", ">= 1"]),
    ("demo --iterations 0", ["argument --iterations", ">= 1"]),
    ("train {data} --out {root}/r --lr -1", ["argument --lr", "> 0"]),
    ("train {data} --out {root}/r --lr nan", ["argument --lr", "finite"]),
    ("train {data} --out {root}/r --clip-length 1", ["argument --clip-length", ">= 2"]),
    ("train {data} --out {root}/r --perturb 2", ["argument --perturb", "[0, 1]"]),
    ("train {data} --out {root}/r --score-refined", ["score_refined", "refine_iou"]),
    ("train {data} --out {root}/r --seed -1", ["argument --seed", ">= 0"]),
    ("train {data} --out {root}/r --matcher foo", ["argument --matcher", "sinkhorn"]),
    ("train {data} --out {root}/r --device foo", ["argument --device", "cuda:N"]),
    ("train {data} --out {root}/r --workers -1", ["argument --workers", ">= 0"]),
    # performance options on the CPU: refused before any work
    ("detector train --out {root}/det --amp fp16", ["--amp fp16", "bf16 on the CPU"]),
    ("detector train --out {root}/det --dist-backend nccl", ["--dist-backend nccl", "gloo"]),
    ("train {data} --out {root}/r --amp fp16", ["--amp fp16", "use --amp bf16"]),
    # dhn train: ranges that used to write untrained weights with a NaN loss
    ("dhn train {dd} --out {root}/d --max-iters 0", ["argument --max-iters", ">= 1"]),
    ("dhn train {dd} --out {root}/d --max-iters -5", ["argument --max-iters", "got -5"]),
    ("dhn train {dd} --out {root}/d --epochs 0", ["argument --epochs", ">= 1"]),
    ("dhn train {dd} --out {root}/d --batch-size 0", ["argument --batch-size"]),
    ("dhn train {dd} --out {root}/d --hidden 0", ["argument --hidden"]),
    ("dhn train {dd} --out {root}/d --max-minutes 0", ["argument --max-minutes"]),
    ("dhn train {root}/nosuch --out {root}/d", ["argument DATA", "no such file or folder"]),
    ("dhn train {data} --out {root}/d", ["DATA", "train.safetensors", "deepmot dhn data"]),
    ("dhn data {data} {root}/d --uniform-step 0", ["argument --uniform-step"]),
    ("dhn data {data} {root}/d --augment-prob 2", ["argument --augment-prob", "[0, 1]"]),
    ("dhn data {data} {root}/d", ["--test-sequences", "MOT17-10", "SYNTH-01"]),
    # unknown names, incompatible weights
    ("dhn eval nope_gru {dd}", ["WEIGHTS nope_gru", "shipped name"]),
    ("dhn eval {root}/nosuch.safetensors {dd}", ["WEIGHTS", "no such file"]),
    ("dhn eval {run}/motion.safetensors {dd}", ["WEIGHTS", "not DHN weights"]),
    ("dhn eval {run}/checkpoint.pt {dd}", ["WEIGHTS", "not a DHN checkpoint"]),
    ("dhn eval seq_gru {dd} --split nosuch", ["--split nosuch", "nosuch.safetensors"]),
    ("dhn eval seq_gru {dd} --size-study", ["--size-study", "--out"]),
    ("dhn eval seq_gru {dd} --threads 0", ["argument --threads"]),
    ("track {data} --out {root}/r --tracker nope", ["--tracker nope", "constant_velocity"]),
    # eval's output files: a folder where a file is meant (once an IsADirectoryError)
    ("eval {data} {root} --out {root}", ["argument --out", "is a folder"]),
    ("eval {data} {root} --csv {root}", ["argument --csv", "is a folder"]),
    ("eval {data} {root} --events {root}", ["argument --events", "is a folder"]),
    ("train {data} --out {root}/r --tracker nope", ["--tracker nope", "motion"]),
    (
        "train {data} --out {root}/r --tracker kalman",
        ["--tracker kalman", "trainable: goturn, motion, siamrpn, tracktor"],
    ),
    (f"track {{data}} --out {{root}}/r --weights {DHN_WEIGHTS}", ["--weights", "not weights of"]),
    ("track {data} --out {root}/r --weights {run}/log.csv", ["--weights", "not weights of"]),
    ("track {data} --out {root}/r --weights {root}/nosuch", ["argument --weights", "no such"]),
    (
        "track {data} --out {root}/r --tracker kalman --weights {run}/motion.safetensors",
        ["--weights", "no trained weights", "drop --weights"],
    ),
    ("train {data} --out {root}/r --matcher dhn:{root}/nosuch", ["--matcher", "no such file"]),
    # files and folders in the way (once a FileExistsError from track --out)
    ("track {data} --out {data}/SYNTH-01/seqinfo.ini", ["argument --out", "is a file"]),
    ("train {data} --out {data}/SYNTH-01/seqinfo.ini", ["argument --out", "is a file"]),
    ("train {data} --out {data}/SYNTH-01/seqinfo.ini/x", ["argument --out", "is a file"]),
    ("demo --out {data}/SYNTH-01/seqinfo.ini", ["argument --out", "is a file"]),
    ("dhn eval seq_gru {dd} --out {data}/SYNTH-01/seqinfo.ini", ["argument --out"]),
    # names that match nothing
    ("track {data} --out {root}/r --sequences NOPE", ["--sequences NOPE", "SYNTH-01"]),
    ("train {data} --out {root}/r --sequences NOPE", ["--sequences NOPE", "SYNTH-01"]),
    ("track {data} --out {root}/r --det-file nope.txt", ["--det-file nope.txt", "det.txt"]),
    ("train {data} --out {root}/r --det-file nope.txt", ["--det-file nope.txt", "det.txt"]),
    # runs: nothing to resume, a finished run, resume and overwrite together
    ("train {data} --out {root}/new --resume", ["--resume", "nothing to resume"]),
    ("train {data} --out {run}", ["--out", "holds a training run", "--overwrite"]),
    ("train {data} --out {run} --resume", ["--resume", "nothing left to do", "--iterations"]),
    ("train {data} --out {run} --resume --iterations 1", ["nothing left to do"]),
    ("train {data} --out {run} --resume --overwrite", ["--resume and --overwrite"]),
    ("train {data} --out {run} --resume --lr 0.01", ["--lr 0.01 (stored: 0.001)", "--out"]),
    ("train {data} --out {run} --resume --no-dmota", ["--no-dmota (stored: True)"]),
    ("dhn train {dd} --out {dhn_run}", ["--out", "holds a training run", "--overwrite"]),
    ("dhn train {dd} --out {dhn_run} --resume --max-iters 2", ["nothing left to do"]),
    ("dhn train {dd} --out {root}/new --resume", ["nothing to resume"]),
    ("dhn train {dd} --out {dhn_run} --resume --lr 0.1", ["--lr 0.1 (stored: 0.0003)"]),
    ("dhn train {dd} --out {dhn_run} --resume --hidden 8", ["--hidden 8 (stored: 4)"]),
    ("synth {data} --sequences 1", ["already exist", "--overwrite"]),
    # malformed files, folders without what a command needs, system paths
    ("train {root}/badgt --out {root}/r --det-file det.txt", ["gt/gt.txt:5", "columns"]),
    ("track {root}/badgt --out {root}/r --tracker kalman", ["gt/gt.txt:5"]),
    ("train {root}/nogt --out {root}/r --det-file det.txt", ["no sequence with ground truth"]),
    ("demo --data {root}/nogt", ["--data", "no sequence with ground truth"]),
    ("track {data} --out /proc/deepmot-results --tracker kalman", ["/proc/deepmot-results"]),
    ("train {data}", ["required: --out"]),
    ("track {data} --out {root}/r --split foo", ["argument --split", "invalid choice"]),
]


@pytest.mark.parametrize(("args", "needles"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_naming_the_argument(
    folders: dict[str, Path], capsys: pytest.CaptureFixture, args: str, needles: list[str]
) -> None:
    capsys.readouterr()
    code, err = run_cli(args.format(**folders).split(), capsys)
    assert_clean_error(code, err, *needles)


def test_device_not_present_is_an_error(
    folders: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    import torch

    if torch.cuda.is_available():
        args = f"train {folders['data']} --out {folders['root']}/r --device cuda:99"
        needles = ["--device cuda:99", "CUDA device"]
    else:
        args = f"train {folders['data']} --out {folders['root']}/r --device cuda"
        needles = ["--device cuda", "not available", "--device cpu"]
    capsys.readouterr()
    assert_clean_error(*run_cli(args.split(), capsys), *needles)
    dhn = f"dhn train {folders['dd']} --out {folders['root']}/d --device " + needles[0].split()[1]
    assert_clean_error(*run_cli(dhn.split(), capsys), needles[0])


def _in_a_process(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deepmot", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("error:") == 1, done.stderr


def test_a_mistake_in_a_real_process_prints_no_traceback(folders: dict[str, Path]) -> None:
    _in_a_process(["track", str(folders["root"] / "nosuch"), "--out", "r"])  # the parser's


@pytest.mark.slow
def test_mistakes_found_at_run_time_in_a_real_process(folders: dict[str, Path]) -> None:
    _in_a_process(["dhn", "eval", "nope_gru", str(folders["dd"])])
    _in_a_process(["train", str(folders["data"]), "--out", str(folders["run"]), "--resume"])


def test_fallbacks_warn(
    folders: dict[str, Path], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    data, root = folders["data"], folders["root"]
    # a sequence without the --det-file given trains without detections, and train says so
    other = folders["data"] / "SYNTH-02" / "det" / "other.txt"
    other.write_text((folders["data"] / "SYNTH-02" / "det" / "det.txt").read_text())
    args = ["train", str(data), "--out", str(root / "fallback"), "--matcher", "sinkhorn"]
    try:
        args += ["--det-file", "other.txt", "--iterations", "1", "--batch-size", "2"]
        assert main([*args, "--no-progress"]) == 0
    finally:
        other.unlink()
    assert "1 of 2 sequences have no det/other.txt and train without detections" in caplog.text
    # a learned tracker without weights runs untrained, with a warning
    caplog.clear()
    assert main(["track", str(data), "--out", str(root / "res"), "--no-progress"]) == 0
    assert "runs untrained" in caplog.text and "--weights" in caplog.text
    # a sequence without the detection file is skipped, by name, with the eval command to use
    caplog.clear()
    caplog.set_level(logging.INFO)
    other = folders["data"] / "SYNTH-02" / "det" / "other.txt"
    other.write_text((folders["data"] / "SYNTH-02" / "det" / "det.txt").read_text())
    try:
        track = ["track", str(data), "--out", str(root / "res2"), "--det-file", "other.txt"]
        assert main([*track, "--tracker", "kalman", "--no-progress"]) == 0
    finally:
        other.unlink()
    assert "skipped 1 sequence(s) without det/other.txt: SYNTH-01" in caplog.text
    assert "--sequences SYNTH-02" in caplog.text


def test_overwrite_replaces_a_run_and_resume_trains_on(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    import csv
    import shutil

    run = tmp_path / "run"
    shutil.copytree(folders["run"], run)
    args = ["train", str(folders["data"]), "--out", str(run), "--no-progress"]
    assert main([*args, "--resume", "--iterations", "3"]) == 0
    assert [r["iteration"] for r in csv.DictReader((run / "log.csv").open())] == ["1", "2", "3"]
    new = [*args, "--matcher", "sinkhorn", "--iterations", "1", "--batch-size", "2"]
    assert main([*new, "--det-file", "det.txt", "--overwrite"]) == 0
    assert [r["iteration"] for r in csv.DictReader((run / "log.csv").open())] == ["1"]


def test_every_option_has_help() -> None:
    from deepmot.cli import build_parser

    def walk(parser):
        yield parser
        for action in parser._actions:
            for sub in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict):
                    yield from walk(action.choices[sub])

    missing = [
        f"{parser.prog} {action.option_strings or action.dest}"
        for parser in walk(build_parser())
        if not parser.prog.endswith("eval") or "dhn" in parser.prog  # eval: its owner's
        for action in parser._actions
        if not action.help and action.dest not in ("help", "command", "dhn_command")
    ]
    assert not missing, missing


def test_track_help_lists_the_registered_trackers() -> None:
    from deepmot.commands.track import TRACKERS
    from deepmot.trackers import list_trackers

    assert list(TRACKERS) == list_trackers()


def test_the_cli_files_have_the_normal_mode(folders: dict[str, Path]) -> None:
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    for folder in ("dd", "run", "dhn_run"):
        for path in folders[folder].iterdir():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o666 & ~mask, (path, oct(mode))
