"""``loss-ablation-tracktor``, ``loss-ablation-goturn``, ``loss-ablation-siamrpn``: the loss
ablation (Table 2 layout) for the image trackers, one table per tracker, on synthetic scenes.

The rows are those of ``loss-ablation`` (the motion tracker): Vanilla, Smooth-L1, dMOTP alone
(λ(1 − dMOTP)), dMOTA alone (λ = 0), without the ID-switch term (γ = 0) and the full DeepMOT
loss, every trained row with the same settings and seed. Each tracker's rows are trained and
scored as in its Table 3 layout table: Tracktor as in ``tracktor`` (the shipped light detector
is Vanilla; the box regression layer fine-tuned on frame pairs of the first 50% of each scene,
the last 25% scored, ``require_verification``), GOTURN and SiamRPN as in ``sot`` (Vanilla
trained with the tracker's own objective; the other rows fine-tune its weights; held-out
scenes scored). Per seed, every row sees the same scenes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from deepmot.reproduce.registry import TableContext, TableResult, TableSpec, register_table
from deepmot.reproduce.tables.motion import COLUMNS, PAPER_TABLE2
from deepmot.reproduce.tables.sot import PAPER_SOT, SOT_SETTINGS

__all__ = ["PAPER_SOT_ABLATION", "run_sot_ablation", "run_tracktor_ablation"]

#: the rows in the paper's Table 2 order
ROWS = tuple(PAPER_TABLE2)

#: The paper has no ablation for GOTURN and SiamRPN; its Table 3 rows stand beside ours where
#: the row is the same (Pre-trained = Vanilla, Smooth-L1, DeepMOT = dMOTA+dMOTP).
PAPER_SOT_ABLATION = {
    tracker: {
        "Vanilla": PAPER_SOT[f"{label} Vanilla"],
        "Smooth L1": PAPER_SOT[f"{label} Smooth L1"],
        "dMOTA+dMOTP": PAPER_SOT[f"{label} DeepMOT"],
    }
    for tracker, label in (("goturn", "GOTURN"), ("siamrpn", "SiamRPN"))
}


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: ROWS.index(r["row"]))


def _finish(
    context: TableContext,
    per_seed: dict[str, list[dict[str, Any]]],
    paper: dict[str, dict[str, float]],
    title: str,
    notes: str,
) -> TableResult:
    from deepmot.reproduce.plots import bar_plot
    from deepmot.reproduce.run import aggregate_seeds

    per_seed = {seed: _ordered(rows) for seed, rows in per_seed.items()}
    rows = aggregate_seeds(per_seed, COLUMNS)
    plot = bar_plot(rows, context.out / "plot.png", ("MOTA", "IDF1", "MOTP"), title, paper)
    return TableResult(rows=rows, per_seed=per_seed, plot=plot, notes=notes)


def run_tracktor_ablation(context: TableContext) -> TableResult:
    """Table 2's rows for Tracktor, per seed on that seed's scenes; mean ± std over seeds."""
    from deepmot.demos.tracktor import (
        PUBLISHED_MANAGEMENT,
        SCENE_SEED_OFFSET,
        demo_sequences,
        tracktor_train_config,
    )
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.train.compare import Variant, compare_variants, paper_variants

    settings = context.settings
    options = {"require_verification": bool(settings["verified"]), **PUBLISHED_MANAGEMENT}
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for seed in settings["seeds"]:

        def one_seed(seed: int = seed) -> list[dict[str, Any]]:
            train, val = demo_sequences(settings["sequences"], settings["frames"], seed)
            config = tracktor_train_config(
                settings["iterations"], seed, "light", settings["matcher"]
            )
            vanilla = Variant("Vanilla", None, "tracktor", model=config.model)
            variants = [vanilla, *paper_variants(config)[1:]]
            return compare_variants(
                train,
                val,
                variants,
                context.out / f"seed{seed}",
                progress=context.progress,
                row=table_row,
                tracker_options=options,
            )

        per_seed[str(seed)] = context.seed_rows(seed, one_seed)
    notes = (
        f"Tracktor with the shipped light detector; per seed {settings['sequences']} synthetic "
        f"scenes x {settings['frames']} frames (scene seed {SCENE_SEED_OFFSET} + seed), box "
        f"regression fine-tuned {settings['iterations']} steps of 4 frame pairs on the first 50% "
        f"of each, scored on the last 25%; require_verification={options['require_verification']}."
    )
    return _finish(context, per_seed, PAPER_TABLE2, "Tracktor loss ablation, synthetic", notes)


def run_sot_ablation(context: TableContext, tracker: str) -> TableResult:
    """Table 2's rows for the MOT-by-SOT ``tracker`` (goturn or siamrpn): Vanilla trained
    with its own objective, the other rows fine-tuned from it; mean ± std over seeds."""
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.reproduce.tables.sot import seed_scenes, sot_variants
    from deepmot.trackers.management import PAPER_SOT_REFINEMENT
    from deepmot.train.compare import compare_variants, paper_variants

    settings = dict(context.settings)
    sot_settings = {
        **settings,
        "trackers": [tracker],
        "vanilla_iterations": {tracker: settings["vanilla_iterations"]},
        "finetune_iterations": {tracker: settings["finetune_iterations"]},
    }
    per_seed: dict[str, list[dict[str, Any]]] = {}
    for seed in settings["seeds"]:

        def one_seed(seed: int = seed) -> list[dict[str, Any]]:
            train, test = seed_scenes(settings, seed)
            out = context.out / f"seed{seed}"
            # sot's rows start Vanilla, Smooth-L1, DeepMOT (then DeepMOT+focal, Kalman)
            vanilla, _, deepmot = sot_variants(sot_settings, seed, out)[:3]
            # Vanilla keeps sot's name, so it trains into the folder the fine-tuned rows start
            # from (compare_variants trains the rows in order)
            variants = [vanilla, *paper_variants(deepmot.train)[1:]]
            rows = compare_variants(
                train,
                test,
                variants,
                out,
                context.progress,
                row=table_row,
                tracker_options=PAPER_SOT_REFINEMENT,  # the paper's rules, as measured
            )
            return [
                {**row, "row": "Vanilla" if row["row"] == vanilla.name else row["row"]}
                for row in rows
            ]

        per_seed[str(seed)] = context.seed_rows(seed, one_seed)
    notes = (
        f"{tracker}; per seed {settings['train_sequences']} training and "
        f"{settings['test_sequences']} held-out synthetic scenes ({settings['frames']} frames, "
        f"{settings['width']}x{settings['height']}, {settings['people']} people, camera "
        f"motion); Vanilla {settings['vanilla_iterations']} steps of its own objective, each "
        f"other row {settings['finetune_iterations']} fine-tuning steps of "
        f"{settings['batch_size']} frame pairs from it; whole test scenes scored."
    )
    paper = PAPER_SOT_ABLATION[tracker]
    return _finish(context, per_seed, paper, f"{tracker} loss ablation, synthetic", notes)


_EXPLANATION = (
    "The paper's Table 2 ablates the loss for Tracktor on MOT17 only; it has no ablation for "
    "GOTURN and SiamRPN, whose rows beside ours are the paper's Table 3 (Pre-trained, "
    "Smooth-L1, DeepMOT). Our trackers are the light CPU models on synthetic scenes, trained "
    "for minutes (see the `tracktor` and `sot` tables for why absolute values differ); what "
    "carries over is the comparison between rows of one table."
)

_TRACKTOR_MEASURED = (
    " Measured at `--scale cpu` (seeds 0 and 1, each its own scenes): the spread between "
    "seeds (MOTA std 3-4) is larger than any difference between rows, but within each seed "
    "the rows with the box term (Smooth-L1, dMOTP alone, without IDS, the full loss) are "
    "ahead of Vanilla (full loss +1.2 and +3.1 MOTA, Smooth-L1 +0.5 and +2.7) with fewer "
    "FP, while dMOTA alone (λ = 0) stays at Vanilla (+0.5 and −0.2): as for the motion "
    "tracker, the softmax at scale 100 passes a gradient only for DHN outputs within about "
    "0.05 of the threshold, so the box term carries the training signal (in the authors' "
    "code too). The full loss is ahead of Smooth-L1 in both seeds (+0.7, +0.4), as in the "
    "paper (+0.28). Without the IDS term (γ = 0) the rows are within 1.3 MOTA of the full "
    "loss, and ID switches are few on these scenes (10-14 per seed), so the term has little "
    "to act on."
)

register_table(
    TableSpec(
        name="loss-ablation-tracktor",
        title="DeepMOT loss ablation (dMOTA, dMOTP, IDS term), Tracktor, synthetic scenes",
        paper_ref="Table 2",
        reads_data=False,
        run=run_tracktor_ablation,
        scales={
            "cpu": {
                "matcher": "dhn",
                "verified": True,
                "iterations": 40,
                "sequences": 2,
                "frames": 200,
                "seeds": [0, 1],
            },
            "full": {
                "matcher": "dhn",
                "verified": True,
                "iterations": 400,
                "sequences": 4,
                "frames": 300,
                "seeds": [0, 1, 2],
            },
        },  # fmt: skip
        columns=COLUMNS,
        paper=PAPER_TABLE2,
        explanation=_EXPLANATION + _TRACKTOR_MEASURED,
    )
)

_SOT = {k: v for k, v in SOT_SETTINGS.items() if k not in ("trackers", "focal")}
_SOT_CPU = {"train_sequences": 2, "test_sequences": 2, "frames": 150, "width": 640,
            "height": 480, "people": 10, "seeds": [0, 1]}  # fmt: skip
_SOT_FULL = {**_SOT_CPU, "train_sequences": 3, "test_sequences": 3, "frames": 200,
             "seeds": [0, 1, 2]}  # fmt: skip
#: per tracker: (Vanilla steps, fine-tuning steps) at cpu and full scale, as the sot table's
_SOT_STEPS = {"goturn": ((250, 100), (1000, 400)), "siamrpn": ((150, 60), (600, 240))}

#: what the cpu-scale run measured, per tracker (seeds 0 and 1)
_SOT_MEASURED = {
    "goturn": (
        " Measured at `--scale cpu`: every row is within 1.4 MOTA of the others and within the "
        "spread between seeds (MOTA std 2.4-3.5). Against Vanilla within a seed, the "
        "fine-tuned rows gain up to 1.3 MOTA on seed 0 and move by at most 1.0 either way on "
        "seed 1; dMOTA alone has the fewest ID switches (9 and 13 against Vanilla's 20 and 19) "
        "while without the ID-switch term (γ = 0) the rows have 18 and 18 against the full "
        "loss's 13 and 19: no consistent effect of that term over two seeds. The paper has no "
        "GOTURN ablation; its "
        "DeepMOT fine-tuning gains 8.1 MOTA over the pre-trained GOTURN on MOT17."
    ),
    "siamrpn": (
        " Measured at `--scale cpu` (the DeepMOT rows at the authors' SiamRPN softmax scale 10 "
        "and δ 0.7, without their focal term): the rows with the box term (dMOTP alone, "
        "without IDS, the full loss) score below Vanilla in both seeds (−2.2 to −3.6 MOTA on "
        "seed 0, −0.2 to −0.7 on seed 1), while Smooth-L1 and dMOTA alone are above it on seed "
        "0 (+2.9, +2.2) and within 0.8 on seed 1; every fine-tuned row has more ID switches "
        "than Vanilla (51-63 against 43 and 46). As in the `sot` table, fine-tuning SiamRPN "
        "on frame pairs for 60 steps does not carry over to tracking in the loop; the paper's "
        "DeepMOT SiamRPN gains 1.8 MOTA over its pre-trained one on MOT17."
    ),
}

for _tracker, ((_cpu_v, _cpu_f), (_full_v, _full_f)) in _SOT_STEPS.items():
    register_table(
        TableSpec(
            name=f"loss-ablation-{_tracker}",
            title=f"DeepMOT loss ablation (dMOTA, dMOTP, IDS term), {_tracker}, synthetic scenes",
            paper_ref="Table 2",
            reads_data=False,
            run=partial(run_sot_ablation, tracker=_tracker),
            scales={
                "cpu": {
                    **_SOT,
                    **_SOT_CPU,
                    "vanilla_iterations": _cpu_v,
                    "finetune_iterations": _cpu_f,
                },
                "full": {
                    **_SOT,
                    **_SOT_FULL,
                    "vanilla_iterations": _full_v,
                    "finetune_iterations": _full_f,
                },
            },  # fmt: skip
            columns=COLUMNS,
            paper=PAPER_SOT_ABLATION[_tracker],
            explanation=_EXPLANATION + _SOT_MEASURED[_tracker],
        )
    )
