"""``deepmot demo``: train and compare trackers on the built-in synthetic data, in minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepmot.commands._args import HelpFormatter, existing_dir, int_at_least, output_dir


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train a tracker with the DeepMOT loss on synthetic data and compare it",
        description=(
            "Train the motion tracker with the DeepMOT loss (shipped DHN) and with Smooth-L1 on "
            "synthetic sequences (or --data MOT_ROOT), compare them with the untrained tracker on "
            "the last 25% of each sequence, print the table and write it with training curves "
            "and a frame with tracks into --out (replacing an earlier demo there)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--out", type=output_dir, default=Path("demo-out"), help="folder for the outputs"
    )
    parser.add_argument(
        "--data",
        type=existing_dir,
        help="a folder of MOTChallenge sequences instead of the synthetic data",
    )
    parser.add_argument(
        "--iterations",
        type=int_at_least(1),
        default=None,
        help="training steps per variant (default: 200; 40 for --tracker tracktor)",
    )
    parser.add_argument(
        "--matcher",
        choices=["dhn", "sinkhorn"],
        default="dhn",
        help="frozen matcher inside the DeepMOT loss",
    )
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of the data, models and samples"
    )
    parser.add_argument(
        "--split",
        choices=["val", "all"],
        default="val",
        help="score the last 25%% of each sequence (never trained on) or whole sequences",
    )
    parser.add_argument(
        "--tracker",
        choices=["motion", "tracktor"],
        default="motion",
        help="motion: the learned motion tracker (with Kalman); tracktor: Tracktor's box "
        "regression with the shipped light detector, fine-tuned on synthetic frame pairs "
        "(--iterations default 40; --data and --split are motion-only)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from deepmot.demos.motion import run_demo

    torch.set_num_threads(1)  # tiny models: extra threads only contend (up to 60x slower here)
    if args.tracker == "tracktor":
        from deepmot.demos.tracktor import run_tracktor_demo
        from deepmot.errors import DeepMOTError

        if args.data is not None:
            raise DeepMOTError("--data: the Tracktor demo runs on synthetic scenes only")
        run_tracktor_demo(
            args.out,
            iterations=args.iterations or 40,
            seed=args.seed,
            matcher=args.matcher,
            progress=not args.no_progress,
        )
        return 0
    run_demo(
        args.out,
        data=args.data,
        iterations=args.iterations or 200,
        matcher=args.matcher,
        seed=args.seed,
        split=args.split,
        progress=not args.no_progress,
    )
    return 0
