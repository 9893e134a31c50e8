"""``deepmot demo --tracker tracktor``: Vanilla vs Smooth-L1 vs DeepMOT fine-tuning of Tracktor.

Vanilla is Tracktor with the detector as trained for detection (the shipped light detector by
default); Smooth-L1 and DeepMOT fine-tune its box regression layer on frame pairs of the first
50% of synthetic scenes (backbone frozen, Adam 1e-4, A.2), and all three track the last 25%.
The scenes use other seeds than the shipped detector's training scenes, so every scored frame
is new to the detector too. Sized to finish in minutes on a 2-core CPU.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene
from deepmot.trackers.management import management_overrides
from deepmot.trackers.tracktor import TRACKTOR_MANAGEMENT, TRACKTOR_PAPER_MANAGEMENT
from deepmot.train.compare import Variant, compare_variants, format_table, validation_clips
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.viz.training import plot_training_curves

__all__ = [
    "PUBLISHED_MANAGEMENT",
    "SCENE_SEED_OFFSET",
    "demo_sequences",
    "run_tracktor_demo",
    "tracktor_train_config",
    "tracktor_variants",
]

log = logging.getLogger(__name__)

SCENE_SEED_OFFSET = 2000
"""Added to ``seed`` for the demo's scenes (the shipped detector trained on seed 0's)."""

PUBLISHED_MANAGEMENT = management_overrides(TRACKTOR_PAPER_MANAGEMENT, TRACKTOR_MANAGEMENT)
"""The management overrides that turn Tracktor's defaults (tuned on real frames) back into the
published management (``TRACKTOR_PAPER_MANAGEMENT``), with which the synthetic-scene tables
were measured."""


def tracktor_train_config(
    iterations: int, seed: int, detector: str = "light", matcher: str = "dhn"
) -> TrackerTrainConfig:
    """DeepMOT fine-tuning of Tracktor as the authors' code did it: the box regression layer
    (and the ReID head) only, Adam 1e-4; frame pairs whose starting boxes are perturbed
    (shifted and rescaled, p 0.5: the authors perturbed with p 0.4 for each of shift and
    scale)."""
    return TrackerTrainConfig(
        tracker="tracktor",
        # ECC at full size, no motion model and the ReID head, as published (the synthetic-scene
        # tables were measured so)
        model={
            "detector": detector,
            "feature_cache": 256,
            "ecc_scale": 1.0,
            "motion_model": False,
            "reid": "head",
        },
        loss="deepmot",
        matcher=matcher,
        sampling="pairs",
        augment=AugmentationConfig(perturb=0.5),
        lr=1e-4,
        iterations=iterations,
        batch_size=4,
        det_file="det.txt",
        checkpoint_every=max(1, iterations),
        diagnose_every=max(1, iterations),
        seed=seed,
    )


def demo_sequences(sequences: int, frames: int, seed: int) -> tuple[list, list]:
    """The demo's scenes for ``seed`` (scene seed ``seed + SCENE_SEED_OFFSET``): the whole
    sequences (training uses their first 50%) and their last 25% as validation clips."""
    base = SceneConfig(frames=frames, seed=seed + SCENE_SEED_OFFSET)
    scenes = [generate_scene(c) for c in dataset_configs(sequences, base, prefix="DEMO")]
    train = [s.to_sequence(cache_size=frames) for s in scenes]
    return train, validation_clips(train)


def tracktor_variants(config: TrackerTrainConfig) -> list[Variant]:
    """The rows: Vanilla (the detector as trained, built with ``config``'s model settings),
    Smooth-L1 and DeepMOT fine-tuning with ``config``'s other settings."""
    return [
        Variant("Vanilla", None, "tracktor", model=config.model),
        Variant("Smooth L1", replace(config, loss="smoothl1")),
        Variant("DeepMOT", replace(config, loss="deepmot")),
    ]


def run_tracktor_demo(
    out: str | Path,
    iterations: int = 40,
    sequences: int = 2,
    frames: int = 200,
    seed: int = 0,
    matcher: str = "dhn",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run the demo into ``out``; returns the table rows (see
    :func:`~deepmot.train.compare.compare_variants`)."""
    out = Path(out)
    train, val = demo_sequences(sequences, frames, seed)
    variants = tracktor_variants(tracktor_train_config(iterations, seed, "light", matcher))
    caption = (
        f"Tracktor (shipped light detector) on {sequences} synthetic scenes x {frames} frames "
        f"(scene seed {seed + SCENE_SEED_OFFSET}); fine-tuned {iterations} steps of 4 frame "
        f"pairs on the first 50% of each; scored on the last 25%; seed {seed}."
    )
    rows = compare_variants(
        train,
        val,
        variants,
        out,
        progress=progress,
        caption=caption,
        tracker_options=PUBLISHED_MANAGEMENT,
    )
    plot_training_curves(
        {"Smooth L1": out / "smooth_l1" / "log.csv", "DeepMOT": out / "deepmot" / "log.csv"},
        out / "training_curves.png",
        title="Tracktor's box regression fine-tuned on synthetic frame pairs",
    )
    print(format_table(rows, caption))
    print(f"wrote {out / 'table.md'} and {out / 'training_curves.png'}")
    return rows
