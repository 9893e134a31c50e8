"""``deepmot dhn data|train|eval|ablation``: the Deep Hungarian Net's data, training and tests.

Standard library only at module level; torch and the rest are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VARIANTS = ("seq_gru", "seq_lstm", "paral_gru", "paral_lstm", "conv1d")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dhn",
        help="Deep Hungarian Net: build data, train, evaluate, ablate",
        description="Deep Hungarian Net (paper Sec. 4.1 and supplementary).",
    )
    sub = parser.add_subparsers(dest="dhn_command", metavar="STEP", required=True)

    data = sub.add_parser("data", help="build (D, A*) train/test sets from MOTChallenge folders")
    data.add_argument("mot_root", type=Path, help="folder of sequences (gt/gt.txt + det/*.txt)")
    data.add_argument("out", type=Path, help="output folder")
    data.add_argument(
        "--test-sequences",
        nargs="+",
        default=["MOT17-10", "PETS09-S2L1", "KITTI-13"],
        help="sequences of the test split (default: %(default)s)",
    )
    data.add_argument(
        "--augment-prob", type=float, default=1.0, help="share of thresholded matrices"
    )
    data.add_argument(
        "--train-copies", type=int, default=1, help="augmented draws per training frame"
    )
    data.add_argument(
        "--uniform-step", type=int, default=10, help="size step of the uniform set (2..300)"
    )
    data.add_argument("--uniform-per-size", type=int, default=10)
    data.add_argument("--seed", type=int, default=0)
    data.set_defaults(run=run_data)

    train = sub.add_parser("train", help="train a DHN variant")
    train.add_argument("data", type=Path, help="folder from 'deepmot dhn data'")
    train.add_argument("--arch", choices=VARIANTS, default="seq_gru")
    train.add_argument("--out", type=Path, default=Path("runs/dhn"), help="run folder")
    _model_options(train)
    _train_options(train)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.set_defaults(run=run_train)

    ev = sub.add_parser("eval", help="WA/MA/SA/exact match of weights on a split, size study")
    ev.add_argument(
        "weights", help="a .safetensors file, a checkpoint.pt, or a shipped name (seq_gru)"
    )
    ev.add_argument("data", type=Path, help="folder from 'deepmot dhn data'")
    ev.add_argument("--split", default="test")
    ev.add_argument("--out", type=Path, default=None, help="write report.json (+ size study) here")
    ev.add_argument("--size-study", action="store_true", help="WA vs size on uniform.safetensors")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--threads", type=int, default=None)
    ev.set_defaults(run=run_eval)

    ab = sub.add_parser("ablation", help="train and evaluate every variant (Table 5)")
    ab.add_argument("data", type=Path)
    ab.add_argument("--out", type=Path, default=Path("runs/dhn_ablation"))
    ab.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    _model_options(ab)
    _train_options(ab)
    ab.set_defaults(run=run_ablation)


def _model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model (default: the lean shipped settings)")
    g.add_argument(
        "--paper-size", action="store_true", help="the paper's settings (hidden 256, 2 layers)"
    )
    g.add_argument("--hidden", type=int, default=None)
    g.add_argument("--layers", type=int, default=None)
    g.add_argument("--fc", type=int, nargs="*", default=None, help="hidden FC widths")
    g.add_argument("--flatten", choices=("matrix", "lines"), default=None)
    g.add_argument("--extra-channels", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--rounds", type=int, default=None, help="row/column Bi-RNN pairs (seq only)")


def _train_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=20)
    g.add_argument("--max-iters", type=int, default=None)
    g.add_argument("--max-minutes", type=float, default=None)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--lr", type=float, default=3e-4)
    g.add_argument("--gamma", type=float, default=2.0, help="focal-loss modulating factor")
    g.add_argument(
        "--weighting",
        choices=("paper", "none"),
        default="paper",
        help="class weights of the focal loss (paper: w0 = n1 / (n0 + n1))",
    )
    g.add_argument("--subset", type=int, default=None, help="train on this many matrices")
    g.add_argument("--checkpoint-every", type=int, default=500)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _overrides(args: argparse.Namespace) -> dict:
    from dataclasses import asdict

    from deepmot.assign.dhn import SHIPPED_CONFIG, DHNConfig

    base = DHNConfig() if args.paper_size else SHIPPED_CONFIG
    out = {k: v for k, v in asdict(base).items() if k not in ("arch", "cell")}
    for key, value in (
        ("hidden", args.hidden),
        ("num_layers", args.layers),
        ("fc", None if args.fc is None else tuple(args.fc)),
        ("flatten", args.flatten),
        ("extra_channels", args.extra_channels),
        ("rounds", args.rounds),
    ):
        if value is not None:
            out[key] = value
    return out


def _train_config(args: argparse.Namespace, name: str, dhn_config):
    from deepmot.train.dhn import DHNTrainConfig

    return DHNTrainConfig(
        name=name,
        dhn=dhn_config,
        epochs=args.epochs,
        max_iters=args.max_iters,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        gamma=args.gamma,
        weighting=args.weighting,
        subset=args.subset,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device,
    )


def _threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def run_data(args: argparse.Namespace) -> int:
    from deepmot.data.dhn_dataset import DHNDataConfig, build_dhn_data

    config = DHNDataConfig(
        test_sequences=tuple(args.test_sequences),
        augment_prob=args.augment_prob,
        train_copies=args.train_copies,
        uniform_sizes=tuple(range(2, 301, args.uniform_step)),
        uniform_per_size=args.uniform_per_size,
        seed=args.seed,
    )
    manifest = build_dhn_data(args.mot_root, args.out, config)
    print(json.dumps(manifest["files"], indent=2))
    print(f"wrote {args.out}/{{train,test,uniform}}.safetensors and manifest.json")
    return 0


def run_train(args: argparse.Namespace) -> int:
    import sys

    from deepmot.assign.dhn import create_dhn
    from deepmot.train.dhn import train_dhn

    _threads(args)
    command = "deepmot " + " ".join(sys.argv[1:])
    if args.resume:
        # The stored settings rule; only the budget and the device come from the command line.
        from dataclasses import replace

        from deepmot.train.dhn import load_train_config

        stored = load_train_config(args.out)
        config = replace(
            stored, max_iters=args.max_iters, max_minutes=args.max_minutes, device=args.device
        )
    else:
        config = _train_config(args, args.arch, create_dhn(args.arch, **_overrides(args)).config)
    summary = train_dhn(args.data, args.out, config, resume=args.resume, card={"command": command})
    print(json.dumps(summary, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from deepmot.train.dhn_eval import (
        evaluate_split,
        format_report,
        load_model,
        load_split,
        size_study,
    )

    _threads(args)
    model = load_model(args.weights, args.device)
    dataset = load_split(args.data, args.split)
    report = evaluate_split(model, dataset, args.device)
    report["weights"] = str(args.weights)
    report["split"] = args.split
    print(format_report(report, f"{args.weights} on {args.data}/{args.split}"))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.size_study:
        uniform = load_split(args.data, "uniform")
        png = size_study({"DHN": model}, uniform, args.out or Path("."), args.device)
        print(f"size study: {png} and {png.with_suffix('.csv')}")
    return 0


def run_ablation(args: argparse.Namespace) -> int:
    from deepmot.assign.dhn import create_dhn
    from deepmot.train.dhn_eval import run_ablation as ablate

    _threads(args)
    overrides = _overrides(args)
    config = _train_config(args, args.variants[0], create_dhn(args.variants[0], **overrides).config)
    _, table = ablate(args.data, args.out, args.variants, overrides, config)
    print(table)
    return 0
