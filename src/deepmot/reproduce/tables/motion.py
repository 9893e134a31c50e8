"""The motion tracker's tables on MOT17: ``comparison`` (Table 3 layout: Vanilla / Kalman /
Smooth-L1 / DeepMOT) and ``loss-ablation`` (Table 2 layout: the DeepMOT loss's terms).

Every trained row trains the learned motion model on the first 50% of each MOT17 sequence
(the paper's split, supp. A.2) with the DeepMOT authors' cleaned FRCNN detections, the same
settings and seed; every row tracks the last 25% and is scored by the project's evaluator.
The paper's rows are Tracktor's (a detector-based regressor on images); ours are a motion
model on boxes alone, so the paper's numbers stand beside ours for the layout and the
direction of the differences, not as targets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deepmot.reproduce.registry import Column, TableContext, TableResult, TableSpec, register_table
from deepmot.train.config import MOTION_TRAINING

#: Table 3's / Table 2's columns; MT and ML in percent of the ground-truth trajectories, as in
#: the paper.
COLUMNS = (
    Column("MOTA", True),
    Column("MOTP", True),
    Column("IDF1", True),
    Column("MT", True),
    Column("ML", False),
    Column("FP", False, 0),
    Column("FN", False, 0),
    Column("IDS", False, 0),
)

_PAPER_KEYS = ("MOTA", "MOTP", "IDF1", "MT", "ML", "FP", "FN", "IDS")


def paper_row(*values: float) -> dict[str, float]:
    return dict(zip(_PAPER_KEYS, values, strict=True))


#: Table 3 of the paper, Tracktor rows (MOT17 validation split, supp. A.2).
PAPER_TABLE3 = {
    "Vanilla": paper_row(60.20, 89.50, 71.15, 35.13, 27.80, 276, 31827, 152),
    "Smooth L1": paper_row(60.38, 91.81, 71.27, 34.99, 27.25, 294, 31649, 164),
    "DeepMOT": paper_row(60.66, 91.82, 72.32, 35.41, 27.25, 218, 31545, 118),
}
#: Table 2 of the paper (Tracktor, MOT17 validation split).
PAPER_TABLE2 = {
    "Vanilla": PAPER_TABLE3["Vanilla"],
    "Smooth L1": PAPER_TABLE3["Smooth L1"],
    "dMOTP": paper_row(60.51, 91.74, 71.75, 35.41, 26.83, 291, 31574, 142),
    "dMOTA": paper_row(60.52, 88.31, 71.92, 35.41, 27.39, 254, 31597, 142),
    "dMOTA+dMOTP-IDS": paper_row(60.61, 92.03, 72.10, 35.41, 27.25, 222, 31579, 124),
    "dMOTA+dMOTP": PAPER_TABLE3["DeepMOT"],
}

_DIFFERENCES = (
    "The paper's rows are Tracktor (Faster R-CNN regression on images, trained on a GPU); ours "
    "are the learned motion model on boxes alone, trained for minutes on a CPU (`--scale "
    "cpu`: 100 or 60 steps of 16 clips of 5 frames), with the DeepMOT authors' cleaned "
    "public FRCNN detections. Absolute values differ because the tracker differs: ours follows "
    "only what "
    "the cleaned detections give, its recall is about 50% (CLR_Re 49.3 for Vanilla), so FN "
    "dominates MOTA. Counts (FP, FN, IDS) are over the validation quarters of our 5 MOT17 "
    "sequences (MOT17-11 and -13 are held out of the shared data), the paper's over its own "
    "validation set. What carries over is the comparison between rows."
)


#: Untrained baselines with their own track management (rows of the comparison, registered
#: tracker names); not in the paper. Their defaults are their papers'; the cleaned detections
#: have no scores (-1), which they read as 1.
BASELINES = {"SORT": "sort", "ByteTrack": "bytetrack", "OC-SORT": "ocsort"}


def table_row(name: str, evaluation: Any) -> dict[str, Any]:
    """A table row: MOTA, MOTP, IDF1 in percent; MT and ML in percent of the trajectories."""
    clear, identity = evaluation.combined["clear"], evaluation.combined["identity"]
    return {
        "row": name,
        "variant": name,
        "MOTA": 100 * float(clear["MOTA"]),
        "MOTP": 100 * float(clear["MOTP"]),
        "IDF1": 100 * float(identity["IDF1"]),
        "MT": 100 * float(clear["MTR"]),
        "ML": 100 * float(clear["MLR"]),
        "FP": int(clear["CLR_FP"]),
        "FN": int(clear["CLR_FN"]),
        "IDS": int(clear["IDSW"]),
    }


def _sequences(context: TableContext) -> list:
    from deepmot.data.sequence import Sequence
    from deepmot.errors import DeepMOTError
    from deepmot.io.mot import find_sequences

    det_file = context.settings["det_file"]
    paths = [
        p
        for p in find_sequences(context.data)
        if p.name.startswith("MOT17") and det_file in Sequence.detection_files(p)
    ]
    if not paths:
        raise DeepMOTError(
            f"--data {context.data}: no MOT17 sequence with det/{det_file} (these tables train "
            "on MOT17 with the DeepMOT authors' cleaned detections)"
        )
    return [Sequence.from_dir(p, det_file=det_file) for p in paths]


def _base_config(settings: dict[str, Any]) -> Any:
    from deepmot.train.config import TrackerTrainConfig

    return TrackerTrainConfig(
        iterations=settings["iterations"],
        batch_size=settings["batch_size"],
        matcher=settings["matcher"],
        det_file=settings["det_file"],
        sampling=settings["sampling"],
        clip_length=settings["clip_length"],
        refine_iou=settings["refine_iou"],
    )


def _run(
    context: TableContext, variants: Any, paper: dict[str, dict[str, float]], title: str
) -> TableResult:
    from deepmot.reproduce.plots import bar_plot
    from deepmot.reproduce.run import aggregate_seeds
    from deepmot.train.compare import compare_variants, validation_clips

    settings = dict(context.settings)
    order = list(paper)
    sequences = _sequences(context)
    validation = validation_clips(sequences)
    base = _base_config(settings)

    def one_seed(seed: int) -> list[dict[str, Any]]:
        rows = compare_variants(
            sequences,
            validation,
            variants(replace(base, seed=seed)),
            context.out / f"seed{seed}",
            progress=context.progress,
            row=table_row,
        )
        return sorted(rows, key=lambda r: order.index(r["row"]))

    per_seed = {
        str(seed): context.seed_rows(seed, lambda seed=seed: one_seed(seed))
        for seed in settings["seeds"]
    }
    rows = aggregate_seeds(per_seed, COLUMNS)
    plot = bar_plot(rows, context.out / "plot.png", ("MOTA", "IDF1", "MOTP"), title, paper)
    notes = (
        f"MOT17 ({len(sequences)} sequences: {', '.join(s.name for s in sequences)}), "
        f"{settings['det_file']}, trained on the first 50% of each sequence "
        f"({settings['iterations']} iterations of {settings['batch_size']} {settings['sampling']}"
        + (
            f" of {settings['clip_length']} frames, refinement above IoU {settings['refine_iou']}"
            if settings["sampling"] == "clips"
            else ""
        )
        + f", matcher {settings['matcher']}), scored on the last 25%."
    )
    return TableResult(rows=rows, per_seed=per_seed, plot=plot, notes=notes)


def run_comparison(context: TableContext) -> TableResult:
    """Vanilla (the untrained motion model = constant velocity), the Kalman filter, SORT,
    ByteTrack, OC-SORT, Smooth-L1 and DeepMOT (dMOTA + dMOTP), mean ± std over the seeds (the
    untrained rows are the same in every seed)."""
    from deepmot.train.compare import Variant

    def variants(base: Any) -> list[Variant]:
        return [
            Variant("Vanilla", None),
            Variant("Kalman", None, "kalman"),
            *(Variant(name, None, tracker) for name, tracker in BASELINES.items()),
            Variant("Smooth L1", replace(base, loss="smoothl1")),
            Variant("DeepMOT", replace(base, loss="deepmot")),
        ]

    baselines = {name: {} for name in BASELINES}
    rows = {"Vanilla": PAPER_TABLE3["Vanilla"], "Kalman": {}, **baselines, **PAPER_TABLE3}
    return _run(context, variants, rows, "Motion tracker on MOT17 val: Table 3 layout")


def run_loss_ablation(context: TableContext) -> TableResult:
    """Table 2's rows: Vanilla, Smooth-L1, dMOTP alone, dMOTA alone, without the ID-switch
    term, and the full loss."""
    from deepmot.train.compare import paper_variants

    return _run(context, paper_variants, PAPER_TABLE2, "Loss ablation on MOT17 val: Table 2 layout")


_COMMON = {"det_file": "deepmot_clean_FRCNN.txt", "matcher": "dhn", **MOTION_TRAINING}

register_table(
    TableSpec(
        name="comparison",
        title="Vanilla / Kalman / SORT / ByteTrack / OC-SORT / Smooth-L1 / DeepMOT, learned "
        "motion tracker, MOT17",
        paper_ref="Table 3",
        run=run_comparison,
        scales={
            "cpu": {**_COMMON, "iterations": 100, "batch_size": 16, "seeds": [0, 1, 2]},
            "full": {**_COMMON, "iterations": 500, "batch_size": 16, "seeds": [0, 1, 2, 3, 4]},
        },
        columns=COLUMNS,
        paper=PAPER_TABLE3,
        explanation=_DIFFERENCES
        + " The Kalman filter, SORT, ByteTrack and OC-SORT have no row in the paper (untrained, "
        "their papers' defaults; docs/baselines.md). Vanilla is the untrained motion model "
        "(exactly constant velocity), the paper's Vanilla is Tracktor as published. Measured "
        "at `--scale cpu` (3 seeds, 100 steps of clips of 5 frames with refinement), DeepMOT "
        "and Smooth-L1 are level with the untrained model on MOTA (within 0.03, each ahead in "
        "one seed of three); DeepMOT leads it on IDF1 in every seed, Smooth-L1 trails it in "
        "every seed: constant velocity is already a strong prior at 14-30 fps, and trained on "
        "frame pairs neither loss beat it.",
    )
)

register_table(
    TableSpec(
        name="loss-ablation",
        title="DeepMOT loss ablation (dMOTA, dMOTP, IDS term), learned motion tracker, MOT17",
        paper_ref="Table 2",
        run=run_loss_ablation,
        scales={
            "cpu": {**_COMMON, "iterations": 60, "batch_size": 16, "seeds": [0, 1]},
            "full": {**_COMMON, "iterations": 500, "batch_size": 16, "seeds": [0, 1, 2]},
        },
        columns=COLUMNS,
        paper=PAPER_TABLE2,
        explanation=_DIFFERENCES
        + " Measured at `--scale cpu` (2 seeds, 60 steps of clips of 5 frames with "
        "refinement): every row is within about ±0.2 MOTA of Vanilla, inside the seed spread "
        "of the comparison table; the full loss and the loss without the ID-switch term lead "
        "Vanilla and Smooth-L1 on MOTA and IDF1 by less than that. dMOTA alone (λ = 0) has "
        "the lowest MOTP, as in the paper, and the lowest MOTA. Trained on frame pairs "
        "instead, dMOTA alone hurt (-2.8 MOTA through the default DHN, -0.6 through "
        "seq_gru): without the box term, soft FP/FN moved the boxes to fit the training "
        "pairs' matching.",
    )
)
