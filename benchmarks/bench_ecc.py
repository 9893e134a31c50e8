"""ECC camera-motion compensation on shrunk frames against full size: time and agreement.

For consecutive frame pairs, times ``ecc_warp`` at full size (the reference, Tracktor's) and at
each ``--scales`` factor in the same run, and reports how far the warps move the frame's corners
apart (pixels, full-size coordinates; the median and the largest over the pairs). Sources: a
video (e.g. PETS09-S2L1, a static camera) and a synthetic scene with camera motion, where the
true shift of the background is known: there each scale's corner error to the truth is printed.

    python benchmarks/bench_ecc.py --video ../shared/data/video/PETS09-S2L1.avi --pairs 20
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from deepmot.trackers.camera_motion import ecc_warp


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a video, RGB."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def synthetic_frames(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a 768x576 synthetic scene with a moving camera, and the true warp of each
    consecutive pair (the background's shift: the rounded camera offsets' difference)."""
    from deepmot.data.synthetic import SceneConfig, generate_scene

    config = SceneConfig(frames=count, width=768, height=576, people=10, seed=3, camera_motion=True)
    scene = generate_scene(config)
    sequence = scene.to_sequence()
    offsets = np.round(scene.camera_offsets)
    truths = []
    for f in range(1, count):
        truth = np.eye(2, 3, dtype=np.float32)
        truth[:, 2] = offsets[f] - offsets[f - 1]
        truths.append(truth)
    return [sequence.read_image(f) for f in range(1, count + 1)], truths


def corner_gap(a: np.ndarray, b: np.ndarray, width: int, height: int) -> float:
    """Largest distance between the frame's corners moved by warps ``a`` and ``b``."""
    corners = np.float32([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]])
    return float(np.linalg.norm(corners @ a.T - corners @ b.T, axis=1).max())


def bench(
    name: str, frames: list[np.ndarray], scales: list[float], truths: list | None = None
) -> None:
    height, width = frames[0].shape[:2]
    times: dict[float, list[float]] = {s: [] for s in [1.0, *scales]}
    gaps: dict[float, list[float]] = {s: [] for s in scales}
    errors: dict[float, list[float]] = {s: [] for s in times}
    for index, (previous, current) in enumerate(zip(frames[:-1], frames[1:], strict=True)):
        warps = {}
        for scale in times:
            start = time.perf_counter()
            warps[scale] = ecc_warp(previous, current, scale=scale)
            times[scale].append(time.perf_counter() - start)
            if truths is not None:
                errors[scale].append(corner_gap(warps[scale], truths[index], width, height))
        for scale in scales:
            gaps[scale].append(corner_gap(warps[scale], warps[1.0], width, height))
    reference = statistics.median(times[1.0])
    print(f"{name}: {len(frames) - 1} pairs of {width}x{height}")
    print(f"  scale 1.00 (reference): {reference * 1000:7.1f} ms median")
    for scale in scales:
        median = statistics.median(times[scale])
        print(
            f"  scale {scale:.2f}: {median * 1000:7.1f} ms median ({reference / median:5.1f}x "
            f"faster); corner gap to full size: median {statistics.median(gaps[scale]):.2f} px, "
            f"max {max(gaps[scale]):.2f} px"
        )
    if truths is not None:
        for scale, error in errors.items():
            print(
                f"  scale {scale:.2f}: corner error to the true shift: median "
                f"{statistics.median(error):.2f} px, max {max(error):.2f} px"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="a video to read frame pairs from")
    parser.add_argument("--pairs", type=int, default=20, help="frame pairs per source")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.25])
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)
    if args.video is not None:
        bench(args.video.name, video_frames(args.video, args.pairs + 1), args.scales)
    frames, truths = synthetic_frames(args.pairs + 1)
    bench("synthetic, moving camera", frames, args.scales, truths)


if __name__ == "__main__":
    main()
