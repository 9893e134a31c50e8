"""The paper's Table 1/2 layout for the motion tracker on MOT17 (validation or tuning split).

Trains Vanilla (untrained), Smooth-L1 and the DeepMOT variants (dMOTA+dMOTP, dMOTA, dMOTP,
without IDS) with the same settings on the first 50% of each MOT17 sequence in
../shared/data/mot, tracks the last 25% with the cleaned public detections, and prints MOTA,
MOTP, IDF1, MT, ML (percent of trajectories), FP, FN and IDS, with the Kalman-filter baseline
beside them. The library does the work (``deepmot.train.compare``, the row and columns of
``deepmot reproduce loss-ablation``); this script only maps its options onto it. With several
seeds, each row is the mean ± standard deviation over the seeds. With ``--tune`` nothing sees
the validation split: training uses the first 35% of each sequence and scoring frames 35–50%.

    python benchmarks/table_motion.py [--iterations 500] [--seeds 0 1 2] [--tune] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from deepmot.data.sequence import Sequence
from deepmot.io.mot import find_sequences
from deepmot.loss.config import DeepMOTLossConfig
from deepmot.reproduce.run import aggregate_seeds, format_rows
from deepmot.reproduce.tables.motion import BASELINES, COLUMNS, table_row
from deepmot.train.compare import (
    Variant,
    compare_over_seeds,
    paper_variants,
    tuning_clips,
    validation_clips,
)
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig

MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--matcher", default="dhn")
    parser.add_argument("--detector", choices=["DPM", "FRCNN", "SDP"], default="FRCNN")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--sampling", choices=["pairs", "clips"], default="pairs")
    parser.add_argument("--clip-length", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--scale", type=float, default=DeepMOTLossConfig().scale)
    parser.add_argument("--scale-start", type=float, default=None)
    parser.add_argument("--perturb", type=float, default=1.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--false-tracks", type=float, default=0.0)
    parser.add_argument("--swap", type=float, default=0.0)
    parser.add_argument("--refine-iou", type=float, default=None)
    parser.add_argument(
        "--score-refined", action="store_true", help="the loss scores the refined boxes"
    )
    parser.add_argument(
        "--no-detections", action="store_true", help="a motion model without detection inputs"
    )
    parser.add_argument(
        "--correct-invisible",
        action="store_true",
        help="invisible tracks move by the learned correction too (default: constant velocity)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        metavar="NAME",
        help="only these rows (e.g. Vanilla Kalman 'Smooth L1' dMOTA+dMOTP); default: all",
    )
    parser.add_argument("--tune", action="store_true", help="train 0-35%%, score 35-50%%")
    parser.add_argument("--out", type=Path, default=Path("runs/table_motion"))
    args = parser.parse_args()
    if not MOT_ROOT.is_dir():
        sys.exit(f"real MOTChallenge files not found at {MOT_ROOT}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    det_file = f"deepmot_clean_{args.detector}.txt"
    paths = [p for p in find_sequences(MOT_ROOT) if p.name.startswith("MOT17")]
    sequences = [Sequence.from_dir(p, det_file=det_file) for p in paths]
    held_out = tuning_clips(sequences) if args.tune else validation_clips(sequences)
    base = TrackerTrainConfig(
        iterations=args.iterations,
        model=({"use_detections": False} if args.no_detections else {})
        | ({"correct_unverified": True} if args.correct_invisible else {}),
        matcher=args.matcher,
        det_file=det_file,
        sampling=args.sampling,
        clip_length=args.clip_length,
        batch_size=args.batch_size,
        lr=args.lr,
        scale_start=args.scale_start,
        refine_iou=args.refine_iou,
        score_refined=args.score_refined,
        train_fraction=0.35 if args.tune else 0.5,
        deepmot=replace(DeepMOTLossConfig(), scale=args.scale),
        augment=AugmentationConfig(
            perturb=args.perturb,
            jitter=args.jitter,
            drop=args.drop,
            false_tracks=args.false_tracks,
            swap=args.swap,
        ),
    )
    start = time.perf_counter()

    def variants(seed: int) -> list[Variant]:
        rows = [
            Variant("Kalman", None, "kalman"),
            *(Variant(name, None, tracker) for name, tracker in BASELINES.items()),
            *paper_variants(replace(base, seed=seed)),
        ]
        return [v for v in rows if not args.variants or v.name in args.variants]

    per_seed = compare_over_seeds(
        sequences, held_out, variants, args.seeds, args.out, progress=False, row=table_row
    )
    rows = aggregate_seeds(per_seed, COLUMNS)
    split = "tuning frames 35-50%" if args.tune else "validation split (last 25%)"
    print(
        f"MOT17 {split} of {len(sequences)} sequences, {det_file}, {args.iterations} iterations "
        f"of {args.sampling}, matcher {args.matcher}, seeds {args.seeds}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    columns = [vars(c) for c in COLUMNS]
    print(format_rows({"columns": columns, "seeds": args.seeds, "rows": rows}))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "settings.json").write_text(
        json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
