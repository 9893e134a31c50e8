"""Prediction speed of the single-object trackers with 1, 10 and 50 tracks: all tracks of a
frame in one batched forward pass against one pass per track.

Times ``predictor.predict`` (crops, forward pass, decoding) on a rendered 640x480 synthetic
frame, untrained weights of the default (light) configs (the same cost as trained ones),
one intra-op thread; the median of ``--repeats`` runs. Frames per second = 1 / time per frame.

    python benchmarks/bench_sot.py [--repeats 11]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.trackers import TrackBatch
from deepmot.trackers.goturn import GoturnModel, GoturnPredictor
from deepmot.trackers.siamrpn import SiamRPNModel, SiamRPNPredictor


def random_boxes(n: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` pedestrian-shaped boxes inside a 640x480 image."""
    h = rng.uniform(40, 200, n)
    w = h * rng.uniform(0.35, 0.45, n)
    x = rng.uniform(0, 640 - w)
    y = rng.uniform(0, 480 - h)
    return torch.tensor(np.stack([x, y, x + w, y + h], 1), dtype=torch.float32)


def seconds_per_frame(predictor, frames, boxes: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Median seconds per frame batched and one track at a time, the two timed alternately
    (so that a busy machine slows both alike)."""
    one = [boxes[i : i + 1] for i in range(len(boxes))]
    variants = [
        [TrackBatch.from_histories([b[None] for b in boxes], 1)],
        [TrackBatch.from_histories([b], 1) for b in one],
    ]
    times: list[list[float]] = [[], []]
    with torch.no_grad():
        for batches in variants:
            for batch in batches:
                predictor.on_birth(frames[0], batch)
        for _ in range(repeats):
            for k, batches in enumerate(variants):
                start = time.perf_counter()
                for batch in batches:
                    predictor.predict(frames[1], batch, None, (640, 480))
                times[k].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene = generate_scene(SceneConfig(frames=2, seed=0))
    frames = [scene.render_frame(1), scene.render_frame(2)]
    rng = np.random.default_rng(0)
    predictors = {
        "goturn": GoturnPredictor(GoturnModel().eval()),
        "siamrpn": SiamRPNPredictor(SiamRPNModel().eval()),
    }
    print("| tracker | tracks | batched fps | one at a time fps | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, predictor in predictors.items():
        for n in (1, 10, 50):
            boxes = random_boxes(n, rng)
            batched, single = seconds_per_frame(predictor, frames, boxes, args.repeats)
            print(
                f"| {name} | {n} | {1 / batched:.1f} | {1 / single:.1f} | {single / batched:.2f}x |"
            )


if __name__ == "__main__":
    main()
