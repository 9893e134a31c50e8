"""Training the Deep Hungarian Net (paper Sec. 5.1, supplementary A.1).

Weighted focal loss (w0 = n1 / (n0 + n1) on the zeros, w1 = 1 - w0 on the ones, gamma 2),
RMSprop with lr 3e-4 decaying by 5% every 20,000 iterations. Batches group matrices of
similar size (sort by N * M, cut, shuffle the batches; NOTES.md: 2.4x on a CPU).

Checkpoints (``checkpoint.pt``) are written atomically every ``checkpoint_every`` iterations
and at the end; they hold the model, the optimizer, the iteration, the position in the
epoch's batch order and the RNG states, so that ``resume=True`` continues exactly where the
run stopped: a run resumed from any checkpoint ends with the same weights, bit for bit, as one
that never stopped (on the same machine and device). Each iteration appends a row to
``log.csv``; the final weights go to ``<arch>.safetensors`` with a JSON card.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from deepmot.assign.dhn import SHIPPED_CONFIG, DHNConfig, build_dhn, save_dhn
from deepmot.data.dhn_dataset import (
    DHNDataset,
    collate,
    size_grouped_batches,
    uniform_training_matrices,
)
from deepmot.engine.checkpoint import restore_training_state
from deepmot.engine.distributed import Distributed, precision_and_seed, setup, zero_term
from deepmot.engine.loop import Optimization, StepReport, fit
from deepmot.engine.run import TrainingRun, resolve_resumed_config
from deepmot.errors import DeepMOTError

__all__ = [
    "DHNTrainConfig",
    "batch_wa",
    "batches_per_epoch",
    "focal_weights",
    "load_train_config",
    "train_dhn",
    "weighted_focal_loss",
]

log = logging.getLogger(__name__)

LOG_FIELDS = ["iteration", "epoch", "loss", "wa", "lr", "matrices", "elapsed_s"]


@dataclass(frozen=True)
class DHNTrainConfig:
    """Settings of a DHN training run (paper values where it gives them).

    Attributes:
        name: registry name of the variant (``seq_gru`` ...); names the weights file.
        dhn: the model's settings (default: the lean shipped settings).
        epochs: passes over the training set (paper: 20).
        max_iters: stop after this many iterations in all (None: run the epochs).
        max_minutes: stop (with a checkpoint) after this much wall time in this process.
        batch_size: matrices per batch.
        lr: RMSprop learning rate (paper: 3e-4).
        lr_decay: factor applied every ``lr_decay_every`` iterations (paper: 0.95 per 20k).
        gamma: focal-loss modulating factor (paper: 2).
        weighting: ``"paper"`` (w0 = n1 / (n0 + n1), w1 = 1 - w0) or ``"none"`` (w0 = w1 = 1).
            The paper's weights optimise WA, a balanced accuracy, and push the net to predict
            too many ones; ``"none"`` trades a little WA for many more exact matches.
        subset: train on this many matrices drawn at random from the split (None: all).
        uniform: add this many uniform-random matrices of mixed sizes (not in the paper; see
            :func:`~deepmot.data.dhn_dataset.uniform_training_matrices`, half of them
            thresholded) so that the net sees sizes beyond the real frames'.
        uniform_max_size: largest side of those matrices.
        batch_entries: cut a batch before it holds more than this many entries (large
            matrices in smaller batches); None: ``batch_size`` matrices whatever their size.
        checkpoint_every: iterations between checkpoints.
        seed: seeds the model initialisation, the subset and the batch order.
        device: ``"cpu"``, ``"cuda"``, ...
    """

    name: str = "seq_gru"
    dhn: DHNConfig = field(default_factory=lambda: SHIPPED_CONFIG)
    epochs: int = 20
    max_iters: int | None = None
    max_minutes: float | None = None
    batch_size: int = 16
    lr: float = 3e-4
    lr_decay: float = 0.95
    lr_decay_every: int = 20_000
    gamma: float = 2.0
    weighting: str = "paper"
    subset: int | None = None
    uniform: int = 0
    uniform_max_size: int = 300
    batch_entries: int | None = None
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dhn"] = self.dhn.to_dict()
        return out


def focal_weights(target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Class weights of the loss: ``w0 = n1 / (n0 + n1)`` (zeros), ``w1 = 1 - w0`` (ones),
    counted over the valid entries of the whole batch.

    Args:
        target: ``(B, N, M)`` A* in {0, 1}; mask: ``(B, N, M) bool``.
    """
    n = mask.sum().clamp(min=1)
    n1 = (target * mask).sum()
    w0 = n1 / n
    return w0, 1 - w0


def weighted_focal_loss(
    logits: Tensor,
    target: Tensor,
    mask: Tensor,
    gamma: float = 2.0,
    weighting: str = "paper",
    totals: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Class-weighted focal loss, averaged over the valid entries.

    ``loss = mean over valid (w_t * (1 - p_t) ** gamma * -log p_t)`` with ``p_t`` the
    predicted probability of the true class and ``w_t`` from :func:`focal_weights`.

    Args:
        logits: ``(B, N, M)`` pre-sigmoid scores; target: ``(B, N, M)`` in {0, 1};
        mask: ``(B, N, M) bool``; gamma: modulating factor.
        weighting: ``"paper"`` (:func:`focal_weights`) or ``"none"`` (both classes weigh 1).
        totals: ``(valid entries, ones)`` of a larger batch this one is a share of (one
            process's share of a global batch): the class weights come from those counts and
            the sum is divided by the first, so the shares' losses add up to the whole's.
            None: this batch's counts.
    """
    if weighting == "none":
        w0 = w1 = torch.ones((), dtype=logits.dtype, device=logits.device)
    elif weighting != "paper":
        raise ValueError(f"weighting must be 'paper' or 'none', got {weighting!r}")
    elif totals is None:
        w0, w1 = focal_weights(target, mask)
    else:
        w0 = totals[1] / totals[0].clamp(min=1)
        w1 = 1 - w0
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = torch.where(target > 0.5, p, 1 - p)
    w = torch.where(target > 0.5, w1, w0)
    per_entry = w * (1 - p_t) ** gamma * ce
    count = mask.sum() if totals is None else totals[0]
    return (per_entry * mask).sum() / count.clamp(min=1)


def batch_wa(prob: Tensor, target: Tensor, mask: Tensor) -> float:
    """WA (eq. 10) of ``prob > 0.5`` against ``target``, averaged over the matrices of a batch;
    a cheap running figure for the progress bar (no row/column discretisation)."""
    pred = prob > 0.5
    tgt = target > 0.5
    n1 = (tgt & mask).sum((1, 2)).double()
    n0 = (~tgt & mask).sum((1, 2)).double()
    c1 = (pred & tgt & mask).sum((1, 2)).double()
    c0 = (~pred & ~tgt & mask).sum((1, 2)).double()
    both = (n0 > 0) & (n1 > 0)
    wa = torch.where(
        both, 0.5 * (c1 / n1.clamp(min=1) + c0 / n0.clamp(min=1)), (c0 + c1) / (n0 + n1)
    )
    return float(wa.mean())


def _epoch_batches(shapes: np.ndarray, config: DHNTrainConfig, epoch: int) -> list[np.ndarray]:
    """The batch order of ``epoch``: a pure function of the seed and the epoch."""
    rng = np.random.default_rng([config.seed, 1, epoch])
    return size_grouped_batches(shapes, config.batch_size, rng, config.batch_entries)


def batches_per_epoch(data: str | Path, config: DHNTrainConfig) -> int:
    """Batches in one epoch of ``config`` on ``data`` (the training set as the run builds it)."""
    return len(_epoch_batches(_load_train_set(data, config).shapes, config, 0))


def _load_train_set(data: str | Path, config: DHNTrainConfig) -> DHNDataset:
    path = Path(data)
    if path.is_dir():
        path = path / "train.safetensors"
    dataset = DHNDataset.load(path)
    if config.subset is not None and config.subset < len(dataset):
        rng = np.random.default_rng([config.seed, 0])
        dataset = dataset.subset(np.sort(rng.choice(len(dataset), config.subset, replace=False)))
    if config.uniform:
        extra = uniform_training_matrices(config.uniform, config.uniform_max_size, config.seed)
        dataset = dataset.concat(extra)
    if len(dataset) == 0:
        raise DeepMOTError(f"{path}: no training matrices")
    return dataset


def train_dhn(
    data: str | Path,
    out: str | Path,
    config: DHNTrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    card: dict[str, Any] | None = None,
    backend: str | None = None,
    amp: str | None = None,
) -> dict[str, Any]:
    """Train a DHN on ``data/train.safetensors`` (or a given file), writing to ``out``.

    Under torchrun (``WORLD_SIZE`` > 1) each process takes its share of every global batch of
    ``config.batch_size`` matrices (:mod:`deepmot.engine.distributed`); the loss's class
    weights and normaliser are the whole batch's, so the processes take the same steps as one
    process (up to float rounding), the epoch's last, smaller batch included.

    Args:
        data: a folder from ``deepmot dhn data`` or a split file.
        out: run folder (``config.json``, ``checkpoint.pt``, ``log.csv``, weights).
        config: settings; with ``resume`` the stored config is used and this one must be
            None or equal apart from ``max_iters``/``max_minutes``/``device``.
        resume: continue from ``out/checkpoint.pt``.
        progress: show a progress bar with loss and WA.
        card: extra fields for the weights' JSON card.
        backend: the process group's backend under torchrun (None: ``nccl`` on CUDA, else
            ``gloo``).
        amp: ``"bf16"`` or ``"fp16"``: mixed precision on CUDA (None: float32).

    Returns:
        A summary: iterations done, whether finished, last loss/WA, weights path.
    """
    run = TrainingRun(out, LOG_FIELDS, resume)
    if run.stored_config is not None:
        config = resolve_resumed_config(
            _config_from_dict(run.stored_config),
            config,
            ("max_iters", "max_minutes", "device"),
            run.checkpoint_path,
        )
    config = config or DHNTrainConfig()
    dataset = _load_train_set(data, config)
    dist = setup(config.device, backend)
    try:
        return _train(dataset, Path(out), config, run, dist, progress, card, amp)
    finally:
        dist.close()


def _batch_totals(dataset: DHNDataset, batch: np.ndarray, device: torch.device) -> tuple:
    """``(valid entries, ones)`` of a whole batch, as :func:`focal_weights` counts them."""
    shapes = dataset.shapes[batch]
    n = int((shapes[:, 0] * shapes[:, 1]).sum())
    ones = sum(float(dataset[int(i)][1].sum()) for i in batch)
    return (
        torch.tensor(n, dtype=torch.int64, device=device),
        torch.tensor(ones, dtype=torch.float32, device=device),
    )


def _train(
    dataset: DHNDataset,
    out: Path,
    config: DHNTrainConfig,
    run: TrainingRun,
    dist: Distributed,
    progress: bool,
    card: dict[str, Any] | None,
    amp: str | None,
) -> dict[str, Any]:
    """Set the run up, fit it (:func:`~deepmot.engine.loop.fit`), save the weights."""
    device = dist.device
    precision, scaler = precision_and_seed(dist, config.batch_size, amp, config.seed)
    model = build_dhn(config.dhn).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=config.lr)
    batches_per_epoch = len(_epoch_batches(dataset.shapes, config, 0))
    all_epochs = config.epochs * batches_per_epoch
    total = all_epochs
    if config.max_iters is not None:
        total = min(total, config.max_iters)
    if run.state is not None:
        _restore(run.state, model, optimizer, scaler, device)

    def rng_states() -> dict[str, Any]:
        cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        return {"torch_rng": torch.get_rng_state(), "cuda_rng": cuda_rng}

    checkpoint = run.checkpointer(config, model, optimizer, scaler, rng_states)

    trained = dist.wrap(model, "logits")  # DDP with several processes
    run.start(config.to_dict())
    parts = Optimization(model, trained, optimizer, scaler, precision, dist, run)
    step = _DHNStep(dataset, config, parts, batches_per_epoch)
    model.train()
    iteration = fit(
        run,
        step,
        run.start_iteration,
        total,
        checkpoint,
        config.checkpoint_every,
        f"dhn train {config.name}",
        progress,
    )
    weights = out / f"dhn_{config.name}.safetensors"
    full_card = {
        "name": config.name,
        "iterations": iteration,
        "finished": iteration >= all_epochs,
        "train": config.to_dict(),
        "train_matrices": len(dataset),
        **(card or {}),
    }
    model.eval()
    if run.main:
        save_dhn(model, weights, full_card)
    return {
        "iterations": iteration,
        "total": total,
        "finished": iteration >= all_epochs,
        "loss": step.figures["loss"],
        "wa": step.figures["wa"],
        "weights": str(weights),
    }


def _restore(
    state: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
) -> None:
    """A resumed run's model, optimizer, scaler and random generators."""
    restore_training_state(state, model, optimizer, scaler)
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


@dataclass
class _DHNStep:
    """One optimisation step on a batch of matrices (``step(iteration) -> StepReport`` for
    :func:`~deepmot.engine.loop.fit`); ``figures`` holds the last step's loss and WA."""

    dataset: DHNDataset
    config: DHNTrainConfig
    parts: Optimization
    batches_per_epoch: int
    figures: dict[str, float] = field(
        default_factory=lambda: {"loss": float("nan"), "wa": float("nan")}
    )
    epoch_cache: tuple[int, list[np.ndarray]] | None = None
    start: float = field(default_factory=time.monotonic)

    def batch(self, iteration: int) -> tuple[int, np.ndarray]:
        """The epoch and the matrix indices of step ``iteration`` (an epoch's batches drawn
        once)."""
        epoch, index = divmod(iteration, self.batches_per_epoch)
        if self.epoch_cache is None or self.epoch_cache[0] != epoch:
            self.epoch_cache = (epoch, _epoch_batches(self.dataset.shapes, self.config, epoch))
        return epoch, self.epoch_cache[1][index]

    def __call__(self, iteration: int) -> StepReport:
        config, dist, device = self.config, self.parts.dist, self.parts.dist.device
        epoch, batch = self.batch(iteration)
        # this process's share; with none (an epoch's last batch smaller than the world), one
        # matrix weighted 0 keeps it in step with the others
        share, weight = dist.shard(batch), 1.0
        if not share:
            share, weight = [batch[0]], 0.0
        d, a, mask = (t.to(device) for t in collate([self.dataset[int(i)] for i in share]))
        totals = _batch_totals(self.dataset, batch, device) if dist.enabled else None
        lr = config.lr * config.lr_decay ** (iteration // config.lr_decay_every)
        for group in self.parts.optimizer.param_groups:
            group["lr"] = lr
        with self.parts.precision:
            logits = self.parts.trained(d, mask)
            loss = weighted_focal_loss(
                logits.float(), a, mask, config.gamma, config.weighting, totals
            )
        self.parts.optimizer.zero_grad(set_to_none=True)
        if dist.enabled:
            # DDP averages the processes' gradients; their losses add up to the batch's
            self.parts.scaler.scale(
                weight * dist.world_size * loss + zero_term(self.parts.model)
            ).backward()
        else:
            self.parts.scaler.scale(loss).backward()
        self.parts.scaler.step(self.parts.optimizer)
        self.parts.scaler.update()
        wa = batch_wa(torch.sigmoid(logits.detach().float()), a, mask)
        elapsed = time.monotonic() - self.start
        sums = dist.sum_named(
            {
                "loss": weight * float(loss.detach()),
                "wa": weight * wa * len(share),
                "stop": float(self.parts.run.stop_requested is not None),
                "budget": float(
                    config.max_minutes is not None and elapsed > 60 * config.max_minutes
                ),
            }
        )
        figures = self.figures
        figures["loss"] = sums["loss"]
        figures["wa"] = sums["wa"] / len(batch) if dist.enabled else wa
        if sums["budget"] > 0:
            log.info("time budget of %s minutes used up", config.max_minutes)
        return StepReport(
            [epoch, f"{figures['loss']:.6g}", f"{figures['wa']:.5f}", f"{lr:.6g}", len(batch)],
            {"loss": f"{figures['loss']:.4f}", "wa": f"{figures['wa']:.4f}"},
            stop_elsewhere=sums["stop"] > 0,
            done=sums["budget"] > 0,
        )


def load_train_config(out: str | Path) -> DHNTrainConfig:
    """The settings stored in a run folder's ``checkpoint.pt``."""
    return _config_from_dict(TrainingRun(out, LOG_FIELDS, resume=True).stored_config)


def _config_from_dict(data: dict[str, Any]) -> DHNTrainConfig:
    data = dict(data)
    data["dhn"] = DHNConfig.from_dict(data["dhn"])
    return DHNTrainConfig(**data)
