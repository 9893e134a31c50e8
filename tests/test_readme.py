"""The README and the docs pages run as written: every Python block, and every ``deepmot``
command of their shell blocks, so the docs cannot rot. Pages: the README and every
``docs/*.md`` but the generated ``docs/results.md``; a block right after a
``<!-- not run: why -->`` line (a synopsis, an excerpt of a signature) is not run, and a
block or command that several pages repeat runs once, under the first page that has it.

The blocks run, page after page, in one folder laid out as the pages assume: ``MOT17/train``
(MOTChallenge sequence folders named as in the download, here small synthetic stand-ins with
``det/det.txt`` and the shared data's ``deepmot_clean_FRCNN.txt``), a ``results/`` folder of
result files, TrackEval's MOTChallenge and KITTI layouts under ``data/``, a short video
``street.mp4``. Commands run on that small data with tiny budgets (the options appended are in
:data:`SMALL`); ``pip install`` and ``pytest`` are skipped (CI runs that line itself). With the
real MOTChallenge files present, the reading snippet of ``docs/data.md`` also runs on them.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import kitti_rows, synthetic_sequence, write_kitti, write_synthetic

from deepmot.cli import main

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
#: the pages whose blocks run: the README, then every docs page but the generated results page
PAGES = (README, *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "results.md"))

#: options appended to a command so that it runs in seconds on the stand-in data
SMALL = {
    ("demo",): ["--iterations", "2", "--matcher", "sinkhorn", "--no-progress"],
    ("train",): ["--iterations", "2", "--batch-size", "2", "--no-progress"],
    ("track",): ["--no-progress"],
    ("frames",): ["--no-progress"],
    ("dhn", "data"): ["--uniform-step", "299", "--uniform-per-size", "2"],
    ("dhn", "train"): ["--max-iters", "2", "--no-progress"],
    ("dhn", "eval"): ["--threads", "1"],
    ("detector", "train"): ["--iterations", "2", "--sequences", "1", "--frames", "4"],
    ("detector", "eval"): ["--sequences", "1", "--frames", "4", "--no-progress"],
    ("tune",): ["--trials", "2", "--no-progress"],
    ("reproduce", "comparison"): [
        *("--data", "MOT17/train", "--seeds", "0", "--no-progress"),
        *("--set", "iterations=1", "--set", "batch_size=2"),
    ],
    ("reproduce", "correlation"): [
        *("--data", "MOT17/train", "--seeds", "0", "--no-progress"),
        *("--set", "pairs=10", "--set", 'matchers=["exact"]'),
    ],
    ("dhn", "ablation"): ["--max-iters", "1", "--no-progress"],
    ("reid", "train"): ["--sequences", "1", "--frames", "12", "--steps", "2", "--no-progress"],
    ("reid", "eval"): ["--sequences", "1", "--frames", "12", "--stride", "3"],
    ("reproduce", "tracktor"): [
        *("--seeds", "0", "--no-progress", "--set", "sequences=1", "--set", "frames=16"),
        *("--set", "iterations=1", "--set", "head_iterations=1", "--set", "head_clip_length=3"),
        *("--set", "reid_steps=2"),
    ],
    ("reproduce", "dhn"): [
        *("--data", "MOT17/train", "--seeds", "0", "--no-progress"),
        *("--set", "max_iters=1", "--set", 'variants=["conv1d"]', "--set", "uniform_max_side=8"),
        *("--set", 'size_study=["bipartite_sk"]', "--set", "uniform_per_size=1"),
    ],
}
#: placeholders of the README and what they stand for here
PLACEHOLDERS = {"MOT_ROOT": "MOT17/train"}
#: stand-ins for MOTChallenge's MOT17/train, and the test split's sequences of 'dhn data'
STAND_INS = ("MOT17-02-FRCNN", "MOT17-09-FRCNN", "MOT17-10-FRCNN", "PETS09-S2L1", "KITTI-13")


def blocks(language: str, pages: tuple[Path, ...] = PAGES) -> list[tuple[str, str]]:
    """``(page: section heading + index, code)`` of every fenced block in ``language`` that is
    not marked ``<!-- not run ... -->``, page after page in the order of ``pages``."""
    out = []
    for page in pages:
        section, count = "", {}
        for match in re.finditer(
            r"^#{1,3} ([^\n]+)$|^(<!-- not run[^\n]*-->\n)?```(\w*)\n(.*?)^```$",
            page.read_text(),
            flags=re.M | re.S,
        ):
            if match.group(1):
                section = match.group(1)
            elif match.group(3) == language and not match.group(2):
                count[section] = count.get(section, 0) + 1
                out.append((f"{page.name}: {section} #{count[section]}", match.group(4)))
    return out


def commands(code: str) -> list[str]:
    """The commands of a shell block: continuations joined, comments dropped, ``&&`` split."""
    code = code.replace("\\\n", " ")
    out = []
    for line in code.splitlines():
        line = line.split("  #")[0].strip()
        out.extend(part.strip() for part in line.split("&&") if part.strip())
    return out


def _first_of_each(cases: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``cases`` without repeats of the same code: a block or command that a docs page repeats
    from the README (or another page) runs once, under the first page that has it."""
    seen: set[str] = set()
    out = []
    for where, code in cases:
        if code not in seen:
            seen.add(code)
            out.append((where, code))
    return out


PYTHON_BLOCKS = _first_of_each(blocks("python"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    train = root / "MOT17" / "train"
    synth = ["synth", str(root / "synth"), "--sequences", str(len(STAND_INS)), "--frames", "40"]
    assert main([*synth, "--people", "6", "--no-images", "--no-progress", "--no-preview"]) == 0
    for made, name in zip(sorted((root / "synth").iterdir()), STAND_INS, strict=True):
        shutil.move(made, train / name)
        det = train / name / "det"
        shutil.copy(det / "det.txt", det / "deepmot_clean_FRCNN.txt")
    results = ["track", str(train), "--out", str(root / "results"), "--tracker", "kalman"]
    assert main([*results, "--no-progress"]) == 0
    _trackeval_layouts(root)
    _street_video(root / "street.mp4")
    return root


def _street_video(path: Path) -> None:
    """A short synthetic scene as an .mp4, the README's ``street.mp4``."""
    import cv2

    from deepmot.data.synthetic import SceneConfig, generate_scene

    scene = generate_scene(SceneConfig(frames=6, people=3, width=160, height=120, seed=3))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for frame in range(1, 7):
        writer.write(np.ascontiguousarray(scene.render_frame(frame)[..., ::-1]))
    writer.release()


def _trackeval_layouts(root: Path) -> None:
    """``data/gt/mot_challenge`` (MOT17-train, seqmap) with a tracker ``mytracker``, and
    KITTI's layout under ``data/gt/kitti`` and ``data/trackers/kitti`` and ``trackers/mine``."""
    rng = np.random.default_rng(0)
    gt_set = root / "data" / "gt" / "mot_challenge"
    names = ["MOT17-02-FRCNN", "MOT17-04-FRCNN"]
    (gt_set / "seqmaps").mkdir(parents=True)
    (gt_set / "seqmaps" / "MOT17-train.txt").write_text("name\n" + "\n".join(names) + "\n")
    data = root / "data" / "trackers" / "mot_challenge" / "MOT17-train" / "mytracker" / "data"
    for name in names:
        gt, results = synthetic_sequence(rng, num_frames=20, num_objects=6)
        write_synthetic(gt_set / "MOT17-train", name, gt, results, 20, data)
    kitti_gt = root / "data" / "gt" / "kitti" / "kitti_2d_box_train"
    gt_rows, tracker_rows = kitti_rows(rng, 10, 6)
    write_kitti(kitti_gt / "label_02" / "0000.txt", gt_rows)
    (kitti_gt / "evaluate_tracking.seqmap.training").write_text("0000 empty 000000 000010\n")
    for folder in (
        root / "data" / "trackers" / "kitti" / "kitti_2d_box_train" / "mytracker" / "data",
        root / "trackers" / "mine" / "data",
    ):
        write_kitti(folder / "0000.txt", tracker_rows)


def test_the_pages_have_blocks_to_run() -> None:
    assert len(blocks("python", (README,))) >= 1 and len(blocks("bash", (README,))) >= 4
    assert len(blocks("python")) >= 8 and len(blocks("bash")) >= 15
    assert all(
        len(blocks(lang, (ROOT / "docs" / "evaluation.md",))) >= 1 for lang in ("python", "bash")
    )


@pytest.mark.parametrize(("where", "code"), PYTHON_BLOCKS, ids=[b[0] for b in PYTHON_BLOCKS])
def test_python_block_runs_as_written(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, where: str, code: str
) -> None:
    monkeypatch.chdir(workspace)
    exec(compile(code, where, "exec"), {"__name__": "__readme__"})


def test_the_reading_snippet_runs_on_the_real_files(
    mot_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared copy has ``MOT17-09`` with DeepMOT's detections, not ``det/det.txt``."""
    code = dict(blocks("python"))["data.md: Reading MOTChallenge files #1"]
    (tmp_path / "MOT17" / "train").mkdir(parents=True)
    (tmp_path / "MOT17" / "train" / "MOT17-09-FRCNN").symlink_to(mot_root / "MOT17-09")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "docs/data.md", "exec"), scope)
    assert scope["D"].shape == (len(scope["dets"]), len(scope["gt"].ids))


def _shell_commands() -> list:
    """Each distinct command as a test case; the demo (5 s even with 2 steps) is marked slow,
    as tests/test_train_tracker.py runs it by default."""
    cases = [(where, cmd) for where, code in blocks("bash") for cmd in commands(code)]
    return [
        pytest.param(
            where,
            cmd,
            id=f"{where}: {cmd}",
            marks=[pytest.mark.slow] if cmd.startswith("deepmot demo") else [],
        )
        for where, cmd in _first_of_each(cases)
    ]


@pytest.mark.parametrize(("where", "command"), _shell_commands())
def test_shell_command_runs_on_small_data(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, where: str, command: str
) -> None:
    words = shlex.split(command)
    if words[0] == "pip":
        pytest.skip("installs packages: CI runs the README's install line itself")
    if words[0] == "pytest":
        pytest.skip("the test suite itself")
    if words[:3] == ["python3", "-m", "venv"] or words[0] == ".":
        pytest.skip("makes a virtual environment")
    assert words[0] == "deepmot", f"{where}: not a deepmot command: {command}"
    args = [PLACEHOLDERS.get(w, w) for w in words[1:]]
    for key, extra in SMALL.items():
        if tuple(args[: len(key)]) == key:
            args += extra
    monkeypatch.chdir(workspace)
    if (
        args[:2] in (["dhn", "eval"], ["dhn", "ablation"])
        and not (workspace / "runs" / "dhn_data").is_dir()
    ):
        assert main(["dhn", "data", "MOT17/train", "runs/dhn_data", *SMALL[("dhn", "data")]]) == 0
    if args[:2] == ["dhn", "train"] and (workspace / "runs" / "dhn").exists():
        shutil.rmtree(workspace / "runs" / "dhn")  # the order of the tests may vary
    if args[0] == "train" and (workspace / "runs" / "motion").exists():
        shutil.rmtree(workspace / "runs" / "motion")
    if args[0] == "track" and not (workspace / "runs" / "motion" / "motion.safetensors").exists():
        train = ["train", "MOT17/train", "--out", "runs/motion", *SMALL[("train",)]]
        assert main(train) == 0
    if args[0] == "results" and not (workspace / "runs" / "reproduce").exists():
        assert main(["reproduce", "correlation", *SMALL[("reproduce", "correlation")]]) == 0
    if (
        args[0] == "track"
        and "--config" in args
        and not Path(args[args.index("--config") + 1]).exists()
    ):
        assert (
            main(
                [
                    "tune",
                    "MOT17/train",
                    "--tracker",
                    "constant_velocity",
                    "--out",
                    "runs/tune",
                    *SMALL[("tune",)],
                ]
            )
            == 0
        )
    assert main(args) == 0, f"{where}: deepmot {' '.join(args)}"
