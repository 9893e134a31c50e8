"""Training speed with frames read by DataLoader workers (``--workers N``) against none.

Trains the detector (``train_detector``) and GOTURN (``train_tracker``) for ``--steps`` steps
on synthetic scenes, with 0 and with each of ``--workers`` reader processes, in the same run,
and reports steps per second from each run's ``log.csv`` (the steps after ``--warmup``) and
the ratio to 0 workers. Frames come either rendered in memory (``rendered``: a synthetic
scene, with its LRU cache) or decoded from JPEG files of an ``img1/`` folder (``jpeg``: the
scenes written to disk first, as a MOTChallenge sequence is read). Everything runs on one
intra-op thread in the trainer; the readers are separate processes.

On a machine with no free core the readers only take time from the trainer (the report
prints the load average before and after).

Usage::

    PYTHONPATH=src python benchmarks/bench_workers.py [--steps 20] [--workers 1 2]
        [--sources rendered jpeg] [--size 960x540]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import tempfile
from pathlib import Path

import torch

from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence
from deepmot.detection.config import DetectorConfig, DetectorTrainConfig
from deepmot.detection.train import train_detector
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.tracker import train_tracker


def scenes(source: str, width: int, height: int, root: Path) -> list[Sequence]:
    """Two 120-frame scenes of 12 people, rendered on demand or read from JPEG files."""
    made = [
        generate_scene(
            SceneConfig(frames=120, width=width, height=height, people=12, seed=s, name=f"S{s}")
        )
        for s in (1, 2)
    ]
    if source == "rendered":
        return [scene.to_sequence() for scene in made]
    return [
        Sequence.from_dir(write_sequence(scene, root / scene.config.name, progress=False))
        for scene in made
    ]


def steps_per_second(log: Path, warmup: int) -> float:
    with log.open(newline="") as handle:
        times = [float(r[-1]) for r in list(csv.reader(handle))[1:]]
    return (len(times) - warmup) / (times[-1] - times[warmup - 1])


def run(model: str, sequences: list[Sequence], steps: int, workers: int, warmup: int) -> float:
    out = Path(tempfile.mkdtemp(prefix=f"bench_workers_{model}_{workers}_"))
    if model == "detector":
        config = DetectorTrainConfig(
            detector=DetectorConfig.light(), iterations=steps, batch_size=2, checkpoint_every=10**6
        )
        train_detector(sequences, out, config, progress=False, workers=workers)
    else:
        config = TrackerTrainConfig(
            tracker="goturn",
            iterations=steps,
            batch_size=8,
            sampling="clips",
            clip_length=4,
            det_file=None,
            checkpoint_every=10**6,
        )
        train_tracker(sequences, out, config, progress=False, workers=workers)
    return steps_per_second(out / "log.csv", warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="first steps not timed")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="readers")
    parser.add_argument("--sources", nargs="+", default=["rendered", "jpeg"])
    parser.add_argument("--models", nargs="+", default=["detector", "goturn"])
    parser.add_argument("--size", default="960x540", help="frame size WxH")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(1)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}; frames {width}x{height}; load average {os.getloadavg()[0]:.2f}"
    )
    root = Path(tempfile.mkdtemp(prefix="bench_workers_data_"))
    for source in args.sources:
        sequences = scenes(source, width, height, root)
        for model in args.models:
            base = run(model, sequences, args.steps, 0, args.warmup)
            line = f"{model:8s} {source:8s} 0 workers: {base:6.2f} steps/s"
            for n in args.workers:
                rate = run(model, sequences, args.steps, n, args.warmup)
                line += f" | {n}: {rate:6.2f} steps/s, ratio {rate / base:.2f}"
            print(line, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
