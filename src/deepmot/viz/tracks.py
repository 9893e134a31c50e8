"""Tracks over the ground truth (and over the frame, where the sequence has one): a picture of
one frame, or a video of a sequence.

Each frame shows the ground-truth boxes (thin, grey), the tracks (coloured by id, with a tail
through their last centres), the objects no track covers (red, "miss") and the tracks that
cover no object (a red cross, "FP"). Misses and false positives come from a one-to-one IoU
matching of the frame (IoU ≥ 0.5, as the evaluator's), without the evaluator's ID memory:
they are the frame's FN and FP, not its ID switches. Without ground truth (a video tracked as
is) the tracks are drawn alone. A header band above the frame, at most 12% of its height with
text that grows with the frame, says what is shown.

Images are ``(H, W, 3) uint8`` RGB; boxes ``(K, 4)`` xyxy pixels.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from deepmot.viz.frames import draw_boxes, id_color, write_png

if TYPE_CHECKING:
    from deepmot.data.sequence import Sequence
    from deepmot.io.mot import Results

__all__ = [
    "FrameMatch",
    "draw_tracking_frame",
    "match_frame",
    "render_tracking_video",
    "tracking_frames",
    "write_tracking_png",
]

GT_COLOR = (150, 150, 150)
MISS_COLOR = (230, 20, 20)
CANVAS = 238  # grey level of the background when a sequence has no frames
LEGEND = "grey: ground truth; colour: track id (tail: last centres); red: miss; X: false positive"
LEGEND_TRACKS = "colour: track id (tail: last centres)"


@dataclass(frozen=True)
class FrameMatch:
    """One frame's matching: ``pairs (P, 2)`` track/object indices, ``fp`` track indices
    matched to no object, ``fn`` object indices matched to no track."""

    pairs: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def match_frame(tracks: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> FrameMatch:
    """One-to-one matching of ``tracks (N, 4)`` to ``gt (M, 4)`` maximising IoU, pairs with
    IoU ≥ ``threshold`` only."""
    from scipy.optimize import linear_sum_assignment

    tracks = np.asarray(tracks, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    pairs = np.zeros((0, 2), np.int64)
    if len(tracks) and len(gt):
        iou = _iou(tracks, gt)
        rows, cols = linear_sum_assignment(-iou)
        keep = iou[rows, cols] >= threshold
        pairs = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    fp = np.setdiff1d(np.arange(len(tracks)), pairs[:, 0])
    fn = np.setdiff1d(np.arange(len(gt)), pairs[:, 1])
    return FrameMatch(pairs, fp, fn)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


HEADER_SHARE = 0.12
"""Most of the frame's height the header band takes: lines that do not fit are left out (the
legend first, then the counts), and a line wider than the frame is cut short."""
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text_scale(width: int, height: int) -> float:
    """Font scale that grows with the frame: 0.3 (text 8 px high, the least legible) up to
    320x240, 1 at 1100 px high (1400 px wide)."""
    return max(0.3, min(height / 1100, width / 1400))


def _header_layout(width: int, height: int) -> tuple[float, int, int, int]:
    """``(scale, thickness, line step, most lines)`` of the header of a ``width`` x ``height``
    frame."""
    scale = _text_scale(width, height)
    thickness = 1 if scale < 0.8 else 2
    (_, th), base = cv2.getTextSize("Ag", FONT, scale, thickness)
    step = th + base + max(2, round(4 * scale))
    lines = max(1, int((HEADER_SHARE * height - 4) // step))
    return scale, thickness, step, lines


def _fit(text: str, width: int, scale: float, thickness: int) -> str:
    """``text`` cut short (ending in ``...``) so that it is at most ``width`` pixels wide."""
    if cv2.getTextSize(text, FONT, scale, thickness)[0][0] <= width:
        return text
    while text and cv2.getTextSize(f"{text}...", FONT, scale, thickness)[0][0] > width:
        text = text[:-1]
    return f"{text.rstrip()}..."


def _header(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """``image`` below a white band with the first ``lines`` that fit in
    :data:`HEADER_SHARE` of its height, each on one line (cut short if too wide)."""
    height, width = image.shape[:2]
    scale, thickness, step, most = _header_layout(width, height)
    lines = [_fit(text, width - 8, scale, thickness) for text in lines[:most]]
    (_, th), base = cv2.getTextSize("Ag", FONT, scale, thickness)
    band = np.full((step * len(lines) + 4, width, 3), 255, np.uint8)
    for k, text in enumerate(lines):
        y = 2 + step * k + (step - th - base) // 2 + th  # the text's baseline
        cv2.putText(band, text, (4, y), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def draw_tracking_frame(
    image: np.ndarray,
    tracks: np.ndarray,
    track_ids: np.ndarray,
    gt: np.ndarray | None,
    tails: dict[int, Iterable[tuple[float, float]]] | None = None,
    title: str | None = None,
) -> np.ndarray:
    """Draw one frame's tracks over its ground truth (see the module doc).

    Args:
        image: the frame ``(H, W, 3) uint8`` RGB (or a blank canvas of its size).
        tracks: ``(N, 4)`` xyxy; track_ids: ``(N,)``.
        gt: ``(M, 4)`` xyxy of the objects an evaluation counts, or None where there is no
            ground truth (a video as is): then the tracks alone, no misses or false positives.
        tails: track id to its last centres ``(x, y)``, oldest first.
        title: a line for the header band (with the counts and the legend below it).

    Returns:
        A new RGB image: the header band (at most :data:`HEADER_SHARE` of the frame's height)
        above the frame.
    """
    tracks = np.asarray(tracks, np.float64).reshape(-1, 4)
    track_ids = np.asarray(track_ids, np.int64).reshape(-1)
    if len(track_ids) != len(tracks):
        raise ValueError(f"got {len(tracks)} tracks but {len(track_ids)} ids")
    thick = max(1, round(min(image.shape[:2]) / 400))
    image = np.asarray(image, np.uint8)
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy()
    if gt is not None:
        gt = np.asarray(gt, np.float64).reshape(-1, 4)
        out = draw_boxes(out, gt, color=GT_COLOR, color_by_id=False, thickness=thick)
    for tid, centres in (tails or {}).items():
        points = np.round(np.asarray(list(centres), np.float64)).astype(np.int32)
        if len(points) > 1:
            cv2.polylines(out, [points.reshape(-1, 1, 2)], False, id_color(tid), thick, cv2.LINE_AA)
    labels = [str(int(i)) for i in track_ids]
    if gt is None:
        out = draw_boxes(out, tracks, ids=track_ids, labels=labels, thickness=2 * thick)
        counts = f"{len(tracks)} tracks (no ground truth)"
        return _header(out, [*([title] if title else []), counts, LEGEND_TRACKS])
    match = match_frame(tracks, gt)
    if len(match.fn):
        out = draw_boxes(
            out,
            gt[match.fn],
            labels=["miss"] * len(match.fn),
            color=MISS_COLOR,
            color_by_id=False,
            thickness=2 * thick,
        )
    for k in match.fp:
        labels[k] = f"{int(track_ids[k])} FP"
    out = draw_boxes(out, tracks, ids=track_ids, labels=labels, thickness=2 * thick)
    for x1, y1, x2, y2 in np.round(tracks[match.fp]).astype(np.int64).tolist():
        cv2.line(out, (x1, y1), (x2, y2), MISS_COLOR, thick, cv2.LINE_AA)
        cv2.line(out, (x1, y2), (x2, y1), MISS_COLOR, thick, cv2.LINE_AA)
    counts = (
        f"{len(tracks)} tracks, {len(gt)} objects: {len(match.pairs)} matched (IoU >= 0.5), "
        f"{len(match.fp)} FP, {len(match.fn)} misses"
    )
    return _header(out, [*([title] if title else []), counts, LEGEND])


def _frame_image(sequence: Sequence, frame: int) -> np.ndarray:
    if sequence.has_images:
        return np.asarray(sequence.read_image(frame))
    if not (sequence.im_width and sequence.im_height):
        raise ValueError(f"sequence {sequence.name}: no frames and no image size to draw on")
    return np.full((int(sequence.im_height), int(sequence.im_width), 3), CANVAS, np.uint8)


def tracking_frames(
    sequence: Sequence,
    results: Results,
    title: str = "",
    tail: int = 20,
    frames: Iterable[int] | None = None,
    frame_offset: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame, picture)`` for the frames of ``sequence`` (all by default) with ``results``
    (tracker output in the sequence's frame numbers) drawn over its ground truth.

    ``frame_offset`` is added to the frame numbers shown (a clip's frames in its sequence).
    """
    wanted = set(sequence.frames if frames is None else frames)
    history: dict[int, deque] = defaultdict(lambda: deque(maxlen=tail))
    boxes = np.array(results.boxes_xywh, np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy
    order = np.searchsorted(results.frames, np.arange(len(sequence) + 2))
    for frame in sequence.frames:
        s = slice(order[frame], order[frame + 1])
        ids, xyxy = np.asarray(results.ids[s]), boxes[s]
        for tid, (x1, y1, x2, y2) in zip(ids.tolist(), xyxy.tolist(), strict=True):
            history[tid].append(((x1 + x2) / 2, (y1 + y2) / 2))
        if frame not in wanted:
            continue
        gt = sequence.gt_at(frame).active_pedestrians().boxes if sequence.gt is not None else None
        tails = {tid: history[tid] for tid in ids.tolist()}
        heading = f"{title}{'; ' if title else ''}{sequence.name}, frame {frame + frame_offset}"
        yield (
            frame,
            draw_tracking_frame(_frame_image(sequence, frame), xyxy, ids, gt, tails, heading),
        )


def write_tracking_png(
    sequence: Sequence,
    results: Results,
    frame: int,
    path: str | Path,
    title: str = "",
    frame_offset: int = 0,
) -> Path:
    """One frame of :func:`tracking_frames` as a PNG (atomically)."""
    for _, picture in tracking_frames(
        sequence, results, title, frames=[frame], frame_offset=frame_offset
    ):
        return write_png(path, picture)
    raise ValueError(f"frame {frame} is not a frame of {sequence.name}")


def _bottom_aligned(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``picture`` on a white ``size`` (width, height) canvas, its bottom (the frame) fixed; a
    taller header loses its top lines."""
    width, height = size
    canvas = np.full((height, width, 3), 255, np.uint8)
    part = picture[-height:, :width]
    canvas[height - part.shape[0] :, : part.shape[1]] = part
    return canvas


def render_tracking_video(
    sequence: Sequence,
    results: Results,
    path: str | Path,
    title: str = "",
    fps: float | None = None,
    frame_offset: int = 0,
    max_width: int = 1280,
    progress: bool = False,
) -> Path:
    """Write :func:`tracking_frames` of every frame as a video (OpenCV's writer; the codec
    from the name: ``.mp4`` → mp4v, ``.avi`` → MJPG). The file appears only when complete.

    ``fps`` defaults to the sequence's frame rate (else 25); frames wider than ``max_width``
    are scaled down; ``progress`` shows a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    codecs = {".mp4": "mp4v", ".avi": "MJPG"}
    if path.suffix.lower() not in codecs:
        raise ValueError(f"{path}: the video's name must end in .mp4 or .avi")
    fps = fps or sequence.frame_rate or 25.0
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    writer = None
    pictures = tracking_frames(sequence, results, title, frame_offset=frame_offset)
    bar = tqdm(
        pictures,
        total=len(sequence),
        desc=f"video {sequence.name}",
        unit="frame",
        disable=not progress,
    )
    try:
        for _, picture in bar:
            if picture.shape[1] > max_width:
                height = round(picture.shape[0] * max_width / picture.shape[1])
                picture = cv2.resize(picture, (max_width, height), interpolation=cv2.INTER_AREA)
            if writer is None:
                # every frame's header has the same height (one line per text, cut short)
                size = (picture.shape[1], picture.shape[0])
                fourcc = cv2.VideoWriter_fourcc(*codecs[path.suffix.lower()])
                writer = cv2.VideoWriter(str(partial), fourcc, float(fps), size)
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {path.suffix} videos here")
            writer.write(np.ascontiguousarray(_bottom_aligned(picture, size)[..., ::-1]))
        if writer is None:
            raise ValueError(f"sequence {sequence.name} has no frames to render")
        writer.release()
        writer = None
        os.replace(partial, path)
    finally:
        bar.close()
        if writer is not None:
            writer.release()
        partial.unlink(missing_ok=True)
    return path
