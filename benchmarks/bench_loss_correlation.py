"""How well does dMOTA follow the true MOTA? Spearman correlation over real MOT17 frame pairs.

For random frame pairs (t − 1, t) of the MOT17 sequences in ``../shared/data/mot``, tracks start
from the ground truth at t − 1 and a simulated tracker corrupts the ground truth at t with random
amounts of box noise, misses, id swaps and false positives. The true per-frame MOTA comes from
the evaluator (:func:`deepmot.metrics.frame_pair.clear_frame_pair`); dMOTA from the DeepMOT loss
with several matchers and gates. Also reported: the share of tracks that miss their object
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
from scipy.stats import spearmanr

from deepmot import boxes
from deepmot.assign.hungarian import hungarian_batch
from deepmot.assign.sinkhorn import Sinkhorn
from deepmot.data.samplers import CorruptedPair, sample_corrupted_pairs
from deepmot.data.sequence import Sequence
from deepmot.io.mot import find_sequences
from deepmot.loss import DeepMOTLoss
from deepmot.metrics.frame_pair import FrameCounts, clear_frame_pair

# A gradient below this (loss per pixel) moves nothing: a softmax saturated at exp(-50) is no pull.
MIN_GRADIENT = 1e-6
MOT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"


def exact_matcher(distance: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    return hungarian_batch(distance, 0.99, mask)


def true_counts(pair: CorruptedPair) -> FrameCounts:
    """The evaluator's counts of the pair's second frame."""
    return clear_frame_pair(pair.gt.boxes, pair.gt.ids, pair.tracks, pair.track_ids, pair.memory)


def study(loss_fn: DeepMOTLoss, pairs: list[dict], use_iou: bool, batch: int = 64) -> dict:
    """Spearman(dMOTA, MOTA) and the share of missing tracks pulled towards their object."""
    dmota, pulled, missing = [], 0, 0
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        tracks = [torch.tensor(p.tracks, requires_grad=True) for p in chunk]
        gts = [torch.from_numpy(p.gt.boxes) for p in chunk]
        sizes = [(p.sequence.im_width, p.sequence.im_height) for p in chunk]
        distances = [
            boxes.distance_matrix(t, g, *s) for t, g, s in zip(tracks, gts, sizes, strict=True)
        ]
        ious = [boxes.box_iou(t, g) for t, g in zip(tracks, gts, strict=True)] if use_iou else None
        out, _ = loss_fn.forward_batch(
            distances,
            [p.track_ids for p in chunk],
            [p.gt.ids for p in chunk],
            [p.memory for p in chunk],
            ious,
        )
        dmota.extend(out.dmota.detach().tolist())
        grads = torch.autograd.grad(out.loss.sum(), tracks, allow_unused=True)
        for p, t, g, grad in zip(chunk, tracks, gts, grads, strict=True):
            own = {int(i): j for j, i in enumerate(p.gt.ids)}
            for row, tid in enumerate(p.track_ids):
                if int(tid) not in own:
                    continue
                target = g[own[int(tid)]]
                if float(boxes.box_iou(t[row : row + 1].detach(), target[None])) >= 0.5:
                    continue
                missing += 1
                if grad is None or float(grad[row].norm()) < MIN_GRADIENT:
                    continue
                if float((-grad[row] * (target - t[row].detach())).sum()) > 0:
                    pulled += 1
    mota = [true_counts(p).mota for p in pairs]
    return {
        "spearman": float(spearmanr(dmota, mota)[0]),
        "pulled": pulled / max(1, missing),
        "missing": missing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dhn", action="store_true", help="also the shipped DHN (needs weights)")
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
        from deepmot.assign.dhn import create_dhn

        matchers["dhn"] = create_dhn("seq_gru", pretrained=True)
    if args.dhn_weights:
        from deepmot.assign.dhn import load_dhn

        for path in args.dhn_weights:
            matchers[Path(path).stem.removeprefix("dhn_")[:10]] = load_dhn(path)
    settings = [
        ("none", False, {"gate": "none"}),
        ("hard D>0.25", False, {"gate": "hard"}),
        ("soft D>0.25 *", False, {"gate": "soft"}),
        ("soft, large=1", False, {"gate": "soft", "large_value": 1.0}),
        ("hard IoU<0.5", True, {"gate": "hard"}),
        ("soft IoU<0.5", True, {"gate": "soft"}),
    ]
    print(f"{'matcher':10} {'gate':14} {'Spearman':>9} {'pulled':>8} {'seconds':>8}")
    for name, matcher in matchers.items():
        for gate_name, use_iou, overrides in settings:
            start = time.perf_counter()
            result = study(DeepMOTLoss(matcher, **overrides), pairs, use_iou)
            print(
                f"{name:10} {gate_name:14} {result['spearman']:9.3f} {result['pulled']:8.1%} "
                f"{time.perf_counter() - start:8.1f}"
            )
    print(
        f"('pulled': share of the {result['missing']} tracks with IoU < 0.5 to their own object "
        "whose negative gradient points towards it)"
    )


if __name__ == "__main__":
    main()
