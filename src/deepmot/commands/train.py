"""``deepmot train MOT_ROOT --out RUN``: train a tracker with the DeepMOT loss (or Smooth-L1).

Defaults come from :class:`~deepmot.train.config.TrackerTrainConfig` and
:class:`~deepmot.loss.config.DeepMOTLossConfig` (both importable without torch).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deepmot.commands._args import (
    DET_FILE_HELP,
    SEQUENCES_HELP,
    HelpFormatter,
    ListAction,
    check_resumed_options,
    device,
    existing_dir,
    existing_file,
    float_at_least,
    int_at_least,
    output_dir,
    positive_float,
    probability,
)
from deepmot.errors import DeepMOTError
from deepmot.loss.config import DeepMOTLossConfig
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig

log = logging.getLogger(__name__)

_TRAIN = TrackerTrainConfig()
_LOSS = DeepMOTLossConfig()
_AUG = AugmentationConfig()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a tracker with the DeepMOT loss (or Smooth-L1)",
        description=(
            "Train a registered tracker on the first half of every sequence under MOT_ROOT that "
            "has ground truth (the paper's split). Tracks start from (augmented) ground truth; "
            "the tracker predicts the next frame of frame pairs, or runs on its own outputs "
            "through clips (births from unmatched ground truth, deaths of unmatched tracks, the "
            "loss's ID memory carried across the clip). The DeepMOT loss (through a frozen "
            "matcher) or Smooth-L1 trains it. Writes config.json, checkpoint.pt, log.csv (loss, "
            "soft terms and the true MOTA/MOTP of each batch; columns in docs/metrics.md) and "
            "the weights into --out. Ctrl-C or SIGTERM checkpoints the last step; --resume "
            "continues from there."
        ),
        formatter_class=HelpFormatter,
    )
    _target_options(parser)
    _training_options(parser)
    _loss_options(parser)
    _augmentation_options(parser)
    _clip_options(parser)
    _data_options(parser)
    _run_options(parser)
    _sot_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--workers",
        type=int_at_least(0),
        default=0,
        help="DataLoader processes reading (decoding, rendering) the next steps' frames, for "
        "trackers that regress from the image (not a stored setting)",
    )
    distributed_options(parser)
    parser.set_defaults(run=run)
    _DEFAULTS.update({dest: parser.get_default(dest) for dest in _SETTINGS})


def _target_options(parser: argparse.ArgumentParser) -> None:
    """MOT_ROOT, the run folder and the tracker to train."""
    parser.add_argument(
        "mot_root", type=existing_dir, metavar="MOT_ROOT", help="folder of sequence folders"
    )
    parser.add_argument(
        "--out", type=output_dir, required=True, help="run folder (made if it does not exist)"
    )
    parser.add_argument(
        "--tracker", default=_TRAIN.tracker, help="a trainable tracker (see --list-trackers)"
    )
    parser.add_argument(
        "--list-trackers",
        action=ListAction,
        lister=_trainable_trackers,
        help="print the trainable trackers and exit (needs no other argument)",
    )


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The loss, its matcher, the samples and the optimiser."""
    parser.add_argument(
        "--loss",
        choices=["deepmot", "smoothl1", "vanilla"],
        default=_TRAIN.loss,
        help="training loss (vanilla: a single-object tracker's own objective on frame pairs)",
    )
    parser.add_argument(
        "--matcher",
        type=_matcher,
        default=_TRAIN.matcher,
        help="frozen matcher inside the loss: dhn (the default shipped DHN), dhn:NAME (a "
        "shipped one, e.g. dhn:seq_gru), dhn:PATH (your DHN), sinkhorn",
    )
    parser.add_argument(
        "--sampling",
        choices=["pairs", "clips"],
        default=_TRAIN.sampling,
        help="frame pairs from ground truth, or clips where the tracker runs on its outputs",
    )
    parser.add_argument(
        "--clip-length",
        type=int_at_least(2),
        default=_TRAIN.clip_length,
        help="frames per clip (--sampling clips)",
    )
    parser.add_argument(
        "--iterations",
        type=int_at_least(1),
        default=None,
        help=f"optimisation steps (default: {_TRAIN.iterations}; with --resume: the stored "
        "number, or train on to this many)",
    )
    parser.add_argument(
        "--batch-size",
        type=int_at_least(1),
        default=_TRAIN.batch_size,
        help="pairs or clips per step",
    )
    parser.add_argument(
        "--lr", type=positive_float, default=_TRAIN.lr, help="Adam's learning rate (A.2: 1e-4)"
    )


def _loss_options(parser: argparse.ArgumentParser) -> None:
    """The DeepMOT loss's weights, dustbin value, softmax scale and gating."""
    loss = parser.add_argument_group("DeepMOT loss")
    loss.add_argument(
        "--lam", type=float_at_least(0), default=_LOSS.lam, help="λ, weight of 1 - dMOTP"
    )
    loss.add_argument(
        "--gamma", type=float_at_least(0), default=_LOSS.gamma, help="γ, weight of IDS~"
    )
    loss.add_argument("--delta", type=probability, default=_LOSS.delta, help="δ, the dustbin value")
    loss.add_argument(
        "--scale", type=positive_float, default=_LOSS.scale, help="softmax inverse temperature"
    )
    loss.add_argument(
        "--gate", choices=["soft", "hard", "none"], default=_LOSS.gate, help="gating of far pairs"
    )
    loss.add_argument("--no-dmota", action="store_true", help="train on dMOTP alone")
    loss.add_argument(
        "--confidence",
        choices=["none", "presence", "bce"],
        default=_TRAIN.confidence,
        help="train a confidence per track (the motion tracker gets its confidence head): "
        "presence weights each track's part of the DeepMOT loss by it (docs/loss.md); bce adds "
        "binary cross-entropy against 'matched to an object at IoU >= 0.5' (the baseline); "
        "track with report_confidence in the tracker settings (--config) to use it",
    )
    loss.add_argument(
        "--confidence-weight",
        type=float_at_least(0),
        default=_TRAIN.confidence_weight,
        help="weight of the bce confidence term",
    )
    loss.add_argument(
        "--confidence-lr",
        type=positive_float,
        default=_TRAIN.confidence_lr,
        help="learning rate of the confidence head (default: --lr)",
    )


def _augmentation_options(parser: argparse.ArgumentParser) -> None:
    """Augmentation of the tracks training starts from."""
    aug = parser.add_argument_group("trajectory augmentation (probabilities)")
    aug.add_argument(
        "--perturb", type=probability, default=_AUG.perturb, help="rescale/shift a starting box"
    )
    aug.add_argument(
        "--drop", type=probability, default=_AUG.drop, help="start an object untracked"
    )
    aug.add_argument(
        "--false-tracks",
        type=float_at_least(0),
        default=_AUG.false_tracks,
        help="mean number of false tracks per clip",
    )
    aug.add_argument("--swap", type=probability, default=_AUG.swap, help="swap a track's id")
    aug.add_argument(
        "--jitter",
        type=float_at_least(0),
        default=_AUG.jitter,
        help="noise on every box of a starting history (std. as a share of the box's size)",
    )


def _clip_options(parser: argparse.ArgumentParser) -> None:
    """Clips' box refinement and scoring, the scale's schedule, gradient diagnostics."""
    parser.add_argument(
        "--refine-iou",
        type=probability,
        default=None,
        help="in clips, refine a track's box with a detection overlapping it by more than "
        "this, by the tracker's own management rule (its pairing and refine_weight; the "
        "motion tracker averages), as tracking does (default: keep the raw prediction)",
    )
    parser.add_argument(
        "--score-refined",
        action="store_true",
        help="the loss scores each box after that refinement (what tracking reports) instead "
        "of the raw prediction; needs --refine-iou",
    )
    parser.add_argument(
        "--scale-start",
        type=positive_float,
        default=None,
        help="a softmax scale to start from, moved geometrically to --scale over the run "
        "(default: --scale throughout)",
    )
    parser.add_argument(
        "--diagnose-every",
        type=int_at_least(1),
        default=_TRAIN.diagnose_every,
        help="steps between measurements of each loss term's gradient (log.csv's grad_*)",
    )


def _data_options(parser: argparse.ArgumentParser) -> None:
    """Detections, tracktor's detector and appearance term, the sequences."""
    parser.add_argument("--det-file", default=None, help=DET_FILE_HELP)
    parser.add_argument(
        "--no-detections",
        action="store_true",
        help="a model that does not look at detections (in training and in tracking)",
    )
    parser.add_argument(
        "--detector",
        type=existing_file,
        default=None,
        help="tracktor: the detector to fine-tune (detector.safetensors from 'deepmot detector "
        "train', or a Faster R-CNN state dict; default: the shipped real-frame detector)",
    )
    parser.add_argument(
        "--appearance",
        choices=("none", "joint", "branch"),
        default=_TRAIN.appearance,
        help="tracktor: train its ReID head through an appearance term (the cosine distance "
        "of each track's mean embedding to each object's): 'joint' in D with the box terms, "
        "'branch' as a second DeepMOT loss (the authors' code); use with --sampling clips",
    )
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help=SEQUENCES_HELP)


def _run_options(parser: argparse.ArgumentParser) -> None:
    """Seed, device, resuming, the starting weights and the SOT backbone."""
    parser.add_argument(
        "--seed", type=int_at_least(0), default=_TRAIN.seed, help="seed of model and samples"
    )
    parser.add_argument(
        "--device",
        type=device,
        default=None,
        help=f"cpu, cuda, cuda:N or mps (default: {_TRAIN.device}; with --resume: the stored one)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from --out/checkpoint.pt with its settings (--iterations and --device "
        "may change)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (otherwise that is an error)",
    )
    parser.add_argument(
        "--init-weights",
        type=Path,
        default=None,
        help="start from these trained weights of the same tracker (fine-tuning, e.g. "
        "Smooth-L1 or DeepMOT from a Vanilla single-object model)",
    )
    parser.add_argument(
        "--backbone",
        choices=["light", "alexnet"],
        default=None,
        help="goturn, siamrpn: the light CPU-scale backbone (their default) or the paper's "
        "AlexNet-style one with its crop sizes (untrained: no downloadable weights here)",
    )


def _sot_options(parser: argparse.ArgumentParser) -> None:
    """SiamRPN's training terms as the authors had them."""
    sot = parser.add_argument_group("SiamRPN as the authors trained it")
    sot.add_argument(
        "--focal-weight",
        type=float_at_least(0),
        default=_TRAIN.focal_weight,
        help="weight of the focal classification term on the anchors' scores (the authors' "
        "released SiamRPN training: 10; default: off)",
    )
    sot.add_argument(
        "--focal-gamma",
        type=float_at_least(0),
        default=_TRAIN.focal_gamma,
        help="the focal term's exponent",
    )
    sot.add_argument(
        "--freeze",
        nargs="+",
        default=list(_TRAIN.freeze),
        metavar="PREFIX",
        help="keep these parameters fixed, by name prefix (e.g. features.0 features.2: the "
        "backbone's first two convolutions)",
    )


#: options that set a stored setting of the run (option's dest -> field of the config's
#: to_dict(), dotted for nested ones); on --resume they must agree with the stored run
_SETTINGS = {
    "tracker": "tracker",
    "loss": "loss",
    "matcher": "matcher",
    "sampling": "sampling",
    "clip_length": "clip_length",
    "batch_size": "batch_size",
    "lr": "lr",
    "lam": "deepmot.lam",
    "gamma": "deepmot.gamma",
    "delta": "deepmot.delta",
    "scale": "deepmot.scale",
    "gate": "deepmot.gate",
    "no_dmota": "deepmot.use_dmota",
    "perturb": "augment.perturb",
    "drop": "augment.drop",
    "false_tracks": "augment.false_tracks",
    "swap": "augment.swap",
    "jitter": "augment.jitter",
    "refine_iou": "refine_iou",
    "score_refined": "score_refined",
    "scale_start": "scale_start",
    "diagnose_every": "diagnose_every",
    "det_file": "det_file",
    "no_detections": "model",
    "detector": "model",
    "seed": "seed",
    "init_weights": "init_weights",
    "backbone": "model",
    "focal_weight": "focal_weight",
    "focal_gamma": "focal_gamma",
    "freeze": "freeze",
    "confidence": "confidence",
    "confidence_weight": "confidence_weight",
    "confidence_lr": "confidence_lr",
}
_DEFAULTS: dict = {}


def distributed_options(parser: argparse.ArgumentParser) -> None:
    """``--amp`` and ``--dist-backend``: how the run computes, not what it learns, so neither
    is stored in the run's settings (a resumed run may change them)."""
    g = parser.add_argument_group(
        "performance",
        "Under 'torchrun --nproc-per-node N -m deepmot ...' N processes train together (DDP); "
        "--batch-size is the global batch, shared by them.",
    )
    g.add_argument(
        "--amp",
        choices=["bf16", "fp16"],
        default=None,
        help="mixed precision (torch.autocast with this type): bf16 or fp16 on CUDA (fp16 "
        "scales the loss), bf16 on the CPU (faster only on CPUs with bfloat16 instructions)",
    )
    g.add_argument(
        "--dist-backend",
        choices=["gloo", "nccl"],
        default=None,
        help="process-group backend under torchrun (default: nccl on CUDA, gloo on the CPU)",
    )


def check_distributed(args: argparse.Namespace, device: str) -> None:
    """Refuse --amp where it does not run (fp16 off CUDA; anything but bf16 on the CPU) and
    --dist-backend nccl without CUDA, before any work starts."""
    cpu_bf16 = device == "cpu" and args.amp == "bf16"
    if args.amp is not None and not device.startswith("cuda") and not cpu_bf16:
        raise DeepMOTError(
            f"--amp {args.amp}: mixed precision runs on CUDA (and bf16 on the CPU too), and "
            f"this run's device is {device} ("
            + ("use --amp bf16 on the CPU, " if device == "cpu" else "drop --amp, ")
            + "or --device cuda)"
        )
    if args.dist_backend == "nccl" and not device.startswith("cuda"):
        raise DeepMOTError(
            f"--dist-backend nccl needs CUDA devices, and this run's device is {device} (use "
            "gloo on the CPU, or --device cuda)"
        )


def _trainable_trackers() -> list[str]:
    from deepmot.trackers import list_trainable

    return list_trainable()


def _matcher(text: str) -> str:
    """``dhn``, ``sinkhorn`` or ``dhn:PATH`` (PATH checked when the command runs)."""
    from deepmot.assign.matcher import parse_matcher

    try:
        parse_matcher(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).replace("matcher must be", "must be")) from None
    return text


def _config(args: argparse.Namespace) -> TrackerTrainConfig:
    from dataclasses import replace

    try:
        return TrackerTrainConfig(
            tracker=args.tracker,
            model={
                **_backbone(args.tracker, args.backbone),
                **({"use_detections": False} if args.no_detections else {}),
                **({"detector": str(args.detector)} if args.detector else {}),
                # the head the confidence loss trains
                **(
                    {"confidence": True}
                    if args.tracker == "motion" and args.confidence != "none"
                    else {}
                ),
                # the head the appearance term trains is the one the tracker revives with
                **(
                    {"reid": "head"}
                    if args.tracker == "tracktor" and args.appearance != "none"
                    else {}
                ),
            },
            loss=args.loss,
            deepmot=replace(
                _LOSS,
                lam=args.lam,
                gamma=args.gamma,
                delta=args.delta,
                scale=args.scale,
                gate=args.gate,
                use_dmota=not args.no_dmota,
            ),
            matcher=args.matcher,
            sampling=args.sampling,
            clip_length=args.clip_length,
            augment=replace(
                _AUG,
                perturb=args.perturb,
                drop=args.drop,
                false_tracks=args.false_tracks,
                swap=args.swap,
                jitter=args.jitter,
            ),
            refine_iou=args.refine_iou,
            score_refined=args.score_refined,
            scale_start=args.scale_start,
            diagnose_every=args.diagnose_every,
            lr=args.lr,
            iterations=args.iterations if args.iterations is not None else _TRAIN.iterations,
            batch_size=args.batch_size,
            det_file=args.det_file,  # None: each sequence's (deepmot.data.loading)
            seed=args.seed,
            device=args.device or _TRAIN.device,
            init_weights=str(args.init_weights) if args.init_weights is not None else None,
            focal_weight=args.focal_weight,
            focal_gamma=args.focal_gamma,
            freeze=tuple(args.freeze),
            appearance=args.appearance,
            confidence=args.confidence,
            confidence_weight=args.confidence_weight,
            confidence_lr=args.confidence_lr,
        )
    except ValueError as error:  # the parser's types catch most; this names the rest
        raise DeepMOTError(str(error)) from None


def _backbone(tracker: str, backbone: str | None) -> dict:
    """The model settings of ``--backbone``: none for the tracker's default; else the
    tracker's declared preset of that name (``Trainable.backbones``: GOTURN's and SiamRPN's
    ``light`` default and the paper's ``alexnet`` sizes)."""
    if backbone is None:
        return {}
    from deepmot.trackers import get_trainable, list_trainable

    try:
        backbones = get_trainable(tracker).backbones
    except ValueError as error:
        raise DeepMOTError(f"--tracker {tracker}: {error}") from None
    if backbone not in backbones:
        choosing = [n for n in list_trainable() if backbone in get_trainable(n).backbones]
        raise DeepMOTError(
            f"--backbone {backbone}: tracker {tracker!r} has no backbone to choose "
            f"({' and '.join(choosing)} have {backbone})"
        )
    return backbones[backbone]().to_dict()


RUN_FILES = ("config.json", "checkpoint.pt", "log.csv")


def check_new_run(out: Path, overwrite: bool, weights_files: list[str]) -> None:
    """Refuse to start a run in a folder that holds one, unless ``overwrite`` (then remove the
    old run's files: its config, checkpoint, log and weights with their cards)."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if not found:
        return
    if not overwrite:
        step = _stored_step(out)
        raise DeepMOTError(
            f"--out {out} holds a training run already ({', '.join(found)}{step}): --resume "
            "continues it, --overwrite replaces it, or choose another --out"
        )
    from deepmot.engine.run import is_main_process

    if not is_main_process():  # under torchrun, rank 0 clears the folder
        return
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for name in weights_files:  # the weights and their JSON cards
        (out / name).unlink(missing_ok=True)
        (out / name).with_suffix(".json").unlink(missing_ok=True)
    log.warning("--overwrite: removed the earlier run in %s", out)


def _stored_step(out: Path) -> str:
    """``"; step 400 of 400"`` from a run folder's config and log, or ``""``."""
    import csv
    import json

    try:
        total = json.loads((out / "config.json").read_text())["iterations"]
        with (out / "log.csv").open(newline="") as handle:
            rows = list(csv.reader(handle))
        return f"; step {int(rows[-1][0]) if len(rows) > 1 else 0} of {total}"
    except (OSError, KeyError, ValueError, IndexError, TypeError):
        return ""


def _resumed_config(args: argparse.Namespace) -> TrackerTrainConfig:
    from deepmot.engine.run import TrainingRun

    if not (args.out / "checkpoint.pt").is_file():
        raise DeepMOTError(
            f"--resume: {args.out / 'checkpoint.pt'} does not exist, so there is nothing to "
            "resume (drop --resume to start a run)"
        )
    previous = TrainingRun(args.out, (), resume=True)
    try:
        stored = TrackerTrainConfig.from_dict(previous.stored_config or {})
        config = TrackerTrainConfig.from_dict(
            {
                **stored.to_dict(),
                "iterations": args.iterations or stored.iterations,
                "device": args.device or stored.device,
            }
        )
    except (ValueError, TypeError) as error:
        raise DeepMOTError(f"{previous.checkpoint_path}: not a tracker run ({error})") from None
    _check_resumed_options(args, stored, previous.checkpoint_path)
    done = previous.start_iteration
    if done >= config.iterations:
        asked = "" if args.iterations is None else f" --iterations {args.iterations}"
        raise DeepMOTError(
            f"--resume{asked}: {args.out} has trained {done} iterations (of "
            f"{stored.iterations}) already; nothing left to do (give --iterations N with "
            f"N > {done} to train on)"
        )
    return config


def _check_resumed_options(
    args: argparse.Namespace, stored: TrackerTrainConfig, where: Path
) -> None:
    """A resumed run keeps its settings (see :func:`check_resumed_options`)."""
    check_resumed_options(
        args,
        _SETTINGS,
        _DEFAULTS,
        lambda: _config(args).to_dict(),
        stored.to_dict(),
        where,
        "--iterations and --device",
    )


def run(args: argparse.Namespace) -> int:
    from deepmot.commands._args import check_device
    from deepmot.trackers.registry import get_trainable

    if args.resume and args.overwrite:
        raise DeepMOTError("--resume and --overwrite exclude each other: continue or replace")
    config = _resumed_config(args) if args.resume else _config(args)
    try:
        trainable = get_trainable(config.tracker)
    except ValueError as error:
        raise DeepMOTError(f"--tracker {config.tracker}: {error}") from None
    if config.matcher_path is not None and not config.matcher_path.is_file():
        raise DeepMOTError(f"--matcher {config.matcher}: {config.matcher_path}: no such file")
    check_device(config.device)
    check_distributed(args, config.device)
    if not args.resume:
        check_new_run(args.out, args.overwrite, [trainable.weights_file])
    from deepmot.data.loading import load_sequences

    sequences = load_sequences(
        args.mot_root,
        config.det_file,
        args.sequences,
        need="gt",
        explicit=args.det_file is not None,
    )
    import torch

    from deepmot.train.tracker import train_tracker

    torch.set_num_threads(1)  # tiny models: extra threads only contend (up to 60x slower here)
    summary = train_tracker(
        sequences,
        args.out,
        config,
        resume=args.resume,
        progress=not args.no_progress,
        backend=args.dist_backend,
        amp=args.amp,
        workers=args.workers,
    )
    from deepmot.engine.run import is_main_process

    if not is_main_process():  # under torchrun, rank 0 reports
        return 0
    log.info(
        "trained %d iterations on %d sequences; weights: %s",
        summary["iterations"],
        len(sequences),
        summary["weights"],
    )
    if summary["last"]:
        log.info("last step: %s", ", ".join(f"{k}={v:.4g}" for k, v in summary["last"].items()))
    from deepmot.viz.training import plot_diagnostics, plot_training_curves

    loss_name = {"deepmot": "the DeepMOT loss", "smoothl1": "Smooth-L1"}.get(
        config.loss, "its single-object objective (Vanilla)"
    )
    written = [
        plot_training_curves(
            {config.tracker: args.out / "log.csv"},
            args.out / "training_curves.png",
            title=f"{config.tracker} trained with {loss_name} on {args.mot_root}",
        )
    ]
    if config.loss == "deepmot":
        written.append(plot_diagnostics(args.out / "log.csv", args.out / "diagnostics.png"))
    log.info("plots: %s", ", ".join(str(p) for p in written))
    return 0
