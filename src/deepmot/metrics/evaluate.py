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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io.mot import GroundTruth, Results, find_sequences, read_gt, read_results, read_seqinfo
from deepmot.metrics._base import EPS, MetricFamily, Result, SequenceData, box_corners
from deepmot.metrics.clear import CLEAR
from deepmot.metrics.hota import ALPHAS, HOTA
from deepmot.metrics.identity import Identity

__all__ = [
    "BENCHMARKS",
    "METRICS",
    "Evaluation",
    "EvaluationError",
    "create_metric",
    "detect_benchmark",
    "evaluate",
    "evaluate_data",
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


class EvaluationError(DeepMOTError):
    """The inputs of an evaluation do not fit together (missing result file, unknown sequence)."""


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

    ``raw`` holds every gt row (any class and flag); ``distractor`` marks its distractor rows.
    The matching is an exact assignment among pairs with IoU >= 0.5; it is solved only in
    frames where such pairs compete for a box, elsewhere they are the matching.
    """
    remove = np.zeros(raw.num_tracker_dets, dtype=bool)
    candidates = np.flatnonzero(raw.pair_sim >= MATCH_THRESHOLD - EPS)
    cand_gt, cand_tr = raw.pair_gt[candidates], raw.pair_tracker[candidates]
    cand_frames = raw.gt_frames[cand_gt]
    suspect = np.unique(cand_frames[distractor[cand_gt]])
    if suspect.size == 0:
        return remove
    in_suspect = np.isin(cand_frames, suspect)
    cand_gt, cand_tr, cand_frames = (
        cand_gt[in_suspect],
        cand_tr[in_suspect],
        cand_frames[in_suspect],
    )
    gt_degree = np.bincount(cand_gt, minlength=raw.num_gt_dets)
    tr_degree = np.bincount(cand_tr, minlength=raw.num_tracker_dets)
    contested = (gt_degree[cand_gt] > 1) | (tr_degree[cand_tr] > 1)
    hard = np.unique(cand_frames[contested])
    easy = ~np.isin(cand_frames, hard) & distractor[cand_gt]
    remove[cand_tr[easy]] = True
    for frame in hard.tolist():
        score, index = raw.frame_block(frame)
        score[score < MATCH_THRESHOLD - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > EPS
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

    invalid = np.setdiff1d(np.unique(gt.classes), VALID_CLASSES)
    if invalid.size:
        raise MOTFormatError(
            gt_path or name,
            f"class {invalid[0]} is not a MOTChallenge class (1-13); evaluate with "
            "--benchmark MOT15 if this is a MOT15 sequence",
        )
    keep_gt = (gt.flags != 0) & (gt.classes == PEDESTRIAN)
    distractor = np.isin(gt.classes, DISTRACTORS[benchmark])
    raw = SequenceData.from_sorted(
        name, num_frames, gt_frames, gt.ids, gt_c, tr_frames, results.ids, tr_c
    )
    keep_tr = ~_distractor_matches(raw, distractor)
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
        gt.ids[keep_gt],
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
    """

    metrics: list[MetricFamily]
    sequences: dict[str, dict[str, Result]]
    combined: dict[str, Result]
    benchmarks: dict[str, str] = field(default_factory=dict)
    events: dict[str, dict[str, np.ndarray]] | None = None

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
    return Evaluation(
        metrics=families,
        sequences=per_seq,
        combined=combined,
        events=events if with_events else None,
    )


def evaluate(
    gt_root: str | Path,
    results_dir: str | Path,
    metrics: Iterable[str | MetricFamily] = ("hota", "clear", "identity"),
    *,
    benchmark: str = "auto",
    sequences: Iterable[str] | None = None,
    with_events: bool = False,
) -> Evaluation:
    """Evaluate the result files ``results_dir/<sequence>.txt`` against the sequences under
    ``gt_root`` (found by :func:`deepmot.io.mot.find_sequences`).

    Args:
        metrics: metric families by name or as objects.
        benchmark: ``"auto"`` (per sequence, see :func:`detect_benchmark`) or one of
            :data:`BENCHMARKS` for all sequences.
        sequences: names of the sequences to evaluate (default: every sequence under
            ``gt_root``; then a result file that matches no sequence is an error).
        with_events: also collect the per-frame FP/FN/IDSW events.

    Raises:
        EvaluationError: a result file is missing, a sequence is unknown, or a result file
            matches no sequence.
        MOTFormatError: a file is malformed (the message names file and line).
    """
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    if benchmark != "auto" and benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; valid: auto, {', '.join(BENCHMARKS)}")
    families = _resolve_metrics(metrics)
    if not gt_root.is_dir():
        raise EvaluationError(f"{gt_root}: ground-truth folder does not exist")
    if not results_dir.is_dir():
        raise EvaluationError(f"{results_dir}: results folder does not exist")
    found: dict[str, Path] = {}
    for seq_dir in find_sequences(gt_root):
        if seq_dir.name in found:
            raise EvaluationError(
                f"two sequences are named {seq_dir.name}: {found[seq_dir.name]} and {seq_dir}"
            )
        found[seq_dir.name] = seq_dir
    if not found:
        raise EvaluationError(
            f"{gt_root}: no sequences found (folders with gt/gt.txt or seqinfo.ini)"
        )
    if sequences is not None:
        names = list(dict.fromkeys(sequences))
        unknown = [n for n in names if n not in found]
        if unknown:
            raise EvaluationError(
                f"unknown sequence{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"sequences under {gt_root}: {', '.join(found)}"
            )
    else:
        names = list(found)
        strays = sorted(p.stem for p in results_dir.glob("*.txt") if p.stem not in found)
        if strays:
            raise EvaluationError(
                f"result file{'s' if len(strays) > 1 else ''} for unknown sequence"
                f"{'s' if len(strays) > 1 else ''} {', '.join(strays)} in {results_dir}; "
                f"sequences under {gt_root}: {', '.join(found)} (pass the sequences to evaluate "
                "to evaluate only some)"
            )
    missing = [n for n in names if not (results_dir / f"{n}.txt").is_file()]
    if missing:
        raise EvaluationError(
            f"no result file for sequence{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"in {results_dir} (expected {results_dir / (missing[0] + '.txt')})"
        )
    data: list[SequenceData] = []
    benchmarks: dict[str, str] = {}
    for name in names:
        seq, used = load_sequence(
            found[name], results_dir / f"{name}.txt", benchmark=benchmark, name=name
        )
        log.debug(
            "%s: %s settings, %d gt / %d tracker boxes",
            name,
            used,
            seq.num_gt_dets,
            seq.num_tracker_dets,
        )
        data.append(seq)
        benchmarks[name] = used
    evaluation = evaluate_data(data, families, with_events=with_events)
    evaluation.benchmarks = benchmarks
    return evaluation
