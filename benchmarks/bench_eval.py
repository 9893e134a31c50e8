"""Time ``deepmot eval`` against TrackEval as whole commands on the same files; check the numbers.

Inputs (TrackEval's folder layout, built in a temporary folder from ``../shared/data``):

- ``two``: MOT17-05 and MOT17-10 (1,491 frames, 19,756 gt boxes) with the published Lif_T
  results (``fixtures/lif_t_mot17``);
- ``all``: every shared sequence, one command per benchmark: MOT17 with the 15 Lif_T result
  files (5 sequences x 3 detectors), MOT16 and MOT15 with their public detections linked into
  tracks by a frame-to-frame IoU assignment (MOT16 borrows the MOT17 detections of the same video).

Commands: TrackEval as its ``scripts/run_mot_challenge.py`` runs it (serial, its default;
summary and detailed files written; curve plots off, as ``deepmot eval`` draws none unless
asked) and ``python -m deepmot eval GT_ROOT TRACKERS --output-folder DIR`` (the same two files;
``--workers`` default: the machine's processors). Each pair runs alternately ``--repeats``
times after a warm-up; the medians of wall time are compared. Then the numbers: every field
of CLEAR, Identity and HOTA, per sequence and combined, against TrackEval's (ratios to 1e-9,
counts exactly), and the summary files byte for byte. Last, where deepmot's time goes on
``two`` (start-up and imports, reading, preprocessing, each metric family, writing).

    python benchmarks/bench_eval.py [--repeats 5] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LIFT = SHARED / "fixtures" / "lif_t_mot17"
FAMILIES = {"hota": "HOTA", "clear": "CLEAR", "identity": "Identity"}

TRACKEVAL = """
import sys
from multiprocessing import freeze_support
import trackeval
if __name__ == "__main__":
    freeze_support()
    gt, trk, bench = sys.argv[1:4]
    eval_config = trackeval.Evaluator.get_default_eval_config()
    eval_config["DISPLAY_LESS_PROGRESS"] = False
    eval_config["PLOT_CURVES"] = False
    dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    dataset_config.update(GT_FOLDER=gt, TRACKERS_FOLDER=trk, BENCHMARK=bench,
                          SPLIT_TO_EVAL="train")
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
    trackeval.Evaluator(eval_config).evaluate(
        [trackeval.datasets.MotChallenge2DBox(dataset_config)], metrics)
"""


def link(frames: np.ndarray, boxes: np.ndarray, min_iou: float = 0.3) -> np.ndarray:
    """Ids from linking each frame's boxes to the previous frame's (exact IoU assignment)."""
    from scipy.optimize import linear_sum_assignment

    from deepmot.metrics import box_iou_xywh

    ids = np.zeros(len(frames), dtype=np.int64)
    groups = np.split(np.arange(len(frames)), np.flatnonzero(np.diff(frames)) + 1)
    next_id, prev, prev_frame = 1, np.zeros(0, dtype=np.int64), -10
    for rows in groups:
        ids[rows] = np.arange(next_id, next_id + len(rows))
        next_id += len(rows)
        if len(prev) and frames[rows[0]] == prev_frame + 1:
            iou = box_iou_xywh(boxes[prev], boxes[rows])
            r, c = linear_sum_assignment(-iou)
            ok = iou[r, c] >= min_iou
            ids[rows[c[ok]]] = ids[prev[r[ok]]]
        prev, prev_frame = rows, frames[rows[0]]
    return ids


def detection_file(seq_dir: Path) -> Path | None:
    for name in ("det.txt", "deepmot_clean_FRCNN.txt", "det_sort_frcnn.txt"):
        if (seq_dir / "det" / name).is_file():
            return seq_dir / "det" / name
    twin = (
        seq_dir.parent / seq_dir.name.replace("MOT16", "MOT17") / "det" / "deepmot_clean_FRCNN.txt"
    )
    return twin if twin.is_file() else None


def layout(root: Path, benchmark: str, files: dict[str, tuple[Path, Path | None]]) -> Path:
    """TrackEval's layout under ``root``: gt (symlinked sequence folders), seqmap and one
    tracker ``t`` whose result files are copies or, for ``None``, linked detections."""
    from deepmot.io.mot import Results, read_detections, write_results

    gt = root / "gt" / f"{benchmark}-train"
    data = root / "trackers" / f"{benchmark}-train" / "t" / "data"
    data.mkdir(parents=True)
    gt.mkdir(parents=True)
    (root / "gt" / "seqmaps").mkdir()
    (root / "gt" / "seqmaps" / f"{benchmark}-train.txt").write_text(
        "name\n" + "".join(f"{n}\n" for n in files)
    )
    for name, (seq_dir, result) in files.items():
        os.symlink(seq_dir, gt / name)
        if result is not None:
            (data / f"{name}.txt").write_bytes(result.read_bytes())
        else:
            dets = read_detections(detection_file(seq_dir))
            ids = link(dets.frames, dets.boxes_xywh)
            write_results(
                data / f"{name}.txt", Results(dets.frames, ids, dets.boxes_xywh, dets.scores)
            )
    return root


def prepare(tmp: Path) -> dict[str, list[tuple[str, Path]]]:
    """Set name to its (benchmark, folder) commands."""
    mot = SHARED / "mot"
    two = {
        f"MOT17-{s}-FRCNN": (mot / f"MOT17-{s}", LIFT / f"MOT17-{s}-FRCNN.txt")
        for s in ("05", "10")
    }
    mot17 = {p.stem: (mot / p.stem.rsplit("-", 1)[0], p) for p in sorted(LIFT.glob("*.txt"))}
    mot16 = {p.name: (p, None) for p in sorted(mot.glob("MOT16-*"))}
    mot15 = {
        p.name: (p, None)
        for p in sorted(mot.iterdir())
        if not p.name.startswith(("MOT16", "MOT17")) and detection_file(p) is not None
    }
    return {
        "two": [("MOT17", layout(tmp / "two", "MOT17", two))],
        "all": [
            ("MOT17", layout(tmp / "all17", "MOT17", mot17)),
            ("MOT16", layout(tmp / "all16", "MOT16", mot16)),
            ("MOT15", layout(tmp / "all15", "MOT15", mot15)),
        ],
    }


def commands(benchmark: str, root: Path, workers: int | None) -> tuple[list[str], list[str]]:
    gt, trackers = root / "gt", root / "trackers"
    ours = [sys.executable, "-m", "deepmot", "eval", str(gt), str(trackers)]
    ours += ["--benchmark", benchmark, "--output-folder", str(root / "deepmot_out")]
    if workers is not None:
        ours += ["--workers", str(workers)]
    theirs = [sys.executable, "-c", TRACKEVAL, str(gt), str(trackers), benchmark]
    return ours, theirs


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{done.stderr[-2000:]}")
    return elapsed


def check_numbers(benchmark: str, root: Path) -> list[str]:
    """Every field against TrackEval's in-process results; summary files byte for byte."""
    import contextlib
    import io

    import trackeval

    from deepmot.metrics import evaluate_trackers
    from deepmot.metrics.report import summary_text

    config = trackeval.Evaluator.get_default_eval_config()
    config.update(PRINT_RESULTS=False, PRINT_CONFIG=False, OUTPUT_SUMMARY=False)
    config.update(OUTPUT_DETAILED=False, PLOT_CURVES=False, TIME_PROGRESS=False)
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "BENCHMARK": benchmark,
            "SPLIT_TO_EVAL": "train",
            "PRINT_CONFIG": False,
        }
    )
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = [
            trackeval.metrics.HOTA(),
            trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
            trackeval.metrics.Identity({"PRINT_CONFIG": False}),
        ]
        out, _ = trackeval.Evaluator(config).evaluate([dataset], metrics)
    reference = out["MotChallenge2DBox"]["t"]
    ours = evaluate_trackers(root / "gt", root / "trackers", benchmark=benchmark)["t"]["pedestrian"]
    bad = []
    for row, res in reference.items():
        mine = ours.combined if row == "COMBINED_SEQ" else ours.sequences[row]
        for family, theirs in FAMILIES.items():
            metric = next(m for m in ours.metrics if m.name == family)
            integer = set(metric.integer_fields) | set(metric.integer_array_fields)
            for field, value in res["pedestrian"][theirs].items():
                a, b = np.asarray(mine[family][field], float), np.asarray(value, float)
                same = np.array_equal(a, b) if field in integer else np.allclose(a, b, 0, 1e-9)
                if not same:
                    bad.append(f"{benchmark} {row}/{field}: {a} vs {b}")
    written = root / "trackers" / f"{benchmark}-train" / "t" / "pedestrian_summary.txt"
    if written.is_file() and written.read_bytes() != summary_text(ours).encode():
        bad.append(f"{benchmark}: pedestrian_summary.txt differs from TrackEval's")
    return bad


def profile(root: Path) -> list[tuple[str, float]]:
    """Where deepmot's time goes on one set (in-process, after a start-up measured apart)."""
    from deepmot.io.mot import read_gt, read_results, read_seqinfo
    from deepmot.io.trackeval_layout import find_trackers, resolve_gt
    from deepmot.metrics import CLEAR, HOTA, Identity
    from deepmot.metrics.evaluate import preprocess
    from deepmot.metrics.report import detailed_text, summary_text

    startup = min(
        wall([sys.executable, "-c", "import deepmot.cli, deepmot.metrics.evaluate"])
        for _ in range(3)
    )
    steps = {"read files": 0.0, "preprocess (distractors, IoU)": 0.0}
    steps.update({"CLEAR": 0.0, "Identity": 0.0, "HOTA": 0.0})
    gt_layout = resolve_gt(root / "gt", benchmark="MOT17")
    results = find_trackers(root / "trackers", gt_set=gt_layout.gt_set)["t"]
    t0 = time.perf_counter()
    from deepmot.metrics import evaluate_trackers

    evaluation = evaluate_trackers(root / "gt", root / "trackers")["t"]["pedestrian"]
    whole = time.perf_counter() - t0
    for name, source in gt_layout.sequences.items():
        t = time.perf_counter()
        gt, res = read_gt(source.gt_path), read_results(results / f"{name}.txt")
        length = read_seqinfo(source.seq_dir / "seqinfo.ini").seq_length
        steps["read files"] += time.perf_counter() - t
        t = time.perf_counter()
        data = preprocess(gt, res, benchmark="MOT17", num_frames=length, name=name)
        steps["preprocess (distractors, IoU)"] += time.perf_counter() - t
        for label, metric in (("CLEAR", CLEAR()), ("Identity", Identity()), ("HOTA", HOTA())):
            t = time.perf_counter()
            metric.eval_sequence(data)
            steps[label] += time.perf_counter() - t
    t = time.perf_counter()
    summary_text(evaluation), detailed_text(evaluation)
    out = [("start-up: Python, NumPy, deepmot imports (own process)", startup)]
    out += list(steps.items())
    out.append(("format summary + detailed files", time.perf_counter() - t))
    out.append(("(whole evaluation in-process, one worker)", whole))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, help="deepmot's --workers (default: its own)")
    args = parser.parse_args()
    if not LIFT.is_dir():
        print(f"shared data not found at {SHARED}", file=sys.stderr)
        return 2
    print(f"machine: {os.cpu_count()} processors, load average {os.getloadavg()[0]:.2f}")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        sets = prepare(Path(tmp))
        for name, runs in sets.items():
            ours_t, theirs_t = [], []
            for benchmark, root in runs:
                ours, theirs = commands(benchmark, root, args.workers)
                wall(ours), wall(theirs)  # warm-up: page cache, bytecode
                a, b = [], []
                for _ in range(args.repeats):
                    a.append(wall(ours))
                    b.append(wall(theirs))
                ours_t.append(statistics.median(a))
                theirs_t.append(statistics.median(b))
                problems += check_numbers(benchmark, root)
                if len(runs) > 1:
                    n = len(list((root / "gt").glob("*-train/*")))
                    print(
                        f"      {benchmark} ({n} result files): deepmot {ours_t[-1]:.3f} s, "
                        f"TrackEval {theirs_t[-1]:.3f} s, ratio {theirs_t[-1] / ours_t[-1]:.2f}x"
                    )
            o, t = sum(ours_t), sum(theirs_t)
            files = sum(len(list((r / "gt").glob("*-train/*"))) for _, r in runs)
            print(
                f"{name:>4} ({files} result files, {len(runs)} command(s) each): "
                f"deepmot {o:.3f} s, TrackEval {t:.3f} s (medians of {args.repeats}); "
                f"whole-command ratio {t / o:.2f}x"
            )
        print("profile of deepmot on 'two' (seconds):")
        for label, seconds in profile(sets["two"][0][1]):
            print(f"  {label:<58} {seconds:7.3f}")
    print(f"all numbers equal TrackEval's, summary files identical: {not problems}")
    for p in problems[:20]:
        print("  mismatch:", p)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
