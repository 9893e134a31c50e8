"""``deepmot detector train|eval``: the person detector Tracktor regresses with.

Standard library only at module level; torch and the rest are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from deepmot.commands._args import (
    HelpFormatter,
    existing_dir,
    existing_file,
    int_at_least,
    output_dir,
    positive_float,
    probability,
)
from deepmot.commands.train import check_distributed, check_new_run, distributed_options
from deepmot.errors import DeepMOTError

log = logging.getLogger(__name__)

# = detection.config.BACKBONES
BACKBONES = ("resnet50_fpn", "resnet18_fpn", "mobilenet_v3_fpn", "mobilenet_v2_fpn")
TRAIN_SEED, HELD_OUT_SEED = 0, 1000  # synthetic scenes: training and held-out ones differ


def frame_part(text: str) -> str:
    """``train``, ``val`` or ``A:B`` (fractions, 0 <= A < B <= 1)."""
    if text in ("train", "val"):
        return text
    try:
        start, end = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not train, val or A:B (two fractions): {text!r}"
        ) from None
    if not 0.0 <= start < end <= 1.0:
        raise argparse.ArgumentTypeError(f"need 0 <= A < B <= 1, got {text}")
    return text


def part_frames(seq_length: int, part: str) -> range:
    """The frames of ``part`` (see :func:`frame_part`): the paper's split
    (:func:`deepmot.data.sequence.paper_split`) for ``train`` / ``val``, else frames
    ``int(n * A) + 1 .. int(n * B)``."""
    from deepmot.data.sequence import paper_split

    if part in ("train", "val"):
        return paper_split(seq_length)[0 if part == "train" else 1]
    start, end = (float(x) for x in part.split(":"))
    return range(int(seq_length * start) + 1, int(seq_length * end) + 1)


def data_options(parser: argparse.ArgumentParser, seed: int, sequences: int) -> None:
    parser.add_argument(
        "mot_root",
        nargs="*",
        type=existing_dir,
        metavar="MOT_ROOT",
        help="folders of MOTChallenge sequences with img1/ and gt/gt.txt (default: synthetic "
        "scenes, see --synthetic)",
    )
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="synthetic scenes rendered in memory (the default without MOT_ROOT; with it, "
        "added to its sequences)",
    )
    parser.add_argument(
        "--part",
        type=frame_part,
        default=None,
        metavar="PART",
        help="only these frames of each MOT_ROOT sequence: train (the paper's first half), "
        "val (its last quarter) or A:B (fractions, e.g. 0.35:0.5); default: all",
    )
    parser.add_argument(
        "--part-only",
        nargs="+",
        metavar="PREFIX",
        help="apply --part only to the MOT_ROOT sequences whose names start so (the others "
        "keep all their frames)",
    )
    parser.add_argument(
        "--sequences",
        type=int_at_least(1),
        default=sequences,
        help="synthetic scenes to make",
    )
    parser.add_argument(
        "--frames", type=int_at_least(2), default=300, help="frames per synthetic scene"
    )
    parser.add_argument(
        "--scene-seed",
        type=int_at_least(0),
        default=seed,
        help="seed of the synthetic scenes (training and held-out scenes use different ones)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="PREFIX", help="only MOT_ROOT sequences whose names start so"
    )
    parser.add_argument(
        "--min-visibility",
        type=probability,
        default=0.25,
        help="people less visible are no targets (and no false positives in eval)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detector",
        help="train and evaluate the person detector (Faster R-CNN) Tracktor uses",
        description="The two-class Faster R-CNN of Tracktor: training and evaluation.",
    )
    sub = parser.add_subparsers(
        dest="detector_command", metavar="STEP", required=True, help="train or eval"
    )

    train = sub.add_parser(
        "train",
        help="train a detector from scratch on synthetic scenes or MOTChallenge frames",
        description=(
            "Train a two-class Faster R-CNN (untrained start: nothing is downloaded) on "
            "synthetic scenes (default) or on every sequence under MOT_ROOT with img1/ and "
            "gt/gt.txt. Writes config.json, checkpoint.pt, log.csv and detector.safetensors "
            "(with a JSON card) into --out; Ctrl-C checkpoints, --resume continues."
        ),
        formatter_class=HelpFormatter,
    )
    data_options(train, TRAIN_SEED, 4)
    train.add_argument("--out", type=output_dir, required=True, help="run folder (made)")
    train.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="mobilenet_v3_fpn",
        help="resnet50_fpn is Tracktor's (box head 1024, images 800 px); mobilenet_v2_fpn "
        "takes --init-backbone (box head 256, images 432 px); the others are light (box head "
        "256, images 320 px)",
    )
    train.add_argument(
        "--min-size", type=int_at_least(32), default=None, help="shorter image side, resized"
    )
    train.add_argument(
        "--max-size", type=int_at_least(32), default=None, help="longer image side, at most"
    )
    train.add_argument(
        "--init-backbone",
        type=existing_file,
        default=None,
        metavar="FILE",
        help="start mobilenet_v2_fpn's backbone from converted SSDLite weights "
        "(scripts/convert_ssdlite_backbone.py)",
    )
    train.add_argument(
        "--init-detector",
        type=existing_file,
        default=None,
        metavar="FILE",
        help="start from a trained detector's weights (all of them; e.g. the shipped "
        "detector_real.safetensors, fine-tuned at another --min-size); --backbone must be its",
    )
    train.add_argument(
        "--frozen-layers",
        type=int_at_least(0),
        default=0,
        help="the backbone's first N modules are not trained (with --init-backbone)",
    )
    train.add_argument(
        "--synthetic-share",
        type=probability,
        default=None,
        help="share of the frames drawn from synthetic scenes, the rest from MOT_ROOT's "
        "(every real frame equally likely); default: every sequence equally often",
    )
    train.add_argument("--iterations", type=int_at_least(1), default=None, help="steps")
    train.add_argument("--batch-size", type=int_at_least(1), default=2, help="images per step")
    train.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW learning rate")
    train.add_argument("--seed", type=int_at_least(0), default=0, help="seed of model and batches")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    train.add_argument(
        "--norm",
        choices=("batch", "frozen"),
        default="batch",
        help="batch: BatchNorm trains (from scratch); frozen: FrozenBatchNorm2d, statistics "
        "fixed (under torchrun on the CPU, the setting with which N processes train exactly "
        "as one: SyncBatchNorm runs on CUDA only)",
    )
    train.add_argument(
        "--device",
        default=None,
        help="cpu, cuda or cuda:N (default: cpu, or the stored one on --resume, where it may "
        "change)",
    )
    train.add_argument(
        "--workers",
        type=int_at_least(0),
        default=0,
        help="DataLoader processes reading (decoding, rendering) the next steps' frames",
    )
    train.add_argument("--half", action="store_true", help="store the weights as float16")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    distributed_options(train)
    train.set_defaults(run=run_train)

    evaluate = sub.add_parser(
        "eval",
        help="AP50 and AP[.5:.95] of a detector on held-out sequences",
        description=(
            "Run a detector on held-out sequences (synthetic scenes with another seed than "
            "training's, or MOT_ROOT) and print AP50 and AP[.5:.95] (torchmetrics' COCO mAP, "
            "pycocotools backend) as JSON."
        ),
        formatter_class=HelpFormatter,
    )
    data_options(evaluate, HELD_OUT_SEED, 2)
    evaluate.add_argument(
        "--weights",
        type=existing_file,
        default=None,
        help="detector.safetensors, a torchvision or Tracktor Faster R-CNN state dict, or "
        "tracktor.safetensors (default: the shipped detector, Tracktor's default)",
    )
    evaluate.add_argument(
        "--stride", type=int_at_least(1), default=5, help="evaluate every N-th frame"
    )
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=run_eval)


def load_data(args: argparse.Namespace, prefix: str) -> list:
    """The sequences of ``args``: MOT_ROOTs' with frames and gt (``--part`` of their frames),
    synthetic scenes, or both."""
    synthetic = []
    if not args.mot_root or args.synthetic:
        from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene

        base = SceneConfig(frames=args.frames, seed=args.scene_seed)
        configs = dataset_configs(args.sequences, base, prefix=prefix)
        synthetic = [generate_scene(c).to_sequence() for c in configs]
    if not args.mot_root:
        return synthetic
    from deepmot.data.sequence import Sequence
    from deepmot.io.mot import find_sequences

    usable = []
    for root in args.mot_root:
        paths = [
            p
            for p in find_sequences(root)
            if not args.only or any(p.name.startswith(x) for x in args.only)
        ]
        sequences = [Sequence.from_dir(p) for p in paths]
        found = [s for s in sequences if s.gt is not None and s.has_images]
        if not found:
            raise DeepMOTError(
                f"MOT_ROOT {root}: no sequence with img1/ and gt/gt.txt"
                + (f" whose name starts with {' or '.join(args.only)}" if args.only else "")
            )
        usable += found
    if args.part is not None:
        usable = [
            _part_of(s, args.part)
            if not args.part_only or any(s.name.startswith(x) for x in args.part_only)
            else s
            for s in usable
        ]
    return usable + synthetic


def _part_of(sequence, part: str):
    frames = part_frames(sequence.seq_length, part)
    if len(frames) == 0:
        raise DeepMOTError(
            f"--part {part}: no frame of {sequence.name} ({sequence.seq_length} frames)"
        )
    return sequence.clip(frames)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from deepmot.commands._args import check_device
    from deepmot.detection.config import DetectorConfig, DetectorTrainConfig
    from deepmot.detection.train import WEIGHTS_FILE, train_detector
    from deepmot.engine.run import is_main_process

    if args.resume and args.overwrite:
        raise DeepMOTError("--resume and --overwrite exclude each other: continue or replace")
    device = args.device or _stored_device(args) or "cpu"
    check_device(device)
    check_distributed(args, device)
    if not args.resume:
        check_new_run(args.out, args.overwrite, [WEIGHTS_FILE])
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    sequences = load_data(args, "SYNTH")
    overrides = {k: v for k, v in (("min_size", args.min_size), ("max_size", args.max_size)) if v}
    if args.init_backbone is not None and args.backbone != "mobilenet_v2_fpn":
        raise DeepMOTError(
            f"--init-backbone holds MobileNetV2 weights: use --backbone mobilenet_v2_fpn, "
            f"not {args.backbone}"
        )
    if args.init_backbone is not None and args.init_detector is not None:
        raise DeepMOTError("--init-backbone and --init-detector exclude each other")
    if args.backbone == "resnet50_fpn":
        detector = DetectorConfig(**overrides)
    elif args.backbone == "mobilenet_v2_fpn":
        detector = DetectorConfig.ssdlite(**overrides)
    else:
        detector = DetectorConfig.light(backbone=args.backbone, **overrides)
    config = None  # on --resume: the stored settings, with a new --device
    if args.resume and args.iterations is None and args.device is not None:
        config = _stored(args)
        config = replace(config, device=args.device) if config is not None else None
    elif not (args.resume and args.iterations is None):
        config = DetectorTrainConfig(
            detector=detector,
            iterations=args.iterations or DetectorTrainConfig.iterations,
            batch_size=args.batch_size,
            lr=args.lr,
            min_visibility=args.min_visibility,
            seed=args.seed,
            norm=args.norm,
            device=device,
            init_backbone=str(args.init_backbone) if args.init_backbone else None,
            init_detector=str(args.init_detector) if args.init_detector else None,
            frozen_layers=args.frozen_layers,
            synthetic_share=args.synthetic_share,
        )
    parts = []
    if args.mot_root:
        parts.append(
            " ".join(str(r) for r in args.mot_root)
            + (f" (frames {args.part}" if args.part else "")
            + (f" of {' '.join(args.part_only)}*" if args.part and args.part_only else "")
            + (")" if args.part else "")
            + (f" (sequences {' '.join(args.only)}*)" if args.only else "")
        )
    if not args.mot_root or args.synthetic:
        parts.append(
            f"{args.sequences} synthetic scenes x {args.frames} frames, scene seed "
            f"{args.scene_seed}"
        )
    data = " + ".join(parts)
    result = train_detector(
        sequences,
        args.out,
        config,
        resume=args.resume,
        progress=not args.no_progress,
        card={"data": data},
        half=args.half,
        backend=args.dist_backend,
        amp=args.amp,
        workers=args.workers,
    )
    if is_main_process():  # under torchrun, rank 0 reports
        log.info("wrote %s after %d steps", result["weights"], result["iterations"])
    return 0


def _stored(args: argparse.Namespace):
    """The settings of the run in ``--out`` on --resume (None without a readable one)."""
    if not args.resume:
        return None
    from deepmot.detection.config import DetectorTrainConfig
    from deepmot.engine.run import TrainingRun

    try:
        stored = TrainingRun(args.out, (), resume=True).stored_config
        return DetectorTrainConfig.from_dict(stored) if stored else None
    except (OSError, ValueError, TypeError, DeepMOTError):
        return None  # train_detector names what is wrong with the run


def _stored_device(args: argparse.Namespace) -> str | None:
    stored = _stored(args)
    return stored.device if stored is not None else None


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from deepmot.detection.evaluate import evaluate_detector

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    from deepmot.trackers.tracktor import SHIPPED_DETECTOR

    weights = args.weights or SHIPPED_DETECTOR
    model = load_any_detector(weights)
    sequences = load_data(args, "HELDOUT")
    result = evaluate_detector(
        model, sequences, args.min_visibility, args.stride, progress=not args.no_progress
    )
    result["weights"] = str(weights)
    result["sequences"] = [s.name for s in sequences]
    print(json.dumps(result, indent=2))
    return 0


def load_any_detector(path: Path):
    """A detector from a detector file or from trained Tracktor weights."""
    from deepmot.trackers.tracktor import load_tracktor

    return load_tracktor(path).detector
