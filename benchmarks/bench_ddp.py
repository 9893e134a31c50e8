"""Training throughput on 1 and 2 processes (DDP, gloo on the CPU): the DHN and the motion tracker.

Runs the real trainers (``train_dhn``, ``train_tracker``) on synthetic data, once on one
process and once on ``--procs`` processes started as torchrun would (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ...), with the same global batch, and reports samples per second from the
run's ``log.csv`` (the steps after ``--warmup``; start-up and the process group's rendezvous
are not counted) and the ratio of the two. Each process uses ``--threads`` intra-op threads.

On a machine with fewer free cores than processes, the ratio says little about scaling: the
processes share the cores (the report prints the load average before and after).

Usage::

    PYTHONPATH=src python benchmarks/bench_ddp.py [--steps 30] [--procs 2] [--threads 1]
        [--device cuda]   # one process on the GPU instead (no DDP): single-GPU throughput
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.multiprocessing as mp

from deepmot.assign.hungarian import hungarian
from deepmot.data.dhn_dataset import DHNDataset
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.dhn import DHNTrainConfig, train_dhn
from deepmot.train.tracker import train_tracker


def dhn_data(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` random (D, A*) pairs of MOT-like sizes (3 to 30 tracks and objects)."""
    rng = np.random.default_rng(seed)
    ds = [rng.random(tuple(rng.integers(3, 31, 2))).astype(np.float32) for _ in range(count)]
    folder.mkdir(parents=True, exist_ok=True)
    DHNDataset.from_matrices(ds, [hungarian(d, 0.6) for d in ds]).save(folder / "train.safetensors")
    return folder


def sequences() -> list:
    return [
        generate_scene(SceneConfig(frames=120, people=12, seed=s, name=f"S{s}")).to_sequence()
        for s in (1, 2)
    ]


def train(job: dict) -> None:
    torch.set_num_threads(job["threads"])
    if job["kind"] == "dhn":
        config = DHNTrainConfig(
            batch_size=job["batch"], max_iters=job["steps"], device=job["device"], epochs=1000
        )
        train_dhn(job["data"], job["out"], config, progress=False)
    else:
        config = TrackerTrainConfig(
            iterations=job["steps"],
            batch_size=job["batch"],
            sampling="clips",
            clip_length=4,
            device=job["device"],
            checkpoint_every=10_000,
        )
        train_tracker(sequences(), job["out"], config, progress=False)


def worker(rank: int, world: int, port: int, job: dict) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    train(job)


def samples_per_second(log: Path, batch: int, warmup: int) -> float:
    """Global samples per second over the logged steps after ``warmup``."""
    with log.open(newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    times = [float(r[-1]) for r in rows]
    steps = len(times) - warmup
    return steps * batch / (times[-1] - times[warmup - 1])


def measure(job: dict, procs: int, warmup: int) -> float:
    job = {**job, "out": tempfile.mkdtemp(prefix=f"bench_ddp_{job['kind']}_{procs}_")}
    if procs == 1:
        train(job)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mp.spawn(worker, args=(procs, port, job), nprocs=procs)
    return samples_per_second(Path(job["out"]) / "log.csv", job["batch"], warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="first steps not timed")
    parser.add_argument("--procs", type=int, default=2, help="processes of the DDP run")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    parser.add_argument("--dhn-batch", type=int, default=16, help="DHN matrices per step")
    parser.add_argument("--tracker-batch", type=int, default=8, help="clips per step")
    parser.add_argument("--device", default="cpu", help="cuda: one process on the GPU only")
    args = parser.parse_args()
    for name in ("RANK", "WORLD_SIZE"):
        os.environ.pop(name, None)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {args.threads} thread(s) per process; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    root = Path(tempfile.mkdtemp(prefix="bench_ddp_"))
    jobs = {
        "dhn": {
            "kind": "dhn",
            "data": str(dhn_data(root / "dhn", 2000)),
            "batch": args.dhn_batch,
            "unit": "matrices",
        },
        "motion": {"kind": "motion", "batch": args.tracker_batch, "unit": "clips of 4 frames"},
    }
    for name, job in jobs.items():
        job.update(steps=args.steps, threads=args.threads, device=args.device)
        one = measure(job, 1, args.warmup)
        if args.device != "cpu":
            print(f"{name:7s} 1 process on {args.device}: {one:8.1f} {job['unit']}/s")
            continue
        many = measure(job, args.procs, args.warmup)
        print(
            f"{name:7s} 1 process: {one:8.1f} {job['unit']}/s   {args.procs} processes: "
            f"{many:8.1f} {job['unit']}/s   ratio {many / one:.2f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
