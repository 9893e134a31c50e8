"""Tracking measures identical to the reference evaluator (TrackEval / MOTChallenge devkit).

One class per family, one interface (``eval_sequence`` -> counts and ratios,
``combine_sequences`` -> counts summed, ratios last): :class:`CLEAR` (MOTA, MOTP, IDSW, ...),
:class:`Identity` (IDF1, IDP, IDR) and :class:`HOTA`. :func:`evaluate` runs them on a folder of
MOTChallenge sequences (or TrackEval's layout, or KITTI tracking) and a folder of result files,
with the reference's preprocessing; :func:`evaluate_trackers` on several trackers at once;
:class:`FrameAccumulator` takes them frame by frame from inside a tracking loop (boxes or a
similarity matrix).

ID switches follow the devkit/TrackEval definition, not py-motmetrics' (see
:mod:`deepmot.metrics.clear`). NumPy and SciPy only: importing this package never imports torch.
"""

from deepmot.metrics._base import MetricFamily, Result, SequenceData, box_iou_xywh
from deepmot.metrics.accumulator import FrameAccumulator, evaluate_accumulators
from deepmot.metrics.clear import CLEAR
from deepmot.metrics.evaluate import (
    ALL_BENCHMARKS,
    BENCHMARKS,
    METRICS,
    Evaluation,
    EvaluationError,
    create_metric,
    detect_benchmark,
    evaluate,
    evaluate_data,
    evaluate_trackers,
    load_sequence,
    preprocess,
)
from deepmot.metrics.hota import HOTA
from deepmot.metrics.identity import Identity

__all__ = [
    "ALL_BENCHMARKS",
    "BENCHMARKS",
    "CLEAR",
    "HOTA",
    "METRICS",
    "Evaluation",
    "EvaluationError",
    "FrameAccumulator",
    "Identity",
    "MetricFamily",
    "Result",
    "SequenceData",
    "box_iou_xywh",
    "create_metric",
    "detect_benchmark",
    "evaluate",
    "evaluate_accumulators",
    "evaluate_data",
    "evaluate_trackers",
    "load_sequence",
    "preprocess",
]
