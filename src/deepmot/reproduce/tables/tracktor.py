"""``tracktor``: Vanilla / Smooth-L1 / DeepMOT fine-tuning of Tracktor (Table 3 layout) on
synthetic scenes.

Each seed runs what ``deepmot demo --tracker tracktor`` runs (:mod:`deepmot.tracktor_demo`):
its own scenes (seed 2000 + seed, never seen by the shipped light detector), the box
regression layer fine-tuned on frame pairs of the first 50% of each scene, every row tracking
the last 25%. ``verified`` tracks with ``require_verification=True`` (the paper's supp. A.2
rule: a track no detection verifies turns invisible). ``benchmarks/table_tracktor.py`` calls
the same functions.
"""

from __future__ import annotations

from typing import Any

from deepmot.reproduce.registry import TableContext, TableResult, TableSpec, register_table
from deepmot.reproduce.tables.motion import COLUMNS, PAPER_TABLE3

__all__ = ["run_tracktor_table"]


def run_tracktor_table(context: TableContext) -> TableResult:
    """Vanilla, Smooth-L1 and DeepMOT Tracktor per seed (each seed its own scenes and
    training seed), mean ± std over the seeds."""
    from deepmot.reproduce.plots import bar_plot
    from deepmot.reproduce.run import aggregate_seeds
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.tracktor_demo import (
        SCENE_SEED_OFFSET,
        demo_sequences,
        tracktor_train_config,
        tracktor_variants,
    )
    from deepmot.train.compare import compare_variants

    settings = context.settings
    options = {"require_verification": bool(settings["verified"])}
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for seed in settings["seeds"]:
        train, val = demo_sequences(settings["sequences"], settings["frames"], seed)
        config = tracktor_train_config(settings["iterations"], seed, "shipped", settings["matcher"])
        per_seed[str(seed)] = compare_variants(
            train,
            val,
            tracktor_variants(config),
            context.out / f"seed{seed}",
            progress=context.progress,
            row=table_row,
            tracker_options=options,
        )
    rows = aggregate_seeds(per_seed, COLUMNS)
    columns = ("MOTA", "IDF1", "MOTP")
    plot = bar_plot(rows, context.out / "plot.png", columns, "Tracktor, synthetic", PAPER_TABLE3)
    notes = (
        f"Tracktor with the shipped light detector; per seed {settings['sequences']} synthetic "
        f"scenes x {settings['frames']} frames (scene seed {SCENE_SEED_OFFSET} + seed), box "
        f"regression fine-tuned {settings['iterations']} steps of 4 frame pairs on the first 50% "
        f"of each, scored on the last 25%; require_verification={options['require_verification']}."
    )
    return TableResult(rows=rows, per_seed=per_seed, plot=plot, notes=notes)


_COMMON = {"matcher": "dhn", "verified": True}

register_table(
    TableSpec(
        name="tracktor",
        title="Vanilla / Smooth-L1 / DeepMOT fine-tuning of Tracktor, synthetic scenes",
        paper_ref="Table 3",
        reads_data=False,
        run=run_tracktor_table,
        scales={
            "cpu": {**_COMMON, "iterations": 40, "sequences": 2, "frames": 200, "seeds": [0, 1, 2]},
            "full": {
                **_COMMON,
                "iterations": 400,
                "sequences": 4,
                "frames": 300,
                "seeds": [0, 1, 2, 3, 4],
            },
        },
        columns=COLUMNS,
        paper=PAPER_TABLE3,
        explanation=(
            "The paper fine-tunes Tracktor's ResNet-50 Faster R-CNN (trained on MOT17) on MOT17 "
            "and scores its validation split; ours is the shipped light MobileNetV3-FPN "
            "detector trained from scratch on synthetic scenes (AP50 69.0 on held-out scenes), "
            "fine-tuned for minutes on a CPU and scored on synthetic scenes it never saw. The "
            "weak detector sets the absolute level: without `verified` (Tracktor keeping a "
            "track on its regression score alone) the README measured MOTA 17.1 ± 7.2 for "
            "Vanilla and 23.3 ± 9.9 for DeepMOT over 3 seeds; with `verified` (the paper's "
            "supp. A.2 rule, this table's default) 48.2 ± 4.4 and 49.9 ± 4.3. As in the paper, "
            "DeepMOT's MOTA is at least Smooth-L1's, by less than the spread between seeds. "
            "The ReID head is untrained in every row (the paper trains it with the DeepMOT "
            "loss), so IDF1 is not expected to improve. Counts (FP, FN, IDS) are over our "
            "few synthetic scenes, the paper's over MOT17's validation split."
        ),
    )
)
