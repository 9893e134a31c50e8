"""How well does dMOTA follow the true MOTA? Spearman correlation over real MOT17 frame pairs.

For random frame pairs (t − 1, t) of the MOT17 sequences in ``../shared/data/mot``, tracks start
from the ground truth at t − 1 and a simulated tracker corrupts the ground truth at t with random
amounts of box noise, misses, id swaps and false positives. The true per-frame MOTA comes from
the evaluator (:func:`deepmot.metrics.frame_pair.clear_frame_pair`); dMOTA from the DeepMOT loss
with several matchers and gates (the functions of ``deepmot reproduce correlation``, which this
script calls). Also reported: the share of tracks that miss their object
(IoU < 0.5) whose loss gradient pulls them towards it.

    python benchmarks/bench_loss_correlation.py [--pairs 1000] [--seed 0] [--dhn]
        [--dhn-weights PATH ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deepmot.assign.sinkhorn import Sinkhorn
from deepmot.data.samplers import sample_corrupted_pairs
from deepmot.data.sequence import Sequence
from deepmot.io.mot import find_sequences
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.reproduce.tables.correlation import (
    GATES,
    exact_matcher,
    loss_mota_correlation,
    true_counts,
)

MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dhn", action="store_true", help="also the default DHN and seq_gru (shipped weights)"
    )
    parser.add_argument("--dhn-weights", nargs="*", default=[], help="more DHN weights files")
    args = parser.parse_args()
    if not MOT_ROOT.is_dir():
        sys.exit(f"real MOTChallenge files not found at {MOT_ROOT}")
    torch.set_num_threads(1)
    start = time.perf_counter()
    sequences = [
        Sequence.from_dir(p) for p in find_sequences(MOT_ROOT) if p.name.startswith("MOT17")
    ]
    pairs = sample_corrupted_pairs(sequences, args.pairs, np.random.default_rng(args.seed))
    motas = np.array([true_counts(p).mota for p in pairs])
    print(
        f"{len(pairs)} MOT17 frame pairs (seed {args.seed}), true MOTA mean {motas.mean():.3f}, "
        f"range [{motas.min():.2f}, {motas.max():.2f}], built in {time.perf_counter() - start:.1f}s"
    )
    matchers = {"exact": exact_matcher, "sinkhorn": Sinkhorn()}
    if args.dhn:
        from deepmot.assign.dhn import DEFAULT_DHN, create_dhn

        for name in dict.fromkeys((DEFAULT_DHN, "seq_gru", "bipartite_sk")):
            matchers[f"dhn {name}"] = create_dhn(name, pretrained=True)
    if args.dhn_weights:
        from deepmot.assign.dhn import load_dhn

        for path in args.dhn_weights:
            matchers[Path(path).stem.removeprefix("dhn_")] = load_dhn(path)
    print(f"{'matcher':13} {'gate':14} {'Spearman':>9} {'pulled':>8} {'seconds':>8}")
    for name, matcher in matchers.items():
        for gate_name, use_iou, overrides in GATES:
            start = time.perf_counter()
            result = loss_mota_correlation(DeepMOTLoss(matcher, **overrides), pairs, use_iou)
            print(
                f"{name:13} {gate_name:14} {result['spearman']:9.3f} {result['pulled']:8.1%} "
                f"{time.perf_counter() - start:8.1f}"
            )
    print(
        f"('pulled': share of the {result['missing']} tracks with IoU < 0.5 to their own object "
        "whose negative gradient points towards it)"
    )


if __name__ == "__main__":
    main()
