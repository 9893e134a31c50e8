"""Time reading MOT17-04's ground truth (108,005 rows) with deepmot against numpy.loadtxt.

deepmot's reader also validates every row (columns, numbers, frames, sizes, duplicate ids) and
sorts; ``numpy.loadtxt`` only parses. Prints both times and the ratio.

    python benchmarks/bench_io.py [GT_FILE]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from deepmot.io import mot

SHARED_MOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mot"
DEFAULT = SHARED_MOT / "MOT17-04" / "gt" / "gt.txt"


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not path.is_file():
        sys.exit(f"{path} not found: pass a gt.txt path")
    ours = best_of(lambda: mot.read_gt(path))
    reference = best_of(lambda: np.loadtxt(path, delimiter=","))
    rows = len(mot.read_gt(path))
    print(f"{path} ({rows} rows)")
    print(f"deepmot.io.mot.read_gt (validating): {ours * 1e3:8.1f} ms")
    print(f"numpy.loadtxt (parse only):          {reference * 1e3:8.1f} ms")
    print(f"ratio loadtxt / deepmot: {reference / ours:.2f}x")


if __name__ == "__main__":
    main()
