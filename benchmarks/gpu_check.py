"""Check in a few minutes that a GPU machine runs deepmot's GPU paths, and measure them.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--budget 480] [--data SEQ_DIR ...]
    torchrun --nproc_per_node 2 benchmarks/gpu_check.py   # nccl and SyncBatchNorm across 2 GPUs
    python benchmarks/gpu_check.py --dry-run              # the same code on the CPU, tiny sizes

Every part runs the library's own code, in this order, and times itself (``data`` comes
second: the frames below, written by rank 0):

- ``process_group``: :func:`deepmot.engine.distributed.setup` with ``nccl`` (``gloo`` in the
  dry run); one process starts its own group of one (``setup`` starts none for one process),
  under torchrun ``setup`` joins torchrun's. ``Distributed.all_sum`` of the ranks is checked
  and an all-reduce timed.
- ``detector_fp32`` and ``detector_amp``: :func:`deepmot.detection.train.train_detector`, the
  paper's ResNet-50-FPN Faster R-CNN at torchvision's sizes (800 / 1333 px), 2 images per
  process, BatchNorm trained (under torchrun on CUDA the trainer converts it to
  ``SyncBatchNorm``), in float32 and then with ``amp="fp16"`` (autocast and ``GradScaler``
  through ``precision_and_seed``); steps per second from the run's ``log.csv``, the losses,
  and the loss scaler's scale read from the run's checkpoint.
- ``sync_batchnorm``: the detector with trainable BatchNorm converted by
  ``nn.SyncBatchNorm.convert_sync_batchnorm`` (the call the detector trainer makes under
  torchrun on CUDA; with one process it makes none, so this part converts it itself), trained
  a few steps in DDP (``Distributed.wrap``) with the amp setting. With one process PyTorch's
  SyncBatchNorm normalises locally (nothing to synchronise: ``synchronised`` false); under
  torchrun with 2+ GPUs it synchronises. On the CPU (dry run) PyTorch has no SyncBatchNorm:
  the part runs the trainer's CPU path instead (BatchNorm, ``Distributed.average_buffers``).
- ``tracktor_tracking``: Tracktor (``create_tracker("tracktor")``) with a ResNet-50-FPN
  detector at 800 px (randomly initialised: the figure is speed, not accuracy) on the GPU,
  public detections; births and the regression threshold at 0 so that every detection
  becomes a track and stays one (the work of a crowded scene); frames per second after a
  warm-up, and the mean number of tracks per frame.
- ``tracker_training``: :func:`deepmot.train.tracker.train_tracker`, Tracktor with that
  detector, the DeepMOT loss through the shipped DHN, clips as the authors trained, the amp
  setting; steps per second from ``log.csv``.

The frames: ``--data`` MOTChallenge sequence folders (``img1/``, ``gt/gt.txt``,
``det/det.txt``, e.g. MOT17-04-FRCNN), else a synthetic scene of 1920x1080 JPEG frames written
first (MOT17's size). The step counts are chosen so that an H100 does everything in well
under ``--budget`` seconds (480); each part also has its share of the budget and stops early
(a training run through the trainers' own SIGTERM stop, which checkpoints the step) rather
than overrun it. A part that fails records its error and the others still run (exit code 1).

``--dry-run`` runs the same code on the CPU with ``gloo``, the light MobileNetV3-FPN detector
at 128 px, a few steps, and float32 (fp16's loss scaling is CUDA's; ``--amp bf16`` runs CPU
autocast, slow on a CPU without bfloat16 instructions). Without a GPU
and without ``--dry-run``: a one-line error, exit code 2.

The JSON (``--out``, written atomically by rank 0) holds the machine, each part's figures and
``"ok"``; the same is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence
from deepmot.detection.config import DetectorConfig, DetectorTrainConfig
from deepmot.detection.data import StepFrames
from deepmot.detection.model import build_detector, save_detector
from deepmot.detection.train import train_detector, use_seeded_samplers
from deepmot.engine.distributed import Distributed, precision_and_seed, setup
from deepmot.engine.run import TrainingInterrupted
from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_text
from deepmot.trackers import create_tracker
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.tracker import train_tracker


@dataclass(frozen=True)
class Sizes:
    """What each part runs: the full-scale sizes on a GPU, or tiny ones for the dry run.

    Attributes:
        backbone, representation, min_size, max_size: the detector (the paper's
            ResNet-50-FPN with Tracktor's 1024-wide box head at torchvision's 800 / 1333 px).
        images: detector images per process and step (torchvision's reference: 2 per GPU).
        detector_steps: steps of each detector training run; the first ``warmup`` are not
            timed.
        sync_steps: steps of the SyncBatchNorm part.
        frames, width, height, people: the synthetic scene (when no ``--data``).
        track_frames: frames Tracktor tracks (after ``warmup`` untimed ones).
        tracker_steps: DeepMOT-loss Tracktor steps; ``clips`` per process, ``clip_length``
            frames each (the authors trained on 10-frame clips).
        amp: the mixed precision of the amp parts (fp16 on CUDA; none on the CPU, where
            a ResNet-18-FPN step of the dry run took about 2 minutes with bf16 autocast
            against about 10 s in float32 on the 2-core machine, which has no bfloat16
            instructions); ``--amp`` overrides it.
        workers: DataLoader processes reading frames ahead in the trainers.
    """

    backbone: str = "resnet50_fpn"
    representation: int = 1024
    min_size: int = 800
    max_size: int = 1333
    images: int = 2
    detector_steps: int = 60
    warmup: int = 5
    sync_steps: int = 20
    frames: int = 120
    width: int = 1920
    height: int = 1080
    people: int = 30
    track_frames: int = 100
    tracker_steps: int = 20
    clips: int = 2
    clip_length: int = 10
    amp: str | None = "fp16"
    workers: int = 2


GPU_SIZES = Sizes()
DRY_SIZES = Sizes(
    backbone="mobilenet_v3_fpn",
    representation=256,
    min_size=128,
    max_size=224,
    images=1,
    detector_steps=2,
    warmup=1,
    sync_steps=2,
    frames=24,
    width=320,
    height=240,
    people=6,
    track_frames=4,
    tracker_steps=2,
    clip_length=3,
    amp=None,
    workers=0,
)

#: each part's share of the time budget (the data part writes the synthetic frames)
SHARES = {
    "process_group": 0.05,
    "data": 0.10,
    "detector_fp32": 0.17,
    "detector_amp": 0.17,
    "sync_batchnorm": 0.12,
    "tracktor_tracking": 0.17,
    "tracker_training": 0.22,
}


class Watchdog:
    """Sends this process SIGTERM when a part's time is up (rank 0 only: the trainers share a
    stop between processes). Inside a trainer's loop SIGTERM ends the run after its step,
    with a checkpoint (:class:`~deepmot.engine.run.TrainingInterrupted`); elsewhere the
    handler installed here only records it, so a late signal never kills the check."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.fired = False
        self._timer: threading.Timer | None = None
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        if not self.fired:  # a SIGTERM from outside: stop as before
            raise SystemExit(128 + signum)

    def _fire(self) -> None:
        self.fired = True
        os.kill(os.getpid(), signal.SIGTERM)

    @contextlib.contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """SIGTERM after ``seconds`` unless the block ends first."""
        self.fired = False
        if self.enabled:
            self._timer = threading.Timer(max(seconds, 0.0), self._fire)
            self._timer.daemon = True
            self._timer.start()
        try:
            yield
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def close(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def steps_per_second(log: Path, warmup: int) -> tuple[float, list[float], int]:
    """Steps per second over a run's ``log.csv`` rows after ``warmup`` (all rows when there
    are not more), its losses, and its number of steps."""
    with log.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise RuntimeError(f"{log}: no step logged")
    times = [float(r["seconds"]) for r in rows]
    losses = [float(r["loss"]) for r in rows]
    skip = warmup if len(rows) > warmup else 0
    timed = len(rows) - skip
    span = times[-1] - (times[skip - 1] if skip else 0.0)
    return timed / span, losses, len(rows)


def finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)


class Check:
    """The parts (see the module doc), run in order with their time budget."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, work: Path) -> None:
        self.args = args
        self.sizes = sizes
        self.work = work
        self.device = "cpu" if args.dry_run else "cuda"
        self.backend = "gloo" if args.dry_run else "nccl"
        self.started = time.monotonic()
        self.dist = Distributed()
        self.main = int(os.environ.get("RANK", "0")) == 0
        self.watchdog = Watchdog(self.main)
        self.sequences: list[Sequence] = []
        self.detector_file = work / "detector_random.safetensors"
        self.detector = DetectorConfig(
            backbone=sizes.backbone,
            representation=sizes.representation,
            min_size=sizes.min_size,
            max_size=sizes.max_size,
        )
        self.results: dict[str, Any] = {}

    # -------------------------------------------------------------------- running parts

    def seconds_for(self, part: str) -> float:
        """The part's share of the budget, within what is left of it."""
        left = self.args.budget - (time.monotonic() - self.started)
        return max(0.0, min(SHARES[part] * self.args.budget, left))

    def run(self, part: str, body: Callable[[float], dict[str, Any]]) -> None:
        """Run one part with its time limit; record its figures or its error."""
        allowed = self.seconds_for(part)
        began = time.monotonic()
        if allowed <= 0:
            self.results[part] = {"ok": False, "error": "skipped: the time budget is used up"}
            if self.main:
                print(f"{part}: {json.dumps(self.results[part])}", flush=True)
            return
        try:
            with self.watchdog.limit(allowed):
                figures = body(allowed)
            figures["ok"] = figures.get("ok", True)
        except Exception as error:  # one part's failure must not hide the others' figures
            figures = {
                "ok": False,
                "error": f"{type(error).__name__}: {error}",
                "where": traceback.format_exc().strip().splitlines()[-3:],
            }
        figures["seconds"] = round(time.monotonic() - began, 3)
        figures["budget_seconds"] = round(allowed, 1)
        self.results[part] = figures
        if self.main:
            print(f"{part}: {json.dumps(figures)}", flush=True)

    def barrier(self) -> None:
        if torch_dist.is_initialized() and self.dist.world_size > 1:
            torch_dist.barrier()

    # -------------------------------------------------------------------- the parts

    def data(self, allowed: float) -> dict[str, Any]:
        """The sequences every part uses: ``--data`` or a synthetic scene written as JPEGs,
        and a randomly initialised detector of the check's size saved for Tracktor."""
        s = self.sizes
        if self.args.data:
            folders = [Path(p) for p in self.args.data]
            source = "given"
        else:
            folders = [self.work / "SYNTH-GPU"]
            source = "synthetic"
            if self.main and not folders[0].is_dir():
                scene = generate_scene(
                    SceneConfig(
                        frames=s.frames, width=s.width, height=s.height, people=s.people, seed=0
                    )
                )
                write_sequence(scene, folders[0], progress=False)
        if self.main and not self.detector_file.is_file():
            torch.manual_seed(0)
            save_detector(build_detector(self.detector), self.detector, self.detector_file)
        self.barrier()
        self.sequences = [Sequence.from_dir(f) for f in folders]
        first = self.sequences[0]
        return {
            "source": source,
            "sequences": [q.name for q in self.sequences],
            "frames": sum(len(q) for q in self.sequences),
            "image": f"{first.im_width}x{first.im_height}",
        }

    def process_group(self, allowed: float) -> dict[str, Any]:
        """Join or start the process group through ``setup``; check a sum, time a reduce."""
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world == 1:  # setup() starts no group for one process: start one of one
            setup(self.device, self.backend)  # checks the backend against the device
            if self.device == "cuda":
                torch.cuda.set_device(0)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            torch_dist.init_process_group(
                self.backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1
            )
        self.dist = setup(self.device, self.backend)
        if not torch_dist.is_initialized():
            raise RuntimeError("setup() left no process group")
        ranks = self.dist.all_sum([self.dist.rank + 1.0])[0]
        expected = self.dist.world_size * (self.dist.world_size + 1) / 2
        device = self.dist.device if self.dist.device.type == "cuda" else torch.device("cpu")
        tensor = torch.ones(1 << 20, device=device)  # 4 MB
        times = []
        for _ in range(12):
            start = time.perf_counter()
            torch_dist.all_reduce(tensor)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
        return {
            "ok": ranks == expected,
            "backend": torch_dist.get_backend(),
            "world_size": self.dist.world_size,
            "device": str(self.dist.device),
            "all_sum_of_ranks": ranks,
            "expected": expected,
            "all_reduce_4mb_ms": round(1000 * statistics.median(times[2:]), 3),
        }

    def detector_training(self, allowed: float, amp: str | None, name: str) -> dict[str, Any]:
        """``train_detector`` for ``detector_steps`` steps (or until the part's time is up)."""
        s = self.sizes
        out = self.work / name
        if self.main and out.exists():
            shutil.rmtree(out)
        self.barrier()
        config = DetectorTrainConfig(
            detector=self.detector,
            iterations=s.detector_steps,
            batch_size=s.images * self.dist.world_size,
            checkpoint_every=10_000,
            norm="batch",
            device=self.device,
            seed=0,
        )
        stopped = False
        try:
            train_detector(self.sequences, out, config, progress=False, amp=amp, workers=s.workers)
        except TrainingInterrupted:
            stopped = True
        self.barrier()  # rank 0 has written the log and the checkpoint
        if not self.main:
            return {"ok": True, "note": "rank 0 reports"}
        rate, losses, steps = steps_per_second(out / "log.csv", s.warmup)
        state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
        scaler = state.get("scaler")
        figures = {
            "ok": finite(losses),
            "backbone": s.backbone,
            "min_size": s.min_size,
            "max_size": s.max_size,
            "global_batch": config.batch_size,
            "amp": amp,
            "steps": steps,
            "stopped_early": stopped,
            "steps_per_s": round(rate, 4),
            "images_per_s": round(rate * config.batch_size, 4),
            "first_loss": losses[0],
            "last_loss": losses[-1],
            "losses_finite": finite(losses),
            "sync_batchnorm_by_trainer": self.device == "cuda" and self.dist.world_size > 1,
        }
        if name == "detector_amp":
            figures["grad_scaler"] = scaler is not None
            figures["scaler_scale"] = float(scaler["scale"]) if scaler else 1.0
            fp32 = self.results.get("detector_fp32", {}).get("steps_per_s")
            if fp32:
                figures["speedup_vs_fp32"] = round(rate / fp32, 3)
        return figures

    def sync_batchnorm(self, allowed: float) -> dict[str, Any]:
        """The detector with trainable BatchNorm, converted to SyncBatchNorm (CUDA), in DDP."""
        s = self.sizes
        deadline = time.monotonic() + allowed
        dist = self.dist
        batch = s.images * dist.world_size
        amp = s.amp
        precision, scaler = precision_and_seed(dist, batch, amp, 0)
        model = build_detector(self.detector, trainable_norm=True).to(dist.device)
        cuda = dist.device.type == "cuda"
        if cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            kind = nn.SyncBatchNorm
        else:
            kind = nn.BatchNorm2d
        norms = sum(isinstance(m, kind) for m in model.modules())
        rpn, head = use_seeded_samplers(model)
        trained = dist.wrap(model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
        frames = StepFrames(self.sequences, batch, 0, rank=dist.rank, world_size=dist.world_size)
        model.train()
        losses, times = [], []
        for step in range(s.sync_steps):
            start = time.perf_counter()
            images, targets, seeds = frames[step]
            images = [image.to(dist.device) for image in images]
            targets = [{k: v.to(dist.device) for k, v in t.items()} for t in targets]
            rpn.seeds, head.seeds = seeds[:, 0].tolist(), seeds[:, 1].tolist()
            with precision:
                loss = sum(trained(images, targets).values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if not cuda:
                dist.average_buffers(model)
            if cuda:
                torch.cuda.synchronize(dist.device)
            times.append(time.perf_counter() - start)
            losses.append(dist.all_sum([float(loss.detach())])[0] / dist.world_size)
            out_of_time = dist.all_sum([float(time.monotonic() > deadline)])[0] > 0
            if out_of_time:
                break
        timed = times[s.warmup :] if len(times) > s.warmup else times
        running = [
            m.running_mean for m in model.modules() if isinstance(m, kind) and m.track_running_stats
        ]
        return {
            "ok": finite(losses) and norms > 0,
            "norm": (
                "SyncBatchNorm"
                if cuda
                else "BatchNorm2d, running statistics averaged across processes "
                "(Distributed.average_buffers: PyTorch's SyncBatchNorm runs on CUDA only)"
            ),
            "norm_layers": norms,
            "synchronised": cuda and dist.world_size > 1,
            "world_size": dist.world_size,
            "amp": amp,
            "steps": len(losses),
            "steps_per_s": round(len(timed) / sum(timed), 4),
            "last_loss": losses[-1],
            "losses_finite": finite(losses),
            "running_stats_finite": all(bool(torch.isfinite(r).all()) for r in running),
        }

    def tracktor_tracking(self, allowed: float) -> dict[str, Any]:
        """Tracktor on the device over the first frames of the first sequence (rank 0)."""
        s = self.sizes
        if not self.main:
            return {"ok": True, "note": "rank 0 tracks"}
        deadline = time.monotonic() + allowed
        sequence = self.sequences[0]
        frames = list(sequence.frames)[: s.warmup + s.track_frames]
        images = [sequence.read_image(f) for f in frames]
        tracker = create_tracker(
            "tracktor",
            detector=str(self.detector_file),
            detection_thresh=0.0,  # every public detection gives a track ...
            min_track_score=0.0,  # ... and keeps it: a crowded scene's work
        )
        tracker.predictor.model.to(self.dist.device)
        size = (int(sequence.im_width), int(sequence.im_height))
        tracker.reset(image_size=size)
        cuda = self.dist.device.type == "cuda"
        counts, times = [], []
        for frame, image in zip(frames, images, strict=True):
            start = time.perf_counter()
            tracks = tracker.update(sequence.detections_at(frame), frame=image)
            if cuda:
                torch.cuda.synchronize(self.dist.device)
            times.append(time.perf_counter() - start)
            counts.append(len(tracks))
            if time.monotonic() > deadline:
                break
        timed = times[s.warmup :] if len(times) > s.warmup else times
        return {
            "ok": len(times) > 0,
            "detector": f"{s.backbone} at {s.min_size} px (random weights)",
            "image": f"{size[0]}x{size[1]}",
            "frames": len(times),
            "frames_per_s": round(len(timed) / sum(timed), 4),
            "mean_tracks": round(statistics.mean(counts[s.warmup :] or counts), 2),
            "stopped_early": len(times) < len(frames),
        }

    def tracker_training(self, allowed: float) -> dict[str, Any]:
        """``train_tracker``: Tracktor, DeepMOT loss, clips, the amp setting."""
        s = self.sizes
        out = self.work / "tracker_training"
        if self.main and out.exists():
            shutil.rmtree(out)
        self.barrier()
        config = TrackerTrainConfig(
            tracker="tracktor",
            model={"detector": str(self.detector_file)},
            loss="deepmot",
            lr=1e-4,
            sampling="clips",
            clip_length=s.clip_length,
            iterations=s.tracker_steps,
            batch_size=s.clips * self.dist.world_size,
            checkpoint_every=10_000,
            diagnose_every=10_000,  # no gradient diagnostics: plain training steps
            det_file=None,
            device=self.device,
        )
        stopped = False
        try:
            train_tracker(self.sequences, out, config, progress=False, amp=s.amp, workers=s.workers)
        except TrainingInterrupted:
            stopped = True
        self.barrier()
        if not self.main:
            return {"ok": True, "note": "rank 0 reports"}
        warmup = min(s.warmup, 2)
        rate, losses, steps = steps_per_second(out / "log.csv", warmup)
        return {
            "ok": finite(losses),
            "loss": "deepmot",
            "matcher": config.matcher,
            "global_batch": config.batch_size,
            "clip_length": s.clip_length,
            "amp": s.amp,
            "steps": steps,
            "stopped_early": stopped,
            "steps_per_s": round(rate, 4),
            "last_loss": losses[-1],
            "losses_finite": finite(losses),
        }

    # -------------------------------------------------------------------- all of it

    def machine(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "dry_run": self.args.dry_run,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "budget_seconds": self.args.budget,
            "sizes": asdict(self.sizes),
        }
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpus"] = torch.cuda.device_count()
            info["cuda"] = torch.version.cuda
        return info

    def all(self) -> dict[str, Any]:
        report: dict[str, Any] = {"machine": self.machine()}
        try:
            self.run("process_group", self.process_group)
            self.run("data", self.data)  # rank 0 writes, the others wait at a barrier
            if not self.results["data"]["ok"]:
                raise RuntimeError(f"no data: {self.results['data']['error']}")
            self.run("detector_fp32", lambda t: self.detector_training(t, None, "detector_fp32"))
            self.run(
                "detector_amp", lambda t: self.detector_training(t, self.sizes.amp, "detector_amp")
            )
            self.run("sync_batchnorm", self.sync_batchnorm)
            self.run("tracktor_tracking", self.tracktor_tracking)
            self.run("tracker_training", self.tracker_training)
        finally:
            self.watchdog.close()
            if torch_dist.is_initialized():
                torch_dist.destroy_process_group()
        report["parts"] = self.results
        report["ok"] = all(p.get("ok") for p in self.results.values())
        report["total_seconds"] = round(time.monotonic() - self.started, 2)
        return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the CPU, gloo and tiny sizes")
    parser.add_argument("--out", default="gpu_check.json", help="the JSON of figures")
    parser.add_argument(
        "--data",
        nargs="+",
        metavar="SEQ_DIR",
        help="MOTChallenge sequence folders with img1/, gt/gt.txt and det/det.txt (default: "
        "a synthetic scene of 1920x1080 frames)",
    )
    parser.add_argument(
        "--budget", type=float, default=480.0, help="seconds for everything (default: 480)"
    )
    parser.add_argument(
        "--amp",
        choices=("fp16", "bf16", "none"),
        help="mixed precision of the amp parts (default: fp16 on a GPU, none in the dry run)",
    )
    parser.add_argument(
        "--work", help="folder for the frames and runs (default: a temporary one, removed)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the check (see the module doc); 0 when every part is ok, 1 otherwise, 2 for bad
    input or no GPU without ``--dry-run``."""
    args = parse_args(argv)
    try:
        if not args.dry_run and not torch.cuda.is_available():
            raise DeepMOTError(
                f"no CUDA device (torch {torch.__version__}, built for CUDA "
                f"{torch.version.cuda or 'none'}): run on a GPU machine, or pass --dry-run"
            )
        if not args.budget > 0:
            raise DeepMOTError(f"--budget must be > 0 seconds, got {args.budget}")
        if args.dry_run and args.amp == "fp16":
            raise DeepMOTError("--amp fp16 needs CUDA (its loss scaling); the dry run takes bf16")
        for folder in args.data or []:
            if not (Path(folder) / "img1").is_dir():
                raise DeepMOTError(f"--data {folder}: not a sequence folder with img1/")
    except DeepMOTError as error:
        print(f"gpu_check: error: {error}", file=sys.stderr)
        return 2
    sizes = DRY_SIZES if args.dry_run else GPU_SIZES
    if args.amp is not None:
        sizes = replace(sizes, amp=None if args.amp == "none" else args.amp)
    made = args.work is None
    port = os.environ.get("MASTER_PORT", str(os.getpid()))
    work = Path(args.work or Path(tempfile.gettempdir()) / f"deepmot-gpu-check-{port}")
    work.mkdir(parents=True, exist_ok=True)
    check = Check(args, sizes, work)
    try:
        report = check.all()
    finally:
        if made and check.main:
            shutil.rmtree(work, ignore_errors=True)
    if check.main:
        text = json.dumps(report, indent=2) + "\n"
        atomic_write_text(args.out, text)
        print(text, end="")
        print(f"{'every part ok' if report['ok'] else 'FAILED'}; written to {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
