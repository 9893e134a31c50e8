"""``sot``: Vanilla / Smooth-L1 / DeepMOT for the MOT-by-SOT trackers GOTURN and SiamRPN
(Table 3 layout) on held-out synthetic sequences, the Kalman filter as a reference row.

Each seed generates its training scenes (scene seed ``train_seed + seed``) and held-out test
scenes (``test_seed + seed``), as ``deepmot synth --camera-motion`` does. Per tracker, the
Vanilla row trains with the tracker's own single-object objective on frame pairs (``--loss
vanilla``); Smooth-L1 and DeepMOT fine-tune those weights (``--init-weights``, Adam 1e-4;
SiamRPN's DeepMOT loss at the authors' softmax scale 10 and δ 0.7). Every row tracks the whole
test scenes with the SOT track management and is scored by the project's evaluator. SiamRPN
has a fourth row, DeepMOT+focal: the authors' released training adds a focal term on the
anchors' classification (weight 10, ``settings["focal"]``) to the DeepMOT loss.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from deepmot.reproduce.registry import TableContext, TableResult, TableSpec, register_table
from deepmot.reproduce.tables.motion import COLUMNS

__all__ = ["PAPER_SOT", "run_sot_table", "sot_variants"]

_KEYS = ("MOTA", "MOTP", "IDF1", "MT", "ML", "FP", "FN", "IDS")
_LABELS = {"goturn": "GOTURN", "siamrpn": "SiamRPN"}

#: Table 3 of the paper, MOT-by-SOT rows (MOT17 validation split; "Pre-trained" is our
#: Vanilla: the tracker trained with its own single-object objective).
PAPER_SOT = {
    f"{tracker} {variant}": dict(zip(_KEYS, values, strict=True))
    for tracker, variant, values in (
        ("GOTURN", "Vanilla", (45.99, 85.87, 49.83, 22.27, 36.51, 2927, 39271, 1577)),
        ("GOTURN", "Smooth L1", (52.28, 90.56, 63.53, 29.46, 34.58, 2026, 36180, 472)),
        ("GOTURN", "DeepMOT", (54.09, 90.95, 66.09, 28.63, 35.13, 927, 36019, 261)),
        ("SiamRPN", "Vanilla", (55.35, 87.15, 66.95, 33.61, 31.81, 1907, 33925, 356)),
        ("SiamRPN", "Smooth L1", (56.51, 90.88, 68.38, 33.75, 32.64, 925, 34151, 167)),
        ("SiamRPN", "DeepMOT", (57.16, 89.32, 69.49, 33.47, 32.78, 889, 33667, 161)),
    )
}


def sot_variants(settings: dict[str, Any], seed: int, out: Any) -> list:
    """The rows of one seed, in training order: per tracker Vanilla, then Smooth-L1 and
    DeepMOT (and DeepMOT+focal for a tracker in ``settings["focal"]``) from the Vanilla
    weights (which compare_variants writes into ``out/<tracker>_vanilla/``); the Kalman
    filter last."""
    from deepmot.trackers.registry import get_trainable
    from deepmot.train.compare import Variant
    from deepmot.train.config import AugmentationConfig, DeepMOTLossConfig, TrackerTrainConfig

    rows = []
    for tracker in settings["trackers"]:
        label = _LABELS[tracker]
        vanilla = TrackerTrainConfig(
            tracker=tracker,
            loss="vanilla",
            augment=AugmentationConfig(perturb=settings["perturb"]),
            iterations=settings["vanilla_iterations"][tracker],
            batch_size=settings["batch_size"],
            det_file="det.txt",
            checkpoint_every=settings["vanilla_iterations"][tracker],
            diagnose_every=settings["vanilla_iterations"][tracker],
            seed=seed,
        )
        weights = out / f"{tracker}_vanilla" / get_trainable(tracker).weights_file
        steps = settings["finetune_iterations"][tracker]
        finetune = replace(
            vanilla,
            lr=1e-4,
            iterations=steps,
            checkpoint_every=steps,
            diagnose_every=steps,
            init_weights=str(weights),
            deepmot=DeepMOTLossConfig(**settings["deepmot"].get(tracker, {})),
        )
        rows += [
            Variant(f"{label} Vanilla", vanilla),
            Variant(f"{label} Smooth L1", replace(finetune, loss="smoothl1")),
            Variant(f"{label} DeepMOT", replace(finetune, loss="deepmot")),
        ]
        if tracker in settings.get("focal", {}):
            focal = replace(finetune, loss="deepmot", focal_weight=settings["focal"][tracker])
            rows.append(Variant(f"{label} DeepMOT+focal", focal))
    return [*rows, Variant("Kalman", None, "kalman")]


def seed_scenes(settings: dict[str, Any], seed: int) -> tuple[list, list]:
    """A table seed's training and held-out synthetic scenes (scene seeds ``train_seed + seed``
    and ``test_seed + seed``): the data of ``sot`` and of the SOT loss ablations."""
    train = scenes(settings, settings["train_sequences"], settings["train_seed"] + seed, "TRAIN")
    test = scenes(settings, settings["test_sequences"], settings["test_seed"] + seed, "TEST")
    return train, test


def scenes(settings: dict[str, Any], count: int, seed: int, prefix: str) -> list:
    from deepmot.data.synthetic import SceneConfig, dataset_configs, generate_scene

    base = SceneConfig(
        frames=settings["frames"],
        width=settings["width"],
        height=settings["height"],
        people=settings["people"],
        camera_motion=True,
    )
    configs = dataset_configs(count, base, seed=seed, prefix=prefix)
    return [generate_scene(c).to_sequence(cache_size=settings["frames"]) for c in configs]


def _check(settings: dict[str, Any]) -> None:
    """A one-line error for a tracker the table does not know or one without step counts."""
    from deepmot.errors import DeepMOTError

    for tracker in settings["trackers"]:
        if tracker not in _LABELS:
            raise DeepMOTError(f"--set trackers: {tracker!r} is not one of {', '.join(_LABELS)}")
        for key in ("vanilla_iterations", "finetune_iterations"):
            if tracker not in settings[key]:
                raise DeepMOTError(f"--set {key}: no step count for {tracker!r}")


def run_sot_table(context: TableContext) -> TableResult:
    """Per seed: train and fine-tune each tracker on its training scenes, track and score the
    held-out scenes; mean ± std over the seeds."""
    from deepmot.reproduce.plots import bar_plot
    from deepmot.reproduce.run import aggregate_seeds
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.trackers.management import PAPER_SOT_REFINEMENT
    from deepmot.train.compare import compare_variants

    settings = dict(context.settings)
    _check(settings)
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for seed in settings["seeds"]:

        def one_seed(seed: int = seed) -> list[dict[str, Any]]:
            train, test = seed_scenes(settings, seed)
            out = context.out / f"seed{seed}"
            variants = sot_variants(settings, seed, out)
            return compare_variants(
                train,
                test,
                variants,
                out,
                context.progress,
                row=table_row,
                tracker_options=PAPER_SOT_REFINEMENT,  # the paper's rules, as measured
            )

        per_seed[str(seed)] = context.seed_rows(seed, one_seed)
    rows = aggregate_seeds(per_seed, COLUMNS)
    columns = ("MOTA", "IDF1", "MOTP")
    plot = bar_plot(rows, context.out / "plot.png", columns, "MOT-by-SOT", PAPER_SOT)
    notes = (
        f"Per seed {settings['train_sequences']} training and {settings['test_sequences']} "
        f"held-out synthetic scenes ({settings['frames']} frames, {settings['width']}x"
        f"{settings['height']}, {settings['people']} people, camera motion); Vanilla "
        f"{settings['vanilla_iterations']} steps, fine-tuning {settings['finetune_iterations']} "
        f"steps of {settings['batch_size']} frame pairs; whole test scenes scored."
    )
    return TableResult(rows=rows, per_seed=per_seed, plot=plot, notes=notes)


SOT_SETTINGS = {
    "trackers": ["goturn", "siamrpn"],
    "train_seed": 1,
    "test_seed": 101,
    "perturb": 0.8,
    "batch_size": 8,
    # the authors' released SiamRPN training (utils/loss.py): softmax scale 10, threshold
    # (δ) 0.7, and a focal classification term of weight 10 (the DeepMOT+focal row)
    "deepmot": {"siamrpn": {"scale": 10.0, "delta": 0.7}},
    "focal": {"siamrpn": 10.0},
}

register_table(
    TableSpec(
        name="sot",
        title="Vanilla / Smooth-L1 / DeepMOT for GOTURN and SiamRPN, synthetic scenes",
        paper_ref="Table 3",
        reads_data=False,
        run=run_sot_table,
        scales={
            "cpu": {
                **SOT_SETTINGS,
                "train_sequences": 2,
                "test_sequences": 2,
                "frames": 150,
                "width": 640,
                "height": 480,
                "people": 10,
                "vanilla_iterations": {"goturn": 250, "siamrpn": 150},  # docs/sot.md's recipe
                "finetune_iterations": {"goturn": 100, "siamrpn": 60},
                "seeds": [0, 1, 2],
            },
            "full": {
                **SOT_SETTINGS,
                "train_sequences": 3,
                "test_sequences": 3,
                "frames": 200,
                "width": 640,
                "height": 480,
                "people": 10,
                "vanilla_iterations": {"goturn": 1000, "siamrpn": 600},
                "finetune_iterations": {"goturn": 400, "siamrpn": 240},
                "seeds": [0, 1, 2],
            },
        },
        columns=COLUMNS,
        paper=PAPER_SOT,
        explanation=(
            "The paper's GOTURN and SiamRPN are AlexNet-style networks pre-trained on "
            "single-object datasets and fine-tuned on MOT17 on a GPU, scored on MOT17's "
            "validation split; ours are the light CPU backbones trained from scratch for a few "
            "hundred steps on synthetic scenes and scored on held-out synthetic scenes, so the "
            "absolute numbers are not comparable. The paper's Pre-trained row is our Vanilla "
            "(the tracker's own single-object objective). The Kalman filter has no row in the "
            "paper. Over 3 seeds, against Vanilla in the same seed, the fine-tunings move MOTA "
            "by less than the spread between seeds: GOTURN Smooth-L1 +0.7 ± 0.3, DeepMOT "
            "+0.1 ± 0.5; SiamRPN Smooth-L1 +0.0 ± 2.5, DeepMOT −0.5 ± 1.6, DeepMOT with the "
            "authors' focal classification term (weight 10) −0.2 ± 0.3 (through the loss's "
            "default DHN, bipartite_sk; through seq_gru, the default before: +0.5 ± 0.4, "
            "−1.3 ± 0.8 and −0.5 ± 2.2). At the default softmax "
            "scale (100) only about 0.1% of GOTURN's softmax entries are unsaturated, so its "
            "DeepMOT loss acts as dMOTP; SiamRPN at the authors' scale 10 keeps about 19%. "
            "Fine-tuning variants measured on separate validation scenes "
            "(benchmarks/sot_finetune_study.py, docs/sot.md) did not change that picture for "
            "SiamRPN (clips, frozen early layers, a lower scale); for GOTURN, DeepMOT beat "
            "Vanilla there in each of 3 seeds (+1.7 ± 0.6 MOTA, clips +2.4 ± 0.6). In "
            "Table 4 (MOT17 test) the paper's DeepMOT-GOTURN gains 9.8 MOTA over GOTURN and "
            "DeepMOT-SiamRPN 4.3 over SiamRPN; we have no test benchmark to compare."
        ),
    )
)
