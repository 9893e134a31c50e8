"""The paper's Table 1/2 layout for the motion tracker on the MOT17 validation split.

Trains Vanilla (untrained), Smooth-L1 and the DeepMOT variants (dMOTA+dMOTP, dMOTA, dMOTP,
without IDS) with the same seed on the first 50% of each MOT17 sequence in ../shared/data/mot,
tracks the last 25% with the cleaned public detections, and prints MOTA, MOTP, IDF1, MT, ML, FP,
FN and IDS; writes table.md and table.json into --out.

    python benchmarks/table_motion.py [--iterations 500] [--matcher dhn|sinkhorn] [--out runs/table]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from deepmot.data.sequence import Sequence
from deepmot.io.mot import find_sequences
from deepmot.train.compare import compare_variants, format_table, paper_variants, validation_clips
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig

MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--matcher", choices=["dhn", "sinkhorn"], default="dhn")
    parser.add_argument("--detector", choices=["DPM", "FRCNN", "SDP"], default="FRCNN")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampling", choices=["pairs", "clips"], default="pairs")
    parser.add_argument("--clip-length", type=int, default=10)
    parser.add_argument(
        "--variants",
        nargs="+",
        metavar="NAME",
        help="only these rows (e.g. Vanilla 'Smooth L1' dMOTA+dMOTP); default: all",
    )
    parser.add_argument(
        "--no-perturb", action="store_true", help="train without the supplementary's perturbation"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/table_motion"))
    args = parser.parse_args()
    if not MOT_ROOT.is_dir():
        sys.exit(f"real MOTChallenge files not found at {MOT_ROOT}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    det_file = f"deepmot_clean_{args.detector}.txt"
    paths = [p for p in find_sequences(MOT_ROOT) if p.name.startswith("MOT17")]
    sequences = [Sequence.from_dir(p, det_file=det_file) for p in paths]
    base = TrackerTrainConfig(
        iterations=args.iterations,
        matcher=args.matcher,
        det_file=det_file,
        seed=args.seed,
        sampling=args.sampling,
        clip_length=args.clip_length,
        augment=AugmentationConfig(perturb=0.0 if args.no_perturb else 1.0),
    )
    variants = paper_variants(base)
    if args.variants:
        variants = [v for v in variants if v.name in args.variants]
    start = time.perf_counter()
    rows = compare_variants(
        sequences, validation_clips(sequences), variants, args.out, progress=False
    )
    print(
        f"MOT17 validation split (last 25% of {len(sequences)} sequences), {det_file}, "
        f"{args.iterations} iterations of {args.sampling}, matcher {args.matcher}, "
        f"seed {args.seed}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
