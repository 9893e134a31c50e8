"""TrackEval's output files and a comparison table of several trackers.

:func:`summary_text` and :func:`detailed_text` give the bytes TrackEval writes to
``<class>_summary.txt`` and ``<class>_detailed.csv`` (same columns, order, number formatting and
line endings), so that scripts that parse those files keep working:

- ``<class>_summary.txt``: two space-separated rows, field names and the COMBINED values, in
  TrackEval's fixed field order; ratios as ``100 * value`` with 5 significant digits (per-alpha
  HOTA fields averaged over alpha), counts as integers.
- ``<class>_detailed.csv``: a row per sequence (sorted by name), then ``COMBINED``; per family
  (HOTA, CLEAR, Identity, then TrackEval's ``Count``) its float fields, its integer fields, then
  each per-alpha field at the 19 alphas (``HOTA___5`` ... ``HOTA___95``) and their mean
  (``HOTA___AUC``); numbers as Python prints them (shortest round-trip form).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

import numpy as np

from deepmot.metrics._base import MetricFamily, Result
from deepmot.metrics.evaluate import COUNT_FIELDS, Evaluation
from deepmot.metrics.hota import ALPHAS

__all__ = ["comparison_table", "detailed_text", "summary_text"]

#: TrackEval's order of the summary file's fields (``utils.write_summary_results``).
SUMMARY_ORDER = [
    "HOTA",
    "DetA",
    "AssA",
    "DetRe",
    "DetPr",
    "AssRe",
    "AssPr",
    "LocA",
    "OWTA",
    "HOTA(0)",
    "LocA(0)",
    "HOTALocA(0)",
    "MOTA",
    "MOTP",
    "MODA",
    "CLR_Re",
    "CLR_Pr",
    "MTR",
    "PTR",
    "MLR",
    "CLR_TP",
    "CLR_FN",
    "CLR_FP",
    "IDSW",
    "MT",
    "PT",
    "ML",
    "Frag",
    "sMOTA",
    "IDF1",
    "IDR",
    "IDP",
    "IDTP",
    "IDFN",
    "IDFP",
    "Dets",
    "GT_Dets",
    "IDs",
    "GT_IDs",
]
#: Per family, the fields TrackEval's summary shows (its metrics' ``summary_fields``).
SUMMARY_FIELDS = {
    "hota": (
        [
            "HOTA",
            "DetA",
            "AssA",
            "DetRe",
            "DetPr",
            "AssRe",
            "AssPr",
            "LocA",
            "OWTA",
            "HOTA(0)",
            "LocA(0)",
            "HOTALocA(0)",
        ]
    ),
    "clear": [
        "MOTA",
        "MOTP",
        "MODA",
        "CLR_Re",
        "CLR_Pr",
        "MTR",
        "PTR",
        "MLR",
        "sMOTA",
        "CLR_TP",
        "CLR_FN",
        "CLR_FP",
        "IDSW",
        "MT",
        "PT",
        "ML",
        "Frag",
    ],
    "identity": ["IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP"],
}
#: The columns of :func:`comparison_table`: (family, field, is a count).
COMPARISON = (
    ("hota", "HOTA", False),
    ("hota", "DetA", False),
    ("hota", "AssA", False),
    ("clear", "MOTA", False),
    ("clear", "MOTP", False),
    ("identity", "IDF1", False),
    ("clear", "IDSW", True),
    ("clear", "CLR_FP", True),
    ("clear", "CLR_FN", True),
    ("clear", "Frag", True),
)


def _summary_value(metric: MetricFamily, field: str, value: object) -> str:
    if field in metric.float_array_fields:
        return f"{100 * np.mean(value):1.5g}"
    if field in metric.integer_fields:
        return f"{int(value):d}"  # type: ignore[call-overload]
    return f"{100 * float(value):1.5g}"  # type: ignore[arg-type]


def summary_text(evaluation: Evaluation) -> str:
    """The text of TrackEval's ``<class>_summary.txt`` for ``evaluation``."""
    values: dict[str, str] = {}
    for metric in evaluation.metrics:
        res = evaluation.combined[metric.name]
        for field in SUMMARY_FIELDS.get(metric.name, metric.summary_fields):
            values[field] = _summary_value(metric, field, res[field])
    for field in COUNT_FIELDS:
        values[field] = f"{int(evaluation.counts[Evaluation.COMBINED][field]):d}"
    ordered = [f for f in SUMMARY_ORDER if f in values] + [
        f for f in values if f not in SUMMARY_ORDER
    ]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=" ")
    writer.writerow(ordered)
    writer.writerow([values[f] for f in ordered])
    return out.getvalue()


def _number(value: object) -> str:
    """A number as TrackEval's CSV writer prints it (``str`` of a Python or NumPy number)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))  # type: ignore[arg-type]


#: Count fields TrackEval stores as floats (a sum over a float array): printed ``4.0``.
FLOAT_TYPED_COUNTS = frozenset({"Frag"})


def _detailed_row(metric: MetricFamily, res: Result, early: bool) -> list[str]:
    """One family's cells. ``early``: the sequence has no tracker or no gt box, where the
    reference returns before computing its ratios, so they keep its integer 0 (``0``, not
    ``0.0``), as do its float-typed counts."""
    row = []
    for field in metric.float_fields:
        value = res[field]
        row.append("0" if early and value == 0 else _number(value))
    for field in metric.integer_fields:
        value = int(res[field])  # type: ignore[call-overload]
        float_typed = field in FLOAT_TYPED_COUNTS and not early
        row.append(_number(float(value)) if float_typed else str(value))
    for field in (*metric.float_array_fields, *metric.integer_array_fields):
        arr = np.asarray(res[field], dtype=np.float64)
        row += [_number(v) for v in arr.tolist()]
        row.append(_number(np.mean(arr)))
    return row


def _detailed_fields(metric: MetricFamily) -> list[str]:
    fields = [*metric.float_fields, *metric.integer_fields]
    labels = [int(100 * a) for a in ALPHAS]
    for field in (*metric.float_array_fields, *metric.integer_array_fields):
        fields += [f"{field}___{a}" for a in labels] + [f"{field}___AUC"]
    return fields


def detailed_text(evaluation: Evaluation) -> str:
    """The text of TrackEval's ``<class>_detailed.csv`` for ``evaluation``."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["seq"]
    for metric in evaluation.metrics:
        header += _detailed_fields(metric)
    writer.writerow([*header, *COUNT_FIELDS])
    rows = {s: evaluation.sequences[s] for s in sorted(evaluation.sequences)}
    counts = evaluation.counts
    early = {s: counts[s]["Dets"] == 0 or counts[s]["GT_Dets"] == 0 for s in rows}
    # COMBINED sums the sequences: a float as soon as one sequence's value is a float.
    early[Evaluation.COMBINED] = all(early.values())
    for name, by_family in [*rows.items(), (Evaluation.COMBINED, evaluation.combined)]:
        row = [name]
        for metric in evaluation.metrics:
            res = by_family[metric.name]
            if name == Evaluation.COMBINED:
                row += _detailed_row(metric, res, False)[: len(metric.float_fields)]
                row += _detailed_row(metric, res, early[name])[len(metric.float_fields) :]
            else:
                row += _detailed_row(metric, res, early[name])
        writer.writerow([*row, *(str(int(counts[name][f])) for f in COUNT_FIELDS)])
    return out.getvalue()


def comparison_table(evaluations: Mapping[str, Evaluation]) -> str:
    """One row per tracker (its COMBINED numbers): HOTA, DetA, AssA, MOTA, MOTP, IDF1, IDSW,
    FP, FN, Frag — the columns of the families evaluated — ratios in percent."""
    first = next(iter(evaluations.values()))
    families = {m.name for m in first.metrics}
    columns = [(fam, f, count) for fam, f, count in COMPARISON if fam in families]
    width = max(12, *(len(name) for name in evaluations)) + 2
    col = max(8, *(len(f) for _, f, _ in columns)) + 2 if columns else 8
    out = io.StringIO()
    title = f"Trackers ({first.cls})"
    out.write(f"{title:<{width}}" + "".join(f"{f:>{col}}" for _, f, _ in columns) + "\n")
    for name, evaluation in evaluations.items():
        cells = []
        for family, field, count in columns:
            value = evaluation.combined[family][field]
            value = float(np.mean(value)) if isinstance(value, np.ndarray) else value
            cells.append(str(int(value)) if count else f"{100 * value:.5g}")
        out.write(f"{name:<{width}}" + "".join(f"{c:>{col}}" for c in cells) + "\n")
    return out.getvalue().rstrip("\n")
