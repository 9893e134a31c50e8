"""The core install: ``deepmot eval`` runs with NumPy, SciPy and tqdm alone; a command that
needs an extra, or a torch/torchvision pair that does not fit, is one line with the pip command.

The packages an extra brings are hidden from a child interpreter (``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``), which is what a core-only venv sees. The
install itself (size, a fresh venv) is checked by ``.ci/run``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepmot import cli
from deepmot.cli import main

EXTRAS = ["torch", "torchvision", "optuna", "torchmetrics", "pycocotools", "safetensors"]
HIDDEN = [*EXTRAS, "cv2", "matplotlib", "PIL"]


def run_without(hidden: list[str], argv: list[str]) -> subprocess.CompletedProcess:
    """``deepmot ARGV`` in a child interpreter where the modules ``hidden`` cannot be imported;
    afterwards it fails if any of them was imported anyway."""
    code = (
        "import sys\n"
        f"hidden = {hidden!r}\n"
        "for name in hidden: sys.modules[name] = None\n"
        "from deepmot.cli import main\n"
        f"code = main({argv!r})\n"
        "sys.exit(code)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def write_mot17(root: Path) -> tuple[Path, Path]:
    """A 3-frame MOT17 sequence with two people and a result that tracks one of them and
    puts a false positive in frame 3: MOTA = 1 - (FN 3 + FP 1) / 6 = 1/3."""
    seq = root / "gt" / "MOT17-02-FRCNN"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=MOT17-02-FRCNN\nimDir=img1\nframeRate=30\nseqLength=3\n"
        "imWidth=1920\nimHeight=1080\nimExt=.jpg\n"
    )
    gt = [f"{f},{i},{10 + 200 * i},20,50,100,1,1,1.0" for f in (1, 2, 3) for i in (1, 2)]
    (seq / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    results = root / "results"
    results.mkdir()
    rows = [f"{f},7,211,21,50,100,1,-1,-1,-1" for f in (1, 2, 3)] + ["3,8,900,500,50,90,1"]
    (results / "MOT17-02-FRCNN.txt").write_text("\n".join(rows) + "\n")
    return seq.parent, results


def test_eval_runs_without_the_extras(tmp_path: Path) -> None:
    gt, results = write_mot17(tmp_path)
    out = tmp_path / "summary.json"
    done = run_without(HIDDEN, ["eval", str(gt), str(results), "--out", str(out)])
    assert done.returncode == 0, done.stderr
    import json

    clear = json.loads(out.read_text())["results"]["COMBINED"]["clear"]
    assert clear["MOTA"] == pytest.approx(1 / 3)
    assert (clear["CLR_FN"], clear["CLR_FP"], clear["IDSW"]) == (3, 1, 0)


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["synth", "{tmp}/s", "--frames", "2"], "images"),
        (["demo", "--out", "{tmp}/d"], "train"),
        (["eval", "{gt}", "{results}", "--plots", "{tmp}/p"], "plots"),
    ],
)
def test_missing_extra_is_one_line(tmp_path: Path, argv: list[str], extra: str) -> None:
    gt, results = write_mot17(tmp_path)
    argv = [a.format(tmp=tmp_path, gt=gt, results=results) for a in argv]
    done = run_without(HIDDEN, argv)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"pip install 'deepmot[{extra}]'" in done.stderr
    assert not (tmp_path / "p").exists()  # --plots refused before the evaluation ran


@pytest.mark.parametrize(
    ("torch", "vision", "fits"),
    [
        ("2.14.1", "0.29.1", True),
        ("2.13.0+cpu", "0.28.0+cpu", True),
        ("2.14.1", "0.28.0", False),
        ("2.13.0+cpu", "0.28.0", False),  # the CPU-only torch beside a CUDA torchvision
        ("2.13.0+cu126", "0.28.0+cpu", False),
        ("2.13.0", "0.28.0+cpu", False),
        ("2.14.0+git5a2b", "0.29.0", True),  # a local build: nothing known to say
    ],
)
def test_torch_pair(monkeypatch: pytest.MonkeyPatch, torch: str, vision: str, fits: bool) -> None:
    from importlib import metadata

    versions = {"torch": torch, "torchvision": vision}
    monkeypatch.setattr(metadata, "version", versions.__getitem__)
    message = cli.torch_pair_message()
    if fits:
        assert message is None
    else:
        assert f"torchvision {vision} does not fit torch {torch}" in message
        assert "pip install --force-reinstall torch torchvision" in message


def test_torch_pair_refused_before_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    from importlib import metadata

    versions = {"torch": "2.13.0+cpu", "torchvision": "0.28.0"}
    monkeypatch.setattr(metadata, "version", versions.__getitem__)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 2
    assert not (tmp_path / "demo").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit torch 2.13.0+cpu" in err, err


def test_missing_torchvision_operator_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    """What a mismatched pair raises at ``import torchvision`` when the versions look fine."""
    from deepmot.commands import results

    def broken(args: object) -> int:
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(results, "run", broken)
    assert main(["results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "operator torchvision::nms does not exist: reinstall them as a pair" in err
