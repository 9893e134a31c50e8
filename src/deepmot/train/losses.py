"""The trainer's losses: one object per ``TrackerTrainConfig.loss``, one interface.

A :class:`TrainingLoss` computes a training step's loss and its named diagnostics from the
step's clip starts (:class:`~deepmot.train.rollout.StepResult`): the trainer builds it from
the run's settings (:func:`create_training_loss`, a registry keyed by ``config.loss``) and
calls it the same way whatever the loss. The softmax scale of the step (``scale_start`` moves
it over the run) is an argument of the call, not a setting rewritten in the loss.

* ``deepmot`` (:class:`DeepMOTTraining`): the DeepMOT loss through the frozen matcher, on
  clips the tracker runs through (:func:`~deepmot.train.rollout.run_clips`), the ReID head's
  appearance term in D or as a second branch, the gradient each term sends to the boxes;
* ``smoothl1`` (:class:`SmoothL1Training`): each track regressed to the object it follows,
  on the same clips (the paper's baseline);
* ``vanilla`` (:class:`VanillaTraining`): a single-object tracker's own objective on frame
  pairs (:mod:`deepmot.train.sot`).

A per-track confidence (the predictor's ``scores``, ``TrackerTrainConfig.confidence``) trains
either inside the DeepMOT loss (``"presence"``: each track's part of its terms weighted by its
confidence) or by binary cross-entropy added to a clip loss (``"bce"``,
:class:`ConfidenceBCE`: the baseline, labels "matched to an object at IoU >= 0.5").

A clip loss (:class:`ClipLoss`) scores one :class:`~deepmot.train.rollout.RolledFrame` of the
step's clips at a time; the rollout adds the focal term and averages over the frames.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from deepmot.assign.matcher import build_matcher
from deepmot.boxes import box_iou, cosine_distance, distance_matrix
from deepmot.data.sequence import Sequence
from deepmot.errors import DeepMOTError
from deepmot.loss.deepmot import DeepMOTLoss, DeepMOTLossOutput
from deepmot.loss.smooth_l1 import SmoothL1Loss
from deepmot.trackers.predictor import Predictor
from deepmot.train.clips import ClipStart
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.diagnostics import GRADIENT_TERMS, FrameRecord, gradient_norms
from deepmot.train.rollout import (
    SOFT_TERMS,
    TERMS,
    FrameLoss,
    RolledFrame,
    Rollout,
    StepResult,
    run_clips,
)
from deepmot.train.sot import single_object_step

__all__ = [
    "ClipLoss",
    "ConfidenceBCE",
    "DeepMOTTraining",
    "SmoothL1Training",
    "TrainingLoss",
    "VanillaTraining",
    "create_training_loss",
    "list_training_losses",
    "register_training_loss",
]


class TrainingLoss(ABC):
    """A training loss as the trainer calls it.

    ``name`` is its ``TrackerTrainConfig.loss``.
    """

    name: ClassVar[str]

    def check(self, predictor: Predictor, tracker: str) -> None:
        """Refuse (:class:`~deepmot.errors.DeepMOTError`) a predictor this loss cannot train,
        from its declared capabilities; ``tracker`` is its registered name, for the message.
        Default: any predictor."""
        return None

    @abstractmethod
    def step(
        self,
        starts: list[ClipStart],
        rngs: list[np.random.Generator],
        rollout: Rollout,
        scale: float,
        record: bool = False,
    ) -> StepResult:
        """The loss of one step's samples and its named diagnostics.

        Args:
            starts: this process's clip starts (frame pairs or clips).
            rngs: one generator per start (births' perturbations).
            rollout: the predictor, the run's settings, ``history_len``, the device.
            scale: the step's softmax scale (``TrackerTrainConfig.scale_at``), for a loss with
                one.
            record: keep what :meth:`gradient_norms` needs.
        """

    def gradient_norms(self, result: StepResult, scale: float) -> dict[str, float]:
        """The gradient each loss term sends to the predicted boxes in ``result`` (a step run
        with ``record``), keyed by :data:`~deepmot.train.diagnostics.GRADIENT_TERMS`; NaN for a
        loss without such terms."""
        return dict.fromkeys(GRADIENT_TERMS, float("nan"))


class ClipLoss(TrainingLoss):
    """A loss scored frame by frame on clips the tracker runs through.

    ``terms`` names the soft terms (of :data:`~deepmot.train.rollout.SOFT_TERMS`) it reports
    per frame; the others are logged as NaN. ``uses_appearance``: the rollout computes the
    track and object embeddings of every frame (:attr:`RolledFrame.appearances`).
    """

    terms: ClassVar[tuple[str, ...]] = ()
    uses_appearance: bool = False

    def step(
        self,
        starts: list[ClipStart],
        rngs: list[np.random.Generator],
        rollout: Rollout,
        scale: float,
        record: bool = False,
    ) -> StepResult:
        """Roll ``starts`` out and score each frame (:func:`~deepmot.train.rollout.run_clips`)."""
        return run_clips(
            starts,
            rollout.predictor,
            self,
            rollout.config,
            rngs,
            rollout.history_len,
            rollout.device,
            record,
            scale,
            rollout.management,
        )

    @abstractmethod
    def score(self, frame: RolledFrame, scale: float | None, record: bool) -> FrameLoss:
        """The loss ``(B,)`` of one frame of the step's ``B`` clips and its terms summed over
        them; it updates the clips' match memories it keeps. ``scale``: the softmax scale
        (None: the loss's configured one)."""


class DeepMOTTraining(ClipLoss):
    """The DeepMOT loss (eqs. 5–9) with its track-to-object memory carried across each clip.

    Args:
        loss: the loss module (frozen matcher and :class:`~deepmot.loss.config.DeepMOTLossConfig`).
        appearance: the ReID head's appearance term (``TrackerTrainConfig.appearance``):
            ``"joint"`` in D, ``"branch"`` a second DeepMOT loss on the cosine distances with
            its own memory, ``"none"``.
        presence: weight each track's part of the loss by the predictor's confidence in it
            (``TrackerTrainConfig.confidence == "presence"``), so that dMOTA trains it.
    """

    name = "deepmot"
    terms = SOFT_TERMS

    def __init__(
        self,
        loss: DeepMOTLoss,
        appearance: Literal["none", "joint", "branch"] = "none",
        presence: bool = False,
    ) -> None:
        if appearance not in ("none", "joint", "branch"):
            raise ValueError(f"appearance must be 'none', 'joint' or 'branch', got {appearance!r}")
        self.loss = loss
        self.appearance = appearance
        self.uses_appearance = appearance != "none"
        self.presence = presence

    def check(self, predictor: Predictor, tracker: str) -> None:
        """The appearance term trains a ReID head: it needs a predictor that has one."""
        if self.uses_appearance and not predictor.has_reid_head:
            raise DeepMOTError(
                "appearance training needs a tracker with a ReID head (tracktor with reid "
                f"'head'), not {tracker!r} with these model settings"
            )

    def step(
        self,
        starts: list[ClipStart],
        rngs: list[np.random.Generator],
        rollout: Rollout,
        scale: float,
        record: bool = False,
    ) -> StepResult:
        """As :meth:`ClipLoss.step`; the result names the scale it used."""
        return replace(super().step(starts, rngs, rollout, scale, record), scale=scale)

    def score(self, frame: RolledFrame, scale: float | None, record: bool) -> FrameLoss:
        """The DeepMOT loss of one frame of every clip (one matcher call) and its soft terms."""
        clips = frame.clips
        pairs = frame.appearances if self.appearance == "joint" else [None] * len(clips)
        distances = [
            _distance(p, g, s.start.sequence, a)
            for p, g, s, a in zip(frame.boxes, frame.object_boxes, clips, pairs, strict=True)
        ]
        track_ids = [np.asarray(s.track_ids, np.int64) for s in clips]
        gt_ids = [g.ids for g in frame.objects]
        before = [s.loss_memory for s in clips]
        confidences = _confidences(frame) if self.presence else None
        out, memories = self.loss.forward_batch(
            distances, track_ids, gt_ids, before, scale=scale, confidences=confidences
        )
        kept = FrameRecord(frame.boxes, distances, track_ids, gt_ids, before, out, confidences)
        for state, memory in zip(clips, memories, strict=True):
            state.loss_memory = memory
        if self.appearance == "branch":
            out = self._appearance_branch(frame, track_ids, out, scale)
        terms = {name: float(getattr(out, name).detach().sum()) for name in SOFT_TERMS}
        return FrameLoss(out.loss, terms, kept if record else None)

    def _appearance_branch(
        self,
        frame: RolledFrame,
        track_ids: list[np.ndarray],
        out: DeepMOTLossOutput,
        scale: float | None,
    ) -> DeepMOTLossOutput:
        """``out`` with the DeepMOT loss of the cosine-distance matrices ``(T, M)`` (the track
        embeddings against the objects', with its own track-to-object memory) added to its
        loss, as the authors' code trained the ReID head; the logged soft terms stay the
        boxes'."""
        matrices = [
            cosine_distance(memory, found)
            if memory is not None
            else found.new_zeros((len(ids), len(found)))
            for (memory, found), ids in zip(frame.appearances, track_ids, strict=True)
        ]
        before = [s.appearance_memory for s in frame.clips]
        gt_ids = [g.ids for g in frame.objects]
        branch, memories = self.loss.forward_batch(matrices, track_ids, gt_ids, before, scale=scale)
        for state, memory in zip(frame.clips, memories, strict=True):
            state.appearance_memory = memory
        return replace(out, loss=out.loss + branch.loss)

    def gradient_norms(self, result: StepResult, scale: float) -> dict[str, float]:
        """:func:`~deepmot.train.diagnostics.gradient_norms` of the recorded frames."""
        return gradient_norms(result.records, self.loss, scale)


def _confidences(frame: RolledFrame) -> list[Tensor]:
    """Each clip's track confidences ``(T_i,)`` (a clip without tracks: an empty tensor).

    Raises:
        DeepMOTError: the predictor gives no confidence.
    """
    out = []
    for scores, boxes in zip(frame.confidences, frame.boxes, strict=True):
        if scores is None:
            if len(boxes):
                raise DeepMOTError(
                    "--confidence: this tracker predicts no confidence (the motion tracker "
                    "has one with the model setting confidence=true)"
                )
            scores = boxes.new_zeros((0,))
        out.append(scores)
    return out


def _distance(
    predicted: Tensor,
    objects: Tensor,
    seq: Sequence,
    appearance: tuple[Tensor | None, Tensor] | None,
) -> Tensor:
    """D of one frame (eqs. 3–4): boxes only, or with ``appearance = (track embeddings (T, E),
    object embeddings (M, E))`` the cosine distance as a third term (supp. A.2, "Training with
    the ReIDhead"). A frame without tracks has no embeddings to compare."""
    tracks, found = appearance if appearance is not None else (None, None)
    if tracks is None:
        return distance_matrix(predicted, objects, seq.im_width, seq.im_height)
    return distance_matrix(predicted, objects, seq.im_width, seq.im_height, tracks, found)


class SmoothL1Training(ClipLoss):
    """The Smooth-L1 baseline: each track regressed to the box of the object it follows
    (``ClipState.targets``)."""

    name = "smoothl1"

    def __init__(self, loss: SmoothL1Loss | None = None) -> None:
        self.loss = loss or SmoothL1Loss()

    def score(self, frame: RolledFrame, scale: float | None, record: bool) -> FrameLoss:
        """The Smooth-L1 loss of one frame of every clip (no soft terms)."""
        return FrameLoss(
            torch.stack(
                [
                    self.loss(p, g, np.asarray(s.targets, np.int64), gt.ids)
                    for p, g, s, gt in zip(
                        frame.boxes, frame.object_boxes, frame.clips, frame.objects, strict=True
                    )
                ]
            )
        )


def confidence_labels(boxes: Tensor, objects: Tensor, min_iou: float = 0.5) -> Tensor:
    """``(T,)`` float: 1 for each box ``(T, 4)`` matched one-to-one (Hungarian on IoU) to an
    object ``(M, 4)`` at IoU >= ``min_iou`` (CLEAR MOT's true positive), else 0."""
    labels = boxes.new_zeros((len(boxes),))
    if len(boxes) == 0 or len(objects) == 0:
        return labels
    iou = box_iou(boxes.detach().float().cpu(), objects.detach().float().cpu()).numpy()
    rows, cols = linear_sum_assignment(-iou)
    hit = rows[iou[rows, cols] >= min_iou]
    labels[torch.as_tensor(hit, dtype=torch.long, device=boxes.device)] = 1.0
    return labels


class ConfidenceBCE(ClipLoss):
    """A clip loss plus ``weight`` times the binary cross-entropy of each track's confidence
    against :func:`confidence_labels` of the box the loss scores (mean over a clip's tracks):
    the baseline that trains the confidence without the DeepMOT loss.

    Args:
        inner: the clip loss of the boxes (DeepMOT or Smooth-L1).
        weight: the BCE term's weight.
    """

    def __init__(self, inner: ClipLoss, weight: float = 1.0) -> None:
        self.inner = inner
        self.weight = weight
        self.name = inner.name  # type: ignore[misc]
        self.terms = inner.terms  # type: ignore[misc]
        self.uses_appearance = inner.uses_appearance

    def check(self, predictor: Predictor, tracker: str) -> None:
        """As the inner loss."""
        self.inner.check(predictor, tracker)

    def step(
        self,
        starts: list[ClipStart],
        rngs: list[np.random.Generator],
        rollout: Rollout,
        scale: float,
        record: bool = False,
    ) -> StepResult:
        """As :meth:`ClipLoss.step`, naming the scale the way the inner loss does."""
        result = super().step(starts, rngs, rollout, scale, record)
        return replace(result, scale=scale) if isinstance(self.inner, DeepMOTTraining) else result

    def score(self, frame: RolledFrame, scale: float | None, record: bool) -> FrameLoss:
        """The inner loss of the frame plus the BCE term of each clip."""
        scored = self.inner.score(frame, scale, record)
        bce = []
        for scores, boxes, objects in zip(
            _confidences(frame), frame.boxes, frame.object_boxes, strict=True
        ):
            if len(scores) == 0:
                bce.append(boxes.new_zeros(()))
                continue
            labels = confidence_labels(boxes, objects)
            probability = scores.clamp(_EPS, 1 - _EPS)
            bce.append(F.binary_cross_entropy(probability, labels.to(probability)))
        return replace(scored, loss=scored.loss + self.weight * torch.stack(bce))

    def gradient_norms(self, result: StepResult, scale: float) -> dict[str, float]:
        """The inner loss's."""
        return self.inner.gradient_norms(result, scale)


_EPS = 1e-6  # confidences are clamped to [_EPS, 1 - _EPS] inside the BCE


class VanillaTraining(TrainingLoss):
    """A single-object tracker's own objective on frame pairs (the paper's Vanilla GOTURN and
    SiamRPN, :func:`~deepmot.train.sot.single_object_step`); no soft terms."""

    name = "vanilla"

    def check(self, predictor: Predictor, tracker: str) -> None:
        """The single-object objective is the predictor's own: it needs one."""
        if not predictor.has_single_object_loss:
            raise DeepMOTError(
                f"{tracker!r} has no single-object objective: --loss vanilla trains the "
                "single-object trackers (goturn, siamrpn)"
            )

    def step(
        self,
        starts: list[ClipStart],
        rngs: list[np.random.Generator],
        rollout: Rollout,
        scale: float,
        record: bool = False,
    ) -> StepResult:
        """The mean single-object loss of the pairs ``starts``."""
        loss, counts = single_object_step(starts, rollout.predictor, rollout.device)
        return StepResult(loss, dict.fromkeys(TERMS, float("nan")), counts)


LossBuilder = Callable[[TrackerTrainConfig, torch.device], TrainingLoss]
_LOSSES: dict[str, LossBuilder] = {}


def register_training_loss(name: str) -> Callable[[LossBuilder], LossBuilder]:
    """Register ``builder(config, device) -> TrainingLoss`` under ``config.loss == name``."""

    def decorate(builder: LossBuilder) -> LossBuilder:
        if name in _LOSSES:
            raise ValueError(f"training loss {name!r} is already registered")
        _LOSSES[name] = builder
        return builder

    return decorate


def list_training_losses() -> list[str]:
    """The registered training losses' names, sorted."""
    return sorted(_LOSSES)


def create_training_loss(config: TrackerTrainConfig, device: torch.device) -> TrainingLoss:
    """The training loss ``config.loss`` names, built from ``config`` on ``device``.

    Raises:
        ValueError: an unregistered name (the message lists the registered ones).
    """
    try:
        builder = _LOSSES[config.loss]
    except KeyError:
        raise ValueError(
            f"unknown training loss {config.loss!r}; choose one of "
            f"{', '.join(list_training_losses())}"
        ) from None
    loss = builder(config, device)
    if config.confidence == "bce":
        if not isinstance(loss, ClipLoss):
            raise ValueError(f"confidence 'bce' adds to a clip loss, not to {config.loss!r}")
        return ConfidenceBCE(loss, config.confidence_weight)
    return loss


@register_training_loss("deepmot")
def _deepmot(config: TrackerTrainConfig, device: torch.device) -> TrainingLoss:
    matcher = build_matcher(config.matcher).to(device)
    return DeepMOTTraining(
        DeepMOTLoss(matcher, config.deepmot),
        config.appearance,
        presence=config.confidence == "presence",
    )


@register_training_loss("smoothl1")
def _smoothl1(config: TrackerTrainConfig, device: torch.device) -> TrainingLoss:
    return SmoothL1Training()


@register_training_loss("vanilla")
def _vanilla(config: TrackerTrainConfig, device: torch.device) -> TrainingLoss:
    return VanillaTraining()
