"""Trials per minute of ``deepmot tune --tracker tracktor`` with and without the per-frame cache
the trials share, in one run on the same synthetic MOT folders (frames read from img1/).

    python benchmarks/bench_tune_cache.py [--sequences 2] [--frames 40] [--trials 5]

Prints trials/min over all trials (the first one fills the cache) and over the trials after the
first (Optuna's own start and end times), their ratios, and whether both studies found the same
numbers (they must: the cache changes no result).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import optuna
import torch

from deepmot.commands.track import load_sequences
from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene, write_sequence
from deepmot.tune.study import STUDY_NAME, tune_tracker


def after_first(storage: Path) -> float:
    """Trials/min of every trial but the first, from the study's own timestamps."""
    study = optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{storage}")
    trials = sorted(study.trials, key=lambda t: t.number)[1:]
    seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    return 60 * len(trials) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=2)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mot"
        base = SceneConfig(frames=args.frames, people=10, camera_motion=True)
        for config in dataset_configs(args.sequences, base, seed=args.seed + 50, prefix="BENCH"):
            write_sequence(generate_scene(config), root / config.name, progress=False)
        sequences = load_sequences(root, "det.txt", None)
        rates, summaries = {}, {}
        for label, mib in (("without cache", 0), ("with cache", 2048)):
            out = Path(tmp) / label.replace(" ", "_")
            start = time.perf_counter()
            result = tune_tracker(
                sequences, "tracktor", out, trials=args.trials, seed=args.seed, progress=False,
                cache_mib=mib,
            )  # fmt: skip
            total = time.perf_counter() - start
            rates[label] = (60 * args.trials / result.seconds, after_first(out / "study.db"))
            summaries[label] = json.loads((out / "summary.json").read_text())
            print(
                f"{label}: {args.trials} trials in {result.seconds:.1f} s = "
                f"{rates[label][0]:.2f} trials/min (after the first: {rates[label][1]:.2f}); "
                f"whole call with the validation runs {total:.1f} s; cache {result.cache}"
            )
    (plain, plain_next), (cached, cached_next) = rates.values()
    same = all(
        summaries["with cache"][k] == summaries["without cache"][k]
        for k in ("train", "val", "best", "best_trial")
    )
    print(
        f"{args.sequences} sequences x {args.frames} frames (640x480, img1/ jpg), seed "
        f"{args.seed}, 1 thread: with/without cache {cached / plain:.2f}x trials/min over all "
        f"trials, {cached_next / plain_next:.2f}x after the first; same results: {same}"
    )


if __name__ == "__main__":
    main()
