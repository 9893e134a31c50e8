"""Time deepmot's evaluator against TrackEval (the reference) on the same files, in one run.

Inputs: every sequence under ``../shared/data/mot`` with its public detections as the tracker
output (ids given by a simple frame-to-frame IoU linker; MOT16 borrows the MOT17 detections of
the same video), plus a synthetic 2,000-frame sequence generated here with NumPy. Both
evaluators go from the files to CLEAR + Identity + HOTA numbers (reading, preprocessing,
metrics, combining), single process. Prints the time of every run, the speed ratio (median
against median) and whether every number matched (ratios to 1e-9, counts exactly).

    python benchmarks/bench_eval.py [--repeats 3] [--frames 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from deepmot.io.mot import (
    GroundTruth,
    Results,
    SeqInfo,
    read_detections,
    write_gt,
    write_results,
    write_seqinfo,
)
from deepmot.metrics import box_iou_xywh, detect_benchmark, evaluate

SHARED_MOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
FAMILIES = {"hota": "HOTA", "clear": "CLEAR", "identity": "Identity"}


def link(frames: np.ndarray, boxes: np.ndarray, min_iou: float = 0.3) -> np.ndarray:
    """Ids from linking each frame's boxes to the previous frame's (exact IoU assignment)."""
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


def synthetic(
    rng: np.random.Generator, num_frames: int, objects: int
) -> tuple[GroundTruth, Results]:
    """Pedestrians walking across a 1920x1080 frame (some flag 0, some distractors), and a
    tracker that jitters, misses, switches ids and adds false positives."""
    start = rng.integers(1, num_frames, size=objects)
    length = rng.integers(20, 300, size=objects)
    end = np.minimum(start + length, num_frames + 1)
    n = end - start
    obj = np.repeat(np.arange(objects), n)
    frames = np.concatenate([np.arange(s, e) for s, e in zip(start, end, strict=True)])
    t = frames - start[obj]
    origin = rng.uniform([0, 200], [1800, 700], size=(objects, 2))
    velocity = rng.normal(0, 2.5, size=(objects, 2))
    size = rng.uniform([30, 80], [90, 240], size=(objects, 2))
    boxes = np.column_stack((origin[obj] + velocity[obj] * t[:, None], size[obj]))
    cls = rng.choice([1, 1, 1, 1, 1, 1, 7, 8, 2, 12, 3], size=objects)[obj]
    flag = (rng.random(objects) > 0.05).astype(np.int64)[obj]
    order = np.lexsort((obj, frames))
    gt = GroundTruth(
        frames=frames[order],
        ids=obj[order] + 1,
        boxes_xywh=boxes[order],
        flags=flag[order],
        classes=cls[order],
        visibility=np.ones(len(order)),
    )
    keep = rng.random(len(gt)) > 0.1
    tr_frames = gt.frames[keep]
    tr_boxes = gt.boxes_xywh[keep] + rng.normal(0, 4, size=(keep.sum(), 4))
    tr_boxes[:, 2:] = np.abs(tr_boxes[:, 2:]) + 1
    tr_ids = gt.ids[keep] * 10 + (rng.random(keep.sum()) < 0.02)
    n_fp = keep.sum() // 10
    fp_frames = rng.integers(1, num_frames + 1, size=n_fp)
    fp_boxes = np.column_stack(
        (
            rng.uniform([0, 200], [1800, 700], size=(n_fp, 2)),
            rng.uniform([30, 80], [90, 240], size=(n_fp, 2)),
        )
    )
    fp_ids = 10**6 + np.arange(n_fp) // 5
    frames_all = np.concatenate((tr_frames, fp_frames))
    ids_all = np.concatenate((tr_ids, fp_ids))
    order = np.lexsort((ids_all, frames_all))
    frames_all, ids_all = frames_all[order], ids_all[order]
    unique = np.ones(len(order), dtype=bool)
    unique[1:] = (frames_all[1:] != frames_all[:-1]) | (ids_all[1:] != ids_all[:-1])
    results = Results(
        frames=frames_all[unique],
        ids=ids_all[unique],
        boxes_xywh=np.concatenate((tr_boxes, fp_boxes))[order][unique],
        scores=np.ones(unique.sum()),
    )
    return gt, results


def prepare(root: Path, frames: int) -> dict[str, tuple[Path, Path, list[str]]]:
    """Benchmark name to (gt folder, results folder, sequences)."""
    groups: dict[str, tuple[Path, Path, list[str]]] = {}

    def group(benchmark: str) -> tuple[Path, Path, list[str]]:
        if benchmark not in groups:
            gt, res = root / benchmark / "gt", root / benchmark / "trackers" / "t" / "data"
            gt.mkdir(parents=True)
            res.mkdir(parents=True)
            groups[benchmark] = (gt, res, [])
        return groups[benchmark]

    if SHARED_MOT.is_dir():
        for seq_dir in sorted(SHARED_MOT.iterdir()):
            det = detection_file(seq_dir)
            if det is None:
                continue
            gt, res, names = group(detect_benchmark(seq_dir.name, seq_dir / "gt" / "gt.txt"))
            os.symlink(seq_dir, gt / seq_dir.name)
            dets = read_detections(det)
            ids = link(dets.frames, dets.boxes_xywh)
            write_results(
                res / f"{seq_dir.name}.txt", Results(dets.frames, ids, dets.boxes_xywh, dets.scores)
            )
            names.append(seq_dir.name)
    else:
        print(f"no shared data at {SHARED_MOT}: synthetic sequence only", file=sys.stderr)
    gt_root, res, names = group("SYNTH")
    name = f"SYNTH-{frames}"
    gt, results = synthetic(np.random.default_rng(0), frames, objects=frames // 4)
    (gt_root / name / "gt").mkdir(parents=True)
    write_gt(gt_root / name / "gt" / "gt.txt", gt)
    write_seqinfo(
        gt_root / name / "seqinfo.ini",
        SeqInfo(name=name, seq_length=frames, im_width=1920, im_height=1080),
    )
    write_results(res / f"{name}.txt", results)
    names.append(name)
    return groups


def run_trackeval(gt: Path, res: Path, names: list[str], benchmark: str) -> dict:
    import trackeval

    config = trackeval.Evaluator.get_default_eval_config()
    config.update(
        USE_PARALLEL=False,
        PRINT_CONFIG=False,
        PRINT_RESULTS=False,
        OUTPUT_SUMMARY=False,
        OUTPUT_DETAILED=False,
        PLOT_CURVES=False,
        TIME_PROGRESS=False,
        DISPLAY_LESS_PROGRESS=True,
    )
    dataset = {
        "GT_FOLDER": str(gt),
        "TRACKERS_FOLDER": str(res.parent.parent),
        "TRACKERS_TO_EVAL": ["t"],
        "BENCHMARK": benchmark,
        "SEQ_INFO": dict.fromkeys(names),
        "SKIP_SPLIT_FOL": True,
        "PRINT_CONFIG": False,
    }
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        out, _ = trackeval.Evaluator(config).evaluate(
            [trackeval.datasets.MotChallenge2DBox(dataset)], metrics
        )
    return out["MotChallenge2DBox"]["t"]


def mismatches(ours, reference: dict) -> list[str]:
    bad = []
    for row, res in reference.items():
        mine = ours.combined if row == "COMBINED_SEQ" else ours.sequences[row]
        for family, theirs in FAMILIES.items():
            metric = next(m for m in ours.metrics if m.name == family)
            integer = set(metric.integer_fields) | set(metric.integer_array_fields)
            for field, value in res["pedestrian"][theirs].items():
                a, b = np.asarray(mine[family][field], float), np.asarray(value, float)
                ok = (
                    np.array_equal(a, b)
                    if field in integer
                    else np.allclose(a, b, rtol=0, atol=1e-9)
                )
                if not ok:
                    bad.append(f"{row}/{field}: {a} vs {b}")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=2000, help="length of the synthetic sequence")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        groups = prepare(Path(tmp), args.frames)
        total = {name: len(names) for name, (_, _, names) in groups.items()}
        print("inputs:", ", ".join(f"{k}: {v} sequence(s)" for k, v in total.items()))
        ours_times, ref_times, problems = [], [], []
        for repeat in range(args.repeats):
            ours_t = ref_t = 0.0
            for name, (gt, res, names) in groups.items():
                benchmark = "MOT17" if name == "SYNTH" else name
                start = time.perf_counter()
                ours = evaluate(gt, res, benchmark=benchmark)
                ours_t += time.perf_counter() - start
                start = time.perf_counter()
                reference = run_trackeval(gt, res, names, benchmark)
                ref_t += time.perf_counter() - start
                if repeat == 0:
                    problems += [f"{name}: {p}" for p in mismatches(ours, reference)]
            ours_times.append(ours_t)
            ref_times.append(ref_t)
            print(f"run {repeat + 1}: deepmot {ours_t:.3f} s   trackeval {ref_t:.3f} s")
        ours_median, ref_median = statistics.median(ours_times), statistics.median(ref_times)
        print(f"median: deepmot {ours_median:.3f} s   trackeval {ref_median:.3f} s")
        print(f"speed ratio (trackeval / deepmot): {ref_median / ours_median:.2f}x")
        print(f"all numbers equal (CLEAR, Identity, HOTA; per sequence, combined): {not problems}")
        for p in problems[:20]:
            print("  mismatch:", p)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
