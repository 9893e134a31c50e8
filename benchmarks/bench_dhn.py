"""Throughput of the DHN: matrices per second, forward and forward+backward.

Compares, at square sizes 5, 20, 50 and 100:

- the shipped DHN (lean, ``flatten="lines"``; or ``--model``: another shipped name or a
  weights file, e.g. ``bipartite_mp``) run batched (one padded batch) and one matrix at a time;
- a paper-sized DHN (2-layer Bi-GRUs, hidden 256, MLP 512-256-64-1, the whole matrix as one
  sequence) one matrix at a time, as the authors' code ran it;
- SciPy's Hungarian (``linear_sum_assignment``), one matrix at a time.

Usage::

    python benchmarks/bench_dhn.py [--threads 2] [--batch 16] [--min-seconds 1.0] [--model NAME]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from deepmot.assign.dhn import DHN, SHIPPED_CONFIG, build_dhn, create_dhn, load_dhn
from deepmot.assign.hungarian import hungarian


def rate(
    fn: Callable[[], int], min_seconds: float, max_reps: int = 1000, warmup: bool = True
) -> float:
    """Matrices per second of ``fn`` (returns how many matrices it handled)."""
    if warmup:
        fn()
    done, start = 0, time.perf_counter()
    reps = 0
    while True:
        done += fn()
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or reps >= max_reps:
            return done / elapsed


def forward(model: DHN, ds: list[torch.Tensor], batched: bool, backward: bool) -> Callable[[], int]:
    def run() -> int:
        if batched:
            d = torch.stack(ds).requires_grad_(backward)
            with torch.set_grad_enabled(backward):
                out = model(d)
                if backward:
                    out.sum().backward()
        else:
            for x in ds:
                x = x.clone().requires_grad_(backward)
                with torch.set_grad_enabled(backward):
                    out = model(x)
                    if backward:
                        out.sum().backward()
        return len(ds)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16, help="matrices per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 50, 100])
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument(
        "--paper-max-size", type=int, default=100, help="skip the paper model above"
    )
    parser.add_argument(
        "--model", default="seq_gru", help="the fast model: a DHN name or a weights file"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if Path(args.model).is_file():
        shipped, label = load_dhn(args.model), args.model
    else:
        try:
            shipped = create_dhn(args.model, pretrained=True)
            label = f"shipped {args.model}"
        except ValueError:
            shipped = (
                build_dhn(SHIPPED_CONFIG) if args.model == "seq_gru" else create_dhn(args.model)
            )
            label = f"{args.model} (random weights; the same cost)"
    paper = create_dhn("seq_gru")  # paper-sized: 2-layer Bi-GRU, hidden 256, matrix flatten
    shipped.eval()
    paper.eval()
    cpu = platform.processor() or platform.machine()
    print(f"{cpu}, torch {torch.__version__}, {args.threads} threads")
    print(f"shipped = {label}: {shipped.config}")
    print(f"paper   = {paper.config}")
    print(f"{args.batch} matrices per measurement; rates in matrices/s\n")
    header = (
        f"{'size':>8} {'pass':>9} {'ship batch':>11} {'ship 1-by-1':>12} {'paper 1-by-1':>13}"
        f" {'scipy':>10} {'batch/paper':>12} {'batch/1-by-1':>13}"
    )
    print(header)
    rng = np.random.default_rng(0)
    for size in args.sizes:
        ds = [
            torch.from_numpy(rng.random((size, size), dtype=np.float32)) for _ in range(args.batch)
        ]
        scipy_rate = rate(
            lambda ds=ds: sum(1 for d in ds if hungarian(d.numpy()) is not None), args.min_seconds
        )
        for backward in (False, True):
            ship_b = rate(forward(shipped, ds, True, backward), args.min_seconds)
            ship_1 = rate(forward(shipped, ds, False, backward), args.min_seconds)
            if size <= args.paper_max_size:
                big = size >= 50  # seconds per matrix: time two, once, without warm-up
                few = ds[:2] if big else ds
                paper_1 = rate(
                    forward(paper, few, False, backward),
                    args.min_seconds,
                    max_reps=1 if big else 1000,
                    warmup=not big,
                )
            else:
                paper_1 = float("nan")
            name = "fwd+bwd" if backward else "fwd"
            print(
                f"{size:>4}x{size:<3} {name:>9} {ship_b:11.1f} {ship_1:12.1f} {paper_1:13.2f}"
                f" {scipy_rate:10.0f} {ship_b / paper_1:11.1f}x {ship_b / ship_1:12.1f}x"
            )


if __name__ == "__main__":
    main()
