"""Train the person detector on frames with ground truth (synthetic scenes or MOTChallenge).

Each step draws ``batch_size`` frames from the sequences (a generator seeded by (seed, step),
which also seeds torch's for the RPN's and box head's samplers, so a resumed run continues
exactly), flips half of them, and minimises the sum of Faster
R-CNN's four losses (RPN objectness and box, classifier and box regression) with AdamW.
BatchNorm trains (nothing is pretrained); the saved detector loads with frozen BatchNorm for
tracking. The run folder (:class:`~deepmot.train.run.TrainingRun`) holds ``config.json``,
``checkpoint.pt``, ``log.csv`` and ``detector.safetensors`` with its JSON card.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepmot.data.frames import image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.detection.config import DetectorTrainConfig
from deepmot.detection.data import frame_targets
from deepmot.detection.model import build_detector, save_detector
from deepmot.errors import DeepMOTError
from deepmot.train.run import TrainingRun, progress_bar, resolve_resumed_config

__all__ = ["LOG_FIELDS", "WEIGHTS_FILE", "sample_batch", "train_detector"]

LOSSES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")
LOG_FIELDS = ("iteration", "loss", *LOSSES, "seconds")
WEIGHTS_FILE = "detector.safetensors"


def sample_batch(
    sequences: list[Sequence], config: DetectorTrainConfig, rng: np.random.Generator
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """``batch_size`` random frames: images ``(3, H, W)`` in [0, 1] and their targets
    (``boxes (N, 4)`` xyxy, ``labels (N,)`` all 1), half flipped when ``config.flip``."""
    images, targets = [], []
    for _ in range(config.batch_size):
        seq = sequences[int(rng.integers(len(sequences)))]
        frame = int(rng.integers(1, seq.seq_length + 1))
        image = image_to_tensor(seq.read_image(frame))
        boxes, crowd = frame_targets(seq, frame, config.min_visibility)
        boxes = torch.from_numpy(boxes[~crowd])
        if config.flip and rng.uniform() < 0.5:
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = torch.stack(
                [width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1
            )
        images.append(image)
        targets.append({"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64)})
    return images, targets


def train_detector(
    sequences: list[Sequence],
    out: str | Path,
    config: DetectorTrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    card: dict[str, Any] | None = None,
    half: bool = False,
) -> dict[str, Any]:
    """Train a detector into the run folder ``out`` (see the module doc).

    Args:
        sequences: sequences with ground truth and frames.
        config: the settings (with ``resume``: None keeps the stored ones; otherwise only
            ``iterations`` may differ).
        card: extra entries for the weights' JSON card (e.g. how the data was made).
        half: store the weights as float16 (half the file).

    Returns:
        ``{"iterations", "weights", "loss"}`` (the last step's loss).

    Raises:
        DeepMOTError: sequences without frames or ground truth, or a resume with other
            settings.
    """
    missing = [s.name for s in sequences if not s.has_images or s.gt is None]
    if missing or not sequences:
        raise DeepMOTError(
            "a detector trains on sequences with frames and ground truth; these have not: "
            f"{', '.join(missing) or 'none given'}"
        )
    run = TrainingRun(out, LOG_FIELDS, resume)
    if run.stored_config is not None:
        stored = DetectorTrainConfig.from_dict(run.stored_config)
        config = resolve_resumed_config(stored, config, {"iterations"}, run.checkpoint_path)
    config = config if config is not None else DetectorTrainConfig()
    torch.manual_seed(config.seed)
    model = build_detector(config.detector, trainable_norm=True)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    iteration = run.start_iteration
    if run.state is not None:
        model.load_state_dict(run.state["model"])
        optimizer.load_state_dict(run.state["optimizer"])

    def checkpoint() -> None:
        run.save_checkpoint(
            {
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "iteration": iteration,
            }
        )

    run.start(config.to_dict())
    start = time.monotonic()
    loss_value = float("nan")
    bar = progress_bar(config.iterations, iteration, "train detector", progress)
    model.train()
    try:
        with run.stop_on_signals():
            while iteration < config.iterations and run.stop_requested is None:
                rng = np.random.default_rng([config.seed, iteration])
                # the RPN's and the box head's samplers draw from torch's generator
                torch.manual_seed(int(rng.integers(2**62)))
                images, targets = sample_batch(sequences, config, rng)
                losses = model(images, targets)
                loss = sum(losses[k] for k in LOSSES)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                iteration += 1
                loss_value = float(loss.detach())
                run.log(
                    [
                        iteration,
                        f"{loss_value:.6g}",
                        *(f"{float(losses[k].detach()):.6g}" for k in LOSSES),
                        f"{time.monotonic() - start:.2f}",
                    ]
                )
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                if iteration % config.checkpoint_every == 0:
                    checkpoint()
    finally:
        bar.close()
        run.close()
    checkpoint()
    if run.stop_requested is not None:
        raise run.interrupted(iteration)
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
    return {"iterations": iteration, "weights": str(weights), "loss": loss_value}
