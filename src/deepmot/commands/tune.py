"""``deepmot tune MOT_ROOT --tracker NAME --trials N``: search track management with Optuna."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deepmot.commands._args import (
    DET_FILE_HELP,
    SEQUENCES_HELP,
    HelpFormatter,
    existing_dir,
    existing_file,
    int_at_least,
    key_value,
    output_dir,
    output_file,
)
from deepmot.errors import DeepMOTError

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="tune a tracker's track management with Optuna (train frames), report on val",
        description=(
            "Search the track-management settings of a tracker (thresholds, NMS, patience, "
            "birth rules) with Optuna for HOTA, MOTA or IDF1 on the first 50% of every "
            "sequence under MOT_ROOT (the paper's training split); the first trial is the "
            "defaults. Prints the defaults and the best settings scored on the last 25% (the "
            "validation split) and writes OUT/best_config.json for 'deepmot track --config'. "
            "The study is stored in OUT/study.db: run the same command again to resume it, "
            "with a larger --trials to search further. A trainable tracker's model is built "
            "once; what its predictor computes from the frames alone (Tracktor's backbone "
            "features, ECC warps, re-scored detections) is cached for all trials "
            "(--cache-mib)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "mot_root", type=existing_dir, metavar="MOT_ROOT", help="folder of sequence folders"
    )
    parser.add_argument("--tracker", required=True, help="a registered tracker")
    parser.add_argument("--weights", type=existing_file, help="trained weights of a learned one")
    parser.add_argument(
        "--trials", type=int_at_least(1), required=True, help="finished trials the study holds"
    )
    parser.add_argument(
        "--objective",
        choices=["hota", "mota", "idf1"],
        default="hota",
        help="the metric maximised on the training frames (HOTA: mean over IoU thresholds)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument(
        "--fix",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pin a setting for every trial (repeatable), e.g. --fix max_invisible=30",
    )
    parser.add_argument("--out", type=output_dir, default=Path("runs/tune"), help="run folder")
    parser.add_argument(
        "--storage",
        type=output_file,
        help="Optuna storage file: *.db (SQLite) or any other name (journal file); "
        "default OUT/study.db",
    )
    parser.add_argument("--det-file", help=DET_FILE_HELP)
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help=SEQUENCES_HELP)
    parser.add_argument(
        "--cache-mib",
        type=float,
        default=2048,  # deepmot.tune.DEFAULT_CACHE_MIB (not imported: it imports torch)
        metavar="MIB",
        help="memory bound of the per-frame cache the trials share (Tracktor's backbone "
        "features, ECC warps, re-scored detections); once full, later frames are recomputed "
        "each trial; 0: no cache",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from deepmot.data.loading import load_sequences
    from deepmot.tune.study import tune_tracker

    torch.set_num_threads(1)
    if args.cache_mib < 0:
        raise DeepMOTError(f"--cache-mib {args.cache_mib:g}: must be >= 0")
    fixed = dict(args.fix)
    if len(fixed) != len(args.fix):
        raise DeepMOTError("--fix: a key is given twice")
    sequences = load_sequences(args.mot_root, args.det_file, args.sequences)
    result = tune_tracker(
        sequences,
        args.tracker,
        args.out,
        trials=args.trials,
        objective=args.objective,
        weights=args.weights,
        fixed=fixed,
        seed=args.seed,
        storage=args.storage,
        progress=not args.no_progress,
        cache_mib=args.cache_mib,
    )
    print((args.out / "table.md").read_text(), end="")
    if result.ran:
        rate = 60 * result.ran / result.seconds
        print(f"{result.ran} trials in {result.seconds:.1f} s ({rate:.2f} trials/min)", end="")
        cache = result.cache
        print(
            f"; frame cache: {cache['hits']} hits, {cache['misses']} misses, {cache['mib']} "
            f"of {cache['max_mib']} MiB"
            if cache and cache["hits"] + cache["misses"]
            else ""
        )
    import shlex

    # the next command, as it runs when pasted (RESULTS: a folder to name)
    options = [f"--config {shlex.quote(str(result.config_path))}"]
    if args.weights:
        options.append(f"--weights {shlex.quote(str(args.weights))}")
    if args.det_file:
        options.append(f"--det-file {shlex.quote(args.det_file)}")
    if args.sequences:
        options.append(f"--sequences {' '.join(shlex.quote(x) for x in args.sequences)}")
    print(
        f"best settings: {result.config_path}; track with them: deepmot track "
        f"{shlex.quote(str(args.mot_root))} {' '.join(options)} --split val --out RESULTS"
    )
    return 0
