"""``deepmot track MOT_ROOT --out RESULTS``: run a tracker over sequences, write result files;
``deepmot track VIDEO --out RESULTS``: the same for a video, detections made by the detector."""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from deepmot.commands._args import (
    DET_FILE_HELP,
    SEQUENCES_HELP,
    HelpFormatter,
    existing_file,
    existing_path,
    output_dir,
    probability,
)
from deepmot.data.loading import load_sequences as load_sequences  # where tune's benchmark finds it
from deepmot.errors import DeepMOTError

log = logging.getLogger(__name__)

#: The registered trackers, for the help text (the registry imports torch; a test keeps this
#: list equal to :func:`deepmot.trackers.list_trackers`).
TRACKERS = (
    "bytetrack",
    "constant_velocity",
    "goturn",
    "kalman",
    "motion",
    "ocsort",
    "siamrpn",
    "sort",
    "tracktor",
)

#: ``deepmot.detection.config.MIN_DETECTION_SCORE`` (torch-free, but this module stays
#: standard-library only; a test keeps them equal)
MIN_DETECTION_SCORE = 0.5


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="track sequences or a video and write MOTChallenge result files",
        description=(
            "Run a tracker over every sequence under MOT_ROOT that has detections, and "
            "write RESULTS/<sequence>.txt (frame,id,x,y,w,h,score,-1,-1,-1), then print the "
            "'deepmot eval' command that scores them. Sequences without detections are skipped "
            "with a warning naming them. Given a VIDEO file instead, track it: with --det, on "
            "those detections; without, tracktor finds people with its own detector and the "
            "other trackers on the detections of the shipped detector (the one tracktor uses), "
            "scored at least --min-score; the results go to RESULTS/<name>.txt."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "mot_root",
        type=existing_path,
        metavar="MOT_ROOT|VIDEO",
        help="folder of sequence folders, or a video file (.mp4, .avi, ...: what OpenCV reads)",
    )
    parser.add_argument(
        "--out", type=output_dir, required=True, help="folder for the result files (made)"
    )
    parser.add_argument(
        "--tracker",
        help=f"a registered tracker: {', '.join(TRACKERS)} (motion is learned: give --weights; "
        "goturn, siamrpn and tracktor use their shipped weights without one); "
        "default: the one --config names, else motion",
    )
    parser.add_argument(
        "--weights",
        type=existing_file,
        help="trained weights of a learned tracker (e.g. runs/motion/motion.safetensors from "
        "'deepmot train'); without them a learned tracker runs untrained, with a warning",
    )
    parser.add_argument(
        "--split",
        choices=["all", "val"],
        default="all",
        help="track every frame, or only the validation split (the last 25%% of each sequence, "
        "frames the trainer never sees); result rows keep the sequence's frame numbers, so "
        "score them with 'deepmot eval ... --frames val'",
    )
    parser.add_argument(
        "--config",
        type=existing_file,
        metavar="FILE",
        help="tracker settings (JSON: track-management and model fields, and the tracker's "
        "name), e.g. the best_config.json 'deepmot tune' writes",
    )
    parser.add_argument("--det-file", help=f"MOT_ROOT: {DET_FILE_HELP}")
    parser.add_argument(
        "--sequences", nargs="+", metavar="NAME", help=f"MOT_ROOT: {SEQUENCES_HELP}"
    )
    parser.add_argument(
        "--det",
        type=existing_file,
        metavar="FILE",
        help="VIDEO: its detections (MOTChallenge det.txt layout, frame k = the video's k-th "
        "frame); without, the detector makes them",
    )
    parser.add_argument(
        "--gt",
        type=existing_file,
        metavar="FILE",
        help="VIDEO: its ground truth (gt.txt layout), drawn under the tracks by --video",
    )
    parser.add_argument(
        "--name", help="VIDEO: the sequence's name, RESULTS/<name>.txt (default: the file's stem)"
    )
    parser.add_argument(
        "--min-score",
        type=probability,
        help="VIDEO without --det: least score of the detector's detections (default: "
        f"{MIN_DETECTION_SCORE}, Tracktor's detection threshold; for tracktor, its "
        "detection_thresh)",
    )
    parser.add_argument(
        "--video",
        type=output_dir,
        nargs="?",
        const=True,
        metavar="DIR",
        help="also render each tracked sequence to DIR/<sequence>.mp4 (DIR: RESULTS when not "
        "given): tracks (coloured by id, with tails) over the frame, and over the ground truth "
        "where there is one, misses and false positives marked",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def _tracker(name: str, weights: Path | None, settings: dict, config: Path | None):
    from deepmot.trackers import create_tracker
    from deepmot.trackers.registry import shipped_weights, tracker_entry

    try:
        entry = tracker_entry(name)
    except ValueError as error:
        raise DeepMOTError(f"--tracker {name}: {error}") from None
    if entry.trainable is None and weights is not None:
        raise DeepMOTError(
            f"--weights {weights}: tracker {name!r} has no trained weights to load (drop "
            "--weights, or choose a learned tracker)"
        )
    if weights is None and shipped_weights(name) is None:  # shipped ones: create_tracker says
        if name == "tracktor":
            from deepmot.trackers.tracktor import SHIPPED_DETECTOR

            log.info(
                "tracktor runs with the shipped detector %s (no --weights)", SHIPPED_DETECTOR.name
            )
        elif entry.trainable is not None:
            log.warning(
                "tracker %r runs untrained (no --weights): its untrained model tracks like "
                "constant_velocity; train it with 'deepmot train' and pass --weights RUN/%s",
                name,
                entry.trainable.weights_file,
            )
    try:
        return create_tracker(name, weights=weights, **settings)
    except (ValueError, TypeError, KeyError, DeepMOTError) as error:
        if config is not None:
            raise DeepMOTError(f"--config {config}: {error}") from None
        raise DeepMOTError(
            f"--weights {weights}: not weights of tracker {name!r} ({error}); give a file "
            f"'deepmot train --tracker {name}' wrote"
        ) from None


def _check_options(args: argparse.Namespace, video: bool) -> None:
    """Options of the other kind of input are mistakes, not silently ignored."""
    wrong = (
        [("--det", args.det), ("--gt", args.gt), ("--name", args.name)]
        + [("--min-score", args.min_score)]
        if not video
        else [("--det-file", args.det_file), ("--sequences", args.sequences)]
    )
    for option, value in wrong:
        if value is not None:
            what = "a video file" if not video else "MOT_ROOT, a folder of sequences"
            raise DeepMOTError(f"{option} goes with {what}, not {args.mot_root}")


def _own_detector(tracker, min_score: float | None) -> bool:
    """Let a tracker that has a detector of its own (Tracktor) start tracks from its detections,
    scored at least ``min_score`` where given; False for a tracker without one."""
    if not tracker.has_detector:
        return False
    tracker.use_own_detector(min_score)
    return True


def _with_detections(args: argparse.Namespace, sequence, tracker):
    """The video's sequence with the detections the tracker starts tracks from: those of
    ``--det``, none for a tracker with its own detector, else the shipped detector's."""
    import numpy as np

    from deepmot.io.mot import Detections

    if args.det is not None:
        return sequence
    if _own_detector(tracker, args.min_score):
        log.info("tracker %r finds people with its own detector", args.tracker)
        empty = Detections(np.empty(0, np.int64), np.empty((0, 4)), np.empty(0))
        return sequence.with_detections(empty)
    from deepmot.detection.detect import detect_sequence
    from deepmot.detection.model import load_detector
    from deepmot.trackers.tracktor import SHIPPED_DETECTOR

    detector, _ = load_detector(SHIPPED_DETECTOR)
    min_score = MIN_DETECTION_SCORE if args.min_score is None else args.min_score
    log.info("detections: the shipped detector %s, score >= %g", SHIPPED_DETECTOR, min_score)
    found = detect_sequence(detector, sequence, min_score, progress=not args.no_progress)
    log.info("%d detections in %d frames", len(found), len(sequence))
    return sequence.with_detections(found)


def _track_one(args: argparse.Namespace, tracker, sequence, name: str) -> None:
    """Track ``sequence`` (its validation split with ``--split val``), write
    ``RESULTS/<name>.txt`` and, with ``--video``, the rendered tracks."""
    from dataclasses import replace

    from deepmot.io.mot import write_results
    from deepmot.trackers import track_sequence

    offset = 0
    if args.split == "val":
        frames = sequence.split()[1]
        sequence, offset = sequence.clip(frames), frames[0] - 1
    results = track_sequence(tracker, sequence, progress=not args.no_progress)
    if args.video is not None:
        from deepmot.viz.tracks import render_tracking_video

        folder = args.out if args.video is True else args.video
        title = f"{args.tracker}" + (f" ({args.weights.name})" if args.weights else "")
        video = render_tracking_video(
            sequence,
            results,
            folder / f"{name}.mp4",
            title=f"{title}, split {args.split}",
            frame_offset=offset,
            progress=not args.no_progress,
        )
        log.info("video of %s: %s", name, video)
    results = replace(results, frames=results.frames + offset)
    write_results(args.out / f"{name}.txt", results)


def run(args: argparse.Namespace) -> int:
    import torch

    from deepmot.data.loading import usable_sequence_dirs
    from deepmot.data.sequence import Sequence

    torch.set_num_threads(1)  # tiny models: extra threads only contend (up to 60x slower here)
    video = not args.mot_root.is_dir()
    _check_options(args, video)
    if video:  # read first: a video that does not open fails before any model loads
        sequence = Sequence.from_video(args.mot_root, gt=args.gt, det=args.det, name=args.name)
        log.info("%s: %s", args.mot_root, sequence)
    settings = {}
    if args.config is not None:
        from deepmot.trackers.settings_file import read_tracker_settings

        read = read_tracker_settings(args.config, args.tracker)
        args.tracker, settings = read.tracker, read.settings
        log.info("settings from %s: %s", args.config, settings)
    args.tracker = args.tracker or "motion"
    tracker = _tracker(args.tracker, args.weights, settings, args.config)
    if video:
        sequence = _with_detections(args, sequence, tracker)
        _track_one(args, tracker, sequence, sequence.name)
        log.info("wrote %s", args.out / f"{sequence.name}.txt")
        return 0
    usable, skipped = usable_sequence_dirs(args.mot_root, args.det_file, args.sequences)
    written = []
    for path, det_file in usable:
        _track_one(args, tracker, Sequence.from_dir(path, det_file=det_file), path.name)
        written.append(path.name)
    log.info("wrote %d result file(s) to %s", len(written), args.out)
    if skipped:
        what = f"det/{args.det_file}" if args.det_file else "detections"
        log.warning("skipped %d sequence(s) without %s: %s", len(skipped), what, ", ".join(skipped))
    # the command that scores what was written, and nothing else, as written (pasted, it gives
    # the numbers of the library's own evaluation of these frames)
    frames = " --frames val" if args.split == "val" else ""
    only = f" --sequences {' '.join(written)}" if skipped or args.sequences else ""
    log.info(
        "score them with: deepmot eval %s %s%s%s",
        shlex.quote(str(args.mot_root)),
        shlex.quote(str(args.out)),
        only,
        frames,
    )
    return 0
