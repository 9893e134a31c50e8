"""Tracktor's ReID rows (the paper's Table 1): Vanilla, Smooth-L1 and DeepMOT box regression,
each without ReID, with the ReID head trained by DeepMOT (+ReIDhead) and with an external ReID
network (+ReIDext).

Per seed, :func:`run_reid_rows` trains on the first 50% of each training sequence:

* the Smooth-L1 and DeepMOT box regressions on frame pairs (as ``deepmot demo --tracker
  tracktor``);
* the ReID head with DeepMOT on clips, the appearance term in the loss
  (:func:`reid_head_config`; the box regression trains along, as in the paper, where
  DeepMOT+ReIDhead is one jointly trained model);
* the external network on identity crops with the triplet loss (:mod:`deepmot.train.reid`).

Rows then differ only in what they load: "X" re-identifies by IoU alone (``reid="none"``),
"X+ReIDhead" carries the DeepMOT-trained head (grafted onto X's box regression; for DeepMOT it
is the jointly trained model itself), "X+ReIDext" compares the external network's embeddings.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from deepmot.train.config import TrackerTrainConfig

__all__ = ["BASES", "REID_SUFFIXES", "reid_head_config", "run_reid_rows"]

log = logging.getLogger(__name__)

BASES = ("Vanilla", "Smooth L1", "DeepMOT")
REID_SUFFIXES = ("", "+ReIDhead", "+ReIDext")


def reid_head_config(
    config: TrackerTrainConfig,
    iterations: int,
    clip_length: int = 10,
    appearance: str = "branch",
    batch_size: int = 2,
    scale: float = 10.0,
) -> TrackerTrainConfig:
    """``config`` (a Tracktor DeepMOT fine-tuning) set to train the ReID head: ten-frame clips
    (supp. A.2 "Training with the ReIDhead") and the appearance term (``appearance``, see
    :class:`~deepmot.train.config.TrackerTrainConfig`).

    ``scale``: the softmax scale. Measured on held-out synthetic frames (30 steps of 2
    four-frame clips, lr 1e-3, branch): at the authors' 100 the head's rank-1 / mAP went from
    63.9 / 45.4 (untrained) to 62.4 / 44.6 (seed 0); at 10, to 67.0 / 45.9, 66.0 / 45.9 and
    65.5 / 46.1 (seeds 0, 1, 2): a saturated softmax passes the appearance branch little but
    the dMOTP pull, which shrinks every distance alike."""
    return replace(
        config,
        loss="deepmot",
        deepmot=replace(config.deepmot, scale=scale),
        model={**config.model, "reid": "head"},
        sampling="clips",
        clip_length=clip_length,
        appearance=appearance,
        iterations=iterations,
        batch_size=batch_size,
        checkpoint_every=max(1, iterations),
        diagnose_every=max(1, iterations),
    )


def _tracker(model: Any, reid: str, options: dict[str, Any]) -> Any:
    """A Tracktor tracker of ``model`` with its ``reid`` setting replaced (Tracktor's
    management with ``options``)."""
    from deepmot.trackers.management import ManagedTracker
    from deepmot.trackers.tracktor import TRACKTOR_PAPER_MANAGEMENT, TracktorPredictor

    model.config = replace(model.config, reid=reid, feature_cache=0)  # each frame seen once
    return ManagedTracker(TracktorPredictor(model), replace(TRACKTOR_PAPER_MANAGEMENT, **options))


def run_reid_rows(
    train: list,
    val: list,
    out: str | Path,
    config: TrackerTrainConfig,
    head_iterations: int,
    reid_steps: int,
    row: Any,
    tracker_options: dict[str, Any] | None = None,
    appearance: str = "branch",
    progress: bool = False,
    head_clip_length: int = 10,
) -> list[dict[str, Any]]:
    """Train what the rows need into ``out`` and score the nine rows on ``val``.

    Args:
        train: training sequences (their first ``config.train_fraction`` trains).
        val: held-out sequences to track and score.
        out: folder of the runs (``smooth_l1/``, ``deepmot/``, ``reid_head/``, ``reid_ext/``).
        config: the box regression's DeepMOT fine-tuning (as
            :func:`~deepmot.demos.tracktor.tracktor_train_config`); Smooth-L1 uses it too.
        head_iterations: steps of the ReID head's training (clips).
        reid_steps: steps of the external network's training.
        row: ``row(name, evaluation) -> dict``, the table's row.
        tracker_options: Tracktor management overrides of every row.
        appearance: how the ReID head's term enters the loss (``"joint"`` or ``"branch"``).
        head_clip_length: frames per clip of the ReID head's training (the paper's ten).

    Returns:
        The rows in the order of :data:`BASES` x :data:`REID_SUFFIXES`.
    """
    from deepmot.trackers.reid import save_reid
    from deepmot.trackers.tracktor import TracktorConfig, build_tracktor, load_tracktor
    from deepmot.train.compare import evaluate_tracker
    from deepmot.train.reid import ReIDTrainConfig, identity_crops, train_reid
    from deepmot.train.tracker import train_tracker

    out = Path(out)
    options = dict(tracker_options or {})
    weights: dict[str, str | None] = {"Vanilla": None}
    trained = (("Smooth L1", "smoothl1", "smooth_l1"), ("DeepMOT", "deepmot", "deepmot"))
    for name, loss, folder in trained:
        run = train_tracker(train, out / folder, replace(config, loss=loss), progress=progress)
        weights[name] = run["weights"]
    head = train_tracker(
        train,
        out / "reid_head",
        reid_head_config(config, head_iterations, head_clip_length, appearance),
        progress=progress,
    )["weights"]
    reid_config = ReIDTrainConfig(steps=reid_steps, seed=config.seed)
    crops, labels = identity_crops(
        train,
        reid_config.model.crop_size,
        reid_config.frame_stride,
        reid_config.min_visibility,
        config.train_fraction,
    )
    network, losses = train_reid(crops, labels, reid_config, progress=progress)
    external = out / "reid_ext" / "reid.safetensors"
    save_reid(network, external, {"train": reid_config.to_dict(), "crops": len(labels)})
    head_state = load_tracktor(head).reid.state_dict()

    def model_of(base: str) -> Any:
        path = weights[base]
        if path is None:  # the detector as trained, the head as initialised
            return build_tracktor(TracktorConfig.from_dict(config.model)).eval()
        return load_tracktor(path)

    rows = []
    for base in BASES:
        for suffix in REID_SUFFIXES:
            if suffix == "+ReIDhead" and base == "DeepMOT":
                model = load_tracktor(head)  # trained jointly, as the paper's DeepMOT+ReIDhead
            else:
                model = model_of(base)
                if suffix == "+ReIDhead":
                    model.reid.load_state_dict(head_state)
            reid = {"": "none", "+ReIDhead": "head", "+ReIDext": f"external:{external}"}[suffix]
            tracker = _tracker(model, reid, options)
            rows.append(row(base + suffix, evaluate_tracker(tracker, val)))
            log.info("%s: %s", base + suffix, rows[-1])
    return rows
