"""The one tracker contract, its input checks, and running a tracker over a whole sequence.

Every tracker in :mod:`deepmot.trackers` is a :class:`Tracker`:

* ``reset(image_size=None)`` forgets every track and restarts ids at 1 (call it between
  sequences; ``image_size=(width, height)`` lets a tracker clip boxes to the image);
* ``update(dets, frame=None) -> tracks`` consumes one frame's detections ``(K, 5|6)`` (xyxy,
  score[, class]) and returns the tracks visible in that frame, ``(T, 6)``: xyxy, id, score.

:func:`track_sequence` runs a tracker over every frame of a :class:`~deepmot.data.sequence.
Sequence` and returns a :class:`~deepmot.io.mot.Results` that ``write_results`` can save.
"""

from __future__ import annotations

import abc
import logging
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from deepmot.data.sequence import Sequence
from deepmot.errors import DeepMOTError
from deepmot.io.mot import Results

__all__ = ["Tracker", "check_detections", "track_sequence", "TRACK_COLUMNS"]

log = logging.getLogger(__name__)

ArrayOrTensor = TypeVar("ArrayOrTensor", Tensor, np.ndarray)

TRACK_COLUMNS = 6
"""Columns of a tracker's output: x1, y1, x2, y2, id, score."""


def check_detections(dets: Any, name: str = "dets") -> Tensor:
    """Validate one frame's detections and return them as a ``float32`` tensor.

    Args:
        dets: ``(K, 5)`` xyxy + score, or ``(K, 6)`` xyxy + score + class, as a numpy array or a
            tensor. ``K = 0`` is allowed, and so is an empty array of any shape with no elements
            (e.g. ``np.empty(0)``: a frame without detections). Scores may be any finite number
            (MOT17's cleaned public detections carry ``-1``): nothing is dropped by score here.

    Returns:
        ``(K', 6)`` float32 tensor on the input's device (class ``-1`` where none was given),
        with the degenerate boxes (zero or negative width or height) left out; ``K' <= K``.

    Raises:
        TypeError: not an array or tensor.
        ValueError: wrong shape, or a NaN/infinite coordinate or score.
    """
    if isinstance(dets, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(dets, dtype=np.float32))
    elif isinstance(dets, Tensor):
        tensor = dets.detach().to(torch.float32)
    else:
        raise TypeError(
            f"{name} must be a numpy array or a torch tensor, got {type(dets).__name__}"
        )
    if tensor.numel() == 0:
        return tensor.new_zeros((0, 6))
    if tensor.ndim != 2 or tensor.shape[1] not in (5, 6):
        raise ValueError(
            f"{name} must have shape (K, 5) xyxy+score or (K, 6) xyxy+score+class, "
            f"got {tuple(tensor.shape)}"
        )
    finite = torch.isfinite(tensor).all(dim=1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name} row {row} holds NaN or infinity: {tensor[row].tolist()}")
    if tensor.shape[1] == 5:
        tensor = torch.cat([tensor, tensor.new_full((len(tensor), 1), -1.0)], dim=1)
    proper = (tensor[:, 2] > tensor[:, 0]) & (tensor[:, 3] > tensor[:, 1])
    if not bool(proper.all()):
        log.debug("dropping %d detections with zero or negative area", int((~proper).sum()))
        tensor = tensor[proper]
    return tensor


class Tracker(abc.ABC):
    """Base class of every tracker: the ``reset`` / ``update`` contract.

    Subclasses implement :meth:`reset` and :meth:`_update`; :meth:`update` validates the input
    (see :func:`check_detections`), hands it to :meth:`_update` on the CPU, and returns the
    tracks as the same kind as ``dets``.
    All state, the id counter included, lives on the instance.
    """

    #: Whether :meth:`update` needs the image; :func:`track_sequence` loads frames only then.
    needs_images: bool = False
    #: Whether it can find people with a detector of its own (:meth:`use_own_detector`).
    has_detector: bool = False

    def use_own_detector(self, min_score: float | None = None) -> None:
        """Start tracks from the tracker's own detections (scored at least ``min_score``;
        None: its own threshold) instead of those given to :meth:`update`. Only where
        :attr:`has_detector`."""
        raise NotImplementedError(f"{type(self).__name__} has no detector of its own")

    @abc.abstractmethod
    def reset(self, image_size: tuple[int, int] | None = None) -> None:
        """Forget every track; the next new track gets id 1.

        Args:
            image_size: ``(width, height)`` in pixels of the next sequence's frames, or None
                where unknown (then boxes are not clipped to the image).
        """

    @abc.abstractmethod
    def _update(self, dets: Tensor, frame: np.ndarray | Tensor | None) -> Tensor:
        """One frame: ``dets (K, 6)`` float32 xyxy+score+class, already validated, to
        ``tracks (T, 6)`` float32 xyxy+id+score."""

    def update(
        self, dets: ArrayOrTensor, frame: np.ndarray | Tensor | None = None
    ) -> ArrayOrTensor:
        """Consume one frame.

        Args:
            dets: ``(K, 5|6)`` xyxy + score [+ class] (numpy or torch; ``K`` may be 0).
            frame: the image ``(H, W, 3)``, for trackers with :attr:`needs_images`; else
                ignored.

        Returns:
            ``(T, 6)`` float32 xyxy + id + score of the tracks visible in this frame, of the
            same kind as ``dets`` (a numpy array for numpy input; a tensor on ``dets``'
            device for a tensor). Ids are positive integers, never reused within a sequence.
        """
        if self.needs_images and frame is None:
            raise ValueError(
                f"{type(self).__name__} regresses boxes from the image: pass frame=(H, W, 3) "
                "RGB to update()"
            )
        tracks = self._update(check_detections(dets).cpu(), frame)
        if isinstance(dets, np.ndarray):
            return tracks.detach().cpu().numpy()
        return tracks.to(dets.device)


def track_sequence(tracker: Tracker, sequence: Sequence, progress: bool = True) -> Results:
    """Run ``tracker`` over every frame of ``sequence`` (after a ``reset``).

    Args:
        tracker: any :class:`Tracker`.
        sequence: a sequence with detections loaded (a frame without detections is fine).
        progress: show a tqdm progress bar.

    Returns:
        :class:`~deepmot.io.mot.Results` sorted by (frame, id): boxes as MOTChallenge
        ``x, y, w, h``; ready for :func:`deepmot.io.mot.write_results`.

    Raises:
        DeepMOTError: the sequence has no detections, or no frames for a tracker that needs
            them.
        RuntimeError: the tracker returned one id twice in a frame (a broken tracker).
    """
    from tqdm.auto import tqdm

    if tracker.needs_images and not sequence.has_images:
        raise DeepMOTError(
            f"sequence {sequence.name} has no frames (img1/ or a synthetic scene), and "
            f"{type(tracker).__name__} needs them"
        )
    size = None
    if sequence.im_width and sequence.im_height:
        size = (int(sequence.im_width), int(sequence.im_height))
    tracker.reset(image_size=size)
    frames, ids, boxes, scores = [], [], [], []
    for frame in tqdm(sequence.frames, desc=sequence.name, unit="frame", disable=not progress):
        dets = sequence.detections_at(frame)
        image = sequence.read_image(frame) if tracker.needs_images else None
        tracks = np.asarray(tracker.update(dets, frame=image))
        if len(tracks) == 0:
            continue
        frame_ids = tracks[:, 4].astype(np.int64)
        if len(np.unique(frame_ids)) != len(frame_ids):
            raise RuntimeError(f"{type(tracker).__name__} returned an id twice in frame {frame}")
        frames.append(np.full(len(tracks), frame, dtype=np.int64))
        ids.append(frame_ids)
        boxes.append(tracks[:, :4].astype(np.float64))
        scores.append(tracks[:, 5].astype(np.float64))
    if not frames:
        return Results(
            frames=np.empty(0, np.int64),
            ids=np.empty(0, np.int64),
            boxes_xywh=np.empty((0, 4), np.float64),
            scores=np.empty(0, np.float64),
        )
    frame_col, id_col = np.concatenate(frames), np.concatenate(ids)
    xyxy = np.concatenate(boxes)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    order = np.lexsort((id_col, frame_col))
    return Results(
        frames=frame_col[order],
        ids=id_col[order],
        boxes_xywh=xywh[order],
        scores=np.concatenate(scores)[order],
    )
