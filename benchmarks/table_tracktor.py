"""Vanilla / Smooth-L1 / DeepMOT Tracktor on held-out synthetic frames, mean ± std over seeds.

Each seed runs ``deepmot demo --tracker tracktor`` (its own scenes, seeds 2000 + seed: never
seen by the shipped detector): the box regression layer fine-tuned on frame pairs of the first
50% of each scene, every variant tracking the last 25%. ``deepmot reproduce tracktor`` runs the
same (MT and ML in percent, ``require_verification`` by default).

    python benchmarks/table_tracktor.py [--iterations 40] [--seeds 0 1 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from deepmot.demos.tracktor import demo_sequences, run_tracktor_demo
from deepmot.trackers import create_tracker
from deepmot.train.compare import TABLE_COLUMNS, _row, evaluate_tracker


def aggregate(runs: list[list[dict]], caption: str) -> str:
    """A markdown table of the rows of several seeds, each cell ``mean ± std`` (population
    std over the seeds)."""
    columns = [column for column, *_ in TABLE_COLUMNS]
    lines = ["| variant | " + " | ".join(columns) + " |", "|---" + "|---:" * len(columns) + "|"]
    for index, first in enumerate(runs[0]):
        cells = []
        for column in columns:
            values = np.array([run[index][column] for run in runs], dtype=float)
            cells.append(f"{values.mean():.2f} ± {values.std():.2f}")
        lines.append(f"| {first['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{caption}"


def rescore_verified(out: Path, seed: int, sequences: int, frames: int) -> list[dict]:
    """A seed's three variants (its saved weights) tracked again with
    ``require_verification=True``: tracks no detection verifies turn invisible (supp. A.2)."""
    _, val = demo_sequences(sequences, frames, seed)
    rows = []
    for name, folder in (("Vanilla", None), ("Smooth L1", "smooth_l1"), ("DeepMOT", "deepmot")):
        weights = None if folder is None else out / f"seed{seed}" / folder / "tracktor.safetensors"
        tracker = create_tracker("tracktor", weights=weights, require_verification=True)
        rows.append(_row(name, evaluate_tracker(tracker, val)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("runs/table_tracktor"))
    parser.add_argument("--rows-from", type=Path, help="aggregate the seeds already run there")
    parser.add_argument(
        "--verified",
        action="store_true",
        help="also re-score every variant with require_verification=True",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = []
    for seed in args.seeds:
        if args.rows_from is not None:  # re-aggregate finished seeds
            runs.append(json.loads((args.rows_from / f"seed{seed}" / "table.json").read_text()))
            continue
        start = time.perf_counter()
        rows = run_tracktor_demo(
            args.out / f"seed{seed}",
            iterations=args.iterations,
            sequences=args.sequences,
            frames=args.frames,
            seed=seed,
            progress=False,
        )
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s wall", flush=True)
        runs.append(rows)
    caption = (
        f"Tracktor, shipped light detector; {args.sequences} synthetic scenes x {args.frames} "
        f"frames per seed, fine-tuned {args.iterations} steps of 4 frame pairs; last 25% "
        f"scored; mean ± std over seeds {args.seeds}."
    )
    table = aggregate(runs, caption)
    print(table)
    (args.out / "table.json").write_text(json.dumps(runs, indent=2) + "\n")
    (args.out / "table.md").write_text(table + "\n")
    if args.verified:
        source = args.rows_from or args.out
        verified = [rescore_verified(source, s, args.sequences, args.frames) for s in args.seeds]
        print(aggregate(verified, caption + " Re-scored with require_verification=True."))


if __name__ == "__main__":
    main()
