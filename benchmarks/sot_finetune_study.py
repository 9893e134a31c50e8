"""Why DeepMOT fine-tuning does not beat the Vanilla SOT trackers: fine-tuning variants scored
on validation scenes (never the held-out test scenes of ``deepmot reproduce sot``).

For one seed, the training scenes are the sot table's (scene seed ``train_seed + seed``) and
the validation scenes are new ones drawn with scene seed ``51 + seed`` (the table's test
scenes use ``101 + seed``). Every variant fine-tunes the table's Vanilla weights of that seed
(``--vanilla RUN/sot/seed<N>``: ``<tracker>_vanilla/<tracker>.safetensors``) with the table's
settings except what the variant changes, and tracks the validation scenes with the SOT track
management. Writes ``OUT/seed<N>/<tracker>.json`` (rows) and prints them.

    OMP_NUM_THREADS=1 python benchmarks/sot_finetune_study.py --tracker siamrpn --seed 0 \\
        --vanilla /tmp/repro/sot/seed0 --out /tmp/study
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

VALIDATION_SEED = 51


def variants(tracker: str, base) -> dict:
    """Name -> the fine-tuning settings of each variant (``base``: the table's DeepMOT row)."""
    pairs = {"DeepMOT": base, "DeepMOT+focal": replace(base, focal_weight=10.0)}
    early = ("features.0", "features.2")  # the backbone's first two convolutions
    clips = replace(base, sampling="clips", clip_length=5, batch_size=2)  # 8 frames a step too
    if tracker == "siamrpn":
        focal = pairs["DeepMOT+focal"]
        return {
            **pairs,
            "DeepMOT+focal frozen features.0/2": replace(
                focal, freeze=("features.0", "features.2")
            ),
            "DeepMOT+focal clips": replace(clips, focal_weight=10.0),
            "DeepMOT+focal scale 3": replace(focal, deepmot=replace(focal.deepmot, scale=3.0)),
        }
    return {
        "DeepMOT": base,
        "DeepMOT scale 10": replace(base, deepmot=replace(base.deepmot, scale=10.0)),
        "DeepMOT clips": clips,
        "DeepMOT frozen features.0/2": replace(base, freeze=early),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracker", choices=["goturn", "siamrpn"], required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--vanilla", type=Path, required=True, help="the table's seed folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="+", help="variants to run (default: all)")
    args = parser.parse_args()

    import torch

    from deepmot.reproduce.registry import get_table
    from deepmot.reproduce.tables.motion import table_row
    from deepmot.reproduce.tables.sot import scenes, sot_variants
    from deepmot.trackers import create_tracker
    from deepmot.train.compare import Variant, compare_variants, evaluate_tracker

    torch.set_num_threads(1)
    settings = dict(get_table("sot").scales["cpu"])
    seed = args.seed
    train = scenes(settings, settings["train_sequences"], settings["train_seed"] + seed, "TRAIN")
    val = scenes(settings, settings["test_sequences"], VALIDATION_SEED + seed, "VAL")
    table = {v.name: v.train for v in sot_variants(settings, seed, args.vanilla)}
    label = {"goturn": "GOTURN", "siamrpn": "SiamRPN"}[args.tracker]
    base = table[f"{label} DeepMOT"]
    weights = Path(base.init_weights)  # the table's Vanilla weights of this seed
    chosen = {
        name: config
        for name, config in variants(args.tracker, base).items()
        if not args.only or name in args.only
    }
    out = args.out / f"seed{seed}" / args.tracker
    rows = [
        table_row("Vanilla", evaluate_tracker(create_tracker(args.tracker, weights=weights), val))
    ]
    rows += compare_variants(
        train, val, [Variant(n, c) for n, c in chosen.items()], out, progress=False, row=table_row
    )
    (out / "rows.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
