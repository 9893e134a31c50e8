"""What a tracker's learned (or hand-made) part does each frame: the predictor contract.

:class:`~deepmot.trackers.management.TrackManager` owns births, deaths, verification and NMS;
a *predictor* moves the tracks from frame t − 1 to frame t. It receives

* the frame t (``(H, W, 3) uint8`` RGB, or None for a predictor without ``needs_images``),
* the tracks as a :class:`TrackBatch` (recent boxes, ids, per-track state in ``extras``),
* the detections of frame t ``(K, 4+)`` xyxy[+score...] (or None), and the image size,

and returns a :class:`Prediction`: the boxes at t, and optionally a score per track (a track
scored below the management's ``min_track_score`` is hidden, as Tracktor's regression
threshold does) and an appearance embedding per track.

The same ``predict`` call serves tracking (under ``torch.no_grad`` inside the manager) and
training (with gradients, from :mod:`deepmot.train.rollout`), so what the loss sees is what
the tracker does.

Every predictor subclasses :class:`Predictor`, which declares ``predict`` and every hook the
management and the trainer call, each with a default that does nothing (the docstrings say
when each is called and with what):

* ``prepare_detections(frame, dets (K, 5|6), image_size) -> (K', 5|6)``: called first in every
  frame, replaces the frame's detections (Tracktor re-scores and refines the public ones with
  its box head, or detects on its own);
* ``on_birth(frame, tracks: TrackBatch) -> None``: called for tracks just confirmed (an SOT
  tracker cuts its template here; a ReID head stores the first embedding);
* ``appearance_similarity(frame, tracks: TrackBatch, boxes (K, 4)) -> (T, K) | None`` in
  [0, 1]: used, with IoU, to re-activate invisible tracks (ReID revival); None: IoU alone;
* ``use_frame_cache(cache: FrameCache) -> None``: read and keep what depends on the frames
  alone in a :class:`~deepmot.trackers.frame_cache.FrameCache` shared with other predictors
  of the same model (the trials of ``deepmot tune``; Tracktor's backbone features);
* for training: ``embed`` / ``track_embeddings`` (the appearance term, where
  ``has_reid_head``) and ``single_object_loss`` (``--loss vanilla``, where
  ``has_single_object_loss``).

Capabilities are class attributes: ``history_len``, ``needs_images``, ``has_reid_head``,
``has_single_object_loss``, ``has_detector`` (with its switch ``use_own_detector``).

:class:`MotionPredictor` adapts a history-only :class:`MotionModel` (constant velocity, the
learned motion model) to this contract without changing it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from deepmot.trackers.frame_cache import FrameCache

__all__ = [
    "Frame",
    "MotionModel",
    "MotionPredictor",
    "Prediction",
    "Predictor",
    "Proposals",
    "TrackBatch",
    "stack_histories",
]

Frame = np.ndarray | Tensor | None
"""A frame ``(H, W, 3) uint8`` RGB (numpy), a tensor of it, or None where a predictor needs none."""


def stack_histories(histories: list[Tensor], length: int) -> tuple[Tensor, Tensor]:
    """Left-pad per-track box histories into one batch.

    Args:
        histories: ``T`` tensors ``(n_i, 4)`` xyxy, oldest first, each with ``n_i >= 1``.
        length: ``L``, the number of recent boxes kept (older ones are cut).

    Returns:
        ``history (T, L, 4)`` (padding repeats each track's oldest kept box, so padded values
        stay plausible boxes) and ``mask (T, L)`` bool. Differentiable with respect to the
        inputs.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if not histories:
        return torch.zeros((0, length, 4)), torch.zeros((0, length), dtype=torch.bool)
    rows, masks = [], []
    for i, h in enumerate(histories):
        if h.ndim != 2 or h.shape[-1] != 4 or len(h) == 0:
            raise ValueError(f"history {i} must have shape (n >= 1, 4), got {tuple(h.shape)}")
        h = h[-length:]
        pad = length - len(h)
        rows.append(torch.cat([h[:1].expand(pad, 4), h]) if pad else h)
        mask = torch.ones(length, dtype=torch.bool, device=h.device)
        mask[:pad] = False
        masks.append(mask)
    return torch.stack(rows), torch.stack(masks)


@dataclass
class TrackBatch:
    """The tracks a predictor moves, batched.

    Attributes:
        history: ``(T, L, 4)`` float32 xyxy, oldest first; ``[:, -1]`` is the box at t − 1.
        mask: ``(T, L)`` bool, True where ``history`` holds a box (left padding is False).
        ids: ``(T,)`` int64 track ids (0 for tentative tracks).
        verified: ``(T,)`` bool, whether the box at t − 1 was verified by a detection (False
            for a track that was invisible, or only predicted, at t − 1).
        extras: one dict per track, the track's own state (``Track.extra``); a predictor may
            read and write it (templates, embeddings, filter states). Shared, not copied.
    """

    history: Tensor
    mask: Tensor
    ids: Tensor
    verified: Tensor
    extras: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = len(self.history)
        if self.history.ndim != 3 or self.history.shape[-1] != 4:
            raise ValueError(f"history must have shape (T, L, 4), got {tuple(self.history.shape)}")
        if self.mask.shape != self.history.shape[:2]:
            raise ValueError(f"mask must have shape {tuple(self.history.shape[:2])}")
        if not self.extras:
            self.extras = [{} for _ in range(t)]
        if not (len(self.ids) == len(self.verified) == len(self.extras) == t):
            raise ValueError("ids, verified and extras need one entry per track")

    def __len__(self) -> int:
        return len(self.history)

    @property
    def last(self) -> Tensor:
        """``(T, 4)`` xyxy: each track's box at t − 1."""
        return self.history[:, -1]

    @classmethod
    def from_histories(
        cls,
        histories: list[Tensor],
        length: int,
        ids: list[int] | None = None,
        verified: list[bool] | None = None,
        extras: list[dict[str, Any]] | None = None,
    ) -> TrackBatch:
        """Batch per-track histories ``(n_i, 4)`` (see :func:`stack_histories`)."""
        history, mask = stack_histories(histories, length)
        count = len(histories)
        return cls(
            history,
            mask,
            torch.tensor(ids if ids is not None else [0] * count, dtype=torch.int64),
            torch.tensor(verified if verified is not None else [True] * count, dtype=torch.bool),
            extras if extras is not None else [{} for _ in range(count)],
        )

    def to(self, device: torch.device | str) -> TrackBatch:
        """The same batch with its tensors on ``device`` (``extras`` shared)."""
        return TrackBatch(
            self.history.to(device),
            self.mask.to(device),
            self.ids,
            self.verified,
            self.extras,
        )


@dataclass
class Proposals:
    """What a region-proposal predictor (SiamRPN) scored around each track, for a training
    loss on its classification branch: ``logits (T, A, 2)`` (background, target) of the ``A``
    anchors of each track's search region, differentiable, and the anchors ``(T, A, 4)`` xyxy
    in image pixels."""

    logits: Tensor
    anchors: Tensor


@dataclass
class Prediction:
    """What a predictor returns: ``boxes (T, 4)`` xyxy at t, differentiable where learned;
    ``scores (T,)`` in [0, 1] or None (no opinion); ``embeddings (T, E)`` or None;
    ``proposals`` (:class:`Proposals`) where the predictor scores anchors, else None."""

    boxes: Tensor
    scores: Tensor | None = None
    embeddings: Tensor | None = None
    proposals: Proposals | None = None


class Predictor(ABC):
    """The contract between :class:`~deepmot.trackers.management.TrackManager` (and the
    trainer) and a tracker's predicting part; see the module doc. Every predictor subclasses
    it: :meth:`predict` is required, every hook has a default that does nothing, and the
    capabilities are declared as class attributes (or properties where they depend on the
    model's settings).

    Attributes:
        history_len: the recent boxes per track it looks at (``L`` of :class:`TrackBatch`).
        needs_images: ``frame`` must be given (tracking refuses a frame-less update; training
            insists on sequences with frames).
        has_reid_head: :meth:`embed` and :meth:`track_embeddings` come from a trainable ReID
            head, so the trainer's appearance term can train it (Tracktor with
            ``reid="head"``).
        has_single_object_loss: :meth:`single_object_loss` exists (``--loss vanilla``:
            GOTURN, SiamRPN).
        has_detector: it can find people with a detector of its own, and
            :meth:`use_own_detector` makes its births come from there (Tracktor); ``deepmot
            track VIDEO`` without ``--det`` then runs no separate detector.
    """

    history_len: int = 1
    needs_images: bool = False
    has_reid_head: bool = False
    has_single_object_loss: bool = False
    has_detector: bool = False

    @abstractmethod
    def predict(
        self,
        frame: Frame,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        """Move ``tracks`` (their boxes at t − 1) to the frame t.

        Called once per frame by the management (under ``torch.no_grad``, the active and
        invisible tracks; ``verified`` False for the ones it could not verify at t − 1) and by
        the trainer's rollout (with gradients, a clip's live tracks).

        Args:
            frame: the frame t (``(H, W, 3) uint8`` RGB), or None without ``needs_images``.
            tracks: ``T`` tracks; ``extras`` is the predictor's per-track state.
            detections: ``(K, 5|6)`` xyxy + score [+ class] of the frame t, or None.
            image_size: ``(width, height)``, or None where unknown.

        Returns:
            A :class:`Prediction` with ``boxes (T, 4)`` xyxy at t (differentiable where
            learned), optional ``scores (T,)``, ``embeddings (T, E)`` and ``proposals``.
        """

    def prepare_detections(
        self, frame: Frame, dets: Tensor, image_size: tuple[int, int] | None
    ) -> Tensor:
        """Called first in every frame the management tracks, before any matching, with the
        frame's detections ``dets (K, 5|6)`` float32 xyxy + score [+ class] on the CPU;
        returns the detections to track with ``(K', 5|6)``. Tracktor re-scores and refines the
        public ones with its box head (or detects on its own). Default: ``dets`` unchanged."""
        return dets

    def on_birth(self, frame: Frame, tracks: TrackBatch) -> None:
        """Called with tracks just confirmed (by the management, after the frame they were
        confirmed in; by the rollout, for a clip's first tracks and each birth) and ``frame``,
        the frame their box ``tracks.last (T, 4)`` lies in. An SOT tracker cuts its template
        here, a ReID head stores the first embedding (in ``tracks.extras``). Default:
        nothing."""
        return None

    def appearance_similarity(
        self, frame: Frame, tracks: TrackBatch, boxes: Tensor
    ) -> Tensor | None:
        """Called when free detections may re-activate invisible ``tracks``: the similarity
        ``(T, K)`` in [0, 1] of each track to each box ``boxes (K, 4)`` xyxy of ``frame``, used
        with IoU (``revive_similarity``); None (the default): no appearance, IoU alone
        decides."""
        return None

    def use_frame_cache(self, cache: FrameCache) -> None:
        """Called once before tracking by a caller running many trackers on the same frames
        (``deepmot tune``'s trials): read and keep what depends on the frames alone in
        ``cache``, a :class:`~deepmot.trackers.frame_cache.FrameCache` shared with other
        predictors of the same model (Tracktor's backbone features). Default: nothing."""
        return None

    def use_own_detector(self, min_score: float | None = None) -> None:
        """From now on, start tracks from the predictor's own detections (scored at least
        ``min_score``; None: its own threshold) instead of the detections given to the
        management. Only where ``has_detector``."""
        raise NotImplementedError(f"{type(self).__name__} has no detector of its own")

    def embed(self, frame: Frame, boxes: Tensor) -> Tensor:
        """The appearance embeddings ``(K, E)`` of ``boxes (K, 4)`` xyxy in ``frame``
        (differentiable in a trainable head); the trainer's appearance term calls it for the
        ground-truth objects of each frame. Only for a predictor with embeddings."""
        raise NotImplementedError(f"{type(self).__name__} has no appearance embeddings")

    def track_embeddings(self, tracks: TrackBatch) -> Tensor:
        """Each track's embedding ``(T, E)`` from the frames before the one being predicted
        (the trainer's appearance term reads it before :meth:`predict`). Only for a predictor
        with embeddings."""
        raise NotImplementedError(f"{type(self).__name__} has no appearance embeddings")

    def single_object_loss(
        self, previous_frame: Frame, frame: Frame, boxes: Tensor, targets: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The single-object objective of one frame pair (``--loss vanilla``,
        :mod:`deepmot.train.sot`): each track starts at ``boxes (T, 4)`` xyxy in
        ``previous_frame`` and is compared in ``frame`` with ``targets (T, 4)``, the box of the
        object it follows. Returns the loss (a scalar tensor) and the predicted boxes
        ``(T, 4)``. Only where ``has_single_object_loss``."""
        raise NotImplementedError(f"{type(self).__name__} has no single-object objective")


@runtime_checkable
class MotionModel(Protocol):
    """A history-only motion model (the predictor of a motion tracker).

    ``history_len`` is the number of recent boxes it looks at. Calling it maps
    ``history (T, L, 4)`` xyxy (oldest first), ``mask (T, L)`` bool, ``detections (K, 4+)`` of
    the predicted frame or None, and ``image_size`` ``(width, height)`` or None to the
    predicted boxes ``(T, 4)`` xyxy. A learned model is differentiable from its inputs to its
    output.
    """

    history_len: int

    def __call__(
        self,
        history: Tensor,
        mask: Tensor,
        detections: Tensor | None = None,
        image_size: tuple[float, float] | None = None,
    ) -> Tensor: ...


def module_device(module: Any) -> torch.device:
    """Where a module's parameters live (the CPU for anything without parameters)."""
    if isinstance(module, nn.Module):
        for parameter in module.parameters():
            return parameter.device
    return torch.device("cpu")


class MotionPredictor(Predictor):
    """Adapts a :class:`MotionModel` to the :class:`Predictor` contract (no image, no score).

    Args:
        model: the motion model; it runs on its own device.
    """

    needs_images = False

    def __init__(self, model: MotionModel) -> None:
        if not callable(model) or not hasattr(model, "history_len"):
            raise TypeError("a motion model must be callable and have a history_len attribute")
        self.model = model

    @property
    def history_len(self) -> int:
        return int(self.model.history_len)

    def predict(
        self,
        frame: Frame,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        """``model(history, mask, detections, image_size)`` as a :class:`Prediction`."""
        device = module_device(self.model)
        dets = None if detections is None else detections.to(device)
        boxes = self.model(
            tracks.history.to(device),
            tracks.mask.to(device),
            detections=dets,
            image_size=image_size,
        )
        return Prediction(boxes)
