"""``deepmot eval GT_ROOT RESULTS_DIR``: CLEAR MOT, identity and HOTA measures, as the reference.

Evaluates ``RESULTS_DIR/<sequence>.txt`` (MOTChallenge result files) against every sequence
folder under ``GT_ROOT`` (``<sequence>/gt/gt.txt``, ``seqinfo.ini`` optional) with the
MOTChallenge preprocessing of TrackEval, prints one table per metric family (a row per
sequence and COMBINED) and optionally writes JSON, CSV and per-frame event files.

ID switches are counted as the MOTChallenge devkit and TrackEval count them: a gt object
matched to a tracker id other than the one it was last matched to, any number of frames
earlier. py-motmetrics counts differently and can report other IDSW (and MOTA) on the same
files.

Only the standard library is imported at module level; the evaluator (NumPy/SciPy, no torch)
is imported when the command runs.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

METRIC_CHOICES = ("hota", "clear", "identity")
BENCHMARK_CHOICES = ("auto", "MOT15", "MOT16", "MOT17", "MOT20")

IDSW_HELP = (
    "ID switches follow the MOTChallenge devkit and TrackEval: a gt object matched to another "
    "tracker id than the one it was last matched to, any number of frames before, counts one "
    "IDSW (py-motmetrics counts differently)."
)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="CLEAR MOT, identity and HOTA measures of result files, identical to TrackEval",
        description=(
            "Evaluate MOTChallenge result files RESULTS_DIR/<sequence>.txt against the sequences "
            "under GT_ROOT (folders with gt/gt.txt; seqinfo.ini optional, else the length is the "
            "last frame with a box), with TrackEval's MOTChallenge preprocessing: gt with flag 0 "
            "ignored, pedestrians only, tracker boxes matched to distractors removed (not for "
            "MOT15), IoU threshold 0.5. " + IDSW_HELP
        ),
    )
    parser.add_argument("gt_root", metavar="GT_ROOT", type=Path, help="folder of sequence folders")
    parser.add_argument(
        "results_dir",
        metavar="RESULTS_DIR",
        type=Path,
        help="folder of <sequence>.txt result files",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        choices=METRIC_CHOICES,
        default=list(METRIC_CHOICES),
        metavar="METRIC",
        help="metric families: clear identity hota (default: all)",
    )
    parser.add_argument(
        "--benchmark",
        choices=BENCHMARK_CHOICES,
        default="auto",
        help="preprocessing settings; auto: from each sequence's name, else MOT15 for 10-column "
        "gt, else MOT17 (default: auto)",
    )
    parser.add_argument(
        "--sequences",
        nargs="+",
        metavar="NAME",
        help="evaluate only these sequences (default: all under GT_ROOT)",
    )
    parser.add_argument(
        "--out", type=Path, help="write every field per sequence and COMBINED as JSON"
    )
    parser.add_argument(
        "--csv",
        type=Path,
        help="write every field per sequence and COMBINED as CSV (TrackEval's detailed columns)",
    )
    parser.add_argument(
        "--events",
        type=Path,
        help="write per-frame FP, FN and IDSW events with ids as CSV "
        "(sequence,frame,type,gt_id,tracker_id,prev_tracker_id,iou)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deepmot.io.atomic import atomic_write_text
    from deepmot.metrics import evaluate

    evaluation = evaluate(
        args.gt_root,
        args.results_dir,
        metrics=args.metrics,
        benchmark=args.benchmark,
        sequences=args.sequences,
        with_events=args.events is not None,
    )
    print(format_tables(evaluation))
    if args.out is not None:
        atomic_write_text(args.out, json.dumps(to_json(evaluation), indent=1) + "\n")
        log.info("wrote %s", args.out)
    if args.csv is not None:
        atomic_write_text(args.csv, to_csv(evaluation))
        log.info("wrote %s", args.csv)
    if args.events is not None:
        atomic_write_text(args.events, events_csv(evaluation))
        log.info("wrote %s", args.events)
    return 0


# --------------------------------------------------------------------------- formatting


def _cell(value: float | int, integer: bool) -> str:
    if integer:
        return str(int(value))
    return f"{100 * value:.5g}"


def format_tables(evaluation: Any) -> str:
    """One table per family: summary fields, a row per sequence, then COMBINED.

    Ratios are shown in percent (5 significant digits), counts as integers, per-alpha HOTA
    fields as their mean over alpha, as the reference prints them.
    """
    rows = evaluation.rows()
    width = max(12, *(len(name) for name in rows)) + 2
    out = io.StringIO()
    for metric in evaluation.metrics:
        integer = set(metric.integer_fields) | set(metric.integer_array_fields)
        fields = metric.summary_fields
        col = max(8, *(len(f) for f in fields)) + 2
        out.write(
            f"{type(metric).__name__:<{width}}" + "".join(f"{f:>{col}}" for f in fields) + "\n"
        )
        for name, by_family in rows.items():
            res = by_family[metric.name]
            cells = []
            for f in fields:
                value = res[f]
                value = float(value.mean()) if hasattr(value, "mean") else value
                cells.append(_cell(value, f in integer))
            out.write(f"{name:<{width}}" + "".join(f"{c:>{col}}" for c in cells) + "\n")
        out.write("\n")
    return out.getvalue().rstrip("\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def to_json(evaluation: Any) -> dict[str, Any]:
    """Every field of every family, per sequence and COMBINED (per-alpha fields as lists)."""
    return {
        "metrics": [m.name for m in evaluation.metrics],
        "benchmarks": evaluation.benchmarks,
        "id_switches": IDSW_HELP,
        "alphas": [round(0.05 * k, 2) for k in range(1, 20)],
        "results": {
            row: {
                family: {f: _plain(v) for f, v in res.items()} for family, res in by_family.items()
            }
            for row, by_family in evaluation.rows().items()
        },
    }


def to_csv(evaluation: Any) -> str:
    """A row per sequence and COMBINED, TrackEval's detailed columns (``HOTA___50`` ...)."""
    detailed = evaluation.detailed()
    fields = list(next(iter(detailed.values())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["seq", *fields])
    for row, values in detailed.items():
        writer.writerow(
            [row, *(repr(values[f]) if isinstance(values[f], float) else values[f] for f in fields)]
        )
    return out.getvalue()


def events_csv(evaluation: Any) -> str:
    """The per-frame FP/FN/IDSW events of every sequence as CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sequence", "frame", "type", "gt_id", "tracker_id", "prev_tracker_id", "iou"])
    for seq, ev in (evaluation.events or {}).items():
        columns = [
            ev[k].tolist()
            for k in ("frame", "type", "gt_id", "tracker_id", "prev_tracker_id", "iou")
        ]
        for frame, kind, gt_id, tr_id, prev, iou in zip(*columns, strict=True):
            writer.writerow(
                [seq, frame, kind, gt_id, tr_id, prev, "" if math.isnan(iou) else repr(iou)]
            )
    return out.getvalue()
