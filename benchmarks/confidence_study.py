"""Track confidence trained with the DeepMOT loss, against its baselines, on MOT17.

Rows (the learned motion tracker, MOT17 with the DeepMOT authors' cleaned FRCNN detections,
trained as ``deepmot reproduce comparison`` trains it: clips of 5 frames, refinement above IoU
0.6, the first 50% of each sequence; scored on the last 25%):

* Vanilla (constant velocity) and Kalman: the rule-based management, untrained;
* Smooth-L1, DeepMOT (boxes): the box regressor alone, the paper's losses;
* DeepMOT (boxes + confidence): the confidence head too, trained by the presence-weighted
  DeepMOT loss (``confidence="presence"``, docs/loss.md);
* BCE confidence: the boxes untrained (constant velocity), the head trained by binary
  cross-entropy against "matched to an object at IoU >= 0.5" on the same clips;
* Smooth-L1 + BCE confidence.

Every row tracks with ``report_confidence`` (an unverified track is reported when its confidence
is above it; rows without a confidence keep the paper's rule) and ``end_confidence``; each
threshold of ``--report`` gives a row per confidence model. Diagnostics per trained
confidence row and seed: the share of unverified track-frames reported, and what dMOTA's FP~
and FN~ send to the confidences on one step of training clips (presence-weighted loss, the
trained model). With ``--tune`` nothing sees the validation split: training on the first 35% of
each sequence, scoring frames 35-50%.

    python benchmarks/confidence_study.py [--iterations 100] [--seeds 0 1] [--tune] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepmot.data.sequence import Sequence
from deepmot.io.atomic import atomic_write_text
from deepmot.io.mot import find_sequences
from deepmot.reproduce.registry import Column
from deepmot.reproduce.run import aggregate_seeds, format_rows
from deepmot.reproduce.tables.motion import COLUMNS, table_row
from deepmot.trackers import create_tracker
from deepmot.trackers.management import TrackState
from deepmot.train.clips import ClipSampler
from deepmot.train.compare import evaluate_tracker, tuning_clips, validation_clips
from deepmot.train.config import MOTION_TRAINING, TrackerTrainConfig
from deepmot.train.diagnostics import confidence_gradients
from deepmot.train.losses import create_training_loss
from deepmot.train.rollout import Rollout
from deepmot.train.tracker import train_tracker

MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
DET_FILE = "deepmot_clean_FRCNN.txt"
BOX_PARAMETERS = ("mlp", "head")  # the learned motion model's box regressor
DIAGNOSTICS = (
    Column("reported", True, 1),  # % of unverified track-frames reported
    # mean gradient per confidence, times 1000, of FP~/M (> 0: pushes it down) and of FN~/M
    # (< 0: pushes it up), as they enter the loss
    Column("grad_fp", False, 3),
    Column("grad_fn", False, 3),
)


def variants(
    base: TrackerTrainConfig, head_changes: dict[str, Any]
) -> list[tuple[str, TrackerTrainConfig | None, str]]:
    """(row, training settings or None, tracker); ``head_changes`` apply to the rows that
    train a confidence."""
    head = replace(base, model={"confidence": True}, **head_changes)
    return [
        ("Vanilla", None, "motion"),
        ("Kalman", None, "kalman"),
        ("Smooth L1", replace(base, loss="smoothl1"), "motion"),
        ("DeepMOT (boxes)", replace(base, loss="deepmot"), "motion"),
        ("DeepMOT (boxes + confidence)", replace(head, confidence="presence"), "motion"),
        (
            "BCE confidence",
            replace(head, loss="smoothl1", confidence="bce", freeze=BOX_PARAMETERS),
            "motion",
        ),
        ("Smooth L1 + BCE confidence", replace(head, loss="smoothl1", confidence="bce"), "motion"),
    ]


def count_reports(tracker: Any) -> dict[str, int]:
    """Wrap the tracker's management so that every frame counts its invisible tracks and those
    it reports (``report_confidence``); returns the live counts."""
    manager = tracker.manager
    counts = {"unverified": 0, "reported": 0}
    chosen = manager.reported_unverified

    def counting() -> list:
        reported = chosen()
        counts["unverified"] += len(manager.tracks_in(TrackState.INVISIBLE))
        counts["reported"] += len(reported)
        return reported

    manager.reported_unverified = counting
    return counts


def gradient_diagnostic(
    sequences: list[Sequence], config: TrackerTrainConfig, weights: str, seed: int
) -> dict[str, float]:
    """What the presence-weighted DeepMOT loss's FP~ and FN~ send to the trained model's
    confidences on one step of 16 training clips (mean per track, times 1000)."""
    from deepmot.trackers.motion import LearnedMotionPredictor, load_motion_model

    model = load_motion_model(weights)
    probe = replace(config, loss="deepmot", confidence="presence", freeze=())
    predictor = LearnedMotionPredictor(model)
    rollout = Rollout(predictor, probe, model.history_len, torch.device("cpu"))
    sampler = ClipSampler(
        sequences, probe.clip_length, model.history_len, probe.train_fraction, probe.augment
    )
    rng = np.random.default_rng([seed, 10_000])
    starts = sampler.sample(rng, 16)
    loss = create_training_loss(probe, torch.device("cpu"))
    rngs = [np.random.default_rng([seed, 10_000, i]) for i in range(len(starts))]
    result = loss.step(starts, rngs, rollout, probe.deepmot.scale, record=True)
    grads = confidence_gradients(result.records, loss.loss)["mean"]
    return {"grad_fp": 1000 * grads["fp"], "grad_fn": 1000 * grads["fn"]}


def one_seed(
    args: argparse.Namespace,
    sequences: list[Sequence],
    held_out: list[Sequence],
    base: TrackerTrainConfig,
    seed: int,
) -> list[dict[str, Any]]:
    rows = []
    head_changes = {}
    if args.confidence_clips:
        length, batch = args.confidence_clips
        head_changes = {"clip_length": length, "batch_size": batch}
    if args.confidence_lr is not None:
        head_changes["confidence_lr"] = args.confidence_lr
    for name, train, tracker_name in variants(replace(base, seed=seed), head_changes):
        if args.variants and name not in args.variants:
            continue
        weights = None
        if train is not None:
            folder = args.out / f"seed{seed}" / name.replace(" ", "_").replace("+", "and")
            weights = train_tracker(sequences, folder, train, progress=False)["weights"]
        has_head = train is not None and train.model.get("confidence", False)
        for threshold in args.report if has_head else [None]:
            tracker = create_tracker(
                tracker_name,
                weights=weights,
                pretrained=False,
                report_confidence=threshold,
                end_confidence=args.end,
            )
            counts = count_reports(tracker)
            label = name if threshold is None else f"{name} @{threshold:g}"
            row = table_row(label, evaluate_tracker(tracker, held_out))
            row["reported"] = 100 * counts["reported"] / max(1, counts["unverified"])
            row.update(
                gradient_diagnostic(sequences, train, weights, seed)
                if has_head
                else {"grad_fp": float("nan"), "grad_fn": float("nan")}
            )
            rows.append(row)
            logging.info("seed %d %s: %s", seed, label, {k: row[k] for k in row if k != "row"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--report", type=float, nargs="+", default=[0.5])
    parser.add_argument("--end", type=float, default=None)
    parser.add_argument("--lr", type=float, default=TrackerTrainConfig().lr)
    parser.add_argument("--confidence-lr", type=float, default=None)
    parser.add_argument(
        "--confidence-clips",
        type=int,
        nargs=2,
        metavar=("LENGTH", "BATCH"),
        help="clip length and clips per step of the rows that train a confidence (default: "
        "the box rows')",
    )
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="only these rows")
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help="only these sequences")
    parser.add_argument("--tune", action="store_true", help="train 0-35%%, score 35-50%%")
    parser.add_argument("--out", type=Path, default=Path("runs/confidence_study"))
    args = parser.parse_args()
    if not MOT_ROOT.is_dir():
        sys.exit(f"real MOTChallenge files not found at {MOT_ROOT}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    paths = [p for p in find_sequences(MOT_ROOT) if p.name.startswith("MOT17")]
    if args.sequences:
        paths = [p for p in paths if p.name in args.sequences]
    sequences = [Sequence.from_dir(p, det_file=DET_FILE) for p in paths]
    held_out = tuning_clips(sequences) if args.tune else validation_clips(sequences)
    base = TrackerTrainConfig(
        **MOTION_TRAINING,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        det_file=DET_FILE,
        train_fraction=0.35 if args.tune else 0.5,
    )
    start = time.perf_counter()
    per_seed = {str(s): one_seed(args, sequences, held_out, base, s) for s in args.seeds}
    columns = (*COLUMNS, *DIAGNOSTICS)
    rows = aggregate_seeds(per_seed, columns)
    split = "tuning frames 35-50%" if args.tune else "validation split (last 25%)"
    caption = (
        f"MOT17 {split} of {', '.join(s.name for s in sequences)}, {DET_FILE}, "
        f"{args.iterations} iterations of {args.batch_size} clips of 5 frames (confidence rows: "
        f"{args.confidence_clips or 'the same'}, head lr {args.confidence_lr}), seeds "
        f"{args.seeds}, report_confidence {args.report}, end_confidence {args.end}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    record = {"columns": [vars(c) for c in columns], "seeds": args.seeds, "rows": rows}
    table = format_rows(record)
    print(caption)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "table.md", caption + "\n\n" + table + "\n")
    atomic_write_text(
        args.out / "results.json",
        json.dumps(
            {"args": vars(args) | {"out": str(args.out)}, "rows": rows, "per_seed": per_seed},
            indent=2,
        )
        + "\n",
    )


if __name__ == "__main__":
    main()
