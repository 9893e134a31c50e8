"""Does fine-tuning damage SiamRPN's classification branch, and does what it gains on frame
pairs survive longer rollouts? The focal classification loss, the share of tracks whose box
lands on their object (IoU >= 0.5) and their mean IoU, on a fixed batch of clips (``--frames
2``: frame pairs) of the validation scenes of ``benchmarks/sot_finetune_study.py`` (scene seed
``51 + seed``), for the weights of a ``deepmot reproduce sot`` seed folder. In a clip the
tracks run on their own outputs with the templates cut at the clip's first frame (ended when
they lose their object, born from unmatched objects), as in ``--sampling clips``.

    OMP_NUM_THREADS=1 python benchmarks/sot_classification_probe.py --seed 0 \\
        --table /tmp/repro/sot/seed0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VALIDATION_SEED = 51
ROWS = ("siamrpn_vanilla", "siamrpn_smooth_l1", "siamrpn_deepmot", "siamrpn_deepmot_focal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--table", type=Path, required=True, help="the table's seed folder")
    parser.add_argument("--frames", type=int, default=2, help="frames per clip")
    parser.add_argument("--clips", type=int, default=64)
    args = parser.parse_args()

    import numpy as np
    import torch

    from deepmot.assign.sinkhorn import Sinkhorn
    from deepmot.loss.deepmot import DeepMOTLoss
    from deepmot.reproduce.registry import get_table
    from deepmot.reproduce.tables.sot import scenes
    from deepmot.trackers.siamrpn import SiamRPNPredictor, load_siamrpn
    from deepmot.train.clips import ClipSampler
    from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
    from deepmot.train.losses import DeepMOTTraining
    from deepmot.train.rollout import run_clips

    torch.set_num_threads(1)
    settings = dict(get_table("sot").scales["cpu"])
    val = scenes(settings, settings["test_sequences"], VALIDATION_SEED + args.seed, "VAL")
    # the training's perturbation of the starting boxes; the focal term only measured
    config = TrackerTrainConfig(
        tracker="siamrpn", augment=AugmentationConfig(perturb=settings["perturb"]), focal_weight=1
    )
    for name in ROWS:
        model = load_siamrpn(args.table / name / "siamrpn.safetensors")
        sampler = ClipSampler(val, args.frames, 2, 1.0, config.augment)
        rng = np.random.default_rng(1000 + args.seed)
        with torch.no_grad():
            result = run_clips(
                sampler.sample(rng, args.clips),
                SiamRPNPredictor(model),
                DeepMOTTraining(DeepMOTLoss(Sinkhorn())),
                config,
                rng,
                2,
                torch.device("cpu"),
            )
        c = result.counts
        print(
            json.dumps(
                {
                    "seed": args.seed,
                    "frames": args.frames,
                    "row": name,
                    "focal": round(result.soft["focal"], 5),
                    "hit_share": round(c["tp"] / max(1.0, c["tp"] + c["fp"]), 4),
                    "iou_of_hits": round(result.true_motp, 4),
                }
            )
        )


if __name__ == "__main__":
    main()
