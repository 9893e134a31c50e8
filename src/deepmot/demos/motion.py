"""``deepmot demo``: the project's main job on its built-in data, in minutes on a CPU.

Trains the learned motion tracker with the DeepMOT loss (through the shipped DHN) and with
Smooth-L1 on synthetic sequences (or on a MOTChallenge folder), compares both with the untrained
tracker (Vanilla) and the Kalman-filter baseline on held-out frames, prints the table and
writes plots: training curves and a frame with the DeepMOT-trained tracker's tracks drawn.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene
from deepmot.train.compare import Variant, compare_variants, format_table, validation_clips
from deepmot.train.config import TrackerTrainConfig
from deepmot.viz.training import plot_diagnostics, plot_training_curves

__all__ = ["run_demo"]

log = logging.getLogger(__name__)


def _load_folder(root: Path) -> list[Sequence]:
    from deepmot.io.mot import find_sequences

    sequences = []
    for path in find_sequences(root):
        files = Sequence.detection_files(path)
        det = next((f for f in ("det.txt", "deepmot_clean_FRCNN.txt") if f in files), None)
        seq = Sequence.from_dir(path, det_file=det)
        if seq.gt is not None and seq.detections is not None:
            sequences.append(seq)
    return sequences


def run_demo(
    out: str | Path,
    data: str | Path | None = None,
    iterations: int = 200,
    matcher: str = "dhn",
    sequences: int = 4,
    seed: int = 0,
    progress: bool = True,
    split: str = "val",
) -> list[dict[str, Any]]:
    """Run the demo into ``out``; returns the table rows (see :func:`compare_variants`).

    ``split="val"`` scores the last 25% of each sequence (frames no variant trained on);
    ``"all"`` scores whole sequences, training frames included.
    """
    if split not in ("val", "all"):
        raise ValueError(f"split must be 'val' or 'all', got {split!r}")
    out = Path(out)
    if data is None:
        configs = dataset_configs(sequences, SceneConfig(frames=300, seed=seed))
        train = [generate_scene(c).to_sequence() for c in configs]
        det_file = "det.txt"
    else:
        train = _load_folder(Path(data))
        det_file = "per sequence: det.txt, else deepmot_clean_FRCNN.txt"
        if not train:
            from deepmot.errors import DeepMOTError

            raise DeepMOTError(
                f"--data {data}: no sequence with ground truth (gt/gt.txt) and detections "
                "(det/det.txt or det/deepmot_clean_FRCNN.txt)"
            )
    val = validation_clips(train) if split == "val" else train
    # frame pairs, not the MOT17 motion tables' clips (MOTION_TRAINING): on the synthetic
    # scenes' tuning frames (train on 0-35%, score 35-50%, seeds 0-2) pairs trained the better
    # DeepMOT model (see docs/training.md, the motion tracker)
    base = TrackerTrainConfig(iterations=iterations, matcher=matcher, det_file=det_file, seed=seed)
    variants = [
        Variant("Vanilla", None),
        Variant("Kalman", None, "kalman"),
        Variant("Smooth L1", replace(base, loss="smoothl1")),
        Variant("DeepMOT", base),
    ]
    if data is None:
        data_text = f"synthetic scenes ({len(train)} x 300 frames)"
    else:
        data_text = f"{data} ({len(train)} sequences)"
    split_text = (
        "split val (the last 25% of each sequence, never trained on)"
        if split == "val"
        else "split all (whole sequences, training frames included)"
    )
    caption = (
        f"Data: {data_text}; scored on {split_text}; trained {iterations} steps on the first "
        f"50% of each sequence (frame pairs), matcher {matcher}; seed {seed}."
    )
    if (out / "table.md").exists():
        log.info("replacing the earlier demo in %s", out)
    rows = compare_variants(train, val, variants, out, progress=progress, caption=caption)
    plot_training_curves(
        {"Smooth L1": out / "smooth_l1" / "log.csv", "DeepMOT": out / "deepmot" / "log.csv"},
        out / "training_curves.png",
        title=f"motion tracker trained on {data_text}, first 50% of each sequence",
    )
    plot_diagnostics(
        out / "deepmot" / "log.csv",
        out / "diagnostics.png",
        title=f"DeepMOT loss diagnostics: motion tracker on {data_text}",
    )
    _draw_tracks(out, val[0], f"motion tracker (DeepMOT loss), {data_text}, {split_text[:9]}")
    print(format_table(rows, caption))
    print(
        f"wrote {out / 'table.md'}, {out / 'training_curves.png'}, {out / 'diagnostics.png'} "
        f"and {out / 'tracks.png'}"
    )
    return rows


def _draw_tracks(out: Path, clip: Sequence, title: str) -> None:
    """The DeepMOT tracker's tracks over the ground truth (and the frame) at the middle frame
    of the first scored clip, misses and false positives marked."""
    from deepmot.trackers import create_tracker, track_sequence
    from deepmot.viz.tracks import write_tracking_png

    tracker = create_tracker("motion", weights=out / "deepmot" / "motion.safetensors")
    results = track_sequence(tracker, clip, progress=False)
    offset = int(getattr(clip, "frame_offset", 0))
    write_tracking_png(clip, results, max(1, len(clip) // 2), out / "tracks.png", title, offset)
