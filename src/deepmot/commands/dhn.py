"""``deepmot dhn data|train|eval|ablation``: the Deep Hungarian Net's data, training and tests.

Standard library only at module level; torch and the rest are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from deepmot.commands._args import (
    HelpFormatter,
    check_resumed_options,
    device,
    existing_dir,
    existing_path,
    float_at_least,
    int_at_least,
    output_dir,
    positive_float,
    probability,
)
from deepmot.commands.train import check_distributed, distributed_options
from deepmot.errors import DeepMOTError

log = logging.getLogger(__name__)

VARIANTS = (
    "seq_gru",
    "seq_lstm",
    "paral_gru",
    "paral_lstm",
    "conv1d",
    "bipartite_mp",
    "bipartite_sk",
)
#: variants with settings of their own (no RNN): the lean RNN settings do not apply to them
OWN_DEFAULTS = ("bipartite_mp", "bipartite_sk")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dhn",
        help="Deep Hungarian Net: build data, train, evaluate, ablate",
        description="Deep Hungarian Net (paper Sec. 4.1 and supplementary).",
    )
    sub = parser.add_subparsers(dest="dhn_command", metavar="STEP", required=True)
    _data_parser(sub)
    _train_parser(sub)
    _eval_parser(sub)
    _ablation_parser(sub)


def _data_parser(sub: argparse._SubParsersAction) -> None:
    """'deepmot dhn data': the (D, A*) sets from MOTChallenge folders."""
    data = sub.add_parser(
        "data",
        help="build (D, A*) train/test sets from MOTChallenge folders",
        description=(
            "Build the DHN's data from every sequence under MOT_ROOT with gt/gt.txt and "
            "detection files: per frame, the distance matrix D between detections and ground "
            "truth and the Hungarian solution A*. Writes OUT/train.safetensors, "
            "test.safetensors (the --test-sequences videos), uniform.safetensors (random "
            "square matrices for the size study) and manifest.json."
        ),
        formatter_class=HelpFormatter,
    )
    data.add_argument(
        "mot_root", type=existing_dir, metavar="MOT_ROOT", help="folder of sequence folders"
    )
    data.add_argument("out", type=output_dir, metavar="OUT", help="output folder (made)")
    data.add_argument(
        "--test-sequences",
        nargs="+",
        default=["MOT17-10", "PETS09-S2L1", "KITTI-13"],
        metavar="NAME",
        help="sequences (videos) of the test split; every other one trains",
    )
    data.add_argument(
        "--augment-prob",
        type=probability,
        default=1.0,
        help="share of matrices thresholded at a random value (supplementary A.1)",
    )
    data.add_argument(
        "--train-copies",
        type=int_at_least(1),
        default=1,
        help="augmented draws per training frame and detection file",
    )
    data.add_argument(
        "--uniform-step",
        type=int_at_least(1),
        default=10,
        help="size step of the uniform set (sizes 2, 2 + step, ... up to 300)",
    )
    data.add_argument(
        "--uniform-per-size",
        type=int_at_least(1),
        default=10,
        help="random matrices per size in the uniform set",
    )
    data.add_argument(
        "--seed", type=int_at_least(0), default=0, help="seed of thresholds and uniform matrices"
    )
    data.add_argument("--no-progress", action="store_true", help="no progress bar")
    data.set_defaults(run=run_data)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    """'deepmot dhn train': one DHN variant."""
    train = sub.add_parser(
        "train",
        help="train a DHN variant",
        description=(
            "Train a DHN on DATA/train.safetensors with the weighted focal loss and RMSprop "
            "(paper A.1). Writes config.json, checkpoint.pt, log.csv (columns in "
            "docs/metrics.md) and dhn_<arch>.safetensors with its JSON card into --out. Ctrl-C "
            "or SIGTERM checkpoints the last step; --resume continues from there."
        ),
        formatter_class=HelpFormatter,
    )
    train.add_argument(
        "data", type=existing_path, metavar="DATA", help="folder from 'deepmot dhn data'"
    )
    train.add_argument("--arch", choices=VARIANTS, default="seq_gru", help="DHN variant")
    train.add_argument("--out", type=output_dir, default=Path("runs/dhn"), help="run folder")
    _model_options(train)
    _train_options(train)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    distributed_options(train)
    train.set_defaults(run=run_train)
    _TRAIN_DEFAULTS.update({dest: train.get_default(dest) for dest in _SETTINGS})


def _eval_parser(sub: argparse._SubParsersAction) -> None:
    """'deepmot dhn eval': a DHN's accuracies on a split, the size study."""
    ev = sub.add_parser(
        "eval",
        help="WA/MA/SA/exact match of weights on a split, size study",
        description=(
            "Weighted, mean and soft accuracy (WA/MA/SA) and the share of exactly solved "
            "matrices of a DHN on a split of 'deepmot dhn data', row- and column-wise, against "
            "the no-learning rule 1 - D; --size-study adds WA against matrix size (Fig. 8)."
        ),
        formatter_class=HelpFormatter,
    )
    ev.add_argument(
        "weights",
        metavar="WEIGHTS",
        help=f"a .safetensors file from 'deepmot dhn train', a run's checkpoint.pt, or a "
        f"shipped name ({', '.join(VARIANTS)}; weights ship for bipartite_sk, the loss's default, "
        "and seq_gru)",
    )
    ev.add_argument("data", type=existing_path, metavar="DATA", help="folder from 'dhn data'")
    ev.add_argument(
        "--split", default="test", help="DATA/<split>.safetensors: train, test or uniform"
    )
    ev.add_argument(
        "--out", type=output_dir, default=None, help="write report.json (and the size study) here"
    )
    ev.add_argument(
        "--size-study",
        action="store_true",
        help="WA and exact match against size on DATA/uniform.safetensors and on the --split "
        "frames, model against the 1 - D rule (minutes; needs --out)",
    )
    ev.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or mps")
    ev.add_argument("--threads", type=int_at_least(1), default=None, help="torch CPU threads")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.set_defaults(run=run_eval)


def _ablation_parser(sub: argparse._SubParsersAction) -> None:
    """'deepmot dhn ablation': every variant trained and evaluated (Table 5)."""
    ab = sub.add_parser(
        "ablation",
        help="train and evaluate every variant (Table 5)",
        formatter_class=HelpFormatter,
    )
    ab.add_argument("data", type=existing_path, metavar="DATA", help="folder from 'dhn data'")
    ab.add_argument(
        "--out", type=output_dir, default=Path("runs/dhn_ablation"), help="output folder"
    )
    ab.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="variants"
    )
    _model_options(ab)
    _train_options(ab)
    ab.add_argument("--no-progress", action="store_true", help="no progress bars")
    ab.set_defaults(run=run_ablation)


#: options of 'dhn train' that set a stored setting (dest -> field of DHNTrainConfig.to_dict(),
#: dotted for the model's); on --resume they must agree with the stored run
_SETTINGS = {
    "arch": "name",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "gamma": "gamma",
    "weighting": "weighting",
    "subset": "subset",
    "uniform": "uniform",
    "uniform_max_size": "uniform_max_size",
    "batch_entries": "batch_entries",
    "checkpoint_every": "checkpoint_every",
    "seed": "seed",
    "paper_size": "dhn",
    "hidden": "dhn.hidden",
    "layers": "dhn.num_layers",
    "fc": "dhn.fc",
    "flatten": "dhn.flatten",
    "extra_channels": "dhn.extra_channels",
    "rounds": "dhn.rounds",
}
_TRAIN_DEFAULTS: dict = {}


def _check_resumed_options(args: argparse.Namespace, stored, where: Path) -> None:
    """Options given with --resume that would change the stored settings are an error."""
    from deepmot.assign.dhn import create_dhn

    def new_values() -> dict:
        try:
            model = create_dhn(args.arch, **_overrides(args, args.arch)).config
            return _train_config(args, args.arch, model).to_dict()
        except ValueError as error:
            raise DeepMOTError(f"model options: {error}") from None

    check_resumed_options(
        args,
        _SETTINGS,
        _TRAIN_DEFAULTS,
        new_values,
        stored.to_dict(),
        where,
        "--max-iters, --max-minutes and --device",
    )


def _model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "model (default: the lean shipped settings; bipartite_mp: its own, see docs)"
    )
    g.add_argument(
        "--paper-size", action="store_true", help="the paper's settings (hidden 256, 2 layers)"
    )
    g.add_argument("--hidden", type=int_at_least(1), default=None, help="RNN hidden size")
    g.add_argument("--layers", type=int_at_least(1), default=None, help="RNN layers")
    g.add_argument("--fc", type=int_at_least(1), nargs="*", default=None, help="hidden FC widths")
    g.add_argument(
        "--flatten", choices=("matrix", "lines"), default=None, help="how D is read into the RNN"
    )
    g.add_argument(
        "--extra-channels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="feed row/column minima as extra input channels",
    )
    g.add_argument(
        "--rounds",
        type=int_at_least(1),
        default=None,
        help="row/column Bi-RNN pairs (seq); message-passing layers (bipartite_mp)",
    )


def _train_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int_at_least(1), default=20, help="passes over the data")
    g.add_argument(
        "--max-iters", type=int_at_least(1), default=None, help="stop after this many steps"
    )
    g.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="stop (with a checkpoint) after this much wall time",
    )
    g.add_argument("--batch-size", type=int_at_least(1), default=16, help="matrices per step")
    g.add_argument("--lr", type=positive_float, default=3e-4, help="RMSprop's learning rate")
    g.add_argument(
        "--gamma", type=float_at_least(0), default=2.0, help="focal-loss modulating factor"
    )
    g.add_argument(
        "--weighting",
        choices=("paper", "none"),
        default="paper",
        help="class weights of the focal loss (paper: w0 = n1 / (n0 + n1))",
    )
    g.add_argument(
        "--subset", type=int_at_least(1), default=None, help="train on this many matrices"
    )
    g.add_argument(
        "--uniform",
        type=int_at_least(0),
        default=0,
        help="add this many uniform-random matrices of mixed sizes to the training set",
    )
    g.add_argument(
        "--uniform-max-size",
        type=int_at_least(1),
        default=300,
        help="largest side of those matrices (sides log-uniform from 1)",
    )
    g.add_argument(
        "--batch-entries",
        type=int_at_least(1),
        default=None,
        help="cut a batch before it holds more entries than this (large matrices)",
    )
    g.add_argument(
        "--checkpoint-every", type=int_at_least(1), default=500, help="steps between checkpoints"
    )
    g.add_argument("--seed", type=int_at_least(0), default=0, help="seed of model and batches")
    g.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or mps")
    g.add_argument("--threads", type=int_at_least(1), default=None, help="torch CPU threads")


def _overrides(args: argparse.Namespace, name: str) -> dict:
    """Model settings for variant ``name``: the lean shipped ones (or the paper's with
    --paper-size) for the paper's variants, the variant's own for :data:`OWN_DEFAULTS`; then
    the options given."""
    from dataclasses import asdict

    from deepmot.assign.dhn import SHIPPED_CONFIG, DHNConfig

    base = DHNConfig() if args.paper_size else SHIPPED_CONFIG
    out = {k: v for k, v in asdict(base).items() if k not in ("arch", "cell")}
    if name in OWN_DEFAULTS:
        out = {}
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
        uniform=args.uniform,
        uniform_max_size=args.uniform_max_size,
        batch_entries=args.batch_entries,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device,
    )


def _threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def run_data(args: argparse.Namespace) -> int:
    from deepmot.data.dhn_dataset import DHNDataConfig, build_dhn_data, video_key
    from deepmot.io.mot import find_sequences

    found = {video_key(p.name): p.name for p in find_sequences(args.mot_root)}
    if not found:
        raise DeepMOTError(f"MOT_ROOT {args.mot_root}: no sequence folders in it")
    missing = [n for n in args.test_sequences if video_key(n) not in found]
    if missing:
        raise DeepMOTError(
            f"--test-sequences: {', '.join(missing)} not under {args.mot_root} (there: "
            f"{', '.join(sorted(found.values()))}); name the sequences of the test split"
        )
    config = DHNDataConfig(
        test_sequences=tuple(args.test_sequences),
        augment_prob=args.augment_prob,
        train_copies=args.train_copies,
        uniform_sizes=tuple(range(2, 301, args.uniform_step)),
        uniform_per_size=args.uniform_per_size,
        seed=args.seed,
    )
    manifest = build_dhn_data(args.mot_root, args.out, config, progress=not args.no_progress)
    print(json.dumps(manifest["files"], indent=2))
    print(f"wrote {args.out}/{{train,test,uniform}}.safetensors and manifest.json")
    return 0


def _matrices(data: Path) -> int:
    """The number of matrices in DATA/train.safetensors (or DATA itself), read from its header."""
    from safetensors import safe_open

    path = data / "train.safetensors" if data.is_dir() else data
    if not path.is_file():
        raise DeepMOTError(f"DATA {path}: no such file; build it with 'deepmot dhn data'")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return int(handle.get_slice("shapes").get_shape()[0])
    except Exception as error:  # safetensors raises its own error types
        raise DeepMOTError(f"DATA {path}: not a file of 'deepmot dhn data' ({error})") from None


def _check_dhn_run(args: argparse.Namespace, name: str) -> None:
    """A new run: refuse a folder with a run in it unless --overwrite (then clear it)."""
    found = [n for n in ("config.json", "checkpoint.pt", "log.csv") if (args.out / n).exists()]
    if not found:
        return
    if not args.overwrite:
        raise DeepMOTError(
            f"--out {args.out} holds a training run already ({', '.join(found)}): --resume "
            "continues it, --overwrite replaces it, or choose another --out"
        )
    from deepmot.engine.run import is_main_process

    if not is_main_process():  # under torchrun, rank 0 clears the folder
        return
    for n in (
        "config.json",
        "checkpoint.pt",
        "log.csv",
        f"dhn_{name}.safetensors",
        f"dhn_{name}.json",
    ):
        (args.out / n).unlink(missing_ok=True)
    log.warning("--overwrite: removed the earlier run in %s", args.out)


def run_train(args: argparse.Namespace) -> int:
    import math
    import sys

    from deepmot.commands._args import check_device

    check_device(args.device)
    check_distributed(args, args.device)
    matrices = _matrices(args.data)
    command = "deepmot " + " ".join(sys.argv[1:])
    if args.resume:
        # The stored settings rule; only the budget and the device come from the command line.
        from dataclasses import replace

        from deepmot.engine.run import TrainingRun
        from deepmot.train.dhn import load_train_config

        if args.overwrite:
            raise DeepMOTError("--resume and --overwrite exclude each other: continue or replace")
        if not (args.out / "checkpoint.pt").is_file():
            raise DeepMOTError(
                f"--resume: {args.out / 'checkpoint.pt'} does not exist, so there is nothing to "
                "resume (drop --resume to start a run)"
            )
        stored = load_train_config(args.out)
        _check_resumed_options(args, stored, args.out)
        config = replace(
            stored, max_iters=args.max_iters, max_minutes=args.max_minutes, device=args.device
        )
        done = TrainingRun(args.out, (), resume=True).start_iteration
        used = min(matrices, config.subset or matrices) + config.uniform
        per_epoch = math.ceil(used / config.batch_size)
        if config.batch_entries is not None:
            from deepmot.train.dhn import batches_per_epoch

            per_epoch = batches_per_epoch(args.data, config)
        total = config.epochs * per_epoch
        if config.max_iters is not None:
            total = min(total, config.max_iters)
        if done >= total:
            raise DeepMOTError(
                f"--resume: {args.out} has trained {done} of {total} steps already; nothing "
                f"left to do (give --max-iters N with N > {done}, within {config.epochs} "
                "epochs, to train on)"
            )
    else:
        from deepmot.assign.dhn import create_dhn

        try:
            dhn_config = create_dhn(args.arch, **_overrides(args, args.arch)).config
        except ValueError as error:
            raise DeepMOTError(f"model options: {error}") from None
        config = _train_config(args, args.arch, dhn_config)
        _check_dhn_run(args, args.arch)
    _threads(args)
    from deepmot.train.dhn import train_dhn

    summary = train_dhn(
        args.data,
        args.out,
        config,
        resume=args.resume,
        progress=not args.no_progress,
        card={"command": command},
        backend=args.dist_backend,
        amp=args.amp,
    )
    from deepmot.engine.run import is_main_process

    if is_main_process():  # under torchrun, one summary
        print(json.dumps(summary, indent=2))
    return 0


def _load_weights(weights: str, device: str):
    """The DHN of ``WEIGHTS``, or a DeepMOTError saying what WEIGHTS may be."""
    from deepmot.train.dhn_eval import load_model

    kinds = (
        "give a .safetensors file from 'deepmot dhn train', a run's checkpoint.pt, or a shipped "
        "name (seq_gru, bipartite_sk)"
    )
    path = Path(weights)
    if not path.exists() and (path.suffix or "/" in weights):
        raise DeepMOTError(f"WEIGHTS {weights}: no such file; {kinds}")
    if not path.exists() and weights not in VARIANTS:
        raise DeepMOTError(f"WEIGHTS {weights}: neither a file nor a DHN name; {kinds}")
    try:
        return load_model(weights, device)
    except KeyError as error:
        raise DeepMOTError(
            f"WEIGHTS {weights}: not a DHN checkpoint (no {error}); {kinds}"
        ) from None
    except (ValueError, TypeError, RuntimeError) as error:
        raise DeepMOTError(f"WEIGHTS {weights}: not DHN weights ({error}); {kinds}") from None


def run_eval(args: argparse.Namespace) -> int:
    from deepmot.commands._args import check_device
    from deepmot.train.dhn_eval import evaluate_split, format_report, load_split, size_study

    if args.size_study and args.out is None:
        raise DeepMOTError(
            "--size-study writes size_study.png and size_study.csv: give --out DIR for them"
        )
    check_device(args.device)
    for split in [args.split, *(["uniform"] if args.size_study else [])]:
        path = args.data / f"{split}.safetensors" if args.data.is_dir() else args.data
        if not path.is_file():
            raise DeepMOTError(
                f"--split {split}: {path} does not exist (splits of 'deepmot dhn data': train, "
                "test, uniform)"
            )
    _threads(args)
    model = _load_weights(args.weights, args.device)
    dataset = load_split(args.data, args.split)
    report = evaluate_split(model, dataset, args.device)
    report["weights"] = str(args.weights)
    report["split"] = args.split
    print(format_report(report, f"{args.weights} on {args.data}/{args.split}"))
    if args.out is not None:
        from deepmot.io.atomic import atomic_write_text

        atomic_write_text(args.out / "report.json", json.dumps(report, indent=2) + "\n")
    if args.size_study:
        uniform = load_split(args.data, "uniform")
        log.info(
            "size study: WA of the DHN and of the 1 - D rule on %d random square matrices "
            "(minutes on a CPU)",
            len(uniform),
        )
        png = size_study(
            {"DHN": model},
            uniform,
            args.out,
            args.device,
            progress=not args.no_progress,
            real=dataset,
        )
        print(f"size study (row-wise; real frames: {args.split} split, binned by largest side)")
        print((args.out / "size_study.md").read_text(), end="")
        print(f"size study: {png}, {png.with_suffix('.csv')} and {png.with_suffix('.md')}")
    return 0


def run_ablation(args: argparse.Namespace) -> int:
    from deepmot.assign.dhn import create_dhn
    from deepmot.commands._args import check_device
    from deepmot.train.dhn_eval import run_ablation as ablate

    check_device(args.device)
    _matrices(args.data)
    if not (args.data / "test.safetensors" if args.data.is_dir() else args.data).is_file():
        raise DeepMOTError(f"DATA {args.data}: no test.safetensors; build it with 'dhn data'")
    _threads(args)
    overrides = {name: _overrides(args, name) for name in args.variants}
    try:
        first = create_dhn(args.variants[0], **overrides[args.variants[0]]).config
        for name in args.variants[1:]:
            create_dhn(name, **overrides[name])
    except ValueError as error:
        raise DeepMOTError(f"model options: {error}") from None
    config = _train_config(args, args.variants[0], first)
    _, table = ablate(args.data, args.out, args.variants, overrides, config, not args.no_progress)
    print(table)
    return 0
