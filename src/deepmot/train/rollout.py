"""Rolling training clips out: the tracker on its own outputs, scored frame by frame.

A clip starts from tracks made of the ground truth at its first frame (augmented as
configured, :class:`~deepmot.train.clips.ClipStart`); the tracker's predictor — the same
``predict`` it tracks with, with the frame, the tracks and the detections — moves them to the
next frame, and so on through the clip on its own outputs: after each frame, the tracks the
evaluator's matching leaves unmatched end and the unmatched objects are born (from their
ground-truth box, perturbed like the starting ones). The clips of a step advance in lockstep,
so each frame of the batch is one call of the training loss
(:class:`~deepmot.train.losses.ClipLoss`: one matcher call for the DeepMOT loss), whose
track-to-object memory lives in each clip's :class:`ClipState` across the clip.

With ``refine_iou`` each kept box is refined with its detection by the track management's own
rule (:func:`~deepmot.trackers.management.match_and_refine`: the predictions matched one-to-one
to the frame's detections above ``match_iou``, those overlapping theirs by more than
``refine_iou`` moved towards it by ``refine_weight``), after the loss has scored the raw
prediction; with ``score_refined`` the loss scores the refined box instead. ``refine_iou`` comes
from :class:`~deepmot.train.config.TrackerTrainConfig` (None: no refinement), ``match_iou`` and
``refine_weight`` from the management the trained tracker tracks with by default
(:attr:`Rollout.management`, the registration's ``Trainable.management``). The focal term
(:mod:`deepmot.train.focal`) adds to any clip loss. Besides the loss, :func:`run_clips` counts
each frame as the evaluator would (the true MOTA and MOTP of the same clips).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from deepmot.boxes import box_iou
from deepmot.data.sequence import FrameGT, Sequence
from deepmot.errors import DeepMOTError
from deepmot.metrics.clear import clear_matches
from deepmot.trackers.management import TrackManagementConfig, match_and_refine
from deepmot.trackers.predictor import Prediction, Predictor, TrackBatch
from deepmot.train.clips import ClipStart, perturb_some
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.diagnostics import FrameRecord
from deepmot.train.focal import anchor_labels, focal_classification_loss

if TYPE_CHECKING:
    from deepmot.train.losses import ClipLoss

__all__ = [
    "COUNTS",
    "Rollout",
    "SOFT_TERMS",
    "TERMS",
    "ClipState",
    "FrameLoss",
    "RolledFrame",
    "StepResult",
    "placeholder_loss",
    "refinement_rule",
    "run_clips",
]

SOFT_TERMS = ("fp", "fn", "ids", "dmota", "dmotp", "active_share")
TERMS = (*SOFT_TERMS, "focal")  # the logged means: the soft terms, the focal term
COUNTS = ("tp", "fp", "fn", "idsw", "objects", "iou_sum")  # the evaluator's, per step


@dataclass
class ClipState:
    """A clip being rolled out: its live tracks and the match memories (``{object id: track
    id}``: the evaluator's, the loss's, and the appearance branch's)."""

    start: ClipStart
    rng: np.random.Generator
    histories: list[Tensor]
    track_ids: list[int]
    targets: list[int]
    extras: list[dict[str, Any]]
    loss_memory: dict[int, int]
    true_memory: dict[int, int]
    next_id: int
    appearance_memory: dict[int, int] = field(default_factory=dict)
    born: set[int] = field(default_factory=set)  # ids the predictor's on_birth has seen
    # per track, whether a detection verified it at the last frame (all True unless the run
    # trains a confidence: TrackerTrainConfig.confidence)
    verified: list[bool] = field(default_factory=list)

    @classmethod
    def begin(cls, start: ClipStart, rng: np.random.Generator) -> ClipState:
        ids = [int(t) for t in start.track_ids]
        return cls(
            start,
            rng,
            [torch.from_numpy(h) for h in start.histories],
            ids,
            [int(g) for g in start.targets],
            [{} for _ in ids],
            dict(start.memory),
            dict(start.memory),
            max(ids, default=0) + 1,
            dict(start.memory),
            verified=[True] * len(ids),
        )


@dataclass(frozen=True)
class Rollout:
    """What a step's rollout runs with: the trained tracker's predictor, the run's settings,
    the boxes of history each track keeps (``history_len``), the device, and the track
    management the tracker tracks with by default, whose refinement rule the clips follow
    (:func:`refinement_rule`)."""

    predictor: Predictor
    config: TrackerTrainConfig
    history_len: int
    device: torch.device
    management: TrackManagementConfig = TrackManagementConfig()


@dataclass
class RolledFrame:
    """One frame of a step's clips as a clip loss scores it (one entry per clip in each list).

    Attributes:
        clips: the clips' states: ``track_ids``, ``targets`` (the object each track follows),
            and the memories a loss reads and updates (``loss_memory``, ``appearance_memory``).
        boxes: ``(T_i, 4)`` xyxy the loss scores (the predictions, refined with
            ``score_refined``), differentiable.
        objects: the frame's active pedestrians (``boxes (M_i, 4)`` numpy, ``ids (M_i,)``).
        object_boxes: the same boxes as tensors ``(M_i, 4)`` on the predictions' device.
        appearances: with a loss that uses appearance, ``(track embeddings (T_i, E) or None
            without tracks, object embeddings (M_i, E))`` per clip; else empty.
        confidences: the predictor's scores ``(T_i,)`` per clip (differentiable; None for a
            predictor without scores).
    """

    clips: list[ClipState]
    boxes: list[Tensor]
    objects: list[FrameGT]
    object_boxes: list[Tensor]
    appearances: list[tuple[Tensor | None, Tensor]]
    confidences: list[Tensor | None] = field(default_factory=list)


@dataclass
class FrameLoss:
    """What a clip loss returns for one :class:`RolledFrame`: ``loss (B,)`` per clip, its named
    terms summed over the clips (the step logs their means), and what the gradient diagnostics
    need (:class:`~deepmot.train.diagnostics.FrameRecord`, when asked to record)."""

    loss: Tensor
    terms: dict[str, float] = field(default_factory=dict)
    record: FrameRecord | None = None


@dataclass
class StepResult:
    """What a training step's loss returns: the mean loss over the clips' frames (a scalar
    tensor), the logged terms' means (:data:`TERMS`; NaN where the loss has none), the
    evaluator's counts summed (:data:`COUNTS`), the frames recorded for the gradient
    diagnostics, and the softmax scale the loss used (0 for a loss without one)."""

    loss: Tensor
    soft: dict[str, float]
    counts: dict[str, float] = field(default_factory=dict)
    records: list[FrameRecord] = field(default_factory=list)
    scale: float = 0.0

    @property
    def true_mota(self) -> float:
        c = self.counts
        return 1 - (c["fp"] + c["fn"] + c["idsw"]) / max(1.0, c["objects"])

    @property
    def true_motp(self) -> float:
        return self.counts["iou_sum"] / max(1.0, self.counts["tp"])


def _detections(seq: Sequence, frame: int, device: torch.device) -> Tensor | None:
    """``(K, 5)`` detections of ``frame`` on ``device``, or None for a sequence without any."""
    if seq.detections is None:
        return None
    return torch.from_numpy(seq.detections_at(frame)).to(device)


def _predict(
    predictor: Predictor,
    state: ClipState,
    frame: int,
    history_len: int,
    device: torch.device,
    appearance: bool = False,
) -> tuple[Prediction, Tensor | None, Any]:
    """The predictor's prediction (boxes ``(T, 4)``) at ``frame`` for the clip's live tracks
    (its ``on_birth`` hook first sees the tracks new since the last frame).

    Also returns, with ``appearance``, each track's embedding ``(T, E)`` from the frames
    before ``frame`` (the predictor's ``track_embeddings``, read before ``predict`` stores this
    frame's), else None; and the frame's image (None for a predictor without images).
    """
    seq = state.start.sequence
    image = seq.read_image(frame) if predictor.needs_images else None
    if not state.histories:
        return Prediction(torch.zeros((0, 4), device=device)), None, image
    batch = TrackBatch.from_histories(
        state.histories,
        history_len,
        ids=state.track_ids,
        verified=state.verified,
        extras=state.extras,
    ).to(device)
    new = [i for i, tid in enumerate(state.track_ids) if tid not in state.born]
    if new:
        # tracks started at the previous frame (the clip's first tracks, births): as at test
        # time, the predictor sees them with the frame they were born in
        born_image = seq.read_image(frame - 1) if predictor.needs_images else None
        predictor.on_birth(
            born_image,
            TrackBatch.from_histories(
                [state.histories[i] for i in new],
                history_len,
                ids=[state.track_ids[i] for i in new],
                extras=[state.extras[i] for i in new],
            ).to(device),
        )
    state.born.update(state.track_ids)
    memory = predictor.track_embeddings(batch) if appearance else None
    dets = _detections(seq, frame, device)
    prediction = predictor.predict(image, batch, dets, (seq.im_width, seq.im_height))
    return prediction, memory, image


def _focal(prediction: Prediction, state: ClipState, gt: FrameGT, gamma: float) -> Tensor:
    """The focal classification term (:mod:`deepmot.train.focal`) of one clip's frame: the
    mean over its tracks, each against the box of the object it follows (0 without tracks)."""
    boxes = prediction.boxes
    if len(boxes) == 0:
        return boxes.new_zeros(())
    if prediction.proposals is None:
        raise DeepMOTError(
            "--focal-weight: this tracker scores no anchors (the focal term trains SiamRPN's "
            "classification branch)"
        )
    where = {int(g): j for j, g in enumerate(gt.ids)}
    targets = torch.full((len(boxes), 4), float("nan"))
    for i, target in enumerate(state.targets):
        if target in where:
            targets[i] = torch.from_numpy(gt.boxes[where[target]])
    proposals = prediction.proposals
    labels = anchor_labels(proposals.anchors, targets.to(boxes))
    return focal_classification_loss(proposals.logits, labels, gamma).mean()


def refinement_rule(
    config: TrackerTrainConfig, management: TrackManagementConfig
) -> TrackManagementConfig | None:
    """The refinement the clips follow: ``management`` (the trained tracker's) with the run's
    ``refine_iou``; None where the run refines nothing (``refine_iou`` None)."""
    if config.refine_iou is None:
        return None
    return replace(management, refine_iou=config.refine_iou)


def _refine(boxes: Tensor, detections: Tensor | None, rule: TrackManagementConfig | None) -> Tensor:
    """The test-time refinement (supp. A.2) of the predictions ``boxes (T, 4)`` with the
    frame's ``detections (K, 4+)`` by the management's ``rule``
    (:func:`~deepmot.trackers.management.match_and_refine`) -> ``(T, 4)``, differentiable in
    ``boxes``; ``boxes`` itself without a rule or detections."""
    if rule is None or detections is None or len(boxes) == 0 or len(detections) == 0:
        return boxes
    return match_and_refine(boxes, detections, rule)[1]


def _verified(boxes: Tensor, detections: Tensor | None, min_iou: float) -> np.ndarray:
    """Which predicted ``boxes (T, 4)`` a detection ``(K, 4+)`` verifies, as the track
    management does: matched one-to-one (Hungarian on IoU) at IoU >= ``min_iou``; ``(T,)``
    bool."""
    verified = np.zeros(len(boxes), dtype=bool)
    if detections is None or len(boxes) == 0 or len(detections) == 0:
        return verified
    iou = box_iou(boxes.detach().float().cpu(), detections[:, :4].float().cpu()).numpy()
    rows, cols = linear_sum_assignment(-iou)
    verified[rows[iou[rows, cols] >= min_iou]] = True
    return verified


def _advance(
    state: ClipState,
    predicted: Tensor,
    kept: Tensor,
    gt: FrameGT,
    config: TrackerTrainConfig,
    history_len: int,
    counts: dict[str, float],
    verified: np.ndarray | None = None,
) -> None:
    """After a frame: count it as the evaluator would, end unmatched tracks, birth objects.

    ``predicted (T, 4)`` are the boxes the loss scored, ``kept (T, 4)`` the same boxes as the
    tracks keep them (refined). Matched tracks keep their id and append their kept box (with
    its gradient) to their history; unmatched objects get new tracks starting at their
    (perturbed) box. ``verified (T,)``: whether a detection verified each track this frame
    (None: all, and unmatched tracks end); given, an unmatched track that no detection
    verified lives on too.
    """
    gt_boxes, gt_ids = gt.boxes, gt.ids
    boxes = predicted.detach().cpu().float()
    iou = (
        box_iou(boxes, torch.from_numpy(gt_boxes)).numpy().astype(np.float64)
        if len(boxes) and len(gt_boxes)
        else np.zeros((len(boxes), len(gt_boxes)))
    )
    ids = np.asarray(state.track_ids, np.int64)
    matches, switches = clear_matches(iou, ids, gt_ids, state.true_memory)
    counts["tp"] += len(matches)
    counts["fp"] += len(ids) - len(matches)
    counts["fn"] += len(gt_ids) - len(matches)
    counts["idsw"] += switches
    counts["objects"] += len(gt_ids)
    counts["iou_sum"] += float(iou[matches[:, 0], matches[:, 1]].sum()) if len(matches) else 0.0

    alive = matches[:, 0].tolist()
    # a surviving track follows the object it matched from now on (Smooth-L1's target)
    targets = [int(gt_ids[j]) for j in matches[:, 1]]
    if verified is not None:
        # training a confidence: an unmatched track lives on while no detection verifies it,
        # as the management keeps it invisible, so that one that drifts is scored again
        lost = [i for i in range(len(ids)) if i not in set(alive) and not verified[i]]
        alive += lost
        # it follows no object any more (its object is born again): a negative target, as a
        # false track's, unique in the clip
        lowest = min([0, *state.targets])
        targets += [lowest - 1 - k for k in range(len(lost))]
    state.histories = [
        torch.cat([state.histories[i].to(predicted.device), kept[i : i + 1]])[-history_len:]
        for i in alive
    ]
    state.track_ids = [state.track_ids[i] for i in alive]
    state.targets = targets
    state.extras = [state.extras[i] for i in alive]
    state.verified = [True if verified is None else bool(verified[i]) for i in alive]
    unmatched = np.setdiff1d(np.arange(len(gt_ids)), matches[:, 1])
    if len(unmatched):
        born = perturb_some(gt_boxes[unmatched], state.rng, config.augment)
        for box, gid in zip(born, gt_ids[unmatched], strict=True):
            state.histories.append(torch.from_numpy(box[None]).to(predicted.device))
            state.track_ids.append(state.next_id)
            state.targets.append(int(gid))
            state.extras.append({})
            state.verified.append(True)
            state.next_id += 1


def run_clips(
    starts: list[ClipStart],
    predictor: Predictor,
    loss: ClipLoss,
    config: TrackerTrainConfig,
    rng: np.random.Generator | list[np.random.Generator],
    history_len: int,
    device: torch.device,
    record: bool = False,
    scale: float | None = None,
    management: TrackManagementConfig | None = None,
) -> StepResult:
    """Roll ``starts`` out through their clips (see the module doc) and score every frame.

    The clips advance in lockstep, so each frame of the batch is one call of ``loss``. ``rng``
    draws the births' perturbations: one generator shared by the clips, or one per clip (the
    trainer's choice, so that a clip rolls out the same whichever process runs it). With
    ``record``, the loss keeps what the gradient diagnostics need of every frame in
    ``records`` (:func:`~deepmot.train.diagnostics.gradient_norms`). ``scale`` is the softmax
    scale of a loss that has one (None: its configured one). ``management``: the trained
    tracker's default track management, whose refinement rule the clips follow (None: the
    paper's defaults, :class:`~deepmot.trackers.management.TrackManagementConfig`).
    """
    rngs = rng if isinstance(rng, list) else [rng] * len(starts)
    if len(rngs) != len(starts):
        raise ValueError(f"{len(rngs)} generators for {len(starts)} clips")
    states = [ClipState.begin(s, r) for s, r in zip(starts, rngs, strict=True)]
    rule = refinement_rule(config, management or TrackManagementConfig())
    length = min(s.length for s in starts)
    losses: list[Tensor] = []
    records: list[FrameRecord] = []
    soft = dict.fromkeys(TERMS, 0.0)
    counts = dict.fromkeys(COUNTS, 0.0)
    for step in range(1, length):
        outputs, frame = _roll_frame(
            predictor, states, step, history_len, device, loss.uses_appearance
        )
        dets = [_detections(s.start.sequence, s.start.start + step, device) for s in states]
        predictions = frame.boxes
        kept = [_refine(p, d, rule) for p, d in zip(predictions, dets, strict=True)]
        if config.score_refined:  # the loss scores what tracking reports
            frame.boxes = kept
        focal = None
        if config.focal_weight > 0:
            focal = torch.stack(
                [
                    _focal(o, s, g, config.focal_gamma)
                    for o, s, g in zip(outputs, states, frame.objects, strict=True)
                ]
            )
            soft["focal"] += float(focal.detach().sum())
        scored = loss.score(frame, scale, record)
        if scored.record is not None:
            records.append(scored.record)
        for name, value in scored.terms.items():
            soft[name] += value
        losses.append(scored.loss if focal is None else scored.loss + config.focal_weight * focal)
        for state, pred, keep, raw, gt, det in zip(
            states, frame.boxes, kept, predictions, frame.objects, dets, strict=True
        ):
            verified = (
                _verified(raw, det, config.verify_iou) if config.confidence != "none" else None
            )
            _advance(state, pred, keep, gt, config, history_len, counts, verified)
    frames = max(1, (length - 1) * len(states))
    soft = {k: v / frames for k, v in soft.items()}
    soft.update({k: float("nan") for k in SOFT_TERMS if k not in loss.terms})
    if config.focal_weight == 0:
        soft["focal"] = float("nan")
    return StepResult(torch.cat(losses).mean(), soft, counts, records)


def _roll_frame(
    predictor: Predictor,
    states: list[ClipState],
    step: int,
    history_len: int,
    device: torch.device,
    appearance: bool,
) -> tuple[list[Prediction], RolledFrame]:
    """The predictions of every clip at its ``step``-th frame and the frame as a loss sees it
    (with ``appearance``, each clip's track and object embeddings, from the predictor's
    ``track_embeddings`` and ``embed``)."""
    outputs, gts, appearances = [], [], []
    for state in states:
        frame = state.start.start + step
        prediction, memory, image = _predict(
            predictor, state, frame, history_len, device, appearance
        )
        outputs.append(prediction)
        gts.append(state.start.sequence.gt_at(frame).active_pedestrians())
        if appearance:
            found = predictor.embed(image, torch.from_numpy(gts[-1].boxes).to(device))
            appearances.append((memory, found))
    gt_tensors = [torch.from_numpy(g.boxes).to(device) for g in gts]
    boxes = [o.boxes for o in outputs]
    confidences = [o.scores for o in outputs]
    return outputs, RolledFrame(states, boxes, gts, gt_tensors, appearances, confidences)


def placeholder_loss(
    predictor: Predictor, start: ClipStart, history_len: int, device: torch.device
) -> Tensor:
    """``0 *`` the prediction of one made-up track in ``start``'s next frame: a process whose
    clips held no track in a step still runs the trained module forward once, so that its
    backward joins the other processes' gradient reduction (DDP)."""
    box = np.array([[0.0, 0.0, 10.0, 10.0]], np.float32)
    fake = replace(
        start, histories=[box], track_ids=np.ones(1, np.int64), targets=-np.ones(1, np.int64)
    )
    state = ClipState.begin(fake, np.random.default_rng(0))
    return 0.0 * _predict(predictor, state, start.start + 1, history_len, device)[0].boxes.sum()
