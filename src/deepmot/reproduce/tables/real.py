"""``real``: the paper's comparison (Tables 1 and 3) on real frames.

Every tracker trains on the first 50% of each real sequence under ``--data`` (the paper's
split; PETS09-S2L1 and TUD-Campus, decoded by ``deepmot frames``, with their MOT15 ground
truth and public detections) and every row tracks the last 25% of one of them
(``score_sequence``, PETS09-S2L1) with the public ``det/det.txt``:

* Tracktor (the shipped detector and its defaults): Vanilla (the detector as shipped),
  Smooth-L1 and DeepMOT fine-tuning of the box regression on frame pairs, each without ReID,
  with the ReID head trained by DeepMOT on clips (+ReIDhead) and with an external ReID network
  trained on the same frames' identity crops (+ReIDext) (:mod:`deepmot.demos.tracktor_reid`);
* GOTURN and SiamRPN: the weights trained on synthetic scenes only (``<tracker>_synthetic``
  in the package), Vanilla (those weights fine-tuned on the real frames with the tracker's own
  single-object objective), and Smooth-L1 and DeepMOT fine-tuning of those Vanilla weights,
  each with its default track management (the shipped ``goturn`` and ``siamrpn`` weights are
  seed 0's DeepMOT rows);
* constant velocity and the Kalman filter on the same detections.

Rows that train nothing (Tracktor Vanilla, the synthetic SOT rows, the baselines) repeat in
every seed. Below the rows, the paired per-seed differences (``Δ A − B``: mean and population
std over the seeds of A's value minus B's in the same seed) say whether DeepMOT beats Vanilla
and Smooth-L1.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from deepmot.reproduce.registry import TableContext, TableResult, TableSpec, register_table
from deepmot.reproduce.tables.motion import COLUMNS

__all__ = [
    "paired_differences",
    "real_sot_variants",
    "real_tracktor_config",
    "run_real_table",
    "synthetic_weights",
]

_SOT_LABELS = {"goturn": "GOTURN", "siamrpn": "SiamRPN"}

#: The paired comparisons below the rows: (A, B) gives the row ``Δ A − B``.
PAIRS = (
    ("DeepMOT", "Vanilla"),
    ("DeepMOT", "Smooth L1"),
    ("DeepMOT+ReIDhead", "Vanilla+ReIDext"),
    ("DeepMOT+ReIDhead", "Smooth L1+ReIDext"),
    ("GOTURN DeepMOT", "GOTURN Vanilla"),
    ("GOTURN DeepMOT", "GOTURN Smooth L1"),
    ("SiamRPN DeepMOT", "SiamRPN Vanilla"),
    ("SiamRPN DeepMOT", "SiamRPN Smooth L1"),
)


def real_management_options() -> dict[str, Any]:
    """Tracktor's default management (chosen on the training halves of PETS09-S2L1 and
    TUD-Campus, ``TRACKTOR_MANAGEMENT``) as overrides of the published one, which the ReID
    rows' trackers start from."""
    from deepmot.trackers.management import management_overrides
    from deepmot.trackers.tracktor import TRACKTOR_MANAGEMENT, TRACKTOR_PAPER_MANAGEMENT

    return management_overrides(TRACKTOR_MANAGEMENT, TRACKTOR_PAPER_MANAGEMENT)


def real_tracktor_config(settings: dict[str, Any], seed: int) -> Any:
    """Tracktor's DeepMOT fine-tuning on real frames: the synthetic tables' recipe
    (:func:`~deepmot.demos.tracktor.tracktor_train_config`: the box regression layer only,
    Adam 1e-4, perturbed frame pairs) with the shipped detector and Tracktor's defaults (the
    ReID head built so that +ReIDhead can train it)."""
    from deepmot.demos.tracktor import tracktor_train_config

    base = tracktor_train_config(settings["iterations"], seed, matcher=settings["matcher"])
    return replace(base, model={"feature_cache": settings["feature_cache"], "reid": "head"})


def synthetic_weights(tracker: str) -> Path:
    """The package's ``<tracker>_synthetic.safetensors``: the SOT weights trained on synthetic
    scenes only, where the real-frame rows start."""
    from deepmot import WEIGHTS_DIR

    return WEIGHTS_DIR / f"{tracker}_synthetic.safetensors"


def real_sot_variants(settings: dict[str, Any], seed: int, out: Path) -> list:
    """Per SOT tracker: the synthetic-scene weights (:func:`synthetic_weights`), Vanilla
    (those weights fine-tuned with the tracker's own objective, Adam 1e-4), then Smooth-L1
    and DeepMOT from the Vanilla weights (which compare_variants writes into
    ``out/<tracker>_vanilla/``)."""
    from deepmot.trackers.registry import get_trainable
    from deepmot.train.compare import Variant
    from deepmot.train.config import AugmentationConfig, DeepMOTLossConfig, TrackerTrainConfig

    rows = []
    for tracker in settings["sot"]:
        label = _SOT_LABELS[tracker]
        steps = settings["vanilla_iterations"][tracker]
        vanilla = TrackerTrainConfig(
            tracker=tracker,
            loss="vanilla",
            augment=AugmentationConfig(perturb=settings["perturb"]),
            lr=1e-4,
            iterations=steps,
            batch_size=settings["sot_batch_size"],
            det_file="det.txt",
            checkpoint_every=steps,
            diagnose_every=steps,
            init_weights=str(synthetic_weights(tracker)),
            seed=seed,
        )
        steps = settings["finetune_iterations"][tracker]
        finetune = replace(
            vanilla,
            iterations=steps,
            checkpoint_every=steps,
            diagnose_every=steps,
            init_weights=str(out / f"{tracker}_vanilla" / get_trainable(tracker).weights_file),
            deepmot=DeepMOTLossConfig(**settings["deepmot"].get(tracker, {})),
        )
        rows += [
            Variant(f"{label} synthetic", None, tracker, str(synthetic_weights(tracker))),
            Variant(f"{label} Vanilla", vanilla),
            Variant(f"{label} Smooth L1", replace(finetune, loss="smoothl1")),
            Variant(f"{label} DeepMOT", replace(finetune, loss="deepmot")),
        ]
    return rows


def paired_differences(
    per_seed: dict[str, list[dict[str, Any]]], pairs: tuple[tuple[str, str], ...]
) -> list[dict[str, Any]]:
    """The ``Δ A − B`` comparisons: per column, the mean and population std over the seeds
    of row A's value minus row B's in the same seed; pairs with a row missing are left out."""
    import numpy as np

    rows = []
    for a, b in pairs:
        runs = [{r["row"]: r for r in seed_rows} for seed_rows in per_seed.values()]
        if not all(a in run and b in run for run in runs):
            continue
        row: dict[str, Any] = {"row": f"Δ {a} − {b}"}
        for column in COLUMNS:
            diffs = np.array([run[a][column.name] - run[b][column.name] for run in runs], float)
            row[column.name] = float(diffs.mean())
            row[f"{column.name}_std"] = float(diffs.std())
        rows.append(row)
    return rows


def _real_sequences(data: Path, settings: dict[str, Any]) -> tuple[list, list]:
    """The training sequences (whole; training uses their first 50%) and the scored clip:
    the last 25% of ``score_sequence`` (its first ``score_frames`` frames where set)."""
    from deepmot.data.loading import load_sequences
    from deepmot.errors import DeepMOTError
    from deepmot.train.compare import validation_clips

    train = load_sequences(data, sequences=settings["sequences"], need="frames")
    scored = [s for s in train if s.name == settings["score_sequence"]]
    if not scored:
        raise DeepMOTError(
            f"--data {data}: no sequence {settings['score_sequence']} with img1/ and gt/gt.txt "
            "(make it with 'deepmot frames', see docs/results.md)"
        )
    if scored[0].detections is None:
        raise DeepMOTError(f"--data {data}: {scored[0].name} has no det/det.txt to track")
    val = validation_clips(scored)
    if settings.get("score_frames"):
        val = [s.clip(range(1, min(len(s), settings["score_frames"]) + 1)) for s in val]
    return train, val


def run_real_table(context: TableContext) -> TableResult:
    """Per seed: train every row on the real training halves, track and score the scored
    clip; mean ± std over the seeds, then the paired differences."""
    from deepmot.demos.tracktor_reid import run_reid_rows
    from deepmot.reproduce.plots import bar_plot
    from deepmot.reproduce.run import aggregate_seeds
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.train.compare import Variant, compare_variants

    settings = dict(context.settings)
    train, val = _real_sequences(context.data, settings)
    baselines = [Variant(name, None, tracker) for name, tracker in settings["baselines"].items()]

    def one_seed(seed: int) -> list[dict[str, Any]]:
        out = context.out / f"seed{seed}"
        rows = []
        if settings["tracktor"]:
            rows += run_reid_rows(
                train,
                val,
                out / "tracktor",
                real_tracktor_config(settings, seed),
                settings["head_iterations"],
                settings["reid_steps"],
                table_row,
                real_management_options(),
                settings["appearance"],
                context.progress,
                settings["head_clip_length"],
            )
        variants = real_sot_variants(settings, seed, out / "sot") + baselines
        return rows + compare_variants(
            train, val, variants, out / "sot", context.progress, row=table_row
        )

    per_seed: dict[str, list[dict[str, Any]]] = {}
    for seed in settings["seeds"]:
        per_seed[str(seed)] = context.seed_rows(seed, lambda seed=seed: one_seed(seed))
    rows = aggregate_seeds(per_seed, COLUMNS)
    plot = bar_plot(rows, context.out / "plot.png", ("MOTA", "IDF1"), "Real frames (PETS09-S2L1)")
    frames = f"its first {settings['score_frames']} frames " if settings.get("score_frames") else ""
    notes = (
        f"Trained on the first 50% of {', '.join(s.name for s in train)}; scored on the last "
        f"25% of {settings['score_sequence']} {frames}({len(val[0])} frames), public det.txt. "
        f"Tracktor: {settings['iterations']} steps of 4 frame pairs, ReID head "
        f"{settings['head_iterations']} steps of 2 clips of {settings['head_clip_length']} "
        f"frames, external ReID {settings['reid_steps']} triplet steps; SOT: Vanilla "
        f"{settings['vanilla_iterations']} steps, fine-tuning {settings['finetune_iterations']} "
        f"steps of {settings['sot_batch_size']} frame pairs. Δ rows: paired per-seed differences."
    )
    differences = paired_differences(per_seed, PAIRS)
    return TableResult(rows, per_seed, plot, notes, differences)


_REAL = {
    "sequences": ["PETS09-S2L1", "TUD-Campus"],
    "score_sequence": "PETS09-S2L1",
    "score_frames": None,
    "matcher": "dhn",
    "tracktor": True,
    "feature_cache": 512,
    "appearance": "branch",
    "head_clip_length": 10,
    "sot": ["goturn", "siamrpn"],
    "perturb": 0.8,
    "sot_batch_size": 8,
    # the authors' released SiamRPN training (utils/loss.py): softmax scale 10, threshold 0.7
    "deepmot": {"siamrpn": {"scale": 10.0, "delta": 0.7}},
    "baselines": {"Constant velocity": "constant_velocity", "Kalman": "kalman"},
}

register_table(
    TableSpec(
        name="real",
        title="Vanilla / Smooth-L1 / DeepMOT Tracktor (no ReID / +ReIDhead / +ReIDext), GOTURN "
        "and SiamRPN on real frames, constant velocity and Kalman",
        paper_ref="Tables 1 and 3",
        run=run_real_table,
        scales={
            "cpu": {
                **_REAL,
                "iterations": 40,
                "head_iterations": 10,
                "reid_steps": 60,
                "vanilla_iterations": {"goturn": 60, "siamrpn": 30},
                "finetune_iterations": {"goturn": 60, "siamrpn": 30},
                "seeds": [0, 1, 2],
            },
            "full": {
                **_REAL,
                "iterations": 400,
                "head_iterations": 200,
                "reid_steps": 500,
                "vanilla_iterations": {"goturn": 600, "siamrpn": 300},
                "finetune_iterations": {"goturn": 400, "siamrpn": 240},
                "seeds": [0, 1, 2, 3, 4],
            },
        },
        columns=COLUMNS,
        explanation=(
            "The paper trains on MOT17's training split and scores its validation split with "
            "a ResNet-50 Faster R-CNN, AlexNet SOT networks and a GPU; here every model is the "
            "package's light CPU one, fine-tuned for minutes on the first halves of two real "
            "sequences (PETS09-S2L1, TUD-Campus) and scored on one 198-frame quarter, where a "
            "few boxes move MOTA by tenths. Measured at --scale cpu, seeds 0-2 (the paired "
            "differences are below the table). Tracktor: DeepMOT fine-tuning beats Vanilla on "
            "MOTA in every seed (+0.85 ± 0.48: +1.53, +0.44, +0.59) but not Smooth-L1 beyond "
            "the spread (+0.41 ± 0.61; -0.22 in seed 1), and both fine-tunings lose about 5.6 "
            "IDF1 against Vanilla (not investigated). The ReID head, trained by DeepMOT for 10 "
            "steps, lowers IDF1 by 4-6 against no ReID; the external network raises it by 5-7, "
            "but it learned the very people it re-identifies (PETS09-S2L1's first half), so "
            "that gain says little about new scenes. The paper's Table 1 comparison, "
            "DeepMOT+ReIDhead against Vanilla+ReIDext, goes the other way here (-0.17 MOTA, "
            "-16 IDF1). GOTURN: DeepMOT beats its Vanilla fine-tuning in every seed (+0.63 ± "
            "0.28 MOTA) and ties Smooth-L1 (-0.07 ± 0.16). SiamRPN: DeepMOT is below Vanilla "
            "(-0.56 ± 0.86) and level with Smooth-L1 (-0.02 ± 0.34), with a lower IDF1 than "
            "both. Fine-tuning on real frames at all helps the SOT trackers most: MOTA 78.30 -> "
            "79.2-79.9 for GOTURN and 76.69 -> 78.4-79.0 for SiamRPN over the synthetic-scene "
            "weights. Every image tracker beats constant velocity (55.50) and the Kalman filter "
            "(76.04) on MOTA; the SOT trackers stay far below the Kalman filter on IDF1 (78.74). "
            "So on these frames the paper's claim holds against Vanilla for Tracktor and GOTURN"
            " on MOTA, and against Smooth-L1 for none of the three. The shipped goturn and "
            "siamrpn weights are seed 0's DeepMOT rows (MOTA 80.04 and 78.44 here)."
        ),
    )
)
