"""``deepmot synth OUT``: write synthetic MOTChallenge sequences (frames, gt, det, seqinfo)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deepmot.commands._args import int_at_least, output_dir

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic MOTChallenge sequences",
        description=(
            "Write N synthetic sequences SYNTH-01, SYNTH-02, ... under OUT, each a MOTChallenge "
            "folder with img1/*.jpg, gt/gt.txt, det/det.txt and seqinfo.ini, and a preview PNG "
            "of one frame with its ground-truth boxes. The same --seed gives the same files."
        ),
    )
    parser.add_argument(
        "out", type=output_dir, metavar="OUT", help="folder to write the sequences in"
    )
    parser.add_argument("--sequences", type=int_at_least(1), default=4, help="number (default 4)")
    parser.add_argument("--frames", type=int_at_least(1), default=300, help="frames (default 300)")
    parser.add_argument("--width", type=int_at_least(64), default=640, help="pixels (default 640)")
    parser.add_argument("--height", type=int_at_least(64), default=480, help="pixels (default 480)")
    parser.add_argument(
        "--people", type=int_at_least(0), default=20, help="people in view at a time (default 20)"
    )
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="random seed (default 0)")
    parser.add_argument("--camera-motion", action="store_true", help="pan the camera smoothly")
    parser.add_argument(
        "--no-images", action="store_true", help="write annotations only (no img1/, much faster)"
    )
    parser.add_argument(
        "--preview",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write OUT/<first sequence>_preview.png, a frame with its gt boxes (default: on)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace sequence folders that already exist"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from deepmot.data.sequence import Sequence
    from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene, write_sequence
    from deepmot.errors import DeepMOTError
    from deepmot.viz.frames import save_frame_with_boxes

    base = SceneConfig(
        frames=args.frames,
        width=args.width,
        height=args.height,
        people=args.people,
        seed=args.seed,
        camera_motion=args.camera_motion,
    )
    configs = dataset_configs(args.sequences, base)
    out: Path = args.out
    existing = [str(out / c.name) for c in configs if (out / c.name).exists()]
    if existing and not args.overwrite:
        raise DeepMOTError(f"already exist: {', '.join(existing)} (use --overwrite to replace)")
    render = not args.no_images
    written: list[Path] = []
    first_scene = None
    for cfg in configs:
        scene = generate_scene(cfg)
        first_scene = first_scene or scene
        written.append(
            write_sequence(
                scene, out / cfg.name, render=render, overwrite=True, progress=not args.no_progress
            )
        )
    logger.info("wrote %d sequence(s) under %s", len(written), out)

    if args.preview and first_scene is not None:
        sequence = Sequence.from_dir(written[0])
        # The busiest frame of the middle half: people have moved, entered and left by then.
        counts = np.bincount(sequence.gt.frames, minlength=sequence.seq_length + 1)[1:]
        lo, hi = sequence.seq_length // 4, max(sequence.seq_length * 3 // 4, 1)
        frame = lo + int(np.argmax(counts[lo:hi])) + 1
        image = None if render else first_scene.render_frame(frame)
        path = save_frame_with_boxes(
            sequence, frame, out / f"{sequence.name}_preview.png", image=image
        )
        logger.info("preview of %s frame %d with gt boxes: %s", sequence.name, frame, path)
    return 0
