"""Tracktor's speed on this machine: tracking frames per second split into backbone, RoI heads,
camera motion (ECC) and the rest (track management), and training steps per second with and
without cached backbone features.

    python benchmarks/bench_tracktor.py [--frames 40] [--steps 10] [--weights W]
    python benchmarks/bench_tracktor.py --sequence ../shared/data/real/PETS09-S2L1 \
        --first 598 --frames 198 --threads 2 --skip-resnet50 --steps 0

``--weights``: a detector or Tracktor file (default: the shipped detector); ``--runtime``: the
backbone's inference runtime (``deepmot.detection.inference``; the first frame, which makes
it, is timed apart); the ResNet-50-FPN
row is an untrained detector of Tracktor's size (800 px images): the same cost as a trained
one. ``--sequence``: a MOTChallenge folder with ``img1/`` (e.g. one ``deepmot frames`` made from
a video) tracked with its ``det/det.txt`` from frame ``--first`` (default: a synthetic scene);
the constant-velocity tracker runs on the same frames in the same run, for reference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from dataclasses import replace

import torch

from deepmot.data.frames import image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene
from deepmot.detection.config import DetectorConfig
from deepmot.detection.model import build_detector
from deepmot.trackers import create_tracker, track_sequence
from deepmot.trackers import tracktor as tracktor_module
from deepmot.trackers.registry import tracker_entry
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.tracker import train_tracker


def timed(seconds: dict[str, float], key: str, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = function(*args, **kwargs)
        seconds[key] += time.perf_counter() - start
        return out

    return wrapper


def track_fps(label: str, tracker, sequence) -> None:
    model = tracker.predictor.model
    start = time.perf_counter()  # the first frame makes the backbone's inference copy
    model.eval().features(image_to_tensor(sequence.read_image(sequence.frames[0])))
    print(f"{label}: first frame's backbone (copied, compiled) {time.perf_counter() - start:.1f} s")
    seconds: dict[str, float] = defaultdict(float)
    model.features = timed(seconds, "backbone", model.features)
    model.regress = timed(seconds, "heads", model.regress)
    model.detect = timed(seconds, "heads", model.detect)
    ecc = tracktor_module.ecc_warp
    tracktor_module.ecc_warp = timed(seconds, "ecc", ecc)
    try:
        start = time.perf_counter()
        results = track_sequence(tracker, sequence, progress=False)
        total = time.perf_counter() - start
    finally:
        tracktor_module.ecc_warp = ecc
    frames = len(sequence)
    rest = total - sum(seconds.values())
    parts = ", ".join(f"{k} {1000 * v / frames:.0f}" for k, v in sorted(seconds.items()))
    print(
        f"{label}: {frames / total:.2f} frames/s ({1000 * total / frames:.0f} ms/frame: {parts}, "
        f"management and the rest {1000 * rest / frames:.0f}); {len(results)} boxes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runtime", default="auto", choices=("auto", "torch", "openvino"))
    parser.add_argument("--skip-resnet50", action="store_true")
    parser.add_argument("--sequence", help="a MOTChallenge sequence folder with img1/ and det/")
    parser.add_argument("--first", type=int, default=1, help="first frame of --sequence")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}")
    if args.sequence is None:
        scene = generate_scene(SceneConfig(frames=args.frames, seed=4321, name="BENCH-01"))
        sequence = scene.to_sequence(cache_size=args.frames)
    else:
        whole = Sequence.from_dir(args.sequence, det_file="det.txt")
        last = min(len(whole), args.first + args.frames - 1)
        sequence = whole.clip(range(args.first, last + 1))
    images = {frame: sequence.read_image(frame) for frame in sequence.frames}
    sequence.read_image = images.__getitem__  # decoded once, outside the timings
    print(f"{sequence.name}: {len(sequence)} frames of {sequence.im_width}x{sequence.im_height}")

    start = time.perf_counter()
    track_sequence(create_tracker("constant_velocity"), sequence, progress=False)
    rate = len(sequence) / (time.perf_counter() - start)
    print(f"constant velocity (reference), public detections: {rate:.2f} frames/s")
    shipped = create_tracker("tracktor", weights=args.weights)
    shipped.predictor.model.inference_backbone.runtime = args.runtime
    track_fps("Tracktor (shipped detector), public detections", shipped, sequence)
    private = create_tracker("tracktor", weights=args.weights)
    private.predictor.model.inference_backbone.runtime = args.runtime
    private.predictor.config = replace(private.predictor.config, private=True)
    track_fps("Tracktor, private detections", private, sequence)
    if not args.skip_resnet50:
        detector_config = DetectorConfig()
        model = tracktor_module.TracktorModel(
            tracktor_module.TracktorConfig(detector="untrained"),
            build_detector(detector_config),
            detector_config,
        ).eval()
        entry = tracker_entry("tracktor")
        from deepmot.trackers.management import ManagedTracker

        heavy = ManagedTracker(tracktor_module.TracktorPredictor(model), entry.management)
        track_fps("ResNet-50-FPN (untrained, 800 px), public detections", heavy, sequence)

    if args.steps == 0:
        return
    train = [generate_scene(c).to_sequence(cache_size=300) for c in dataset_configs(2)]
    detector = args.weights or "shipped"
    for cache in (0, 256):
        for loss in ("smoothl1", "deepmot"):
            config = TrackerTrainConfig(
                tracker="tracktor",
                model={"detector": detector, "feature_cache": cache},
                loss=loss,
                augment=AugmentationConfig(perturb=0.5),
                lr=1e-4,
                iterations=args.steps,
                batch_size=4,
                det_file="det.txt",
                diagnose_every=10**6,
            )
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                train_tracker(train, out, config, progress=False)
                rate = args.steps / (time.perf_counter() - start)
            print(f"training {loss}, feature cache {cache}: {rate:.2f} steps/s (4 pairs a step)")


if __name__ == "__main__":
    main()
