"""The commands agree: one meaning of ``--sequences``, one rule for the detection file, listing
flags that need nothing else, hints that give the right answer when pasted, a SIGINT during
``tune`` in one line, no ``%%`` in any help."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
from pathlib import Path

import pytest

from deepmot.cli import build_parser, main
from deepmot.data.sequence import Sequence
from deepmot.errors import DeepMOTError
from deepmot.metrics.evaluate import evaluate_data, preprocess
from deepmot.trackers import create_tracker, track_sequence


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """``deepmot ARGV`` in-process: (exit code, stdout, stderr); argparse's exits count."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SYNTH-01 and SYNTH-02 (40 frames, det/det.txt), and SYNTH-03 without detections."""
    root = tmp_path_factory.mktemp("agree") / "data"
    synth = ["synth", str(root), "--sequences", "3", "--frames", "40", "--people", "5"]
    assert main([*synth, "--no-images", "--no-preview", "--no-progress"]) == 0
    shutil.rmtree(root / "SYNTH-03" / "det")
    return root


def test_no_help_shows_a_doubled_percent() -> None:
    def helps(parser: argparse.ArgumentParser, name: str) -> list[tuple[str, str]]:
        found = [(name, parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    found += helps(subparser, f"{name} {sub}")
        return found

    texts = helps(build_parser(), "deepmot")
    assert len(texts) > 15
    assert [name for name, text in texts if "%%" in text or "%(" in text] == []


def test_list_trackers_needs_no_other_argument(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--list-trackers"], capsys)
    assert code == 0 and "motion" in out.split()
    code, out, _ = run_cli(["reproduce", "--list"], capsys)
    assert code == 0 and "comparison:" in out


def _det_folder(tmp_path: Path, files: list[str]) -> Path:
    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    for name in files:
        (seq / "det" / name).write_text("1,-1,1,1,10,10,0.9\n")
    return seq


@pytest.mark.parametrize(
    ("files", "given", "chosen"),
    [
        (["a.txt", "det.txt"], None, "det.txt"),
        (["public_FRCNN.txt"], None, "public_FRCNN.txt"),
        ([], None, None),
        (["a.txt", "det.txt"], "a.txt", "a.txt"),
        (["a.txt"], "b.txt", None),
    ],
)
def test_the_detection_file_rule(
    tmp_path: Path, files: list[str], given: str | None, chosen: str | None
) -> None:
    assert Sequence.choose_detection_file(_det_folder(tmp_path, files), given) == chosen


def test_several_detection_files_without_det_txt_is_one_line(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(DeepMOTError, match=r"2 detection files and no det.txt \(a.txt, b.txt\)"):
        Sequence.choose_detection_file(_det_folder(tmp_path, ["b.txt", "a.txt"]))
    data = tmp_path / "data"
    shutil.copytree(root / "SYNTH-01", data / "SYNTH-01")
    shutil.move(data / "SYNTH-01" / "det" / "det.txt", data / "SYNTH-01" / "det" / "x.txt")
    shutil.copy(data / "SYNTH-01" / "det" / "x.txt", data / "SYNTH-01" / "det" / "y.txt")
    out = str(tmp_path / "out")
    for argv in (
        ["track", str(data), "--tracker", "constant_velocity", "--out", out],
        ["tune", str(data), "--tracker", "constant_velocity", "--trials", "1", "--out", out],
        ["train", str(data), "--out", out, "--iterations", "1"],
    ):
        code, _, err = run_cli([*argv, "--no-progress"], capsys)
        one_line_error(code, err, "x.txt, y.txt", "--det-file")


@pytest.mark.parametrize(
    "command",
    [
        ["track", "--tracker", "constant_velocity"],
        ["tune", "--tracker", "constant_velocity", "--trials", "1"],
        ["train", "--iterations", "1"],
        ["eval"],
    ],
)
def test_sequences_that_match_nothing_is_one_line(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture, command: list[str]
) -> None:
    (tmp_path / "SYNTH-01.txt").write_text("")  # a result file, for eval
    where = [str(root), str(tmp_path)] if command[0] == "eval" else [str(root)]
    argv = [command[0], *where, *command[1:], "--sequences", "MOT17"]
    if command[0] != "eval":
        argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    code, _, err = run_cli(argv, capsys)
    one_line_error(code, err, "MOT17", "named or starts")


def test_the_printed_eval_command_scores_the_validation_frames(
    tmp_path: Path, root: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    """``track --split val`` skips SYNTH-03 (no detections); the ``deepmot eval`` command it
    prints, pasted, gives the numbers of tracking and scoring the validation clips directly."""
    results = tmp_path / "results"
    argv = ["track", str(root), "--tracker", "constant_velocity", "--split", "val"]
    with caplog.at_level(logging.INFO):
        assert main([*argv, "--out", str(results), "--no-progress"]) == 0
    hints = [r.getMessage() for r in caplog.records if "deepmot eval" in r.getMessage()]
    assert len(hints) == 1
    command = shlex.split(hints[0].split("score them with: ", 1)[1])
    assert command[:2] == ["deepmot", "eval"] and "--frames" in command
    summary = tmp_path / "summary.json"
    code, _, err = run_cli([*command[1:], "--out", str(summary), "--workers", "1"], capsys)
    assert code == 0, err
    pasted = json.loads(summary.read_text())["results"]["COMBINED"]

    data = []
    for name in ("SYNTH-01", "SYNTH-02"):
        seq = Sequence.from_dir(root / name, det_file="det.txt")
        clip = seq.clip(seq.split()[1])
        tracked = track_sequence(create_tracker("constant_velocity"), clip, progress=False)
        data.append(
            preprocess(clip.gt, tracked, benchmark="MOT17", num_frames=len(clip), name=name)
        )
    direct = evaluate_data(data).combined
    for family in ("clear", "identity"):
        for field in ("MOTA", "IDF1", "IDSW", "CLR_FP", "CLR_FN", "IDTP"):
            if field in direct[family]:
                assert pasted[family][field] == pytest.approx(direct[family][field]), field
    assert pasted["hota"]["HOTA"] == pytest.approx(list(direct["hota"]["HOTA"]))


def test_sigint_during_tune_is_one_line(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    from deepmot.tune import study

    calls = []
    real = study.score_tracker

    def interrupted_second_trial(tracker, sequences):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(tracker, sequences)

    monkeypatch.setattr(study, "score_tracker", interrupted_second_trial)
    out = tmp_path / "tune"
    argv = ["tune", str(root), "--tracker", "constant_velocity", "--trials", "4"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 130
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "WARNING" not in line]
    assert len(lines) == 1 and "Traceback" not in err and "failed" not in err, err
    assert "deepmot tune: interrupted: trial 1 stopped; 1 finished trial(s) kept" in lines[0]
    assert "the same command continues the study" in lines[0]
