"""Tracking and training speed of the motion tracker.

1. Tracking: the learned motion tracker (untrained weights: the same cost as trained ones) and
   the constant-velocity baseline over every frame of the shared sequences that have public
   detections, frames per second, split into the motion model's time and the rest (association
   and track management).
2. Training: steps per second with the DeepMOT loss (Sinkhorn and, if shipped, the default DHN,
   ``seq_gru`` and ``bipartite_sk``) and with Smooth-L1 on MOT17 frame pairs, and their ratio.

    python benchmarks/bench_track.py [--steps 30] [--dhn-weights PATH ...] [--no-tracking]

``--dhn-weights`` adds a DeepMOT row per DHN weights file (matcher ``dhn:PATH``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from deepmot.data.sequence import Sequence
from deepmot.io.mot import find_sequences
from deepmot.trackers import create_tracker, track_sequence
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.tracker import train_tracker

MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"


class Timed(torch.nn.Module):
    """Wraps a motion model and adds up the seconds spent in it."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model
        self.history_len = model.history_len
        self.seconds = 0.0

    def forward(self, *args, **kwargs):
        start = time.perf_counter()
        out = self.model(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        return out


def tracking(sequences: list[Sequence]) -> None:
    frames = sum(len(s) for s in sequences)
    print(f"tracking {len(sequences)} sequences, {frames} frames")
    for name in ("motion", "constant_velocity"):
        tracker = create_tracker(name)
        timed = Timed(tracker.predictor.model)
        tracker.predictor.model = timed
        start = time.perf_counter()
        for seq in sequences:
            track_sequence(tracker, seq, progress=False)
        total = time.perf_counter() - start
        rest = total - timed.seconds
        print(
            f"  {name:18} {frames / total:7.0f} frames/s  (model {timed.seconds:5.2f} s, "
            f"association+management {rest:5.2f} s, total {total:5.2f} s)"
        )


def training(sequences: list[Sequence], steps: int, dhn_weights: list[str]) -> None:
    from deepmot.assign.dhn import DEFAULT_DHN, create_dhn

    variants = {"smoothl1": {"loss": "smoothl1"}, "deepmot sinkhorn": {"matcher": "sinkhorn"}}
    for path in dhn_weights:
        variants[f"deepmot {Path(path).stem}"] = {"matcher": f"dhn:{path}"}
    for name in dict.fromkeys((DEFAULT_DHN, "seq_gru", "bipartite_sk")):
        matcher = "dhn" if name == DEFAULT_DHN else f"dhn:{name}"
        try:
            create_dhn(name, pretrained=True)
            label = f"dhn ({name})" if matcher == "dhn" else matcher
            variants[f"deepmot {label}"] = {"matcher": matcher}
        except Exception as error:  # no shipped weights: say so and go on
            print(f"  (no shipped DHN {name}: {error})")
    rates = {}
    for name, overrides in variants.items():
        config = TrackerTrainConfig(iterations=steps, checkpoint_every=10**6, **overrides)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            train_tracker(sequences, out, config, progress=False)
            rates[name] = steps / (time.perf_counter() - start)
    print(f"training, {steps} steps of 16 frame pairs (MOT17, FRCNN detections)")
    for name, rate in rates.items():
        print(
            f"  {name:28} {rate:6.2f} steps/s  (Smooth-L1 / this: {rates['smoothl1'] / rate:5.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--dhn-weights", nargs="*", default=[], help="more DHN weights files")
    parser.add_argument("--no-tracking", action="store_true", help="only the training speed")
    args = parser.parse_args()
    if not MOT_ROOT.is_dir():
        sys.exit(f"real MOTChallenge files not found at {MOT_ROOT}")
    torch.set_num_threads(1)
    with_dets = []
    for path in find_sequences(MOT_ROOT):
        files = Sequence.detection_files(path)
        det = next((f for f in ("deepmot_clean_FRCNN.txt", "det.txt") if f in files), None)
        if det:
            with_dets.append(Sequence.from_dir(path, det_file=det))
    if not args.no_tracking:
        tracking(with_dets)
    training([s for s in with_dets if s.name.startswith("MOT17")], args.steps, args.dhn_weights)


if __name__ == "__main__":
    main()
