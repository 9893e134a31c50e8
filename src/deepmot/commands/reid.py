"""``deepmot reid train|eval``: the external ReID network of Tracktor's +ReIDext rows.

Standard library only at module level; torch and the rest are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepmot.commands._args import (
    HelpFormatter,
    existing_file,
    int_at_least,
    output_dir,
    positive_float,
    probability,
)
from deepmot.commands.detector import HELD_OUT_SEED, TRAIN_SEED, data_options, load_data

WEIGHTS_FILE = "reid.safetensors"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reid",
        help="train and evaluate the external ReID network (Tracktor +ReIDext)",
        description="A ResNet embedding trained with a batch-hard triplet loss on identity "
        "crops; Tracktor uses it with reid=external:PATH.",
    )
    sub = parser.add_subparsers(
        dest="reid_command", metavar="STEP", required=True, help="train or eval"
    )

    train = sub.add_parser(
        "train",
        help="train on identity crops of synthetic scenes or MOTChallenge frames",
        description=(
            "Cut the ground-truth people of the first --train-fraction of each sequence out of "
            "its frames and train a ResNet embedding with the batch-hard triplet loss. Writes "
            f"{WEIGHTS_FILE} and its JSON card into --out."
        ),
        formatter_class=HelpFormatter,
    )
    data_options(train, TRAIN_SEED, 2)
    train.add_argument("--out", type=output_dir, required=True, help="folder for the weights")
    train.add_argument(
        "--arch",
        choices=("resnet18", "resnet34", "resnet50"),
        default="resnet18",
        help="the torchvision ResNet (untrained start; the paper's external ReID is a ResNet-50)",
    )
    train.add_argument("--steps", type=int_at_least(1), default=100, help="optimisation steps")
    train.add_argument("--identities", type=int_at_least(2), default=8, help="P per batch")
    train.add_argument("--per-identity", type=int_at_least(2), default=4, help="K per batch")
    train.add_argument("--lr", type=positive_float, default=3e-4, help="Adam's learning rate")
    train.add_argument(
        "--train-fraction", type=probability, default=0.5, help="first share of frames used"
    )
    train.add_argument("--seed", type=int_at_least(0), default=0, help="seed of model, batches")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=run_train)

    evaluate = sub.add_parser(
        "eval",
        help="rank-1 and mAP on held-out identities",
        description=(
            "Cut crops of held-out sequences (every --stride-th frame), let every crop query "
            "all the others by cosine similarity, and print rank-1 and mAP (torchmetrics' "
            "retrieval metrics) as JSON; --baseline adds an untrained network's."
        ),
        formatter_class=HelpFormatter,
    )
    data_options(evaluate, HELD_OUT_SEED, 2)
    evaluate.add_argument("weights", type=existing_file, help=f"a {WEIGHTS_FILE}")
    evaluate.add_argument("--stride", type=int_at_least(1), default=10, help="every N-th frame")
    evaluate.add_argument(
        "--baseline", action="store_true", help="also score an untrained network (seed 0)"
    )
    evaluate.set_defaults(run=run_eval)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from deepmot.trackers.reid import ReIDConfig, save_reid
    from deepmot.train.reid import ReIDTrainConfig, identity_crops, train_reid

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    config = ReIDTrainConfig(
        model=ReIDConfig(arch=args.arch),
        steps=args.steps,
        identities=args.identities,
        per_identity=args.per_identity,
        lr=args.lr,
        min_visibility=max(args.min_visibility, ReIDTrainConfig.min_visibility),
        train_fraction=args.train_fraction,
        seed=args.seed,
    )
    sequences = load_data(args, "SYNTH")
    crops_t, labels_t = identity_crops(
        sequences,
        config.model.crop_size,
        config.frame_stride,
        config.min_visibility,
        config.train_fraction,
    )
    model, losses = train_reid(crops_t, labels_t, config, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card = {
        "train": config.to_dict(),
        "data": " ".join(str(r) for r in args.mot_root)
        if args.mot_root
        else f"{args.sequences} synthetic scenes x "
        f"{args.frames} frames, scene seed {args.scene_seed}",
        "crops": len(labels_t),
        "identities": int(labels_t.unique().numel()),
        "loss_first_10": sum(losses[:10]) / len(losses[:10]),
        "loss_last_10": sum(losses[-10:]) / len(losses[-10:]),
    }
    save_reid(model, out / WEIGHTS_FILE, card)
    print(json.dumps({"weights": str(out / WEIGHTS_FILE), **card}, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from deepmot.trackers.reid import ReIDNet, load_reid
    from deepmot.train.reid import evaluate_reid, identity_crops

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    model = load_reid(args.weights)
    sequences = load_data(args, "HELD")
    crops, labels = identity_crops(
        sequences, model.config.crop_size, args.stride, max(args.min_visibility, 0.6)
    )
    report = {"weights": str(args.weights), **evaluate_reid(model, crops, labels)}
    if args.baseline:
        torch.manual_seed(0)
        untrained = evaluate_reid(ReIDNet(model.config), crops, labels)
        report["untrained"] = {k: untrained[k] for k in ("rank1", "mAP")}
    print(json.dumps(report, indent=2))
    return 0
