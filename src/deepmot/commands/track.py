"""``deepmot track MOT_ROOT --out RESULTS``: run a tracker over sequences, write result files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="track sequences with public detections and write MOTChallenge result files",
        description=(
            "Run a tracker over every sequence under MOT_ROOT that has the detection file, and "
            "write RESULTS/<sequence>.txt (frame,id,x,y,w,h,score,-1,-1,-1), ready for "
            "'deepmot eval MOT_ROOT RESULTS'."
        ),
    )
    parser.add_argument("mot_root", type=Path, metavar="MOT_ROOT", help="folder of sequences")
    parser.add_argument("--out", type=Path, required=True, help="folder for the result files")
    parser.add_argument(
        "--tracker",
        default="motion",
        help="a registered tracker: constant_velocity, motion, ... (default: motion)",
    )
    parser.add_argument("--weights", type=Path, help="trained weights (e.g. motion.safetensors)")
    parser.add_argument(
        "--split",
        choices=["all", "val"],
        default="all",
        help="track every frame, or only the validation split (the last 25%% of each sequence, "
        "frames the trainer never sees); result rows keep the sequence's frame numbers, so "
        "score them with 'deepmot eval ... --frames val' (default: all)",
    )
    parser.add_argument(
        "--det-file", default="det.txt", help="detection file in det/ (default det.txt)"
    )
    parser.add_argument("--sequences", nargs="+", metavar="PREFIX", help="only these sequences")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from deepmot.data.sequence import Sequence
    from deepmot.errors import DeepMOTError
    from deepmot.io.mot import find_sequences, write_results
    from deepmot.trackers import create_tracker, track_sequence
    from deepmot.trackers.registry import tracker_entry

    torch.set_num_threads(1)  # tiny models: extra threads only contend (up to 60x slower here)
    if not args.mot_root.is_dir():
        raise DeepMOTError(f"{args.mot_root}: no such folder of sequences")
    if args.weights is not None and not args.weights.is_file():
        raise DeepMOTError(f"{args.weights}: no such weights file")
    try:
        entry = tracker_entry(args.tracker)
        if entry.trainable is not None and args.weights is None:
            log.warning(
                "tracker %r runs untrained (no --weights): train it with 'deepmot train'",
                args.tracker,
            )
        tracker = create_tracker(args.tracker, weights=args.weights)
    except ValueError as error:
        raise DeepMOTError(str(error)) from None
    written = 0
    for path in find_sequences(args.mot_root):
        if args.sequences and not any(path.name.startswith(p) for p in args.sequences):
            continue
        if args.det_file not in Sequence.detection_files(path):
            log.info("skipping %s: no det/%s", path.name, args.det_file)
            continue
        sequence = Sequence.from_dir(path, det_file=args.det_file)
        offset = 0
        if args.split == "val":
            frames = sequence.split()[1]
            sequence, offset = sequence.clip(frames), frames[0] - 1
        results = track_sequence(tracker, sequence, progress=not args.no_progress)
        results = replace(results, frames=results.frames + offset)
        write_results(args.out / f"{path.name}.txt", results)
        written += 1
    if not written:
        raise DeepMOTError(f"{args.mot_root}: no sequence with det/{args.det_file}")
    log.info("wrote %d result file(s) to %s", written, args.out)
    return 0
