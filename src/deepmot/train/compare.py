"""Train tracker variants and compare them on held-out frames (the paper's Tables 1–2 layout).

A :class:`Variant` is a name and the settings it trains with (None: not trained, the "Vanilla"
row — the learned motion model untrained is exactly the constant-velocity tracker). Every
variant trains on the same training frames with the same seed, tracks the same validation clips
(the last 25% of each sequence, renumbered) and is scored by the project's evaluator.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deepmot.data.sequence import Sequence
from deepmot.io.atomic import atomic_write_text
from deepmot.metrics.evaluate import Evaluation, detect_benchmark, evaluate_data, preprocess
from deepmot.trackers import Tracker, create_tracker, track_sequence
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.tracker import train_tracker

__all__ = [
    "Variant",
    "compare_over_seeds",
    "paper_variants",
    "tuning_clips",
    "validation_clips",
    "evaluate_tracker",
    "compare_variants",
    "format_table",
    "TABLE_COLUMNS",
]

log = logging.getLogger(__name__)

# (column, evaluator family, field, as a percentage)
TABLE_COLUMNS = (
    ("MOTA", "clear", "MOTA", True),
    ("MOTP", "clear", "MOTP", True),
    ("IDF1", "identity", "IDF1", True),
    ("MT", "clear", "MT", False),
    ("ML", "clear", "ML", False),
    ("FP", "clear", "CLR_FP", False),
    ("FN", "clear", "CLR_FN", False),
    ("IDS", "clear", "IDSW", False),
)


@dataclass(frozen=True)
class Variant:
    """A row of the comparison: ``train`` None means a tracker that trains nothing,
    ``tracker`` (by default the trained rows' tracker untrained, for ``motion`` exactly
    constant velocity), with the weights file ``weights`` where given, else built with the
    model settings ``model`` (e.g. the trained rows' ``TrackerTrainConfig.model``, so that
    the untrained row is the model they start from)."""

    name: str
    train: TrackerTrainConfig | None
    tracker: str | None = None
    weights: str | None = None
    model: dict[str, Any] = field(default_factory=dict)


def paper_variants(base: TrackerTrainConfig) -> list[Variant]:
    """The rows of the paper's Table 2 for a motion tracker: Vanilla, Smooth-L1 and the DeepMOT
    loss with dMOTA + dMOTP, dMOTA alone, dMOTP alone, and without the ID-switch term."""
    deepmot = replace(base, loss="deepmot")

    def loss(**changes: float | bool) -> TrackerTrainConfig:
        return replace(deepmot, deepmot=replace(base.deepmot, **changes))

    return [
        Variant("Vanilla", None),
        Variant("Smooth L1", replace(base, loss="smoothl1")),
        Variant("dMOTA+dMOTP", deepmot),
        Variant("dMOTA", loss(lam=0.0)),
        Variant("dMOTP", loss(use_dmota=False)),
        Variant("dMOTA+dMOTP-IDS", loss(gamma=0.0)),
    ]


def validation_clips(sequences: SequenceOf[Sequence], val: float = 0.25) -> list[Sequence]:
    """The last ``val`` share of each sequence as clips of their own (supplementary A.2)."""
    return [seq.clip(seq.split(val=val)[1]) for seq in sequences]


def tuning_clips(sequences: SequenceOf[Sequence]) -> list[Sequence]:
    """Frames 35–50% of each sequence: held out from training with ``train_fraction=0.35``,
    and still inside the paper's training half (for choosing settings without the validation
    split)."""
    return [s.clip(range(int(0.35 * len(s)) + 1, int(0.5 * len(s)) + 1)) for s in sequences]


def evaluate_tracker(
    tracker: Tracker, sequences: SequenceOf[Sequence], progress: bool = False
) -> Evaluation:
    """Track every sequence and score it (CLEAR and Identity) with the MOTChallenge rules."""
    data = []
    for seq in sequences:
        results = track_sequence(tracker, seq, progress=progress)
        benchmark = detect_benchmark(seq.name)
        data.append(
            preprocess(seq.gt, results, benchmark=benchmark, num_frames=len(seq), name=seq.name)
        )
    return evaluate_data(data, ("clear", "identity"))


def _row(name: str, evaluation: Evaluation) -> dict[str, Any]:
    combined = evaluation.combined
    row: dict[str, Any] = {"variant": name}
    for column, family, key, percent in TABLE_COLUMNS:
        value = float(combined[family][key])
        row[column] = round(100 * value, 2) if percent else int(value)
    return row


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def compare_variants(
    train_sequences: SequenceOf[Sequence],
    val_sequences: SequenceOf[Sequence],
    variants: SequenceOf[Variant],
    out: str | Path,
    progress: bool = True,
    caption: str | None = None,
    row: Callable[[str, Evaluation], dict[str, Any]] | None = None,
    tracker_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train each variant into ``out/<variant>/``, track and score ``val_sequences``.

    The untrained row is the trained rows' tracker without weights (for ``motion``: exactly
    the constant-velocity tracker). ``tracker_options`` go to every row's
    :func:`~deepmot.trackers.create_tracker` (e.g. Tracktor's ``require_verification``).

    Writes ``out/table.json`` and, for the default rows (:data:`TABLE_COLUMNS`, MT and ML as
    counts), ``out/table.md`` (with ``caption``: the data, split, iterations and seed),
    atomically; returns the rows, made by ``row(name, evaluation)`` if given.
    """
    out = Path(out)
    rows = []
    for variant in variants:
        if variant.train is None:
            name = variant.tracker or next(
                (v.train.tracker for v in variants if v.train is not None), "motion"
            )
            settings = {**variant.model, **(tracker_options or {})}
            tracker = create_tracker(name, variant.weights, pretrained=False, **settings)
        else:
            summary = train_tracker(
                list(train_sequences), out / _slug(variant.name), variant.train, progress=progress
            )
            tracker = create_tracker(
                variant.train.tracker, weights=summary["weights"], **(tracker_options or {})
            )
        rows.append((row or _row)(variant.name, evaluate_tracker(tracker, val_sequences)))
        log.info("%s: %s", variant.name, rows[-1])
    if row is None:  # the table's own columns; a caller's rows are its to format
        atomic_write_text(out / "table.md", format_table(rows, caption) + "\n")
    atomic_write_text(out / "table.json", json.dumps(rows, indent=2) + "\n")
    return rows


#: whether a higher value of a column is better (the ↑/↓ of the tables)
HIGHER_IS_BETTER = {"MOTA": True, "MOTP": True, "IDF1": True, "MT": True, "ML": False,
                    "FP": False, "FN": False, "IDS": False}  # fmt: skip


def format_table(rows: SequenceOf[dict[str, Any]], caption: str | None = None) -> str:
    """Rows as a markdown table in the paper's column order.

    Each header carries ↑ (higher is better) or ↓; percentages have two decimals, counts none;
    the best value of each column is in bold (every row that reaches it). ``caption`` (the
    data, split, iterations and seed) goes below the table, after the units.
    """
    names = [c[0] for c in TABLE_COLUMNS]
    percent = {c[0]: c[3] for c in TABLE_COLUMNS}
    best = {}
    for name in names:
        values = [float(r[name]) for r in rows if r.get(name) is not None]
        if values:
            best[name] = max(values) if HIGHER_IS_BETTER[name] else min(values)
    header = ["variant", *(f"{n} {'↑' if HIGHER_IS_BETTER[n] else '↓'}" for n in names)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(names)]
    for row in rows:
        cells = [str(row["variant"])]
        for name in names:
            value = row.get(name)
            if value is None:
                cells.append("–")
                continue
            text = f"{float(value):.2f}" if percent[name] else f"{int(value)}"
            cells.append(f"**{text}**" if float(value) == best.get(name) else text)
        lines.append("| " + " | ".join(cells) + " |")
    units = (
        "MOTA, MOTP and IDF1 in percent; MT and ML count trajectories, FP and FN boxes, IDS "
        "identity switches; ↑ higher is better, ↓ lower; best in bold (docs/metrics.md)."
    )
    return "\n".join([*lines, "", units, *([caption] if caption else [])])


def compare_over_seeds(
    train_sequences: SequenceOf[Sequence],
    val_sequences: SequenceOf[Sequence],
    variants: Callable[[int], SequenceOf[Variant]],
    seeds: SequenceOf[int],
    out: str | Path,
    progress: bool = True,
    row: Callable[[str, Evaluation], dict[str, Any]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """:func:`compare_variants` once per seed, into ``out/seed<N>/``, with ``variants(seed)``
    (the same rows, each seed's training seeded with it); returns seed (as text) -> rows."""
    from tqdm.auto import tqdm

    runs = {}
    for seed in tqdm(seeds, desc="seeds", disable=not progress):
        rows = compare_variants(
            train_sequences,
            val_sequences,
            variants(seed),
            Path(out) / f"seed{seed}",
            progress=progress,
            row=row,
        )
        runs[str(seed)] = rows
    return runs
