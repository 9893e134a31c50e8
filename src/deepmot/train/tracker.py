"""Train any trainable tracker with the DeepMOT loss, the Smooth-L1 baseline or a
single-object tracker's own objective (paper Sec. 4.3, Sec. 5).

Each step draws ``batch_size`` clips (:class:`~deepmot.train.clips.ClipSampler`) from the
training frames (the first 50% of each sequence, supp. A.2); ``sampling="pairs"`` is the
two-frame clip: the paper's frame pairs. The training loss that ``config.loss`` names
(:mod:`deepmot.train.losses`) scores them: the DeepMOT and Smooth-L1 losses on the clips the
tracker runs through on its own outputs (:mod:`deepmot.train.rollout`), Vanilla on the pairs.
The mean loss over the clips' frames is back-propagated through the whole clip (truncated at
its start) into the tracker's trained module only; Adam, learning rate 1e-4 (A.2). A step
whose loss has no gradient (no track in any frame) is skipped, as the authors' code does.

Besides the loss, every step logs the soft terms (FP~, FN~, IDS~, dMOTA, dMOTP), the share of
softmax entries that are not saturated, the softmax scale (``scale_start`` moves it from soft to
sharp over the run; the trainer passes each step's to the loss), every ``diagnose_every`` steps
the gradient each term sends to the boxes (:mod:`deepmot.train.diagnostics`), and the true MOTA
and MOTP of the same clips from the evaluator's matching, so that one can see the proxy and the
real measure move together. The run folder (:class:`~deepmot.engine.run.TrainingRun`) holds
``config.json``, ``checkpoint.pt``, ``log.csv`` and the trained weights; every step draws its
samples from a generator seeded by (seed, step), so a resumed run continues exactly as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepmot.data.sequence import Sequence
from deepmot.engine.checkpoint import restore_training_state
from deepmot.engine.distributed import (
    Distributed,
    DistributedModule,
    precision_and_seed,
    setup,
    zero_term,
)
from deepmot.engine.loop import Optimization, StepReport, fit
from deepmot.engine.prefetch import prefetching, step_loader
from deepmot.engine.run import TrainingRun, resolve_resumed_config
from deepmot.errors import DeepMOTError
from deepmot.trackers.registry import Trainable, get_trainable
from deepmot.train.clips import ClipSampler, ClipStart, StepClipFrames
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.diagnostics import GRADIENT_TERMS
from deepmot.train.losses import TrainingLoss, create_training_loss
from deepmot.train.rollout import COUNTS, TERMS, Rollout, StepResult, placeholder_loss

__all__ = ["CONFIDENCE_PARAMETERS", "LOG_FIELDS", "train_tracker"]

CONFIDENCE_PARAMETERS = "confidence_"
"""The name prefix of a model's confidence-head parameters (``TrackerTrainConfig.confidence_lr``
applies to them)."""

log = logging.getLogger(__name__)

LOG_FIELDS = (
    "iteration", "loss", *TERMS, *(f"grad_{t}" for t in GRADIENT_TERMS), "true_mota",
    "true_motp", "scale", "seconds",
)  # fmt: skip


def _check_inputs(sequences: list[Sequence], trainable: Trainable, model_config: Any) -> None:
    if trainable.needs_images:
        missing = [s.name for s in sequences if not s.has_images]
        if missing:
            raise DeepMOTError(
                f"tracker {trainable.name!r} regresses from the image, and these sequences have "
                f"no frames (img1/ or a synthetic scene): {', '.join(missing)}"
            )
    if trainable.uses_detections(model_config):
        missing = [s.name for s in sequences if s.detections is None]
        if missing:
            raise DeepMOTError(
                f"tracker {trainable.name!r} looks at detections, and these sequences have none "
                f"loaded: {', '.join(missing)} (choose a detection file they have, or train a "
                "model that does not use detections)"
            )


def train_tracker(
    sequences: list[Sequence],
    out: str | Path,
    config: TrackerTrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    backend: str | None = None,
    amp: str | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Train ``config.tracker`` on ``sequences``; write the run into ``out``.

    Under torchrun (``WORLD_SIZE`` > 1) each process trains on its share of every step's
    global batch of ``config.batch_size`` clips, the model wrapped in DDP
    (:mod:`deepmot.engine.distributed`): the same steps as one process, up to float rounding.

    Args:
        sequences: training sequences with ground truth (with frames for trackers that need
            them, with detections for models that use them).
        out: the run folder.
        config: settings; with ``resume``, None means the stored ones, and otherwise only
            ``iterations`` and ``device`` may differ from them (and are applied).
        resume: continue from ``out/checkpoint.pt`` (on any number of processes).
        progress: show a progress bar with the loss and the true MOTA.
        backend: the process group's backend under torchrun (None: ``nccl`` on CUDA, else
            ``gloo``).
        amp: ``"bf16"`` or ``"fp16"``: mixed precision on CUDA (None: float32).
        workers: for trackers that read frames, DataLoader processes reading (decoding,
            rendering) the next steps' frames while the model trains
            (:mod:`deepmot.engine.prefetch`; 0: read in the rollout).

    Returns:
        ``{"iterations", "weights", "last": {field: value}}``.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    run = TrainingRun(out, LOG_FIELDS, resume)
    if run.stored_config is not None:
        stored = TrackerTrainConfig.from_dict(run.stored_config)
        config = resolve_resumed_config(
            stored, config, ("iterations", "device"), run.checkpoint_path
        )
    config = config or TrackerTrainConfig()
    try:
        trainable = get_trainable(config.tracker)
        model_config = trainable.config_from_dict(config.model)
    except ValueError as error:
        raise DeepMOTError(str(error)) from None
    _check_inputs(sequences, trainable, model_config)
    dist = setup(config.device, backend)
    try:
        return _train(
            sequences, out, config, run, trainable, model_config, dist, progress, amp, workers
        )
    finally:
        dist.close()


def _freeze(model: torch.nn.Module, prefixes: tuple[str, ...]) -> None:
    """Stop the gradient of the parameters named by ``prefixes`` (a module path such as
    ``features.0``, or a parameter's full name).

    Raises:
        DeepMOTError: a prefix that names no parameter.
    """
    named = dict(model.named_parameters())
    for prefix in prefixes:
        chosen = [n for n in named if n == prefix or n.startswith(prefix + ".")]
        if not chosen:
            modules = sorted({n.rsplit(".", 1)[0] for n in named})
            raise DeepMOTError(
                f"freeze {prefix!r}: the model has no such parameters (its modules: "
                f"{', '.join(modules)})"
            )
        for name in chosen:
            named[name].requires_grad_(False)


def _train(
    sequences: list[Sequence],
    out: str | Path,
    config: TrackerTrainConfig,
    run: TrainingRun,
    trainable: Trainable,
    model_config: Any,
    dist: Distributed,
    progress: bool,
    amp: str | None,
    workers: int,
) -> dict[str, Any]:
    """Set the run up, fit it (:func:`~deepmot.engine.loop.fit`), save the weights."""
    precision, scaler = precision_and_seed(dist, config.batch_size, amp, config.seed)
    model, optimizer = _model_and_optimizer(config, run, trainable, model_config, dist.device)
    if run.state is not None:
        restore_training_state(run.state, model, optimizer, scaler)
    trained = dist.wrap(model)  # DDP with several processes; the frozen matcher stays out
    predictor = trainable.predictor(trained)
    history_len = max(2, int(predictor.history_len))
    rollout = Rollout(predictor, config, history_len, dist.device, trainable.management)
    sampler, read_ahead = _clip_sampler(
        sequences, rollout, trainable.needs_images, dist, run, workers
    )
    training_loss = create_training_loss(config, dist.device)
    training_loss.check(predictor, config.tracker)
    step = _TrainingStep(
        rollout,
        training_loss,
        sampler,
        read_ahead,
        Optimization(model, trained, optimizer, scaler, precision, dist, run),
    )

    checkpoint = run.checkpointer(config, model, optimizer, scaler)
    run.start(config.to_dict())
    model.train()
    iteration = fit(
        run,
        step,
        run.start_iteration,
        config.iterations,
        checkpoint,
        config.checkpoint_every,
        f"train {config.tracker} ({config.loss})",
        progress,
    )
    weights = Path(out) / trainable.weights_file
    model.eval()
    if run.main:
        card = {
            "tracker": config.tracker,
            "train": config.to_dict(),
            "iterations": iteration,
            "sequences": [s.name for s in sequences],
        }
        trainable.save(model, weights, card)
    return {"iterations": iteration, "weights": str(weights), "last": step.last}


def _model_and_optimizer(
    config: TrackerTrainConfig,
    run: TrainingRun,
    trainable: Trainable,
    model_config: Any,
    device: torch.device,
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The trained module on ``device`` (from ``init_weights`` on a fresh run, ``freeze``
    applied) and Adam over its trained parameters."""
    model = trainable.build(model_config).to(device)
    if config.init_weights is not None and run.state is None:
        # fine-tune from trained weights (e.g. Smooth-L1 or DeepMOT from the Vanilla model)
        try:
            model.load_state_dict(trainable.load(config.init_weights).state_dict())
        except RuntimeError as error:
            raise DeepMOTError(
                f"{config.init_weights}: weights do not fit the model's settings ({error})"
            ) from None
    _freeze(model, config.freeze)
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if config.confidence_lr is None:
        return model, torch.optim.Adam([p for _, p in trained], lr=config.lr)
    # a confidence head learns at its own rate (CONFIDENCE_PARAMETERS names it)
    head = [p for n, p in trained if n.startswith(CONFIDENCE_PARAMETERS)]
    rest = [p for n, p in trained if not n.startswith(CONFIDENCE_PARAMETERS)]
    groups = [{"params": rest}, {"params": head, "lr": config.confidence_lr}]
    return model, torch.optim.Adam([g for g in groups if g["params"]], lr=config.lr)


def _clip_sampler(
    sequences: list[Sequence],
    rollout: Rollout,
    reads_frames: bool,
    dist: Distributed,
    run: TrainingRun,
    workers: int,
) -> tuple[ClipSampler, Iterator[Any] | None]:
    """The run's clip sampler and, with ``workers`` and a tracker that reads frames, the
    iterator of each step's frames read ahead by DataLoader processes (the steps' clips are
    seeded, so the workers draw the same ones); None without."""
    config = rollout.config
    prefetch = workers > 0 and reads_frames
    if workers > 0 and not prefetch and dist.rank == 0:
        log.warning(
            "workers=%d: tracker %r reads no frames, so none are read ahead",
            workers,
            config.tracker,
        )
    sampler = ClipSampler(
        prefetching(sequences) if prefetch else sequences,
        config.frames_per_sample,
        rollout.history_len,
        config.train_fraction,
        config.augment,
    )
    if not prefetch:
        return sampler, None
    read_ahead = step_loader(
        StepClipFrames(sampler, config.batch_size, config.seed, dist.rank, dist.world_size),
        run.start_iteration,
        config.iterations,
        workers,
    )
    return sampler, read_ahead


@dataclass
class _TrainingStep:
    """One optimisation step (``step(iteration) -> StepReport`` for
    :func:`~deepmot.engine.loop.fit`): draw the step's clips, the training loss, backward,
    the optimizer's step when any process learned, the log row. ``last`` holds the last
    step's logged figures."""

    rollout: Rollout
    loss: TrainingLoss
    sampler: ClipSampler
    read_ahead: Iterator[Any] | None
    parts: Optimization
    last: dict[str, float] = field(default_factory=dict)

    def __call__(self, iteration: int) -> StepReport:
        config = self.rollout.config
        scale = config.scale_at(iteration)
        mine = self._samples(iteration)
        diagnose = iteration % config.diagnose_every == 0
        if isinstance(self.parts.trained, DistributedModule):
            self.parts.trained.forward_calls = 0
        with self.parts.precision:
            starts, rngs = [s for s, _ in mine], [r for _, r in mine]
            result = self.loss.step(starts, rngs, self.rollout, scale, diagnose)
        grads = dict.fromkeys(GRADIENT_TERMS, float("nan"))
        if diagnose:
            grads = self.loss.gradient_norms(result, scale)
        learns = self._backward(result, mine[0][0])
        # the step is skipped when no clip of the global batch had a track (as with one
        # process); the figures are the global batch's
        world = self.parts.dist.world_size
        sums = self.parts.dist.sum_named(
            {
                "learns": float(learns),
                "stop": float(self.parts.run.stop_requested is not None),
                "loss": float(result.loss.detach()),
                **{f"soft_{k}": result.soft[k] for k in TERMS},
                # norms of gradients of means over all clips: squares add up
                **{f"grad_{k}": grads[k] ** 2 / world**2 for k in GRADIENT_TERMS},
                **{f"count_{k}": result.counts[k] for k in COUNTS},
            }
        )
        if sums["learns"] > 0:
            self.parts.scaler.step(self.parts.optimizer)
            self.parts.scaler.update()
        if self.parts.dist.enabled:
            grads = {k: math.sqrt(sums[f"grad_{k}"]) for k in GRADIENT_TERMS}
        return self._report(result, sums, grads)

    def _samples(self, iteration: int) -> list[tuple[ClipStart, np.random.Generator]]:
        """This process's share of the step's clip starts, each with its own generator (a clip
        rolls out the same in whichever process); prefetched frames put in place first."""
        config = self.rollout.config
        if self.read_ahead is not None:
            frames = next(self.read_ahead)
            for index, sequence in enumerate(self.sampler.sequences):
                sequence.frame_source.frames = frames.get(index, {})
        rng = np.random.default_rng([config.seed, iteration])
        starts = self.sampler.sample(rng, config.batch_size)
        return self.parts.dist.shard(list(zip(starts, rng.spawn(len(starts)), strict=True)))

    def _backward(self, result: StepResult, start: ClipStart) -> bool:
        """Back-propagate the step's loss; whether it had a gradient. Under DDP every process
        joins the gradient reduction, with or without tracks."""
        learns = result.loss.requires_grad
        self.parts.optimizer.zero_grad(set_to_none=True)
        if isinstance(self.parts.trained, DistributedModule):
            loss = result.loss if learns else result.loss.detach()
            if self.parts.trained.forward_calls == 0:
                rollout = self.rollout
                with self.parts.precision:
                    loss = loss + placeholder_loss(
                        rollout.predictor, start, rollout.history_len, rollout.device
                    )
            self.parts.scaler.scale(loss + zero_term(self.parts.model)).backward()
        elif learns:
            self.parts.scaler.scale(result.loss).backward()
        return learns

    def _report(
        self, result: StepResult, sums: dict[str, float], grads: dict[str, float]
    ) -> StepReport:
        """The step's log row and progress figures, from the processes' sums."""
        world = self.parts.dist.world_size
        totals = StepResult(result.loss, {}, {k: sums[f"count_{k}"] for k in COUNTS})
        self.last.clear()
        self.last.update(
            {
                "loss": sums["loss"] / world,
                **{k: sums[f"soft_{k}"] / world for k in TERMS},
                **{f"grad_{k}": v for k, v in grads.items()},
                "true_mota": totals.true_mota,
                "true_motp": totals.true_motp,
                "scale": result.scale,
            }
        )
        return StepReport(
            [f"{self.last[k]:.6g}" for k in LOG_FIELDS[1:-1]],
            {"loss": f"{self.last['loss']:.4f}", "mota": f"{totals.true_mota:.3f}"},
            stop_elsewhere=sums["stop"] > 0,
        )
