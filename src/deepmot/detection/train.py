"""Train the person detector on frames with ground truth (synthetic scenes or MOTChallenge).

Each step draws ``batch_size`` frames from the sequences (a generator seeded by (seed, step):
:class:`~deepmot.detection.data.StepFrames`, read ahead by ``workers`` DataLoader processes),
flips half of them, and minimises the sum of Faster R-CNN's four losses (RPN objectness and
box, classifier and box regression) with AdamW. The RPN's and the box head's samplers
(:class:`SeededSampler`) draw each frame's anchors and proposals from a seed of its own, so a
resumed run continues exactly and a frame's samples do not depend on the rest of the batch.
With ``norm="batch"`` BatchNorm trains (nothing is pretrained); the saved detector loads with
frozen BatchNorm for tracking. The run folder (:class:`~deepmot.engine.run.TrainingRun`) holds
``config.json``, ``checkpoint.pt``, ``log.csv`` and ``detector.safetensors`` with its card.

Under torchrun (:mod:`deepmot.engine.distributed`) each process trains on its share of the
step's frames (``rank, rank + N, ...``) with the detector in DDP, and every loss term is
weighted by the process's share of the samples it averages (the RPN's anchors, the box
head's proposals), so the averaged gradient is the one of the whole batch's losses. BatchNorm
is the one place the frames of a batch meet: on CUDA it becomes ``SyncBatchNorm`` (statistics
over the whole batch, as one process); on the CPU, where PyTorch has no SyncBatchNorm, each
process normalises its own frames and the running statistics are averaged after every step
(all processes keep the same model). So N processes take one process's steps up to float
rounding with ``norm="frozen"`` (tested on the CPU), and by construction with ``norm="batch"``
on CUDA (not yet run on a GPU).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler

from deepmot.data.sequence import Sequence
from deepmot.detection.config import DetectorTrainConfig
from deepmot.detection.data import StepFrames, sampling_weights
from deepmot.detection.model import build_detector, init_detector, save_detector
from deepmot.engine.checkpoint import restore_training_state
from deepmot.engine.distributed import Distributed, precision_and_seed, setup
from deepmot.engine.loop import Optimization, StepReport, fit
from deepmot.engine.prefetch import step_loader
from deepmot.engine.run import TrainingRun, resolve_resumed_config
from deepmot.errors import DeepMOTError

__all__ = [
    "LOG_FIELDS",
    "WEIGHTS_FILE",
    "SeededSampler",
    "freeze_layers",
    "share_of_loss",
    "train_detector",
    "use_seeded_samplers",
]

log = logging.getLogger(__name__)

RPN_LOSSES = ("loss_objectness", "loss_rpn_box_reg")  # means over the RPN's sampled anchors
HEAD_LOSSES = ("loss_classifier", "loss_box_reg")  # means over the box head's samples
LOSSES = (*RPN_LOSSES, *HEAD_LOSSES)
LOG_FIELDS = ("iteration", "loss", *LOSSES, "seconds")
WEIGHTS_FILE = "detector.safetensors"


class SeededSampler(BalancedPositiveNegativeSampler):
    """torchvision's positive/negative sampler, drawing image ``i`` of a forward pass from
    its own generator seeded with ``seeds[i]`` (torchvision's draws the images one after the
    other from torch's global generator, so an image's samples would depend on the images
    before it); :attr:`drawn` counts the samples of the last call (the losses' divisor)."""

    def __init__(self, batch_size_per_image: int, positive_fraction: float) -> None:
        super().__init__(batch_size_per_image, positive_fraction)
        self.seeds: list[int] = []
        self.drawn = 0

    def __call__(self, matched_idxs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        if len(self.seeds) != len(matched_idxs):
            raise ValueError(f"{len(self.seeds)} seeds for {len(matched_idxs)} images")
        positives, negatives = [], []
        for seed, matched in zip(self.seeds, matched_idxs, strict=True):
            cuda = [matched.device] if matched.device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(seed)
                (pos,), (neg,) = super().__call__([matched])
            positives.append(pos)
            negatives.append(neg)
        self.drawn = sum(int(mask.sum()) for mask in positives + negatives)
        return positives, negatives


def use_seeded_samplers(model: nn.Module) -> tuple[SeededSampler, SeededSampler]:
    """Swap the detector's RPN and box-head samplers for :class:`SeededSampler` (same sizes)."""
    swapped = []
    for owner in (model.rpn, model.roi_heads):
        old = owner.fg_bg_sampler
        owner.fg_bg_sampler = SeededSampler(old.batch_size_per_image, old.positive_fraction)
        swapped.append(owner.fg_bg_sampler)
    return swapped[0], swapped[1]


def share_of_loss(
    losses: dict[str, Tensor],
    counts: tuple[float, ...],
    totals: tuple[float, ...],
    world_size: int,
) -> Tensor:
    """One process's loss, whose mean over the ``world_size`` processes (DDP averages the
    gradients) is the whole batch's sum of the four losses.

    Each of torchvision's losses (:data:`LOSSES`) is a mean over samples (anchors for the
    RPN's two, proposals for the head's two); ``counts`` are this process's samples for each
    and ``totals`` all processes' together, so the term is weighted by
    ``world_size * count / total`` (1 with one process).
    """
    return sum(
        losses[k] * (world_size * n / max(total, 1.0))
        for k, n, total in zip(LOSSES, counts, totals, strict=True)
    )


def freeze_layers(model: nn.Module, count: int) -> None:
    """Turn off the gradients of the first ``count`` modules of ``model.backbone.body``.

    Raises:
        ValueError: ``count`` exceeds the body's modules.
    """
    layers = list(model.backbone.body.children())
    if count > len(layers):
        raise ValueError(f"frozen_layers {count}: the backbone's body has {len(layers)} modules")
    for layer in layers[:count]:
        layer.requires_grad_(False)


def train_detector(
    sequences: list[Sequence],
    out: str | Path,
    config: DetectorTrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    card: dict[str, Any] | None = None,
    half: bool = False,
    backend: str | None = None,
    amp: str | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Train a detector into the run folder ``out`` (see the module doc).

    Args:
        sequences: sequences with ground truth and frames.
        config: the settings (with ``resume``: None keeps the stored ones; otherwise only
            ``iterations`` and ``device`` may differ).
        card: extra entries for the weights' JSON card (e.g. how the data was made).
        half: store the weights as float16 (half the file).
        backend: the process group's backend under torchrun (None: ``nccl`` on CUDA, else
            ``gloo``).
        amp: ``"bf16"`` or ``"fp16"``: mixed precision on CUDA (None: float32).
        workers: DataLoader processes reading (decoding, rendering) the next steps' frames
            while the detector trains (0: read in this process).

    Returns:
        ``{"iterations", "weights", "loss"}`` (the last step's loss).

    Raises:
        DeepMOTError: sequences without frames or ground truth, a resume with other
            settings, a bad launch under torchrun.
    """
    missing = [s.name for s in sequences if not s.has_images or s.gt is None]
    if missing or not sequences:
        raise DeepMOTError(
            "a detector trains on sequences with frames and ground truth; these have not: "
            f"{', '.join(missing) or 'none given'}"
        )
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    run = TrainingRun(out, LOG_FIELDS, resume)
    if run.stored_config is not None:
        stored = DetectorTrainConfig.from_dict(run.stored_config)
        config = resolve_resumed_config(
            stored, config, {"iterations", "device"}, run.checkpoint_path
        )
    config = config if config is not None else DetectorTrainConfig()
    dist = setup(config.device, backend)
    try:
        return _train(sequences, out, config, run, dist, progress, card, half, amp, workers)
    finally:
        dist.close()


def _train(
    sequences: list[Sequence],
    out: str | Path,
    config: DetectorTrainConfig,
    run: TrainingRun,
    dist: Distributed,
    progress: bool,
    card: dict[str, Any] | None,
    half: bool,
    amp: str | None,
    workers: int,
) -> dict[str, Any]:
    """Set the run up, fit it (:func:`~deepmot.engine.loop.fit`), save the weights."""
    precision, scaler = precision_and_seed(dist, config.batch_size, amp, config.seed)
    model, synced = _model(config, run, dist)
    rpn_sampler, head_sampler = use_seeded_samplers(model)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    iteration = run.start_iteration
    if run.state is not None:
        restore_training_state(run.state, model, optimizer, scaler)
    trained = dist.wrap(model)
    if dist.enabled and config.norm == "batch" and not synced and dist.rank == 0:
        log.warning(
            "BatchNorm on %d CPU processes: each normalises its own %d frame(s) of the batch "
            "of %d (PyTorch's SyncBatchNorm runs on CUDA only); the running statistics are "
            "averaged after every step",
            dist.world_size, config.batch_size // dist.world_size, config.batch_size,
        )  # fmt: skip
    steps = StepFrames(
        sequences,
        config.batch_size,
        config.seed,
        config.flip,
        config.min_visibility,
        dist.rank,
        dist.world_size,
        sampling_weights(sequences, config.synthetic_share),
    )

    checkpoint = run.checkpointer(config, model, optimizer, scaler)
    run.start(config.to_dict())
    model.train()
    step = _DetectorStep(
        config,
        Optimization(model, trained, optimizer, scaler, precision, dist, run),
        (rpn_sampler, head_sampler),
        synced,
        step_loader(steps, iteration, config.iterations, workers),
    )
    iteration = fit(
        run,
        step,
        iteration,
        config.iterations,
        checkpoint,
        config.checkpoint_every,
        "train detector",
        progress,
    )
    weights = Path(out) / WEIGHTS_FILE
    model.eval()
    if run.main:
        full_card = {
            "train": config.to_dict(),
            "iterations": iteration,
            "sequences": [s.name for s in sequences],
            **(card or {}),
        }
        save_detector(model, config.detector, weights, full_card, half=half)
    return {"iterations": iteration, "weights": str(weights), "loss": step.figures["loss"]}


def _model(
    config: DetectorTrainConfig, run: TrainingRun, dist: Distributed
) -> tuple[nn.Module, bool]:
    """The detector to train on ``dist.device`` (its backbone from ``init_backbone``, or the
    whole detector from ``init_detector``, on a fresh run; the leading layers frozen) and
    whether its BatchNorm is synchronised across the processes (batch norm, several CUDA
    processes)."""
    model = build_detector(config.detector, trainable_norm=config.norm == "batch")
    if config.init_backbone is not None and run.state is None:
        from deepmot.detection.mobilenet_v2 import init_backbone

        init_backbone(model, config.init_backbone)
    if config.init_detector is not None and run.state is None:
        init_detector(model, config.detector, config.init_detector)
    freeze_layers(model, config.frozen_layers)
    model = model.to(dist.device)
    synced = config.norm == "batch" and dist.enabled and dist.device.type == "cuda"
    if synced:  # batch statistics over all processes' frames
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, synced


@dataclass
class _DetectorStep:
    """One optimisation step on a batch of frames (``step(iteration) -> StepReport`` for
    :func:`~deepmot.engine.loop.fit`); ``figures`` holds the last step's loss."""

    config: DetectorTrainConfig
    parts: Optimization
    samplers: tuple[SeededSampler, SeededSampler]  # the RPN's and the box head's
    synced: bool
    batches: Iterator[Any]
    figures: dict[str, float] = field(default_factory=lambda: {"loss": float("nan")})

    def __call__(self, iteration: int) -> StepReport:
        dist, device = self.parts.dist, self.parts.dist.device
        rpn_sampler, head_sampler = self.samplers
        images, targets, seeds = next(self.batches)
        images = [image.to(device) for image in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        rpn_sampler.seeds = seeds[:, 0].tolist()
        head_sampler.seeds = seeds[:, 1].tolist()
        with self.parts.precision:
            losses = self.parts.trained(images, targets)
        counts = (rpn_sampler.drawn,) * 2 + (head_sampler.drawn,) * 2
        # the whole batch's samples, and each term summed over its samples
        sums = dist.sum_named(
            {
                "stop": float(self.parts.run.stop_requested is not None),
                "rpn_samples": rpn_sampler.drawn,
                "head_samples": head_sampler.drawn,
                **{k: n * float(losses[k].detach()) for k, n in zip(LOSSES, counts, strict=True)},
            }
        )
        totals = (sums["rpn_samples"],) * 2 + (sums["head_samples"],) * 2
        loss = share_of_loss(losses, counts, totals, dist.world_size)
        self.parts.optimizer.zero_grad(set_to_none=True)
        self.parts.scaler.scale(loss).backward()
        self.parts.scaler.step(self.parts.optimizer)
        self.parts.scaler.update()
        if self.config.norm == "batch" and not self.synced:
            dist.average_buffers(self.parts.model)
        means = [sums[k] / max(t, 1.0) for k, t in zip(LOSSES, totals, strict=True)]
        self.figures["loss"] = sum(means)
        return StepReport(
            [f"{self.figures['loss']:.6g}", *(f"{m:.6g}" for m in means)],
            {"loss": f"{self.figures['loss']:.4f}"},
            stop_elsewhere=sums["stop"] > 0,
        )
