"""MOTChallenge evaluation: preprocessing as the reference does it, per sequence and combined.

Preprocessing follows TrackEval's ``MotChallenge2DBox`` for the MOTChallenge benchmarks:

- **MOT16, MOT17, MOT20**: in each frame, tracker boxes are matched to *all* gt boxes (any
  class, any flag) by an exact assignment among pairs with IoU >= 0.5; tracker boxes matched to
  a distractor (classes 2 person on vehicle, 7 static person, 8 distractor, 12 reflection, and
  for MOT20 also 6 non-motorised vehicle) are removed. Then only gt boxes with flag != 0 and
  class 1 (pedestrian) are kept. gt classes outside 1..13 are an error.
- **MOT15**: no distractor removal (the 10-column gt has no classes); gt boxes with flag 0 are
  ignored.

Ids are then relabelled to 0..n-1 (ids that are negative, huge or not contiguous are fine; the
reference mislabels negative ids and allocates arrays as large as the largest id). The
benchmark of a sequence is taken from its name (``MOT16-*``, ``MOT17-*``, ``MOT20-*``,
``MOT15-*``), else from its gt layout (10 columns: MOT15), else MOT17 settings apply.

The number of frames comes from ``seqinfo.ini`` (``seqLength``) when there is one, and a box
beyond it is an error as in the reference; without ``seqinfo.ini`` it is the last frame that
has a gt or tracker box. It matters only for ``CLR_Frames`` and ``FP_per_frame``.

ID switches are counted as by the MOTChallenge devkit and TrackEval, not as py-motmetrics does:
see :mod:`deepmot.metrics.clear`.

Where an assignment has exact ties (two alternatives with bit-identical scores, e.g. two
identical tracker boxes), both evaluators break them by row order: rows are in id order within
a frame here and in file order in the reference, the same thing for files written sorted by
(frame, id) or by (id, frame), as MOTChallenge gt files are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io.mot import (
    GroundTruth,
    Results,
    frame_range,
    read_gt,
    read_results,
    read_seqinfo,
    select_names,
)
from deepmot.io.trackeval_layout import (
    EvaluationError,
    GtLayout,
    SequenceSource,
    find_trackers,
    resolve_gt,
)
from deepmot.metrics._base import (
    EPS,
    MetricFamily,
    Result,
    SequenceData,
    box_corners,
    frames_among,
    overlapping_pairs,
)
from deepmot.metrics._lsa import linear_sum_assignment
from deepmot.metrics.clear import CLEAR
from deepmot.metrics.hota import ALPHAS, HOTA
from deepmot.metrics.identity import Identity

__all__ = [
    "ALL_BENCHMARKS",
    "BENCHMARKS",
    "CLASSES",
    "METRICS",
    "Evaluation",
    "EvaluationError",
    "create_metric",
    "detect_benchmark",
    "evaluate",
    "evaluate_data",
    "evaluate_trackers",
    "load_sequence",
    "preprocess",
]

log = logging.getLogger(__name__)

BENCHMARKS: tuple[str, ...] = ("MOT15", "MOT16", "MOT17", "MOT20")
#: Metric families by command-line name, in the order the reference reports them.
METRICS: dict[str, type[MetricFamily]] = {"hota": HOTA, "clear": CLEAR, "identity": Identity}

PEDESTRIAN = 1
#: MOTChallenge gt classes: 1 pedestrian, 2 person on vehicle, 3 car, 4 bicycle, 5 motorbike,
#: 6 non-motorised vehicle, 7 static person, 8 distractor, 9 occluder, 10 occluder on ground,
#: 11 occluder full, 12 reflection, 13 crowd.
VALID_CLASSES = np.arange(1, 14)
DISTRACTORS = {"MOT16": (2, 7, 8, 12), "MOT17": (2, 7, 8, 12), "MOT20": (2, 6, 7, 8, 12)}
MATCH_THRESHOLD = 0.5  # IoU for the distractor matching, as in the reference


def create_metric(name: str) -> MetricFamily:
    """A metric family by name: ``"clear"``, ``"identity"`` or ``"hota"``."""
    try:
        return METRICS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; valid: {', '.join(sorted(METRICS))}") from None


# --------------------------------------------------------------------------- preprocessing


def detect_benchmark(name: str, gt_path: str | Path | None = None) -> str:
    """The MOTChallenge benchmark whose settings apply to a sequence (see the module doc)."""
    upper = name.upper()
    for benchmark in BENCHMARKS:
        if upper.startswith(benchmark):
            return benchmark
    if gt_path is not None:
        try:
            with open(gt_path) as handle:
                for line in handle:
                    if line.strip():
                        fields = line.split(",") if "," in line else line.split()
                        if fields and not fields[-1].strip():
                            fields.pop()
                        if len(fields) == 10:
                            return "MOT15"
                        break
        except OSError:
            pass
    return "MOT17"


def _distractor_matches(raw: SequenceData, distractor: np.ndarray) -> np.ndarray:
    """Boolean mask of the tracker rows matched to a distractor gt box (to be removed).

    ``raw`` holds every gt row (any class and flag) of the frames where it matters;
    ``distractor`` marks its distractor rows. The matching is an exact assignment among pairs
    with IoU >= 0.5 (candidates). A candidate whose gt box and tracker box have no other
    candidate belongs to every optimal assignment (one without it scores 0 for both boxes), so
    the assignment is solved only in frames where a distractor's candidate competes with
    another.
    """
    remove = np.zeros(raw.num_tracker_dets, dtype=bool)
    candidates = np.flatnonzero(raw.pair_sim >= MATCH_THRESHOLD - EPS)
    cand_gt, cand_tr = raw.pair_gt[candidates], raw.pair_tracker[candidates]
    cand_frames = raw.gt_frames[cand_gt]
    suspect, in_suspect = frames_among(cand_frames, distractor[cand_gt], raw.num_frames)
    if suspect.size == 0:
        return remove
    cand_gt, cand_tr, cand_frames = (
        cand_gt[in_suspect],
        cand_tr[in_suspect],
        cand_frames[in_suspect],
    )
    gt_degree = np.bincount(cand_gt, minlength=raw.num_gt_dets)
    tr_degree = np.bincount(cand_tr, minlength=raw.num_tracker_dets)
    contested = (gt_degree[cand_gt] > 1) | (tr_degree[cand_tr] > 1)
    hard, in_hard = frames_among(cand_frames, contested & distractor[cand_gt], raw.num_frames)
    easy = ~in_hard & distractor[cand_gt]
    remove[cand_tr[easy]] = True
    cost = np.where(raw.pair_sim >= MATCH_THRESHOLD - EPS, -raw.pair_sim, 0.0)
    for _, block, index in raw.frame_blocks(hard, cost):
        rows, cols = linear_sum_assignment(block)
        ok = block[rows, cols] < -EPS
        pairs = index[rows[ok], cols[ok]]
        hit = distractor[raw.pair_gt[pairs]]
        remove[raw.pair_tracker[pairs[hit]]] = True
    return remove


def preprocess(
    gt: GroundTruth,
    results: Results,
    *,
    benchmark: str,
    num_frames: int,
    name: str,
    gt_path: str | Path | None = None,
    results_path: str | Path | None = None,
) -> SequenceData:
    """Turn one sequence's gt and tracker rows into :class:`SequenceData` (see the module doc).

    Args:
        gt, results: rows as read by :func:`deepmot.io.mot.read_gt` / ``read_results``
            (sorted by frame, then id).
        benchmark: one of :data:`BENCHMARKS`.
        num_frames: the sequence length; a box in a later frame is an error.
        name: the sequence's name.
        gt_path, results_path: the files, to name them in errors.
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; valid: {', '.join(BENCHMARKS)}")
    for rows, path, what in ((gt, gt_path, "ground truth"), (results, results_path, "results")):
        if len(rows) and rows.frames[-1] > num_frames:
            raise MOTFormatError(
                path or name,
                f"{what} has a box in frame {rows.frames[-1]}, after the sequence's last frame "
                f"{num_frames} (seqLength)",
            )
    gt_frames, tr_frames = gt.frames - 1, results.frames - 1
    gt_c, tr_c = box_corners(gt.boxes_xywh), box_corners(results.boxes_xywh)
    if benchmark == "MOT15":
        keep = gt.flags != 0
        return SequenceData.from_sorted(
            name,
            num_frames,
            gt_frames[keep],
            gt.ids[keep],
            tuple(v[keep] for v in gt_c),
            tr_frames,
            results.ids,
            tr_c,
        )

    invalid = gt.classes[~np.isin(gt.classes, VALID_CLASSES)]
    if invalid.size:
        raise MOTFormatError(
            gt_path or name,
            f"class {invalid.min()} is not a MOTChallenge class (1-13); evaluate with "
            "--benchmark MOT15 if this is a MOT15 sequence",
        )
    keep_gt = (gt.flags != 0) & (gt.classes == PEDESTRIAN)
    distractor = np.isin(gt.classes, DISTRACTORS[benchmark])
    # The other gt rows (occluders, vehicles...) only take part in the distractor matching,
    # which is solved only in frames where a distractor has a candidate (IoU >= 0.5): they are
    # left out elsewhere (MOT17-04: 55k of 108k rows).
    d_rows = np.flatnonzero(distractor)
    d_gt, _, d_sim = overlapping_pairs(
        gt_frames[d_rows], tuple(v[d_rows] for v in gt_c), tr_frames, tr_c
    )
    suspect = np.zeros(num_frames, dtype=bool)
    suspect[gt_frames[d_rows[d_gt[d_sim >= MATCH_THRESHOLD - EPS]]]] = True
    rows = np.flatnonzero(keep_gt | distractor | suspect[gt_frames])
    keep_gt = keep_gt[rows]
    gt_frames, gt_ids, gt_c = gt_frames[rows], gt.ids[rows], tuple(v[rows] for v in gt_c)
    raw = SequenceData.from_sorted(
        name, num_frames, gt_frames, gt_ids, gt_c, tr_frames, results.ids, tr_c
    )
    keep_tr = ~_distractor_matches(raw, distractor[rows])
    keep_pair = keep_gt[raw.pair_gt] & keep_tr[raw.pair_tracker]
    new_gt_row = np.cumsum(keep_gt) - 1
    new_tr_row = np.cumsum(keep_tr) - 1
    pairs = (
        new_gt_row[raw.pair_gt[keep_pair]],
        new_tr_row[raw.pair_tracker[keep_pair]],
        raw.pair_sim[keep_pair],
    )
    return SequenceData.from_sorted(
        name,
        num_frames,
        gt_frames[keep_gt],
        gt_ids[keep_gt],
        tuple(v[keep_gt] for v in gt_c),
        tr_frames[keep_tr],
        results.ids[keep_tr],
        tuple(v[keep_tr] for v in tr_c),
        pairs,
    )


def load_sequence(
    seq_dir: str | Path,
    result_file: str | Path,
    *,
    benchmark: str = "auto",
    name: str | None = None,
) -> tuple[SequenceData, str]:
    """Read and preprocess one sequence folder and its result file.

    Returns ``(data, benchmark)``, the benchmark being the one whose settings were applied.
    """
    seq_dir, result_file = Path(seq_dir), Path(result_file)
    name = name or seq_dir.name
    gt_path = seq_dir / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise EvaluationError(f"{seq_dir}: sequence has no ground truth (expected {gt_path})")
    if not result_file.is_file():
        raise EvaluationError(f"no result file for sequence {name}: {result_file} does not exist")
    if benchmark == "auto":
        benchmark = detect_benchmark(name, gt_path)
    gt = read_gt(gt_path)
    results = read_results(result_file)
    info_path = seq_dir / "seqinfo.ini"
    if info_path.is_file():
        num_frames = read_seqinfo(info_path).seq_length
    else:
        last = [int(r.frames[-1]) for r in (gt, results) if len(r)]
        num_frames = max(last, default=0)
    data = preprocess(
        gt,
        results,
        benchmark=benchmark,
        num_frames=num_frames,
        name=name,
        gt_path=gt_path,
        results_path=result_file,
    )
    return data, benchmark


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    """Results of an evaluation.

    Attributes:
        metrics: the metric families evaluated (their objects, in report order).
        sequences: sequence name to family name to :data:`Result`.
        combined: family name to the combined :data:`Result`.
        benchmarks: sequence name to the benchmark settings applied.
        events: sequence name to CLEAR events (see :meth:`CLEAR.events`), when asked for.
        tracker: the tracker's name.
        cls: the class evaluated (TrackEval's name: ``pedestrian``, ``car``).
        counts: row name (sequences, then ``COMBINED``) to TrackEval's ``Count`` fields
            (``Dets``, ``GT_Dets``, ``IDs``, ``GT_IDs``) after preprocessing.
    """

    metrics: list[MetricFamily]
    sequences: dict[str, dict[str, Result]]
    combined: dict[str, Result]
    benchmarks: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, np.ndarray]] | None = None
    tracker: str = ""
    cls: str = "pedestrian"
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    COMBINED = "COMBINED"

    def rows(self) -> dict[str, dict[str, Result]]:
        """Every sequence then ``COMBINED``: row name to family name to result."""
        return {**self.sequences, self.COMBINED: self.combined}

    def summary(self) -> dict[str, dict[str, float]]:
        """Row name to summary field to value (per-alpha fields averaged over alpha)."""
        out: dict[str, dict[str, float]] = {}
        for row, by_family in self.rows().items():
            values: dict[str, float] = {}
            for metric in self.metrics:
                res = by_family[metric.name]
                for f in metric.summary_fields:
                    values[f] = _scalar(res[f])
            out[row] = values
        return out

    def detailed(self) -> dict[str, dict[str, float]]:
        """Row name to every field, per-alpha fields expanded as the reference's detailed CSV
        names them (``HOTA___5`` ... ``HOTA___95``, ``HOTA___AUC`` the mean)."""
        out: dict[str, dict[str, float]] = {}
        labels = [int(100 * a) for a in ALPHAS]
        for row, by_family in self.rows().items():
            values: dict[str, float] = {}
            for metric in self.metrics:
                res = by_family[metric.name]
                for f in metric.float_array_fields + metric.integer_array_fields:
                    arr = np.asarray(res[f], dtype=np.float64)
                    values.update(
                        {f"{f}___{a}": float(v) for a, v in zip(labels, arr, strict=True)}
                    )
                    values[f"{f}___AUC"] = float(arr.mean())
                for f in metric.float_fields + metric.integer_fields:
                    values[f] = _scalar(res[f])
            out[row] = values
        return out


def _scalar(value: int | float | np.ndarray) -> float:
    if isinstance(value, np.ndarray):
        return float(value.mean())
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


def _resolve_metrics(metrics: Iterable[str | MetricFamily]) -> list[MetricFamily]:
    resolved = [m if isinstance(m, MetricFamily) else create_metric(m) for m in metrics]
    if not resolved:
        raise ValueError("no metrics to evaluate")
    order = list(METRICS)
    return sorted(resolved, key=lambda m: order.index(m.name) if m.name in order else len(order))


def evaluate_data(
    data: Sequence[SequenceData],
    metrics: Iterable[str | MetricFamily] = ("hota", "clear", "identity"),
    *,
    with_events: bool = False,
) -> Evaluation:
    """Evaluate preprocessed sequences and combine them."""
    families = _resolve_metrics(metrics)
    names = [d.name for d in data]
    if len(set(names)) != len(names):
        raise ValueError(f"sequence names must be unique, got {names}")
    per_seq: dict[str, dict[str, Result]] = {}
    events: dict[str, dict[str, np.ndarray]] = {}
    for seq in data:
        per_seq[seq.name] = {}
        for metric in families:
            if with_events and isinstance(metric, CLEAR):
                res, events[seq.name] = metric.eval_sequence_with_events(seq)
            else:
                res = metric.eval_sequence(seq)
            per_seq[seq.name][metric.name] = res
    if with_events and not any(isinstance(m, CLEAR) for m in families):
        clear = CLEAR()
        for seq in data:
            events[seq.name] = clear.eval_sequence_with_events(seq)[1]
    combined = {
        m.name: m.combine_sequences({s: r[m.name] for s, r in per_seq.items()}) for m in families
    }
    counts = {seq.name: _counts(seq) for seq in data}
    counts[Evaluation.COMBINED] = {f: sum(c[f] for c in counts.values()) for f in COUNT_FIELDS}
    return Evaluation(
        metrics=families,
        sequences=per_seq,
        combined=combined,
        events=events if with_events else None,
        counts=counts,
    )


#: Benchmarks whose files are MOTChallenge's, with the settings they are evaluated with.
#: DanceTrack and SportsMOT ship MOT17-style gt (9 columns, class 1, flag 1) and TrackEval
#: evaluates them as MOT17 (its ``MotChallenge2DBox`` with another ``BENCHMARK`` name).
MOT_STYLE_SETTINGS: dict[str, str] = {
    **{b: b for b in BENCHMARKS},
    "DanceTrack": "MOT17",
    "SportsMOT": "MOT17",
}
#: Every value ``benchmark`` takes besides ``"auto"``.
ALL_BENCHMARKS: tuple[str, ...] = (*MOT_STYLE_SETTINGS, "KITTI")
#: The classes each kind of dataset evaluates (TrackEval's names).
CLASSES: dict[str, tuple[str, ...]] = {"MOT": ("pedestrian",), "KITTI": ("car", "pedestrian")}
COUNT_FIELDS = ("Dets", "GT_Dets", "IDs", "GT_IDs")


def _counts(data: SequenceData) -> dict[str, int]:
    """TrackEval's ``Count`` fields of one sequence."""
    return {
        "Dets": data.num_tracker_dets,
        "GT_Dets": data.num_gt_dets,
        "IDs": data.num_tracker_ids,
        "GT_IDs": data.num_gt_ids,
    }


@dataclass(frozen=True)
class _Task:
    """One result file against one sequence: the unit of work a process evaluates."""

    tracker: str
    source: SequenceSource
    result_file: Path
    kind: str
    benchmark: str
    classes: tuple[str, ...]
    families: tuple[MetricFamily, ...]
    with_events: bool
    frames: str = "all"


@dataclass
class _Outcome:
    benchmark: str
    by_class: dict[str, tuple[dict[str, Result], dict[str, int], dict[str, np.ndarray] | None]]


@dataclass
class _Failure:
    """An error raised in a worker, carried back to be raised again in the caller."""

    kind: type[BaseException]
    args: tuple


def _gt_key(task: _Task) -> str:
    """Tasks whose ground truth is the same files (e.g. MOT17's -DPM/-FRCNN/-SDP copies of a
    sequence, or one sequence for several trackers) share one reading of it."""
    import os

    source = task.source
    return os.path.realpath(source.seq_dir if source.seq_dir is not None else source.gt_path)


def _load_task(task: _Task, cache: dict) -> tuple[str, dict[str, SequenceData]]:
    source, name = task.source, task.source.name
    if task.kind == "KITTI":
        from deepmot.io.kitti import read_kitti_tracking
        from deepmot.metrics.kitti import check_frames, preprocess_kitti

        if not task.result_file.is_file():
            raise EvaluationError(
                f"no result file for sequence {name}: {task.result_file} does not exist"
            )
        num_frames = int(source.num_frames or 0)
        where = f"seqmap: {num_frames} frames"
        key = (_gt_key(task), num_frames)
        if key not in cache:
            gt = read_kitti_tracking(source.gt_path)
            check_frames(gt, num_frames, where)
            cache[key] = gt
        gt = cache[key]
        tracker = read_kitti_tracking(task.result_file)
        check_frames(tracker, num_frames, where)
        data = {
            cls: preprocess_kitti(gt, tracker, cls, num_frames=num_frames, name=name)
            for cls in task.classes
        }
        return "KITTI", data
    seq_dir = Path(source.seq_dir or source.gt_path.parent.parent)
    gt_path = source.gt_path
    if not gt_path.is_file():
        raise EvaluationError(f"{seq_dir}: sequence has no ground truth (expected {gt_path})")
    if not task.result_file.is_file():
        raise EvaluationError(
            f"no result file for sequence {name}: {task.result_file} does not exist"
        )
    benchmark = MOT_STYLE_SETTINGS.get(task.benchmark, task.benchmark)
    if benchmark == "auto":
        benchmark = detect_benchmark(name, gt_path)
    key = _gt_key(task)
    if key not in cache:
        info_path = seq_dir / "seqinfo.ini"
        length = read_seqinfo(info_path).seq_length if info_path.is_file() else None
        cache[key] = (read_gt(gt_path), length)
    gt, num_frames = cache[key]
    results = read_results(task.result_file)
    if num_frames is None:  # no seqinfo.ini: the last frame with a box
        num_frames = max((int(r.frames[-1]) for r in (gt, results) if len(r)), default=0)
    if task.frames == "val":
        gt, results, num_frames = _validation_frames(gt, results, num_frames, task.result_file)
    data = preprocess(
        gt,
        results,
        benchmark=benchmark,
        num_frames=num_frames,
        name=name,
        gt_path=gt_path,
        results_path=task.result_file,
    )
    return benchmark, {"pedestrian": data}


def _validation_frames(
    gt: GroundTruth, results: Results, num_frames: int, results_path: Path
) -> tuple[GroundTruth, Results, int]:
    """Ground truth and results cut to the paper's validation frames (the last 25% of the
    sequence, supp. A.2; what ``deepmot track --split val`` writes), renumbered from 1."""
    from deepmot.data.sequence import paper_split

    frames = paper_split(num_frames)[1]
    if len(frames) == 0:
        raise EvaluationError(f"{results_path}: the sequence is too short for validation frames")
    first, last = frames[0], frames[-1]
    outside = (results.frames < first) | (results.frames > last)
    if outside.any():
        raise EvaluationError(
            f"{results_path}: rows in frame {int(results.frames[outside][0])}, outside the "
            f"validation frames {first}-{last}; track with 'deepmot track --split val'"
        )
    return frame_range(gt, first, last), frame_range(results, first, last), len(frames)


def _run_task(task: _Task, cache: dict | None = None) -> _Outcome | _Failure:
    try:
        used, per_class = _load_task(task, {} if cache is None else cache)
        by_class = {}
        for cls, data in per_class.items():
            results: dict[str, Result] = {}
            events = None
            for metric in task.families:
                if task.with_events and isinstance(metric, CLEAR):
                    results[metric.name], events = metric.eval_sequence_with_events(data)
                else:
                    results[metric.name] = metric.eval_sequence(data)
            if task.with_events and events is None:
                events = CLEAR().eval_sequence_with_events(data)[1]
            by_class[cls] = (results, _counts(data), events)
        return _Outcome(benchmark=used, by_class=by_class)
    except MOTFormatError as error:  # its constructor takes (path, reason, line): not picklable
        return _Failure(MOTFormatError, (error.path, error.reason, error.line))
    except DeepMOTError as error:
        return _Failure(type(error), error.args)


def _run_group(tasks: list[_Task]) -> list[_Outcome | _Failure]:
    """Tasks that share their ground truth, which is read once."""
    cache: dict = {}
    return [_run_task(task, cache) for task in tasks]


def default_workers() -> int:
    """The number of processors this process may use (TrackEval's ``NUM_PARALLEL_CORES``)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: A process is started only for at least this many bytes of input files (about 0.15 s of
#: evaluation): below it, starting the processes costs more than they save (measured on two
#: MOT17 sequences, 2.1 MB: 1 process 0.28 s, 2 processes 0.29 s as whole commands).
MIN_BYTES_PER_WORKER = 4_000_000


def _run_tasks(tasks: list[_Task], workers: int) -> list[_Outcome]:
    """Evaluate ``tasks``, grouped by ground truth, in ``workers`` processes when there are
    several groups. The outcomes come back in task order whatever the number of processes."""
    groups: dict[str, list[int]] = {}
    for k, task in enumerate(tasks):
        groups.setdefault(_gt_key(task), []).append(k)
    members = list(groups.values())
    work = sum(
        _size(tasks[g[0]].source.gt_path) + sum(_size(tasks[k].result_file) for k in g)
        for g in members
    )
    workers = max(1, min(workers, len(members), work // MIN_BYTES_PER_WORKER))
    done: dict[int, _Outcome | _Failure] = {}
    if workers == 1:
        for group in members:
            done.update(zip(group, _run_group([tasks[k] for k in group]), strict=True))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        methods = multiprocessing.get_all_start_methods()
        # fork: the workers inherit the imports (NumPy, this module) and start in milliseconds.
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        # Biggest groups first, so that one long sequence does not finish last alone.
        members.sort(
            key=lambda g: (
                -_size(tasks[g[0]].source.gt_path) * len(g)
                - sum(_size(tasks[k].result_file) for k in g)
            )
        )
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            batches = pool.map(_run_group, [[tasks[k] for k in g] for g in members])
            for group, outcomes in zip(members, batches, strict=True):
                done.update(zip(group, outcomes, strict=True))
    ordered = [done[k] for k in range(len(tasks))]
    for outcome in ordered:
        if isinstance(outcome, _Failure):
            raise outcome.kind(*outcome.args)
    return ordered  # type: ignore[return-value]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def evaluate_trackers(
    gt_root: str | Path,
    trackers: str | Path | Mapping[str, str | Path],
    metrics: Iterable[str | MetricFamily] = ("hota", "clear", "identity"),
    *,
    benchmark: str = "auto",
    split: str | None = None,
    seqmap: str | Path | None = None,
    sequences: Iterable[str] | None = None,
    classes: Iterable[str] | None = None,
    tracker_names: Iterable[str] | None = None,
    tracker_sub_folder: str = "data",
    workers: int = 1,
    with_events: bool = False,
    frames: str = "all",
) -> dict[str, dict[str, Evaluation]]:
    """Evaluate one or several trackers: tracker name to class name to :class:`Evaluation`.

    Args:
        gt_root: the ground truth in any layout of :mod:`deepmot.io.trackeval_layout`
            (sequence folders, TrackEval's ``gt/mot_challenge/`` with seqmaps, KITTI).
        trackers: a folder of ``<seq>.txt`` files (one tracker), a folder of tracker folders
            ``<name>/data/`` (TrackEval's layout), or a mapping of names to result folders.
        metrics: metric families by name or as objects.
        benchmark: ``"auto"`` (MOTChallenge settings per sequence, see
            :func:`detect_benchmark`; KITTI when ``gt_root`` has ``label_02/``) or one of
            :data:`ALL_BENCHMARKS` (DanceTrack and SportsMOT get MOT17 settings).
        split: TrackEval's split (``train``, ``test``...; KITTI: ``training``...).
        seqmap: a seqmap file to use instead of the layout's.
        sequences: only these sequences, by name or the start of names (``MOT17-02`` chooses
            ``MOT17-02-FRCNN``; ``MOT17`` every MOT17 sequence), as ``--sequences`` of every
            command (default: all of the layout; then a result file that matches no sequence
            is an error).
        classes: the classes to evaluate (default: all, ``pedestrian`` or ``car pedestrian``).
        tracker_names: only these trackers of a folder of tracker folders.
        workers: processes evaluating sequences in parallel; numbers do not depend on it.
        with_events: also collect the per-frame FP/FN/IDSW events.
        frames: ``"all"``, or ``"val"``: only the paper's validation frames (the last 25% of
            each sequence, renumbered from 1), as ``deepmot track --split val`` writes them.

    Raises:
        EvaluationError: missing or unknown sequences, result files or trackers.
        MOTFormatError: a malformed file (the message names file and line).
    """
    if benchmark != "auto" and benchmark not in ALL_BENCHMARKS:
        raise ValueError(
            f"unknown benchmark {benchmark!r}; valid: auto, {', '.join(ALL_BENCHMARKS)}"
        )
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if frames not in ("all", "val"):
        raise ValueError(f"frames must be 'all' or 'val', got {frames!r}")
    families = tuple(_resolve_metrics(metrics))
    layout = resolve_gt(gt_root, benchmark=benchmark, split=split, seqmap=seqmap)
    kind = layout.kind
    wanted = _wanted_classes(kind, classes)
    if benchmark == "auto" and layout.gt_set is not None and kind == "MOT":
        set_benchmark = layout.gt_set.rsplit("-", 1)[0]
        if set_benchmark in MOT_STYLE_SETTINGS:
            benchmark = set_benchmark  # TrackEval applies its BENCHMARK to every sequence
    folders = _tracker_folders(trackers, layout, tracker_sub_folder, tracker_names)
    names = _sequence_names(layout, folders, sequences)
    tasks = [
        _Task(
            tracker=tracker,
            source=layout.sequences[name],
            result_file=folder / f"{name}.txt",
            kind=kind,
            benchmark=benchmark,
            classes=wanted,
            families=families,
            with_events=with_events,
            frames=frames,
        )
        for tracker, folder in folders.items()
        for name in names
    ]
    outcomes = _run_tasks(tasks, workers)
    return {
        tracker: {
            cls: _combined_evaluation(tracker, cls, tasks, outcomes, families, with_events)
            for cls in wanted
        }
        for tracker in folders
    }


def _wanted_classes(kind: str, classes: Iterable[str] | None) -> tuple[str, ...]:
    """The classes to evaluate (lower case, in order, once each); all of ``kind``'s without
    ``classes``. ValueError for a class not evaluated on ``kind`` data."""
    valid_classes = CLASSES[kind]
    wanted = tuple(dict.fromkeys(c.lower() for c in classes)) if classes else valid_classes
    bad = [c for c in wanted if c not in valid_classes]
    if bad:
        raise ValueError(
            f"class {bad[0]!r} is not evaluated on {kind} data; valid: {', '.join(valid_classes)}"
        )
    return wanted


def _tracker_folders(
    trackers: str | Path | Mapping[str, str | Path],
    layout: GtLayout,
    sub_folder: str,
    tracker_names: Iterable[str] | None,
) -> dict[str, Path]:
    """Tracker name -> results folder: the mapping given (each folder checked) or the
    trackers found under a folder (:func:`find_trackers`)."""
    if isinstance(trackers, Mapping):
        folders = {str(k): Path(v) for k, v in trackers.items()}
        for name, folder in folders.items():
            if not folder.is_dir():
                raise EvaluationError(f"{folder}: results folder of {name} does not exist")
        return folders
    return find_trackers(
        trackers,
        gt_set=layout.gt_set,
        sub_folder=sub_folder,
        names=list(tracker_names) if tracker_names is not None else None,
    )


def _sequence_names(
    layout: GtLayout, folders: Mapping[str, Path], sequences: Iterable[str] | None
) -> list[str]:
    """The sequences to evaluate, each with a result file in every folder.

    Raises:
        EvaluationError: a selection naming no sequence; without a selection (and a seqmap),
            a result file of an unknown sequence; a missing result file.
    """
    found = layout.sequences
    if sequences is not None:
        names, unknown = select_names(found, sequences)
        if unknown:
            raise EvaluationError(
                f"no sequence is named or starts with {', '.join(unknown)}; "
                f"sequences under {layout.folder}: {', '.join(found)}"
            )
    else:
        names = list(found)
        if layout.seqmap is None:
            for folder in folders.values():
                strays = sorted(p.stem for p in folder.glob("*.txt") if p.stem not in found)
                if strays:
                    raise EvaluationError(
                        f"result file{'s' if len(strays) > 1 else ''} for unknown sequence"
                        f"{'s' if len(strays) > 1 else ''} {', '.join(strays)} in {folder}; "
                        f"sequences under {layout.folder}: {', '.join(found)} (pass the "
                        "sequences to evaluate to evaluate only some)"
                    )
    for folder in folders.values():
        missing = [n for n in names if not (folder / f"{n}.txt").is_file()]
        if missing:
            raise EvaluationError(
                f"no result file for sequence{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} in {folder} (expected {folder / (missing[0] + '.txt')})"
            )
    return names


def _combined_evaluation(
    tracker: str,
    cls: str,
    tasks: list[_Task],
    outcomes: list[_Outcome],
    families: tuple[MetricFamily, ...],
    with_events: bool,
) -> Evaluation:
    """One tracker's :class:`Evaluation` of class ``cls``: its sequences' results (from
    ``outcomes``, one per task) and their combination."""
    mine = [(t, o) for t, o in zip(tasks, outcomes, strict=True) if t.tracker == tracker]
    per_seq = {t.source.name: o.by_class[cls][0] for t, o in mine}
    counts = {t.source.name: o.by_class[cls][1] for t, o in mine}
    combined = {
        m.name: m.combine_sequences({s: r[m.name] for s, r in per_seq.items()}) for m in families
    }
    counts[Evaluation.COMBINED] = {
        f: sum(c[f] for s, c in counts.items() if s != Evaluation.COMBINED) for f in COUNT_FIELDS
    }
    events = {t.source.name: o.by_class[cls][2] for t, o in mine} if with_events else None
    return Evaluation(
        metrics=list(families),
        sequences=per_seq,
        combined=combined,
        benchmarks={t.source.name: o.benchmark for t, o in mine},
        events=events,
        tracker=tracker,
        cls=cls,
        counts=counts,
    )


def evaluate(
    gt_root: str | Path,
    results_dir: str | Path,
    metrics: Iterable[str | MetricFamily] = ("hota", "clear", "identity"),
    *,
    benchmark: str = "auto",
    sequences: Iterable[str] | None = None,
    with_events: bool = False,
    cls: str | None = None,
    split: str | None = None,
    seqmap: str | Path | None = None,
    workers: int = 1,
    frames: str = "all",
) -> Evaluation:
    """Evaluate one tracker's result files ``results_dir/<sequence>.txt`` against the
    sequences under ``gt_root``: per-sequence and combined numbers of one class.

    ``gt_root`` may be any layout of :mod:`deepmot.io.trackeval_layout` (a folder of sequence
    folders, TrackEval's ``gt/mot_challenge/`` with seqmaps, a KITTI ``label_02`` folder);
    ``cls`` is the class (default: ``pedestrian``; KITTI: ``car`` unless given).
    The other arguments are those of :func:`evaluate_trackers`.

    Raises:
        EvaluationError: a result file is missing, a sequence is unknown, or a result file
            matches no sequence.
        MOTFormatError: a file is malformed (the message names file and line).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise EvaluationError(f"{results_dir}: results folder does not exist")
    name = results_dir.resolve().parent.name if results_dir.name == "data" else results_dir.name
    out = evaluate_trackers(
        gt_root,
        {name: results_dir},
        metrics,
        benchmark=benchmark,
        split=split,
        seqmap=seqmap,
        sequences=sequences,
        classes=[cls] if cls is not None else None,
        workers=workers,
        with_events=with_events,
        frames=frames,
    )
    by_class = next(iter(out.values()))
    return next(iter(by_class.values()))
