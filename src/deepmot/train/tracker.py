"""Train a motion tracker with the DeepMOT loss or the Smooth-L1 baseline (paper Sec. 4.3).

Each step samples frame pairs (t − 1, t) from the training frames of the sequences (the paper's
split: the first 50% of each sequence, supplementary A.2). Tracks start from the ground truth at
t − 1 — their recent boxes, the last one perturbed as in the supplementary (rescaled by 0.8–1.2,
shifted by up to 0.25 of its size) — and carry its ids. The motion model predicts their boxes
at t (seeing the public detections of frame t), D is computed against the ground truth at t,
the frozen matcher gives Â, and the DeepMOT loss (or Smooth-L1) is back-propagated into the
motion model only. Adam, learning rate 1e-4 (A.2).

Besides the loss, every step logs the soft terms (FP~, FN~, IDS~, dMOTA, dMOTP) and the true
MOTA and MOTP of the same batch from the evaluator's exact matching, so that one can see the
proxy and the real measure move together.

A run folder holds ``config.json`` (the resolved settings), ``checkpoint.pt`` (written
atomically every ``checkpoint_every`` steps and at the end), ``log.csv`` and the trained weights
``motion.safetensors`` (+ JSON card). Every step draws its samples from a generator seeded by
(seed, step), so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from deepmot.boxes import distance_matrix
from deepmot.data.samplers import perturb_boxes
from deepmot.data.sequence import Sequence
from deepmot.errors import DeepMOTError
from deepmot.loss import DeepMOTLoss, SmoothL1Loss
from deepmot.metrics.frame_pair import clear_frame_pair
from deepmot.trackers.management import stack_histories
from deepmot.trackers.motion import LearnedMotionConfig, LearnedMotionModel, save_motion_model
from deepmot.train.checkpoint import atomic_torch_save, trim_log

__all__ = ["TrackerTrainConfig", "FramePairSampler", "train_motion_tracker", "LOG_FIELDS"]

log = logging.getLogger(__name__)

LOG_FIELDS = (
    "iteration", "loss", "fp", "fn", "ids", "dmota", "dmotp", "true_mota", "true_motp", "seconds",
)  # fmt: skip


@dataclass(frozen=True)
class TrackerTrainConfig:
    """Settings of a tracker training run; defaults from the paper where it gives them.

    ``loss``: ``"deepmot"`` or ``"smoothl1"``. The DeepMOT variants of Table 2: ``lam=0`` trains
    on dMOTA alone, ``use_dmota=False`` on dMOTP alone, ``gamma=0`` ignores ID switches.
    ``matcher``: ``"dhn"`` (the shipped DHN, frozen) or ``"sinkhorn"``.
    """

    loss: Literal["deepmot", "smoothl1"] = "deepmot"
    lam: float = 5.0  # λ (A.2)
    gamma: float = 2.0  # γ (A.2)
    delta: float = 0.5  # δ (A.2)
    use_dmota: bool = True
    matcher: Literal["dhn", "sinkhorn"] = "dhn"
    lr: float = 1e-4  # Adam (A.2)
    iterations: int = 500
    batch_size: int = 16  # frame pairs per step
    perturb: bool = True  # the supplementary's augmentation of the last box
    train_fraction: float = 0.5  # first 50% of each sequence trains (A.2)
    # the detection file the sequences were loaded with; None: the model sees no detections
    det_file: str | None = "deepmot_clean_FRCNN.txt"
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "cpu"
    model: LearnedMotionConfig = field(default_factory=LearnedMotionConfig)

    def __post_init__(self) -> None:
        if self.loss not in ("deepmot", "smoothl1"):
            raise ValueError(f"loss must be 'deepmot' or 'smoothl1', got {self.loss!r}")
        if self.matcher not in ("dhn", "sinkhorn"):
            raise ValueError(f"matcher must be 'dhn' or 'sinkhorn', got {self.matcher!r}")
        for name in ("iterations", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must lie in (0, 1], got {self.train_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrackerTrainConfig:
        values = dict(values)
        values["model"] = LearnedMotionConfig.from_dict(values.get("model", {}))
        return cls(**values)


@dataclass(frozen=True)
class FramePair:
    """One training instance: tracks from the ground truth at t − 1, objects at t.

    ``history (T, L, 4)`` xyxy float32 and ``mask (T, L)``; ``track_ids (T,)``;
    ``detections (K, 5)`` of frame t or None; ``gt_boxes (M, 4)``, ``gt_ids (M,)`` at t.
    """

    sequence: Sequence
    frame: int
    history: Tensor
    mask: Tensor
    track_ids: np.ndarray
    detections: Tensor | None
    gt_boxes: Tensor
    gt_ids: np.ndarray


class FramePairSampler:
    """Samples :class:`FramePair` s from the training frames of sequences with ground truth.

    Args:
        sequences: sequences with ground truth (and, for the detections, a detection file).
        history_len: boxes of history per track.
        train_fraction: the share of each sequence's first frames to sample from.
        perturb: perturb each track's last box as in the supplementary.
    """

    def __init__(
        self, sequences: list[Sequence], history_len: int, train_fraction: float, perturb: bool
    ) -> None:
        self.history_len = history_len
        self.perturb = perturb
        self.sequences = sequences
        self.frames: list[tuple[int, int]] = []  # (sequence index, t)
        self.boxes: list[dict[tuple[int, int], np.ndarray]] = []  # (gt id, frame) -> box
        for index, seq in enumerate(sequences):
            if seq.gt is None:
                raise DeepMOTError(f"sequence {seq.name} has no ground truth to train on")
            lookup = {}
            for frame in range(1, int(seq.seq_length * train_fraction) + 1):
                gt = seq.gt_at(frame).active_pedestrians()
                for gid, box in zip(gt.ids.tolist(), gt.boxes, strict=True):
                    lookup[(gid, frame)] = box
                if frame >= 2 and len(gt.ids):
                    self.frames.append((index, frame))
            self.boxes.append(lookup)
        if not self.frames:
            raise DeepMOTError("no training frame pairs: the sequences are too short or empty")

    def sample(self, rng: np.random.Generator, count: int) -> list[FramePair]:
        """``count`` pairs drawn with ``rng`` (uniformly over the training frames)."""
        pairs = []
        for k in rng.integers(len(self.frames), size=count):
            index, t = self.frames[int(k)]
            seq, lookup = self.sequences[index], self.boxes[index]
            before = seq.gt_at(t - 1).active_pedestrians()
            histories = []
            for gid in before.ids.tolist():
                boxes = [
                    lookup[(gid, f)] for f in range(t - self.history_len, t) if (gid, f) in lookup
                ]
                histories.append(np.stack(boxes))
            if self.perturb and histories:
                last = perturb_boxes(np.stack([h[-1] for h in histories]), rng)
                for h, box in zip(histories, last, strict=True):
                    h[-1] = box
            history, mask = stack_histories(
                [torch.from_numpy(h) for h in histories], self.history_len
            )
            now = seq.gt_at(t).active_pedestrians()
            dets = torch.from_numpy(seq.detections_at(t)) if seq.detections is not None else None
            pairs.append(
                FramePair(
                    seq, t, history, mask, before.ids, dets, torch.from_numpy(now.boxes), now.ids
                )
            )
        return pairs


def _matcher(name: str):
    if name == "sinkhorn":
        from deepmot.assign.sinkhorn import Sinkhorn

        return Sinkhorn()
    from deepmot.assign.dhn import create_dhn

    return create_dhn("seq_gru", pretrained=True)


def _true_counts(pairs: list[FramePair], predictions: list[Tensor]) -> tuple[float, float]:
    """MOTA and MOTP of the batch from the evaluator's exact matching (counts summed)."""
    errors = objects = tp = 0
    iou_sum = 0.0
    for pair, pred in zip(pairs, predictions, strict=True):
        counts = clear_frame_pair(
            pair.gt_boxes.numpy(),
            pair.gt_ids,
            pred.detach().cpu().numpy(),
            pair.track_ids,
            {int(g): int(g) for g in pair.track_ids},
        )
        errors += counts.fp + counts.fn + counts.idsw
        objects += counts.num_objects
        tp += counts.tp
        iou_sum += counts.iou_sum
    return 1 - errors / max(1, objects), iou_sum / max(1, tp)


def train_motion_tracker(
    sequences: list[Sequence],
    out: str | Path,
    config: TrackerTrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train :class:`LearnedMotionModel` on ``sequences``; write the run into ``out``.

    Args:
        sequences: training sequences with ground truth (and detections if ``det_file``).
        out: the run folder.
        config: settings (with ``resume``, None means the stored ones; ``iterations`` may grow).
        resume: continue from ``out/checkpoint.pt``.
        progress: show a tqdm bar with the loss and the true MOTA.

    Returns:
        ``{"iterations", "weights", "last": {field: value}}``.
    """
    from tqdm import tqdm

    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    state = None
    if resume:
        if not ckpt_path.is_file():
            raise DeepMOTError(f"{ckpt_path}: nothing to resume")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        stored = TrackerTrainConfig.from_dict(state["config"])
        if config is not None:
            if replace(config, iterations=stored.iterations, device=stored.device) != stored:
                raise DeepMOTError(
                    f"{ckpt_path}: resume with the stored settings (only iterations and device "
                    "may change)"
                )
            stored = replace(stored, iterations=config.iterations, device=config.device)
        config = stored
    config = config or TrackerTrainConfig()
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    model = LearnedMotionModel(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    iteration = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        iteration = int(state["iteration"])
    trim_log(out / "log.csv", iteration)

    sampler = FramePairSampler(
        sequences, config.model.history_len, config.train_fraction, config.perturb
    )
    if config.loss == "deepmot":
        loss_fn = DeepMOTLoss(
            _matcher(config.matcher).to(device),
            delta=config.delta,
            lam=config.lam,
            gamma=config.gamma,
        )
    else:
        loss_fn = SmoothL1Loss()

    def checkpoint() -> None:
        atomic_torch_save(
            {
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "iteration": iteration,
            },
            ckpt_path,
        )

    new_log = not (out / "log.csv").is_file()
    start = time.monotonic()
    last: dict[str, float] = {}
    with (out / "log.csv").open("a", newline="") as log_file:
        writer = csv.writer(log_file)
        if new_log:
            writer.writerow(LOG_FIELDS)
        bar = tqdm(
            total=config.iterations,
            initial=iteration,
            desc=f"train motion ({config.loss})",
            disable=not progress,
        )
        model.train()
        while iteration < config.iterations:
            rng = np.random.default_rng([config.seed, iteration])
            pairs = sampler.sample(rng, config.batch_size)
            predictions = [
                model(
                    p.history.to(device),
                    p.mask.to(device),
                    None
                    if p.detections is None or config.det_file is None
                    else p.detections.to(device),
                    (p.sequence.im_width, p.sequence.im_height),
                )
                for p in pairs
            ]
            gts = [p.gt_boxes.to(device) for p in pairs]
            if config.loss == "deepmot":
                distances = [
                    distance_matrix(pred, gt, p.sequence.im_width, p.sequence.im_height)
                    for pred, gt, p in zip(predictions, gts, pairs, strict=True)
                ]
                memories = [{int(g): int(g) for g in p.track_ids} for p in pairs]
                terms, _ = loss_fn.forward_batch(
                    distances, [p.track_ids for p in pairs], [p.gt_ids for p in pairs], memories
                )
                dmota_term = (
                    (1 - terms.dmota) if config.use_dmota else torch.zeros_like(terms.dmota)
                )
                loss = (dmota_term + config.lam * (1 - terms.dmotp)).mean()
                soft = {
                    k: float(getattr(terms, k).detach().mean())
                    for k in ("fp", "fn", "ids", "dmota", "dmotp")
                }
            else:
                losses = [
                    loss_fn(pred, gt, p.track_ids, p.gt_ids)
                    for pred, gt, p in zip(predictions, gts, pairs, strict=True)
                ]
                loss = torch.stack(losses).mean()
                soft = dict.fromkeys(("fp", "fn", "ids", "dmota", "dmotp"), float("nan"))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iteration += 1
            true_mota, true_motp = _true_counts(pairs, predictions)
            last = {
                "loss": float(loss.detach()),
                **soft,
                "true_mota": true_mota,
                "true_motp": true_motp,
            }
            writer.writerow(
                [
                    iteration,
                    *(f"{last[k]:.6g}" for k in LOG_FIELDS[1:-1]),
                    f"{time.monotonic() - start:.2f}",
                ]
            )
            bar.update(1)
            bar.set_postfix(loss=f"{last['loss']:.4f}", mota=f"{true_mota:.3f}", refresh=False)
            if iteration % config.checkpoint_every == 0:
                log_file.flush()
                checkpoint()
        bar.close()
    checkpoint()
    weights = out / "motion.safetensors"
    model.eval()
    card = {
        "train": config.to_dict(),
        "iterations": iteration,
        "sequences": [s.name for s in sequences],
    }
    save_motion_model(model, weights, card)
    return {"iterations": iteration, "weights": str(weights), "last": last}
