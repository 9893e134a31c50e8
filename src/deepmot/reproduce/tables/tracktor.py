"""``tracktor``: Vanilla / Smooth-L1 / DeepMOT fine-tuning of Tracktor (Table 3 layout) on
synthetic scenes.

Each seed runs what ``deepmot demo --tracker tracktor`` runs (:mod:`deepmot.demos.tracktor`):
its own scenes (seed 2000 + seed, never seen by the shipped light detector), the box
regression layer fine-tuned on frame pairs of the first 50% of each scene, every row tracking
the last 25%. ``verified`` tracks with ``require_verification=True`` (the paper's supp. A.2
rule: a track no detection verifies turns invisible). ``benchmarks/table_tracktor.py`` calls
the same functions.
"""

from __future__ import annotations

from typing import Any

from deepmot.reproduce.registry import TableContext, TableResult, TableSpec, register_table
from deepmot.reproduce.tables.motion import COLUMNS, PAPER_TABLE3, paper_row

__all__ = ["PAPER_TRACKTOR", "run_tracktor_table"]

#: The paper's Tracktor rows by ReID variant. Table 3's Vanilla and Smooth L1 rows use the
#: external ReID, its DeepMOT row the ReID head (Sec. 5.2: "Vanilla+ReIDext (representing the
#: best performance trained in Vanilla settings)", "DeepMOT+ReIDhead"); the Base and
#: DeepMOT+ReIDext rows are Table 1's, whose IDS follow from the text (Vanilla: ReIDext
#: "−174" IDS; DeepMOT: ReIDext "−160", ReIDhead "↓ 191" from Base, 118).
PAPER_TRACKTOR = {
    "Vanilla": paper_row(59.97, 89.50, 70.84, 35.13, 27.66, 276, 31827, 152 + 174),
    "Vanilla+ReIDext": PAPER_TABLE3["Vanilla"],
    "Smooth L1+ReIDext": PAPER_TABLE3["Smooth L1"],
    "DeepMOT": paper_row(60.43, 91.82, 71.44, 35.41, 27.25, 218, 31545, 118 + 191),
    "DeepMOT+ReIDext": paper_row(60.62, 91.82, 71.66, 35.41, 27.39, 218, 31545, 118 + 31),
    "DeepMOT+ReIDhead": PAPER_TABLE3["DeepMOT"],
}


def run_tracktor_table(context: TableContext) -> TableResult:
    """Vanilla, Smooth-L1 and DeepMOT Tracktor per seed (each seed its own scenes and
    training seed), mean ± std over the seeds; with ``reid``, each without ReID, +ReIDhead
    and +ReIDext (:mod:`deepmot.demos.tracktor_reid`)."""
    from deepmot.demos.tracktor import (
        PUBLISHED_MANAGEMENT,
        SCENE_SEED_OFFSET,
        demo_sequences,
        tracktor_train_config,
        tracktor_variants,
    )
    from deepmot.reproduce.plots import bar_plot
    from deepmot.reproduce.run import aggregate_seeds
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.train.compare import compare_variants

    settings = context.settings
    options = {"require_verification": bool(settings["verified"]), **PUBLISHED_MANAGEMENT}
    per_seed: dict[str, list[dict[str, Any]]] = {}

    def one_seed(seed: int) -> list[dict[str, Any]]:
        train, val = demo_sequences(settings["sequences"], settings["frames"], seed)
        config = tracktor_train_config(settings["iterations"], seed, "light", settings["matcher"])
        if settings.get("reid"):
            from deepmot.demos.tracktor_reid import run_reid_rows

            return run_reid_rows(
                train,
                val,
                context.out / f"seed{seed}",
                config,
                settings["head_iterations"],
                settings["reid_steps"],
                table_row,
                options,
                settings["appearance"],
                context.progress,
                settings["head_clip_length"],
            )
        return compare_variants(
            train,
            val,
            tracktor_variants(config),
            context.out / f"seed{seed}",
            progress=context.progress,
            row=table_row,
            tracker_options=options,
        )

    for seed in settings["seeds"]:
        per_seed[str(seed)] = context.seed_rows(seed, lambda seed=seed: one_seed(seed))
    rows = aggregate_seeds(per_seed, COLUMNS)
    columns = ("MOTA", "IDF1", "MOTP")
    paper = PAPER_TRACKTOR if settings.get("reid") else PAPER_TABLE3
    plot = bar_plot(rows, context.out / "plot.png", columns, "Tracktor, synthetic", paper)
    notes = (
        f"Tracktor with the shipped light detector; per seed {settings['sequences']} synthetic "
        f"scenes x {settings['frames']} frames (scene seed {SCENE_SEED_OFFSET} + seed), box "
        f"regression fine-tuned {settings['iterations']} steps of 4 frame pairs on the first 50% "
        f"of each, scored on the last 25%; require_verification={options['require_verification']}."
    )
    if settings.get("reid"):
        notes += (
            f" ReID head: DeepMOT ({settings['appearance']} appearance term) on "
            f"{settings['head_iterations']} steps of 2 clips of {settings['head_clip_length']} "
            "frames (softmax scale 10); external ReID: resnet18 "
            f"on 64x32 crops, {settings['reid_steps']} batch-hard triplet steps on the same "
            "training frames; rows without ReID revive by IoU alone."
        )
    return TableResult(rows=rows, per_seed=per_seed, plot=plot, notes=notes)


_COMMON = {
    "matcher": "dhn",
    "verified": True,
    "reid": True,
    "appearance": "branch",
    "head_clip_length": 10,
}

register_table(
    TableSpec(
        name="tracktor",
        title="Vanilla / Smooth-L1 / DeepMOT fine-tuning of Tracktor, no ReID / +ReIDhead / "
        "+ReIDext, synthetic scenes",
        paper_ref="Tables 1 and 3",
        reads_data=False,
        run=run_tracktor_table,
        scales={
            "cpu": {
                **_COMMON,
                "iterations": 40,
                "head_iterations": 15,
                "reid_steps": 60,
                "sequences": 2,
                "frames": 200,
                "seeds": [0, 1, 2],
            },
            "full": {
                **_COMMON,
                "iterations": 400,
                "head_iterations": 200,
                "reid_steps": 500,
                "sequences": 4,
                "frames": 300,
                "seeds": [0, 1, 2, 3, 4],
            },
        },
        columns=COLUMNS,
        paper=PAPER_TRACKTOR,
        explanation=(
            "The paper fine-tunes Tracktor's ResNet-50 Faster R-CNN (trained on MOT17) on MOT17 "
            "and scores its validation split; ours is the shipped light MobileNetV3-FPN "
            "detector trained from scratch on synthetic scenes (AP50 69.0 on held-out scenes), "
            "fine-tuned for minutes on a CPU and scored on synthetic scenes it never saw. The "
            "weak detector sets the absolute level: without `verified` (Tracktor keeping a "
            "track on its regression score alone) docs/tracktor.md reports MOTA 17.1 ± 7.2 for "
            "Vanilla and 23.3 ± 9.9 for DeepMOT over 3 seeds; with `verified` (the paper's "
            "supp. A.2 rule, this table's default) 48.2 ± 4.5 and 50.0 ± 2.3. As in the paper, "
            "DeepMOT's MOTA is at least Smooth-L1's, by less than the spread between seeds. "
            "ReID does not help here (measured at --scale cpu, 3 seeds): with 10-20 ID switches "
            "per seed the +ReID rows differ from their base by less than the spread; the external"
            " network, the better re-identifier on held-out crops (rank-1 98.1 against the head's"
            " 63.9), gives the lowest IDF1 (62.5 against 64.4 for Vanilla), likely (not measured)"
            " because with `verified` tracks turn invisible often and a stricter appearance gate "
            "starts new tracks where IoU alone revives; the head hardly moves at lr 1e-4 in 15 "
            "steps (held-out mAP 45.37 -> 45.39), and DeepMOT+ReIDhead's MOTA gain (+0.5) comes "
            "from its box regression trained on clips: the same head grafted onto Vanilla or "
            "Smooth-L1 changes their MOTA by under 0.2. In the paper ReID moves MOTA by about "
            "0.2 and IDS by 160-190 out of about 300 over MOT17's validation split. Counts (FP, "
            "FN, IDS) are over our "
            "few synthetic scenes, the paper's over MOT17's validation split."
        ),
    )
)
