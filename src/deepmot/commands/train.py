"""``deepmot train MOT_ROOT --out RUN``: train a tracker with the DeepMOT loss (or Smooth-L1).

Defaults come from :class:`~deepmot.train.config.TrackerTrainConfig` and
:class:`~deepmot.loss_config.DeepMOTLossConfig` (both importable without torch).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deepmot.loss_config import DeepMOTLossConfig
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
            "soft terms and the true MOTA/MOTP of each batch) and the weights into --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("mot_root", type=Path, metavar="MOT_ROOT", help="folder of sequences")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument(
        "--tracker", default=_TRAIN.tracker, help="a trainable tracker (--list-trackers)"
    )
    parser.add_argument(
        "--list-trackers", action="store_true", help="print the trainable trackers and exit"
    )
    parser.add_argument("--loss", choices=["deepmot", "smoothl1"], default=_TRAIN.loss)
    parser.add_argument(
        "--matcher",
        default=_TRAIN.matcher,
        help="frozen matcher inside the loss: dhn (shipped), dhn:PATH (your DHN), sinkhorn",
    )
    parser.add_argument(
        "--sampling",
        choices=["pairs", "clips"],
        default=_TRAIN.sampling,
        help="frame pairs from ground truth, or clips where the tracker runs on its outputs",
    )
    parser.add_argument(
        "--clip-length", type=int, default=_TRAIN.clip_length, help="frames per clip"
    )
    parser.add_argument(
        "--iterations", type=int, default=None, help=f"steps (default {_TRAIN.iterations})"
    )
    parser.add_argument(
        "--batch-size", type=int, default=_TRAIN.batch_size, help="pairs or clips per step"
    )
    parser.add_argument("--lr", type=float, default=_TRAIN.lr, help="Adam's learning rate")
    loss = parser.add_argument_group("DeepMOT loss")
    loss.add_argument("--lam", type=float, default=_LOSS.lam, help="λ, weight of 1 - dMOTP")
    loss.add_argument("--gamma", type=float, default=_LOSS.gamma, help="γ, weight of IDS~")
    loss.add_argument("--delta", type=float, default=_LOSS.delta, help="δ, the dustbin value")
    loss.add_argument(
        "--scale", type=float, default=_LOSS.scale, help="softmax inverse temperature"
    )
    loss.add_argument(
        "--gate", choices=["soft", "hard", "none"], default=_LOSS.gate, help="gating of far pairs"
    )
    loss.add_argument("--no-dmota", action="store_true", help="train on dMOTP alone")
    aug = parser.add_argument_group("trajectory augmentation (probabilities)")
    aug.add_argument(
        "--perturb", type=float, default=_AUG.perturb, help="rescale/shift a starting box"
    )
    aug.add_argument("--drop", type=float, default=_AUG.drop, help="start an object untracked")
    aug.add_argument(
        "--false-tracks",
        type=float,
        default=_AUG.false_tracks,
        help="mean number of false tracks per clip",
    )
    aug.add_argument("--swap", type=float, default=_AUG.swap, help="swap a track's id")
    parser.add_argument(
        "--det-file",
        default=_TRAIN.det_file,
        help="detection file in each det/ folder (sequences without it use det/det.txt)",
    )
    parser.add_argument(
        "--no-detections",
        action="store_true",
        help="a model that does not look at detections (in training and in tracking)",
    )
    parser.add_argument("--sequences", nargs="+", metavar="PREFIX", help="only these sequences")
    parser.add_argument("--seed", type=int, default=_TRAIN.seed, help="seed of model and samples")
    parser.add_argument(
        "--device", default=None, help=f"cpu, cuda, cuda:1 ... (default {_TRAIN.device})"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from --out/checkpoint.pt with its settings (--iterations and --device "
        "may change)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def load_sequences(root: Path, det_file: str | None, prefixes: list[str] | None) -> list:
    """Sequences under ``root`` with ground truth, with ``det_file`` where they have it (else
    ``det/det.txt`` if present); a sequence without either is logged."""
    from deepmot.data.sequence import Sequence
    from deepmot.errors import DeepMOTError
    from deepmot.io.mot import find_sequences

    if not root.is_dir():
        raise DeepMOTError(f"{root}: no such folder of sequences")
    sequences = []
    for path in find_sequences(root):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        available = Sequence.detection_files(path)
        name = det_file if det_file in available else None
        if det_file is not None and name is None:
            fallback = "det/det.txt" if "det.txt" in available else "no detections"
            log.warning("%s has no det/%s: using %s", path.name, det_file, fallback)
        seq = Sequence.from_dir(path, det_file=name)
        if seq.gt is not None:
            sequences.append(seq)
    if not sequences:
        raise DeepMOTError(
            f"{root}: no sequences with ground truth"
            + (f" matching {prefixes}" if prefixes else "")
        )
    return sequences


def _config(args: argparse.Namespace) -> TrackerTrainConfig:
    from dataclasses import replace

    from deepmot.errors import DeepMOTError

    try:
        return TrackerTrainConfig(
            tracker=args.tracker,
            model={"use_detections": False} if args.no_detections else {},
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
            ),
            lr=args.lr,
            iterations=args.iterations if args.iterations is not None else _TRAIN.iterations,
            batch_size=args.batch_size,
            det_file=args.det_file,
            seed=args.seed,
            device=args.device or _TRAIN.device,
        )
    except ValueError as error:
        raise DeepMOTError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    import torch

    from deepmot.errors import DeepMOTError
    from deepmot.trackers import list_trainable

    if args.list_trackers:
        print("\n".join(list_trainable()))
        return 0
    if args.resume:
        from deepmot.train.run import TrainingRun

        stored = TrackerTrainConfig.from_dict(
            TrainingRun(args.out, (), resume=True).stored_config or {}
        )
        config = TrackerTrainConfig.from_dict(
            {
                **stored.to_dict(),
                "iterations": args.iterations or stored.iterations,
                "device": args.device or stored.device,
            }
        )
    else:
        config = _config(args)
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise DeepMOTError(f"--device {config.device}: CUDA is not available on this machine")
    sequences = load_sequences(args.mot_root, config.det_file, args.sequences)
    from deepmot.train.tracker import train_tracker

    torch.set_num_threads(1)  # tiny models: extra threads only contend (up to 60x slower here)
    summary = train_tracker(
        sequences, args.out, config, resume=args.resume, progress=not args.no_progress
    )
    log.info(
        "trained %d iterations on %d sequences; weights: %s",
        summary["iterations"],
        len(sequences),
        summary["weights"],
    )
    if summary["last"]:
        log.info("last step: %s", ", ".join(f"{k}={v:.4g}" for k, v in summary["last"].items()))
    return 0
