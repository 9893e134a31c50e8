"""KITTI tracking preprocessing, as the reference's (TrackEval's ``Kitti2DBox``) does it.

Classes ``car`` and ``pedestrian`` are evaluated separately. For a class:

1. gt rows of the class and of its distractor class (``van`` for car, ``person`` — people
   sitting — for pedestrian) take part; tracker rows of the class only. Rows with a negative id
   are dropped (gt ``DontCare`` rows are kept aside as ignore regions first).
2. In each frame, tracker boxes are matched to those gt boxes by an exact assignment among pairs
   with IoU >= 0.5; a tracker box matched to a distractor, or to a gt box occluded more than
   level 2 or truncated more than level 0, is removed.
3. Tracker boxes left unmatched are removed when their height ``y2 - y1`` is 25 pixels or less,
   or when more than half of their area lies in one ``DontCare`` region of the frame.
4. Only gt boxes of the class with occlusion <= 2 and truncation <= 0 are evaluated.

Frames are 0-based and the sequence length comes from the seqmap; a box in a frame outside
``0..length-1`` is an error naming file and line. Rows keep their file order within a frame,
so that exact ties in an assignment are broken as the reference breaks them.
"""

from __future__ import annotations

import numpy as np

from deepmot.errors import MOTFormatError
from deepmot.io.kitti import DONTCARE, KITTI_CLASSES, KittiTable
from deepmot.metrics._base import EPS, SequenceData, frames_among, overlapping_pairs
from deepmot.metrics._lsa import linear_sum_assignment

__all__ = [
    "KITTI_EVAL_CLASSES",
    "MAX_OCCLUSION",
    "MAX_TRUNCATION",
    "MIN_HEIGHT",
    "check_frames",
    "preprocess_kitti",
]

#: The classes evaluated, in the reference's order, with their distractor class.
KITTI_EVAL_CLASSES: dict[str, str] = {"car": "van", "pedestrian": "person"}
MAX_OCCLUSION = 2
MAX_TRUNCATION = 0
MIN_HEIGHT = 25.0
MATCH_THRESHOLD = 0.5


def _corners(boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    return x1, y1, x2, y2, (x2 - x1) * (y2 - y1)


def check_frames(table: KittiTable, num_frames: int, seqmap: str) -> None:
    """Raise :class:`MOTFormatError` for a row outside frames ``0..num_frames-1``."""
    bad = np.flatnonzero(table.frames >= num_frames)
    if bad.size:
        i = int(bad[0])
        raise MOTFormatError(
            table.path,
            f"frame {table.frames[i]} is outside the sequence's frames 0..{num_frames - 1} "
            f"({seqmap})",
            line=int(table.lines[i]),
        )


def _by_frame(mask: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Indices of the rows in ``mask``, stably sorted by frame (file order within a frame)."""
    rows = np.flatnonzero(mask)
    return rows[np.argsort(frames[rows], kind="stable")]


def _ioa_over_half(
    boxes: np.ndarray, frames: np.ndarray, regions: np.ndarray, region_frames: np.ndarray
) -> np.ndarray:
    """Whether each box has intersection over its own area > 0.5 with a region of its frame."""
    out = np.zeros(len(boxes), dtype=bool)
    if len(boxes) == 0 or len(regions) == 0:
        return out
    order = np.argsort(region_frames, kind="stable")
    regions, region_frames = regions[order], region_frames[order]
    first = np.searchsorted(region_frames, frames, side="left")
    stop = np.searchsorted(region_frames, frames, side="right")
    counts = stop - first
    box_idx = np.repeat(np.arange(len(boxes)), counts)
    if box_idx.size == 0:
        return out
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    reg_idx = np.arange(len(box_idx)) - np.repeat(starts - first, counts)
    a, r = boxes[box_idx], regions[reg_idx]
    # The reference's arithmetic, operation for operation.
    inter = np.maximum(np.minimum(a[:, 2], r[:, 2]) - np.maximum(a[:, 0], r[:, 0]), 0) * np.maximum(
        np.minimum(a[:, 3], r[:, 3]) - np.maximum(a[:, 1], r[:, 1]), 0
    )
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    valid = area > 0 + EPS
    ioa = np.zeros(len(box_idx))
    ioa[valid] = inter[valid] / area[valid]
    np.logical_or.at(out, box_idx, ioa > 0.5 + EPS)
    return out


def _check_unique(table: KittiTable, rows: np.ndarray, frames: np.ndarray, ids: np.ndarray) -> None:
    if len(rows) < 2:
        return
    order = np.lexsort((table.lines[rows], ids, frames))
    f, i = frames[order], ids[order]
    dup = np.flatnonzero((f[1:] == f[:-1]) & (i[1:] == i[:-1]))
    if dup.size:
        first, second = rows[order[dup[0]]], rows[order[dup[0] + 1]]
        raise MOTFormatError(
            table.path,
            f"id {table.ids[second]} appears twice in frame {table.frames[second]} "
            f"(also on line {table.lines[first]})",
            line=int(table.lines[second]),
        )


def preprocess_kitti(
    gt: KittiTable, tracker: KittiTable, cls: str, *, num_frames: int, name: str
) -> SequenceData:
    """One class of one KITTI sequence as :class:`SequenceData` (see the module doc).

    ``gt`` and ``tracker`` are read by :func:`deepmot.io.kitti.read_kitti_tracking` and
    checked against the sequence length (:func:`check_frames`).
    """
    if cls not in KITTI_EVAL_CLASSES:
        raise ValueError(f"unknown KITTI class {cls!r}; valid: {', '.join(KITTI_EVAL_CLASSES)}")
    cls_id = KITTI_CLASSES[cls]
    distractor_id = KITTI_CLASSES[KITTI_EVAL_CLASSES[cls]]

    # Step 1: the rows that take part.
    is_region = gt.classes == DONTCARE
    regions = gt.boxes[is_region]
    region_frames = gt.frames[is_region]
    g = _by_frame(
        ~is_region & (gt.ids >= 0) & np.isin(gt.classes, (cls_id, distractor_id)), gt.frames
    )
    t = _by_frame((tracker.ids >= 0) & (tracker.classes == cls_id), tracker.frames)
    g_frames, t_frames = gt.frames[g], tracker.frames[t]
    g_c, t_c = _corners(gt.boxes[g]), _corners(tracker.boxes[t])
    pair_g, pair_t, sim = overlapping_pairs(g_frames, g_c, t_frames, t_c)

    # Step 2: the matching among pairs with IoU >= 0.5, solved where candidates compete.
    cand = np.flatnonzero(sim >= MATCH_THRESHOLD - EPS)
    cand_g, cand_t = pair_g[cand], pair_t[cand]
    cand_frames = g_frames[cand_g]
    g_deg = np.bincount(cand_g, minlength=len(g))
    t_deg = np.bincount(cand_t, minlength=len(t))
    contested = (g_deg[cand_g] > 1) | (t_deg[cand_t] > 1)
    hard, in_hard = frames_among(cand_frames, contested, num_frames)
    easy = ~in_hard
    matched_g, matched_t = [cand_g[easy]], [cand_t[easy]]
    if hard.size:
        g_off = np.searchsorted(g_frames, hard), np.searchsorted(g_frames, hard, side="right")
        t_off = np.searchsorted(t_frames, hard), np.searchsorted(t_frames, hard, side="right")
        for k in range(len(hard)):
            g0, g1, t0, t1 = g_off[0][k], g_off[1][k], t_off[0][k], t_off[1][k]
            in_frame = cand[(cand_frames == hard[k])]
            score = np.zeros((g1 - g0, t1 - t0))
            score[pair_g[in_frame] - g0, pair_t[in_frame] - t0] = sim[in_frame]
            rows, cols = linear_sum_assignment(-score)
            ok = score[rows, cols] > 0 + EPS
            matched_g.append(rows[ok] + g0)
            matched_t.append(cols[ok] + t0)
    m_g, m_t = np.concatenate(matched_g), np.concatenate(matched_t)
    gt_occ, gt_trunc, gt_cls = gt.occlusion[g], gt.truncation[g], gt.classes[g]
    remove = np.zeros(len(t), dtype=bool)
    bad_match = (
        (gt_cls[m_g] == distractor_id)
        | (gt_occ[m_g] > MAX_OCCLUSION + EPS)
        | (gt_trunc[m_g] > MAX_TRUNCATION + EPS)
    )
    remove[m_t[bad_match]] = True

    # Step 3: unmatched tracker boxes that are too small or inside a DontCare region.
    unmatched = np.ones(len(t), dtype=bool)
    unmatched[m_t] = False
    u = np.flatnonzero(unmatched)
    t_boxes = tracker.boxes[t]
    heights = t_boxes[u, 3] - t_boxes[u, 1]
    drop = (heights <= MIN_HEIGHT + EPS) | _ioa_over_half(
        t_boxes[u], t_frames[u], regions, region_frames
    )
    remove[u[drop]] = True

    # Step 4: the gt boxes evaluated.
    keep_g = (gt_occ <= MAX_OCCLUSION) & (gt_trunc <= MAX_TRUNCATION) & (gt_cls == cls_id)
    keep_t = ~remove
    _check_unique(gt, g[keep_g], g_frames[keep_g], gt.ids[g][keep_g])
    _check_unique(tracker, t[keep_t], t_frames[keep_t], tracker.ids[t][keep_t])
    keep_pair = keep_g[pair_g] & keep_t[pair_t]
    new_g = np.cumsum(keep_g) - 1
    new_t = np.cumsum(keep_t) - 1
    pairs = (new_g[pair_g[keep_pair]], new_t[pair_t[keep_pair]], sim[keep_pair])
    return SequenceData.from_sorted(
        name,
        num_frames,
        g_frames[keep_g],
        gt.ids[g][keep_g],
        tuple(v[keep_g] for v in g_c),
        t_frames[keep_t],
        tracker.ids[t][keep_t],
        tuple(v[keep_t] for v in t_c),
        pairs,
    )
