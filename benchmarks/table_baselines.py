"""The untrained baselines people run — constant velocity, the Kalman filter, SORT, ByteTrack,
OC-SORT — on public detections, scored on the validation quarter of each sequence.

For each detection set, every tracker runs with its defaults and with a score threshold chosen
on tuning frames (35-50% of each sequence, inside the paper's training half; never the
validation quarter): ``min_score`` for constant velocity, Kalman and SORT, ``track_thresh``
(with ``new_track_thresh = track_thresh + 0.1``, the paper's relation) for ByteTrack,
``det_thresh`` for OC-SORT. The best MOTA on the tuning frames wins (ties: IDF1); both rows are
then scored on the validation quarter (last 25%, ``Sequence.split()``).

Detection sets (../shared/data/mot):

* ``MOT17 public_FRCNN.txt``: MOT17-{02,04,05,09,10}'s raw public Faster R-CNN detections with
  their scores (0.05-1);
* ``MOT17 deepmot_clean_FRCNN.txt``: the DeepMOT authors' cleaned detections, the motion
  tables' set; no scores (-1, read as 1 by the baselines), so no threshold to choose;
* ``PETS09-S2L1 det.txt``: MOT15's public ACF detections, 7 fps; their scores (-0.5 to 139)
  are not probabilities, so they are divided by the largest score in the sequence's training
  half and clipped to [0, 1] before any tracker sees them.

With ``--synthetic``, instead: every tracker with its defaults on the held-out synthetic scenes
of ``deepmot reproduce sot --scale cpu`` (per seed 2 scenes of 150 frames, scene seeds 101 +
seed), MOTA / IDF1 mean ± population std over seeds 0-2, the sot table's Kalman row beside its
new neighbours.

    python benchmarks/table_baselines.py [--sets pets09 mot17_public mot17_clean] [--out DIR]
    python benchmarks/table_baselines.py --synthetic
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
from deepmot.io.mot import find_sequences
from deepmot.trackers import create_tracker
from deepmot.train.compare import evaluate_tracker, tuning_clips, validation_clips

MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
TRACKERS = ("constant_velocity", "kalman", "sort", "bytetrack", "ocsort")
SETS = {
    "pets09": ("PETS09-S2L1", "det.txt", True),
    "mot17_public": ("MOT17", "public_FRCNN.txt", False),
    "mot17_clean": ("MOT17", "deepmot_clean_FRCNN.txt", False),
}
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def candidates(tracker: str, scored: bool) -> list[dict[str, Any]]:
    """The settings tried on the tuning frames: the defaults first, then the score thresholds."""
    if not scored:
        return [{}]
    if tracker == "bytetrack":
        return [{}] + [
            {"track_thresh": t, "new_track_thresh": round(t + 0.1, 2)} for t in THRESHOLDS
        ]
    if tracker == "ocsort":
        return [{}] + [{"det_thresh": t} for t in THRESHOLDS]
    return [{}] + [{"min_score": t} for t in THRESHOLDS]


def rescaled(sequence: Sequence) -> Sequence:
    """``sequence`` with its detection scores divided by the largest score in its first half
    (the training frames) and clipped to [0, 1]."""
    dets = sequence.detections
    train = dets.frames <= sequence.split()[0][-1]
    scores = np.clip(dets.scores / dets.scores[train].max(), 0.0, 1.0)
    sequence.detections = replace(dets, scores=scores)
    return sequence


def score(tracker: str, settings: dict[str, Any], clips: list[Sequence]) -> dict[str, Any]:
    evaluation = evaluate_tracker(create_tracker(tracker, **settings), clips)
    clear, identity = evaluation.combined["clear"], evaluation.combined["identity"]
    return {
        "MOTA": round(100 * float(clear["MOTA"]), 2),
        "IDF1": round(100 * float(identity["IDF1"]), 2),
        "FP": int(clear["CLR_FP"]),
        "FN": int(clear["CLR_FN"]),
        "IDS": int(clear["IDSW"]),
    }


def run_set(prefix: str, det_file: str, rescale: bool) -> list[dict[str, Any]]:
    paths = [
        p
        for p in find_sequences(MOT_ROOT)
        if p.name.startswith(prefix) and det_file in Sequence.detection_files(p)
    ]
    sequences = [Sequence.from_dir(p, det_file=det_file) for p in paths]
    if rescale:
        sequences = [rescaled(s) for s in sequences]
    scored = bool(np.concatenate([s.detections.scores for s in sequences]).max() > -1)
    tune, val = tuning_clips(sequences), validation_clips(sequences)
    rows = []
    for tracker in TRACKERS:
        tried = [
            (settings, score(tracker, settings, tune)) for settings in candidates(tracker, scored)
        ]
        best, best_tune = max(tried, key=lambda item: (item[1]["MOTA"], item[1]["IDF1"]))
        default = score(tracker, {}, val)
        chosen = default if not best else score(tracker, best, val)
        rows.append(
            {
                "tracker": tracker,
                "chosen": best,
                "tune": {json.dumps(s): r for s, r in tried},
                "tune_MOTA": best_tune["MOTA"],
                "val": chosen,
                "val_defaults": default,
            }
        )
        logging.info("%s %s %s: %s", prefix, det_file, tracker, rows[-1])
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tracker | setting (tuning frames) | tune MOTA | MOTA | IDF1 | FP | FN | IDS "
        "| defaults: MOTA | IDF1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        v, d = r["val"], r["val_defaults"]
        setting = ", ".join(f"{k}={v}" for k, v in r["chosen"].items()) or "defaults"
        lines.append(
            f"| {r['tracker']} | {setting} | {r['tune_MOTA']:.2f} | {v['MOTA']:.2f} | "
            f"{v['IDF1']:.2f} | {v['FP']} | {v['FN']} | {v['IDS']} | {d['MOTA']:.2f} | "
            f"{d['IDF1']:.2f} |"
        )
    return "\n".join(lines)


def synthetic(seeds: tuple[int, ...] = (0, 1, 2)) -> str:
    """The trackers on the sot table's held-out synthetic scenes, mean ± std over ``seeds``."""
    from deepmot.reproduce import get_table
    from deepmot.reproduce.tables.sot import seed_scenes

    settings = dict(get_table("sot").scales["cpu"])
    scores: dict[str, list[dict[str, Any]]] = {name: [] for name in TRACKERS}
    for seed in seeds:
        test = seed_scenes(settings, seed)[1]
        for name in TRACKERS:
            scores[name].append(score(name, {}, test))
    lines = ["| tracker | MOTA | IDF1 |", "|---|---:|---:|"]
    for name, rows in scores.items():
        cells = [np.array([r[key] for r in rows]) for key in ("MOTA", "IDF1")]
        lines.append(
            f"| {name} | " + " | ".join(f"{c.mean():.2f} ± {c.std():.2f}" for c in cells) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--out", type=Path, default=Path("runs/table_baselines"))
    parser.add_argument("--synthetic", action="store_true", help="the sot table's scenes")
    args = parser.parse_args()
    if args.synthetic:
        logging.basicConfig(level=logging.WARNING)
        torch.set_num_threads(1)
        print(f"synthetic held-out scenes of the sot table, seeds 0-2\n{synthetic()}")
        return
    if not MOT_ROOT.is_dir():
        sys.exit(f"real MOTChallenge files not found at {MOT_ROOT}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.sets:
        start = time.perf_counter()
        prefix, det_file, rescale = SETS[name]
        rows = run_set(prefix, det_file, rescale)
        results[name] = rows
        print(
            f"\n{prefix} {det_file}: validation quarter (last 25%), settings chosen on frames "
            f"35-50% ({time.perf_counter() - start:.0f} s)\n{format_rows(rows)}"
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
