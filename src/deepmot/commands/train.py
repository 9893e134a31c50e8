"""``deepmot train MOT_ROOT --out RUN``: train a motion tracker with the DeepMOT loss."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a tracker with the DeepMOT loss (or Smooth-L1)",
        description=(
            "Train the learned motion tracker on the first half of every sequence under MOT_ROOT "
            "that has ground truth (the paper's split): tracks start from perturbed ground truth "
            "at t-1, the model predicts them at t, and the DeepMOT loss (through a frozen DHN) or "
            "Smooth-L1 trains it. Writes config.json, checkpoint.pt, log.csv (loss, soft terms and "
            "the true MOTA/MOTP of each batch) and motion.safetensors into --out."
        ),
    )
    parser.add_argument("mot_root", type=Path, metavar="MOT_ROOT", help="folder of sequences")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--tracker", choices=["motion"], default="motion", help="what to train")
    parser.add_argument("--loss", choices=["deepmot", "smoothl1"], default="deepmot")
    parser.add_argument("--matcher", choices=["dhn", "sinkhorn"], default="dhn")
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16, help="frame pairs per step")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument(
        "--lam", type=float, default=5.0, help="λ, weight of 1 - dMOTP (0: dMOTA only)"
    )
    parser.add_argument("--gamma", type=float, default=2.0, help="γ, weight of ID switches")
    parser.add_argument("--no-dmota", action="store_true", help="train on dMOTP alone")
    parser.add_argument(
        "--det-file",
        default="deepmot_clean_FRCNN.txt",
        help="detection file in each det/ folder the model sees ('none': no detections; "
        "sequences without it use det/det.txt if present)",
    )
    parser.add_argument("--sequences", nargs="+", metavar="PREFIX", help="only these sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def load_sequences(root: Path, det_file: str | None, prefixes: list[str] | None) -> list:
    """Sequences under ``root`` with ground truth, with ``det_file`` where they have it."""
    from deepmot.data.sequence import Sequence
    from deepmot.errors import DeepMOTError
    from deepmot.io.mot import find_sequences

    sequences = []
    for path in find_sequences(root):
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        available = Sequence.detection_files(path)
        name = det_file if det_file in available else None
        seq = Sequence.from_dir(path, det_file=name)
        if seq.gt is not None:
            sequences.append(seq)
    if not sequences:
        raise DeepMOTError(
            f"{root}: no sequences with ground truth"
            + (f" matching {prefixes}" if prefixes else "")
        )
    return sequences


def run(args: argparse.Namespace) -> int:
    import torch

    from deepmot.train.tracker import TrackerTrainConfig, train_motion_tracker

    det_file = None if args.det_file == "none" else args.det_file
    sequences = load_sequences(args.mot_root, det_file, args.sequences)
    config = TrackerTrainConfig(
        loss=args.loss,
        matcher=args.matcher,
        iterations=args.iterations,
        batch_size=args.batch_size,
        lr=args.lr,
        lam=args.lam,
        gamma=args.gamma,
        use_dmota=not args.no_dmota,
        det_file=det_file,
        seed=args.seed,
        device=args.device,
    )
    torch.set_num_threads(1)  # tiny models: extra threads only contend (up to 60x slower here)
    summary = train_motion_tracker(
        sequences,
        args.out,
        None if args.resume else config,
        resume=args.resume,
        progress=not args.no_progress,
    )
    log.info(
        "trained %d iterations on %d sequences; weights: %s",
        summary["iterations"],
        len(sequences),
        summary["weights"],
    )
    log.info("last step: %s", ", ".join(f"{k}={v:.4g}" for k, v in summary["last"].items()))
    return 0
