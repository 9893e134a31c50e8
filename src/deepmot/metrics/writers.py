"""The command's own outputs of an evaluation: the tables ``deepmot eval`` prints, its JSON
(``--out``), CSV (``--csv``) and per-frame events (``--events``).

TrackEval's own files are :mod:`deepmot.metrics.report`'s. Standard library only: the light
install (no torch) evaluates and writes these.
"""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deepmot.metrics.evaluate import Evaluation

__all__ = ["ID_SWITCHES", "events_csv", "format_tables", "to_csv", "to_json"]

#: How ID switches are counted, for readers of the JSON (and ``deepmot eval --help``).
ID_SWITCHES = (
    "ID switches follow the MOTChallenge devkit and TrackEval: a gt object matched to another "
    "tracker id than the one it was last matched to, any number of frames before, counts one "
    "IDSW (py-motmetrics counts differently)."
)


def _cell(value: float | int, integer: bool) -> str:
    if integer:
        return str(int(value))
    return f"{100 * value:.5g}"


def format_tables(evaluation: Evaluation) -> str:
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


def to_json(evaluation: Evaluation) -> dict[str, Any]:
    """Every field of every family, per sequence and COMBINED (per-alpha fields as lists)."""
    return {
        "metrics": [m.name for m in evaluation.metrics],
        "benchmarks": evaluation.benchmarks,
        "id_switches": ID_SWITCHES,
        "alphas": [round(0.05 * k, 2) for k in range(1, 20)],
        "results": {
            row: {
                family: {f: _plain(v) for f, v in res.items()} for family, res in by_family.items()
            }
            for row, by_family in evaluation.rows().items()
        },
    }


def to_csv(evaluation: Evaluation) -> str:
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


def events_csv(evaluation: Evaluation) -> str:
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
