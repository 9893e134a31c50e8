"""A detector's per-frame cost on real frames, and Tracktor's tracking speed with it.

    python benchmarks/bench_detector.py SEQUENCE_DIR [--weights W] [--frames 30] [--threads 1]

SEQUENCE_DIR: a MOTChallenge folder with img1/ (e.g. PETS09-S2L1 decoded by
``scripts/video_to_mot.py``, 768x576). Prints, in ms per frame (median over ``--frames``
frames, after two warm-up frames): the transform + backbone + FPN (what Tracktor runs once per
frame), the RoI box head on 20 boxes (Tracktor's regression of its tracks), the whole detector
(RPN and its own detections too), then Tracktor's frames per second over the same frames with
the detector's own detections (``private``), and the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from deepmot.data.frames import image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.detection.model import load_detector
from deepmot.trackers import create_tracker, track_sequence
from deepmot.trackers.tracktor import SHIPPED_DETECTOR


def median_ms(function, inputs: list) -> float:
    for item in inputs[:2]:
        function(item)
    times = []
    for item in inputs:
        start = time.perf_counter()
        function(item)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sequence")
    parser.add_argument("--weights", default=str(SHIPPED_DETECTOR))
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-tracking", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    model, config = load_detector(args.weights)
    sequence = Sequence.from_dir(args.sequence).clip(range(1, args.frames + 1))
    images = [image_to_tensor(sequence.read_image(f)) for f in sequence.frames]
    height, width = images[0].shape[-2:]

    def backbone(image: torch.Tensor) -> dict:
        batch, _ = model.transform([image])
        return model.backbone(batch.tensors), batch.image_sizes

    def box_head(image: torch.Tensor) -> None:
        features, sizes = backbone_out[id(image)]
        scale = sizes[0][0] / height
        boxes = torch.tensor([[30.0 * i, 100.0, 30.0 * i + 30, 180.0] for i in range(20)]) * scale
        pooled = model.roi_heads.box_roi_pool(features, [boxes], sizes)
        model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))

    backbone_ms = median_ms(backbone, images)
    backbone_out = {id(image): backbone(image) for image in images}
    head_ms = median_ms(box_head, images)
    whole_ms = median_ms(lambda image: model([image]), images)
    print(
        f"{args.weights} ({config.backbone}, min_size {config.min_size}, max_size "
        f"{config.max_size}) on {width}x{height} frames, {args.threads} thread(s): "
        f"backbone+FPN {backbone_ms:.0f} ms, box head on 20 boxes {head_ms:.1f} ms, "
        f"whole detector {whole_ms:.0f} ms (medians over {len(images)} frames)"
    )
    if not args.no_tracking:
        tracker = create_tracker("tracktor", detector=args.weights, private=True)
        start = time.perf_counter()
        track_sequence(tracker, sequence, progress=False)
        seconds = time.perf_counter() - start
        print(f"tracktor (private detections): {len(sequence) / seconds:.2f} frames/s")
    print(f"load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
