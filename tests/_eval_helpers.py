"""Helpers of the evaluator tests: the TrackEval oracle, a simple tracker, synthetic sequences.

Imported by the ``test_metrics_*``/``test_eval*`` modules (pytest puts this folder on the path).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from deepmot.io.mot import (
    Detections,
    GroundTruth,
    Results,
    SeqInfo,
    write_gt,
    write_results,
    write_seqinfo,
)
from deepmot.metrics import Evaluation, SequenceData, box_iou_xywh

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MOT_ROOT = SHARED_DATA / "mot"
FIXTURES = SHARED_DATA / "fixtures"

#: TrackEval's class name and ours, per family.
FAMILIES = {"hota": "HOTA", "clear": "CLEAR", "identity": "Identity"}


# --------------------------------------------------------------------------- oracle


def trackeval_evaluate(
    gt_folder: Path,
    result_files: Mapping[str, Path],
    benchmark: str,
    seq_lengths: Mapping[str, int | None] | None = None,
    workdir: Path | None = None,
) -> dict[str, dict[str, dict]]:
    """Run TrackEval (the reference) on sequences ``gt_folder/<seq>`` and result files.

    Returns row (sequence name or ``"COMBINED"``) to our family name to TrackEval's result
    dict. Sequence lengths default to each ``seqinfo.ini``.
    """
    import tempfile

    import trackeval

    tmp = Path(workdir or tempfile.mkdtemp(prefix="trackeval_"))
    data_dir = tmp / "trackers" / "t" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for seq, path in result_files.items():
        target = data_dir / f"{seq}.txt"
        if target.exists() or target.is_symlink():
            target.unlink()
        os.symlink(Path(path).resolve(), target)
    lengths = dict(seq_lengths) if seq_lengths else dict.fromkeys(result_files)
    eval_config = trackeval.Evaluator.get_default_eval_config()
    eval_config.update(
        USE_PARALLEL=False,
        PRINT_CONFIG=False,
        PRINT_RESULTS=False,
        PRINT_ONLY_COMBINED=True,
        OUTPUT_SUMMARY=False,
        OUTPUT_DETAILED=False,
        PLOT_CURVES=False,
        TIME_PROGRESS=False,
        DISPLAY_LESS_PROGRESS=True,
        BREAK_ON_ERROR=True,
        RETURN_ON_ERROR=False,
    )
    dataset_config = {
        "GT_FOLDER": str(gt_folder),
        "TRACKERS_FOLDER": str(tmp / "trackers"),
        "TRACKERS_TO_EVAL": ["t"],
        "BENCHMARK": benchmark,
        "SEQ_INFO": lengths,
        "SKIP_SPLIT_FOL": True,
        "PRINT_CONFIG": False,
    }
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = trackeval.Evaluator(eval_config)
        dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
        out, _ = evaluator.evaluate([dataset], metrics)
    raw = out["MotChallenge2DBox"]["t"]
    return {
        ("COMBINED" if row == "COMBINED_SEQ" else row): {
            ours: res["pedestrian"][theirs] for ours, theirs in FAMILIES.items()
        }
        for row, res in raw.items()
    }


def compare_with_reference(
    ours: Evaluation, reference: Mapping[str, Mapping[str, dict]]
) -> list[str]:
    """Every field on which ``ours`` and the reference differ (1e-9 for ratios, exact counts)."""
    problems: list[str] = []
    rows = ours.rows()
    if set(rows) != set(reference):
        problems.append(f"rows differ: {sorted(rows)} vs {sorted(reference)}")
    for row in set(rows) & set(reference):
        for family, ref in reference[row].items():
            mine = rows[row][family]
            metric = next(m for m in ours.metrics if m.name == family)
            integer = set(metric.integer_fields) | set(metric.integer_array_fields)
            for field, value in ref.items():
                if field not in mine:
                    problems.append(f"{row}/{family}/{field}: missing")
                    continue
                a = np.asarray(mine[field], dtype=np.float64)
                b = np.asarray(value, dtype=np.float64)
                same = (
                    np.array_equal(a, b)
                    if field in integer
                    else np.allclose(a, b, rtol=0, atol=1e-9)
                )
                if not same or a.shape != b.shape:
                    problems.append(f"{row}/{family}/{field}: ours {a} reference {b}")
    return problems


# --------------------------------------------------------------------------- trackers


def link_detections(dets: Detections, min_iou: float = 0.3) -> Results:
    """A simple tracker: link each frame's detections to the previous frame's by an exact
    IoU assignment (pairs with IoU >= ``min_iou``); unlinked detections start new ids."""
    frames = dets.frames
    ids = np.zeros(len(frames), dtype=np.int64)
    bounds = np.flatnonzero(np.diff(frames)) + 1
    groups = np.split(np.arange(len(frames)), bounds) if len(frames) else []
    next_id = 1
    prev_rows: np.ndarray = np.zeros(0, dtype=np.int64)
    prev_frame = -10
    for rows in groups:
        ids[rows] = np.arange(next_id, next_id + len(rows))
        next_id += len(rows)
        if len(prev_rows) and frames[rows[0]] == prev_frame + 1:
            iou = box_iou_xywh(dets.boxes_xywh[prev_rows], dets.boxes_xywh[rows])
            r, c = linear_sum_assignment(-iou)
            ok = iou[r, c] >= min_iou
            ids[rows[c[ok]]] = ids[prev_rows[r[ok]]]
        prev_rows, prev_frame = rows, frames[rows[0]]
    return Results(frames=frames, ids=ids, boxes_xywh=dets.boxes_xywh, scores=dets.scores)


def one_id_per_detection(dets: Detections) -> Results:
    """Every detection its own track (the worst association)."""
    ids = np.arange(1, len(dets) + 1, dtype=np.int64)
    return Results(frames=dets.frames, ids=ids, boxes_xywh=dets.boxes_xywh, scores=dets.scores)


# --------------------------------------------------------------------------- synthetic data


def synthetic_sequence(
    rng: np.random.Generator,
    num_frames: int = 60,
    num_objects: int = 12,
    mot15: bool = False,
) -> tuple[GroundTruth, Results]:
    """Random gt trajectories (with flag-0 rows and, unless ``mot15``, other classes such as
    distractors) and a noisy tracker: jittered boxes, misses, false positives, id switches,
    duplicate boxes and gaps."""
    rows: list[tuple] = []
    for obj in range(1, num_objects + 1):
        start = int(rng.integers(1, num_frames))
        length = int(rng.integers(1, num_frames - start + 2))
        xy = rng.uniform(0, 600, size=2)
        wh = rng.uniform(20, 120, size=2)
        velocity = rng.normal(0, 3, size=2)
        flag = 0 if rng.random() < 0.1 else 1
        cls = 1 if mot15 else int(rng.choice([1, 1, 1, 1, 2, 3, 7, 8, 12, 6, 9]))
        for f in range(start, min(start + length, num_frames + 1)):
            box = np.concatenate((xy + velocity * (f - start), wh))
            rows.append((f, obj, *box, flag, cls, float(rng.uniform(0, 1))))
    table = np.array(rows, dtype=np.float64)
    gt = GroundTruth(
        frames=table[:, 0].astype(np.int64),
        ids=table[:, 1].astype(np.int64),
        boxes_xywh=table[:, 2:6],
        flags=table[:, 6].astype(np.int64),
        classes=table[:, 7].astype(np.int64),
        visibility=table[:, 8],
    )
    keep = rng.random(len(gt)) > 0.15
    frames = gt.frames[keep]
    boxes = gt.boxes_xywh[keep] + rng.normal(0, 6, size=(keep.sum(), 4))
    boxes[:, 2:] = np.abs(boxes[:, 2:]) + 1
    ids = gt.ids[keep] * 10
    switch = rng.random(len(ids)) < 0.05
    ids[switch] += rng.integers(1, 4, size=switch.sum())
    dup = rng.random(len(ids)) < 0.03  # a second box on the same object
    n_fp = int(len(ids) * 0.1) + 1
    fp_frames = rng.integers(1, num_frames + 1, size=n_fp)
    fp_boxes = np.column_stack(
        (rng.uniform(0, 600, size=(n_fp, 2)), rng.uniform(20, 120, size=(n_fp, 2)))
    )
    all_frames = np.concatenate((frames, frames[dup], fp_frames))
    all_boxes = np.concatenate(
        (boxes, boxes[dup] + rng.normal(0, 3, size=(dup.sum(), 4)), fp_boxes)
    )
    all_boxes[:, 2:] = np.abs(all_boxes[:, 2:]) + 1
    all_ids = np.concatenate(
        (ids, 5000 + np.arange(dup.sum()), 9000 + rng.integers(0, 8, size=n_fp))
    )
    order = np.lexsort((all_ids, all_frames))
    all_frames, all_ids, all_boxes = all_frames[order], all_ids[order], all_boxes[order]
    unique = np.ones(len(all_ids), dtype=bool)
    unique[1:] = (all_frames[1:] != all_frames[:-1]) | (all_ids[1:] != all_ids[:-1])
    results = Results(
        frames=all_frames[unique],
        ids=all_ids[unique],
        boxes_xywh=all_boxes[unique],
        scores=np.ones(unique.sum()),
    )
    return gt, results


def write_synthetic(
    root: Path,
    name: str,
    gt: GroundTruth,
    results: Results,
    num_frames: int | None,
    results_dir: Path,
    mot15: bool = False,
) -> None:
    """Write a sequence folder (``gt/gt.txt``, ``seqinfo.ini`` if ``num_frames``) and
    ``results_dir/<name>.txt``. With ``mot15`` the gt is written in the 10-column layout."""
    seq = root / name
    (seq / "gt").mkdir(parents=True, exist_ok=True)
    if mot15:
        b = gt.boxes_xywh
        lines = [
            f"{f},{i},{x!r},{y!r},{w!r},{h!r},{fl},-1,-1,-1\n"
            for f, i, (x, y, w, h), fl in zip(gt.frames, gt.ids, b.tolist(), gt.flags, strict=True)
        ]
        (seq / "gt" / "gt.txt").write_text("".join(lines))
    else:
        write_gt(seq / "gt" / "gt.txt", gt)
    if num_frames is not None:
        write_seqinfo(
            seq / "seqinfo.ini",
            SeqInfo(name=name, seq_length=num_frames, im_width=640, im_height=480),
        )
    write_results(results_dir / f"{name}.txt", results)


def trackeval_data(data) -> dict:
    """TrackEval's per-sequence ``data`` dict built from our preprocessed :class:`SequenceData`
    (dense per-frame similarity matrices), to run its metric classes in-process."""
    gt_ids, tr_ids, sims = [], [], []
    for f in range(data.num_frames):
        g0, g1 = data.gt_offsets[f], data.gt_offsets[f + 1]
        t0, t1 = data.tracker_offsets[f], data.tracker_offsets[f + 1]
        gt_ids.append(data.gt_ids[g0:g1])
        tr_ids.append(data.tracker_ids[t0:t1])
        sims.append(data.frame_block(f)[0])
    return {
        "num_timesteps": data.num_frames,
        "num_gt_ids": data.num_gt_ids,
        "num_tracker_ids": data.num_tracker_ids,
        "num_gt_dets": data.num_gt_dets,
        "num_tracker_dets": data.num_tracker_dets,
        "gt_ids": gt_ids,
        "tracker_ids": tr_ids,
        "similarity_scores": sims,
        "seq": data.name,
    }


def seq(num_frames: int, gt: list[tuple], tracker: list[tuple]) -> SequenceData:
    """A hand-made sequence from rows ``(frame, id, xywh box)`` with 0-based frames."""

    def split(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not rows:
            return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4))
        f, i, b = zip(*rows, strict=True)
        return np.array(f), np.array(i), np.array(b, dtype=float)

    return SequenceData.from_rows("t", num_frames, *split(gt), *split(tracker))


# --------------------------------------------------------------------------- TrackEval layouts


def _quiet_trackeval_config(**overrides) -> dict:
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
        BREAK_ON_ERROR=True,
        RETURN_ON_ERROR=False,
        LOG_ON_ERROR=None,
    )
    config.update(overrides)
    return config


def trackeval_dataset(dataset: str, dataset_config: dict, **eval_overrides) -> dict:
    """Run TrackEval's ``dataset`` class (``"Kitti2DBox"``, ``"MotChallenge2DBox"``) with
    CLEAR, Identity and HOTA; returns tracker -> class -> row (``COMBINED`` for TrackEval's
    ``COMBINED_SEQ``) -> our family name -> TrackEval's result dict."""
    import trackeval

    with contextlib.redirect_stdout(io.StringIO()):
        metrics = [
            trackeval.metrics.HOTA(),
            trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
            trackeval.metrics.Identity({"PRINT_CONFIG": False}),
        ]
        data = getattr(trackeval.datasets, dataset)({"PRINT_CONFIG": False, **dataset_config})
        evaluator = trackeval.Evaluator(_quiet_trackeval_config(**eval_overrides))
        out, _ = evaluator.evaluate([data], metrics)
    result = {}
    for tracker, rows in out[dataset].items():
        result[tracker] = {}
        for row, by_class in rows.items():
            for cls, by_metric in by_class.items():
                result[tracker].setdefault(cls, {})[
                    "COMBINED" if row == "COMBINED_SEQ" else row
                ] = {ours: by_metric[theirs] for ours, theirs in FAMILIES.items()}
    return result


KITTI_TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person", "Cyclist", "Tram", "Misc")


def kitti_rows(
    rng: np.random.Generator, num_frames: int, num_objects: int
) -> tuple[list[tuple], list[tuple]]:
    """Random KITTI gt and tracker rows ``(frame, id, type, trunc, occ, x1, y1, x2, y2[, score])``.

    The gt mixes every KITTI type, truncation 0-2, occlusion 0-3 and DontCare regions; the
    tracker jitters, misses, switches ids, adds small boxes, boxes inside DontCare regions,
    boxes of other classes and negative ids.
    """
    gt: list[tuple] = []
    tracker: list[tuple] = []
    for obj in range(num_objects):
        kind = str(
            rng.choice(["Car", "Car", "Pedestrian", "Pedestrian", "Van", "Person", *KITTI_TYPES])
        )
        start = int(rng.integers(0, num_frames))
        length = int(rng.integers(1, num_frames - start + 1))
        xy = rng.uniform(0, 900, size=2)
        wh = rng.uniform(10, 150, size=2)
        velocity = rng.normal(0, 4, size=2)
        trunc = int(rng.choice([0, 0, 0, 1, 2]))
        occ = int(rng.choice([0, 0, 1, 2, 3]))
        tracked_as = kind if rng.random() < 0.85 else str(rng.choice(["Car", "Pedestrian"]))
        tid = obj * 10
        for f in range(start, start + length):
            x, y = xy + velocity * (f - start)
            w, h = wh
            gt.append((f, obj, kind, trunc, occ, x, y, x + w, y + h))
            if rng.random() < 0.8:
                if rng.random() < 0.05:
                    tid += 1  # an id switch
                j = rng.normal(0, 4, size=4)
                x1, y1 = x + j[0], y + j[1]
                tracker.append(
                    (
                        f,
                        tid,
                        tracked_as,
                        0,
                        0,
                        x1,
                        y1,
                        x1 + abs(w + j[2]) + 1,
                        y1 + abs(h + j[3]) + 1,
                        float(rng.uniform(0, 1)),
                    )
                )
    for f in range(num_frames):
        for _ in range(int(rng.integers(0, 3))):  # DontCare regions
            x, y = rng.uniform(0, 900, size=2)
            w, h = rng.uniform(30, 300, size=2)
            gt.append((f, -1, "DontCare", -1, -1, x, y, x + w, y + h))
            if rng.random() < 0.5:  # a tracker box inside it
                tracker.append(
                    (
                        f,
                        5000 + f,
                        str(rng.choice(["Car", "Pedestrian"])),
                        0,
                        0,
                        x + 2,
                        y + 2,
                        x + w * 0.6,
                        y + h * 0.6,
                        0.5,
                    )
                )
        for _ in range(int(rng.integers(0, 3))):  # false positives, some small
            x, y = rng.uniform(0, 900, size=2)
            w, h = rng.uniform(5, 120, size=2)
            kind = str(rng.choice(["Car", "Pedestrian", "Cyclist", "Van"]))
            tid = int(rng.integers(-2, 40)) + 9000
            if rng.random() < 0.1:
                tid = -1
            tracker.append((f, tid, kind, 0, 0, x, y, x + w, y + h, 0.3))
    return gt, tracker


def write_kitti(path: Path, rows: list[tuple], rng: np.random.Generator | None = None) -> None:
    """Write KITTI rows (17 columns, 18 with a score); rows are shuffled within each frame
    when ``rng`` is given (the file order the evaluators must both respect)."""
    rows = sorted(rows, key=lambda r: r[0])
    if rng is not None:
        keys = rng.random(len(rows))
        rows = [r for _, r in sorted(zip(keys, rows, strict=True), key=lambda p: (p[1][0], p[0]))]
        # drop duplicated (frame, id) pairs of one class: neither evaluator accepts them
    seen: set[tuple] = set()
    lines = []
    for r in rows:
        key = (r[0], r[1], r[2])
        if r[1] >= 0 and key in seen:
            continue
        seen.add(key)
        frame, tid, kind, trunc, occ = r[:5]
        x1, y1, x2, y2 = (float(v) for v in r[5:9])
        extra = f" {float(r[9])!r}" if len(r) > 9 else ""
        lines.append(
            f"{frame} {tid} {kind} {trunc} {occ} -10 {x1!r} {y1!r} {x2!r} {y2!r} "
            f"-1 -1 -1 -1000 -1000 -1000 -10{extra}\n"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


def write_kitti_layout(
    root: Path, sequences: dict[str, tuple[int, list[tuple], dict[str, list[tuple]]]], rng=None
) -> tuple[Path, Path]:
    """TrackEval's KITTI layout: ``root/gt/label_02``, ``evaluate_tracking.seqmap.training``,
    ``root/trackers/<name>/data``. ``sequences``: name -> (frames, gt rows, tracker -> rows)."""
    gt_root, trackers = root / "gt", root / "trackers"
    gt_root.mkdir(parents=True, exist_ok=True)
    seqmap = []
    for name, (frames, gt_rows, by_tracker) in sequences.items():
        write_kitti(gt_root / "label_02" / f"{name}.txt", gt_rows, rng)
        for tracker, rows in by_tracker.items():
            write_kitti(trackers / tracker / "data" / f"{name}.txt", rows, rng)
        seqmap.append(f"{name} empty 000000 {frames:06d}\n")
    (gt_root / "evaluate_tracking.seqmap.training").write_text("".join(seqmap))
    return gt_root, trackers
