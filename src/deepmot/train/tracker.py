"""Train any trainable tracker with the DeepMOT loss or the Smooth-L1 baseline (paper Sec. 4.3).

Each step draws ``batch_size`` clips (:class:`~deepmot.train.clips.ClipSampler`) from the
training frames (the first 50% of each sequence, supp. A.2). A clip starts from tracks made of
the ground truth at its first frame (augmented as configured); the tracker's predictor — the
same ``predict`` it tracks with, with the frame, the tracks and the detections — moves them to
the next frame, and so on through the clip on its own outputs: after each frame, the tracks the
evaluator's matching leaves unmatched end and the unmatched objects are born (from their
ground-truth box, perturbed like the starting ones). ``sampling="pairs"`` is the two-frame
clip: the paper's frame pairs.

Per frame, D between the predicted boxes and the ground truth goes through the frozen matcher
into the DeepMOT loss, whose track-to-object memory is carried across the clip (or Smooth-L1
pairs each track with the object it follows). The mean loss over the clip's frames is
back-propagated through the whole clip (truncated at its start) into the tracker's trained
module only; Adam, learning rate 1e-4 (A.2). A step whose loss has no gradient (no track in
any frame) is skipped, as the authors' code does.

Besides the loss, every step logs the soft terms (FP~, FN~, IDS~, dMOTA, dMOTP), the share of
softmax entries that are not saturated, the softmax scale (``scale_start`` moves it from soft to
sharp over the run), every ``diagnose_every`` steps the gradient each term sends to the boxes
(:mod:`deepmot.train.diagnostics`), and the true MOTA and MOTP of the same clips from the
evaluator's matching, so that one can see the proxy and the real measure move together. With
``refine_iou`` the rollout refines each kept box with its detection, as the track management
does at test time, after the loss has scored the raw prediction; with ``score_refined`` the
loss scores the refined box instead (what tracking reports). The run folder
(:class:`~deepmot.engine.run.TrainingRun`) holds ``config.json``, ``checkpoint.pt``, ``log.csv``
and the trained weights; every step draws its samples from a generator seeded by (seed, step),
so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from deepmot.assign.matcher import build_matcher
from deepmot.boxes import box_iou, cosine_distance, distance_matrix
from deepmot.data.sequence import Sequence
from deepmot.engine.checkpoint import restore_training_state, training_state
from deepmot.engine.distributed import (
    Distributed,
    DistributedModule,
    precision_and_seed,
    setup,
    zero_term,
)
from deepmot.engine.loop import StepReport, fit
from deepmot.engine.prefetch import prefetching, step_loader
from deepmot.engine.run import TrainingRun, resolve_resumed_config
from deepmot.errors import DeepMOTError
from deepmot.loss.deepmot import DeepMOTLoss
from deepmot.loss.smooth_l1 import SmoothL1Loss
from deepmot.metrics.clear import clear_matches
from deepmot.trackers.predictor import Prediction, Predictor, TrackBatch
from deepmot.trackers.registry import Trainable, get_trainable
from deepmot.train.clips import ClipSampler, ClipStart, StepClipFrames, perturb_some
from deepmot.train.config import TrackerTrainConfig
from deepmot.train.diagnostics import GRADIENT_TERMS, FrameRecord, gradient_norms
from deepmot.train.focal import anchor_labels, focal_classification_loss
from deepmot.train.sot import single_object_step

__all__ = ["LOG_FIELDS", "StepResult", "run_clips", "train_tracker"]

log = logging.getLogger(__name__)

SOFT_TERMS = ("fp", "fn", "ids", "dmota", "dmotp", "active_share")
TERMS = (*SOFT_TERMS, "focal")  # the logged means: the soft terms, the focal term
LOG_FIELDS = (
    "iteration", "loss", *TERMS, *(f"grad_{t}" for t in GRADIENT_TERMS), "true_mota",
    "true_motp", "scale", "seconds",
)  # fmt: skip
_COUNTS = ("tp", "fp", "fn", "idsw", "objects", "iou_sum")


@dataclass
class _ClipState:
    """A clip being rolled out: its live tracks and both match memories."""

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

    @classmethod
    def begin(cls, start: ClipStart, rng: np.random.Generator) -> _ClipState:
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
        )


@dataclass
class StepResult:
    """What :func:`run_clips` returns: the mean loss over the clips' frames (a scalar tensor),
    the soft terms' means (NaN for Smooth-L1) and the focal term's (NaN without it), and the
    evaluator's counts summed."""

    loss: Tensor
    soft: dict[str, float]
    counts: dict[str, float] = field(default_factory=dict)
    records: list[FrameRecord] = field(default_factory=list)

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
    state: _ClipState,
    frame: int,
    history_len: int,
    device: torch.device,
    appearance: bool = False,
) -> tuple[Prediction, Tensor | None, Any]:
    """The predictor's prediction (boxes ``(T, 4)``) at ``frame`` for the clip's live tracks
    (its ``on_birth`` hook, where it has one, first sees the tracks new since the last frame).

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
        verified=[True] * len(state.histories),
        extras=state.extras,
    ).to(device)
    on_birth = getattr(predictor, "on_birth", None)
    new = [i for i, tid in enumerate(state.track_ids) if tid not in state.born]
    if on_birth is not None and new:
        # tracks started at the previous frame (the clip's first tracks, births): as at test
        # time, the predictor sees them with the frame they were born in
        born_image = seq.read_image(frame - 1) if predictor.needs_images else None
        on_birth(
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


def _focal(prediction: Prediction, state: _ClipState, gt: Any, gamma: float) -> Tensor:
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


def _appearance_branch(
    loss_fn: DeepMOTLoss,
    states: list[_ClipState],
    appearances: list[tuple[Tensor | None, Tensor]],
    track_ids: list[np.ndarray],
    gts: list[Any],
    out: Any,
) -> Any:
    """``out`` with the DeepMOT loss of the cosine-distance matrices ``(T, M)`` (the track
    embeddings against the objects', with its own track-to-object memory) added to its loss,
    as the authors' code trained the ReID head; the logged soft terms stay the boxes'."""
    matrices = [
        cosine_distance(memory, found)
        if memory is not None
        else found.new_zeros((len(ids), len(found)))
        for (memory, found), ids in zip(appearances, track_ids, strict=True)
    ]
    before = [s.appearance_memory for s in states]
    branch, memories = loss_fn.forward_batch(matrices, track_ids, [g.ids for g in gts], before)
    for state, memory in zip(states, memories, strict=True):
        state.appearance_memory = memory
    return replace(out, loss=out.loss + branch.loss)


def _refine(boxes: Tensor, detections: Tensor | None, refine_iou: float | None) -> Tensor:
    """The test-time refinement (supp. A.2): each box matched one-to-one to a detection it
    overlaps by more than ``refine_iou`` becomes their average (the detection has no
    gradient); the others stay. ``boxes (T, 4)``, ``detections (K, 4+)`` -> ``(T, 4)``."""
    if refine_iou is None or detections is None or len(boxes) == 0 or len(detections) == 0:
        return boxes
    dets = detections[:, :4].to(boxes)
    iou = box_iou(boxes.detach(), dets).cpu().numpy()
    rows, cols = linear_sum_assignment(-iou)
    good = iou[rows, cols] > refine_iou
    if not good.any():
        return boxes
    rows_t = torch.as_tensor(rows[good], device=boxes.device)
    cols_t = torch.as_tensor(cols[good], device=boxes.device)
    refined = boxes.clone()
    refined[rows_t] = 0.5 * boxes[rows_t] + 0.5 * dets[cols_t]
    return refined


def _advance(
    state: _ClipState,
    predicted: Tensor,
    gt_boxes: np.ndarray,
    gt_ids: np.ndarray,
    config: TrackerTrainConfig,
    history_len: int,
    counts: dict[str, float],
    detections: Tensor | None,
) -> None:
    """After a frame: count it as the evaluator would, end unmatched tracks, birth objects.

    Matched tracks keep their id and append the predicted box (with its gradient) to their
    history; unmatched objects get new tracks starting at their (perturbed) box.
    """
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
    kept = _refine(predicted[alive], detections, config.refine_iou)
    state.histories = [
        torch.cat([state.histories[i].to(predicted.device), kept[k : k + 1]])[-history_len:]
        for k, i in enumerate(alive)
    ]
    state.track_ids = [state.track_ids[i] for i in alive]
    # a surviving track follows the object it matched from now on (Smooth-L1's target)
    state.targets = [int(gt_ids[j]) for j in matches[:, 1]]
    state.extras = [state.extras[i] for i in alive]
    unmatched = np.setdiff1d(np.arange(len(gt_ids)), matches[:, 1])
    if len(unmatched):
        born = perturb_some(gt_boxes[unmatched], state.rng, config.augment)
        for box, gid in zip(born, gt_ids[unmatched], strict=True):
            state.histories.append(torch.from_numpy(box[None]).to(predicted.device))
            state.track_ids.append(state.next_id)
            state.targets.append(int(gid))
            state.extras.append({})
            state.next_id += 1


def run_clips(
    starts: list[ClipStart],
    predictor: Predictor,
    loss_fn: DeepMOTLoss | SmoothL1Loss,
    config: TrackerTrainConfig,
    rng: np.random.Generator | list[np.random.Generator],
    history_len: int,
    device: torch.device,
    record: bool = False,
) -> StepResult:
    """Roll ``starts`` out through their clips (see the module doc) and score every frame.

    The clips advance in lockstep, so each frame of the batch is one matcher call. ``rng``
    draws the births' perturbations: one generator shared by the clips, or one per clip (the
    trainer's choice, so that a clip rolls out the same whichever process runs it). With
    ``record``, the DeepMOT loss's inputs and outputs of every frame are kept in
    ``records`` (for :func:`~deepmot.train.diagnostics.gradient_norms`).
    """
    rngs = rng if isinstance(rng, list) else [rng] * len(starts)
    if len(rngs) != len(starts):
        raise ValueError(f"{len(rngs)} generators for {len(starts)} clips")
    states = [_ClipState.begin(s, r) for s, r in zip(starts, rngs, strict=True)]
    length = min(s.length for s in starts)
    losses: list[Tensor] = []
    records: list[FrameRecord] = []
    soft = dict.fromkeys(TERMS, 0.0)
    counts = dict.fromkeys(_COUNTS, 0.0)
    appearance = config.appearance != "none" and isinstance(loss_fn, DeepMOTLoss)
    for step in range(1, length):
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
        dets = [_detections(s.start.sequence, s.start.start + step, device) for s in states]
        predictions = [o.boxes for o in outputs]
        if config.score_refined:  # the loss scores what tracking reports
            predictions = [
                _refine(p, d, config.refine_iou) for p, d in zip(predictions, dets, strict=True)
            ]
        gt_tensors = [torch.from_numpy(g.boxes).to(device) for g in gts]
        focal = None
        if config.focal_weight > 0:
            focal = torch.stack(
                [
                    _focal(o, s, g, config.focal_gamma)
                    for o, s, g in zip(outputs, states, gts, strict=True)
                ]
            )
            soft["focal"] += float(focal.detach().sum())
        if isinstance(loss_fn, DeepMOTLoss):
            pairs = appearances if config.appearance == "joint" else [None] * len(states)
            distances = [
                _distance(p, g, s.start.sequence, a)
                for p, g, s, a in zip(predictions, gt_tensors, states, pairs, strict=True)
            ]
            track_ids = [np.asarray(s.track_ids, np.int64) for s in states]
            before = [s.loss_memory for s in states]
            out, memories = loss_fn.forward_batch(
                distances, track_ids, [g.ids for g in gts], before
            )
            if record:
                records.append(
                    FrameRecord(
                        predictions, distances, track_ids, [g.ids for g in gts], before, out
                    )
                )
            for state, memory in zip(states, memories, strict=True):
                state.loss_memory = memory
            if config.appearance == "branch":
                out = _appearance_branch(loss_fn, states, appearances, track_ids, gts, out)
            losses.append(out.loss if focal is None else out.loss + config.focal_weight * focal)
            for name in SOFT_TERMS:
                soft[name] += float(getattr(out, name).detach().sum())
        else:
            smooth = torch.stack(
                [
                    loss_fn(p, g, np.asarray(s.targets, np.int64), gt.ids)
                    for p, g, s, gt in zip(predictions, gt_tensors, states, gts, strict=True)
                ]
            )
            losses.append(smooth if focal is None else smooth + config.focal_weight * focal)
        for state, pred, gt, det in zip(states, predictions, gts, dets, strict=True):
            # boxes scored after refinement are not refined a second time
            det = None if config.score_refined else det
            _advance(state, pred, gt.boxes, gt.ids, config, history_len, counts, det)
    frames = max(1, (length - 1) * len(states))
    soft = {k: v / frames for k, v in soft.items()}
    if not isinstance(loss_fn, DeepMOTLoss):
        soft.update(dict.fromkeys(SOFT_TERMS, float("nan")))
    if config.focal_weight == 0:
        soft["focal"] = float("nan")
    return StepResult(torch.cat(losses).mean(), soft, counts, records)


def _check_inputs(sequences: list[Sequence], trainable: Trainable, model_config: Any) -> None:
    if trainable.needs_images(model_config):
        missing = [s.name for s in sequences if not s.has_images]
        if missing:
            raise DeepMOTError(
                f"tracker {trainable.name!r} regresses from the image, and these sequences have "
                f"no frames (img1/ or a synthetic scene): {', '.join(missing)}"
            )
    if trainable.uses_detections(model_config):
        missing = [s.name for s in sequences if s.detections is None]
        if missing:
            raise DeepMOTError(
                f"tracker {trainable.name!r} looks at detections, and these sequences have none "
                f"loaded: {', '.join(missing)} (choose a detection file they have, or train a "
                "model that does not use detections)"
            )


def _placeholder_loss(
    predictor: Predictor, start: ClipStart, history_len: int, device: torch.device
) -> Tensor:
    """``0 *`` the prediction of one made-up track in ``start``'s next frame: a process whose
    clips held no track in a step still runs the trained module forward once, so that its
    backward joins the other processes' gradient reduction (DDP)."""
    box = np.array([[0.0, 0.0, 10.0, 10.0]], np.float32)
    fake = replace(
        start, histories=[box], track_ids=np.ones(1, np.int64), targets=-np.ones(1, np.int64)
    )
    state = _ClipState.begin(fake, np.random.default_rng(0))
    return 0.0 * _predict(predictor, state, start.start + 1, history_len, device)[0].boxes.sum()


def train_tracker(
    sequences: list[Sequence],
    out: str | Path,
    config: TrackerTrainConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    backend: str | None = None,
    amp: str | None = None,
    workers: int = 0,
) -> dict[str, Any]:
    """Train ``config.tracker`` on ``sequences``; write the run into ``out``.

    Under torchrun (``WORLD_SIZE`` > 1) each process trains on its share of every step's
    global batch of ``config.batch_size`` clips, the model wrapped in DDP
    (:mod:`deepmot.engine.distributed`): the same steps as one process, up to float rounding.

    Args:
        sequences: training sequences with ground truth (with frames for trackers that need
            them, with detections for models that use them).
        out: the run folder.
        config: settings; with ``resume``, None means the stored ones, and otherwise only
            ``iterations`` and ``device`` may differ from them (and are applied).
        resume: continue from ``out/checkpoint.pt`` (on any number of processes).
        progress: show a progress bar with the loss and the true MOTA.
        backend: the process group's backend under torchrun (None: ``nccl`` on CUDA, else
            ``gloo``).
        amp: ``"bf16"`` or ``"fp16"``: mixed precision on CUDA (None: float32).
        workers: for trackers that read frames, DataLoader processes reading (decoding,
            rendering) the next steps' frames while the model trains
            (:mod:`deepmot.engine.prefetch`; 0: read in the rollout).

    Returns:
        ``{"iterations", "weights", "last": {field: value}}``.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    run = TrainingRun(out, LOG_FIELDS, resume)
    if run.stored_config is not None:
        stored = TrackerTrainConfig.from_dict(run.stored_config)
        config = resolve_resumed_config(
            stored, config, ("iterations", "device"), run.checkpoint_path
        )
    config = config or TrackerTrainConfig()
    try:
        trainable = get_trainable(config.tracker)
        model_config = trainable.config_from_dict(config.model)
    except ValueError as error:
        raise DeepMOTError(str(error)) from None
    _check_inputs(sequences, trainable, model_config)
    dist = setup(config.device, backend)
    try:
        return _train(
            sequences, out, config, run, trainable, model_config, dist, progress, amp, workers
        )
    finally:
        dist.close()


def _freeze(model: torch.nn.Module, prefixes: tuple[str, ...]) -> None:
    """Stop the gradient of the parameters named by ``prefixes`` (a module path such as
    ``features.0``, or a parameter's full name).

    Raises:
        DeepMOTError: a prefix that names no parameter.
    """
    named = dict(model.named_parameters())
    for prefix in prefixes:
        chosen = [n for n in named if n == prefix or n.startswith(prefix + ".")]
        if not chosen:
            modules = sorted({n.rsplit(".", 1)[0] for n in named})
            raise DeepMOTError(
                f"freeze {prefix!r}: the model has no such parameters (its modules: "
                f"{', '.join(modules)})"
            )
        for name in chosen:
            named[name].requires_grad_(False)


def _train(
    sequences: list[Sequence],
    out: str | Path,
    config: TrackerTrainConfig,
    run: TrainingRun,
    trainable: Trainable,
    model_config: Any,
    dist: Distributed,
    progress: bool,
    amp: str | None,
    workers: int,
) -> dict[str, Any]:
    device = dist.device
    precision, scaler = precision_and_seed(dist, config.batch_size, amp, config.seed)
    model = trainable.build(model_config).to(device)
    if config.init_weights is not None and run.state is None:
        # fine-tune from trained weights (e.g. Smooth-L1 or DeepMOT from the Vanilla model)
        try:
            model.load_state_dict(trainable.load(config.init_weights).state_dict())
        except RuntimeError as error:
            raise DeepMOTError(
                f"{config.init_weights}: weights do not fit the model's settings ({error})"
            ) from None
    _freeze(model, config.freeze)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    iteration = run.start_iteration
    if run.state is not None:
        restore_training_state(run.state, model, optimizer, scaler)
    trained = dist.wrap(model)  # DDP with several processes; the frozen matcher stays out
    predictor = trainable.predictor(trained)
    if config.appearance != "none" and not (
        hasattr(predictor, "embed") and getattr(model_config, "reid", None) == "head"
    ):
        raise DeepMOTError(
            f"appearance training needs a tracker with a ReID head (tracktor with reid 'head'), "
            f"not {config.tracker!r}"
            + (f" with reid {model_config.reid!r}" if hasattr(model_config, "reid") else "")
        )

    history_len = max(2, int(predictor.history_len))
    prefetch = workers > 0 and trainable.needs_images(model_config)
    if workers > 0 and not prefetch and dist.rank == 0:
        log.warning(
            "workers=%d: tracker %r reads no frames, so none are read ahead",
            workers,
            config.tracker,
        )
    sampler = ClipSampler(
        prefetching(sequences) if prefetch else sequences,
        config.frames_per_sample,
        history_len,
        config.train_fraction,
        config.augment,
    )
    if prefetch:  # workers read each step's frames ahead (the steps' clips are seeded)
        read_ahead = step_loader(
            StepClipFrames(sampler, config.batch_size, config.seed, dist.rank, dist.world_size),
            iteration,
            config.iterations,
            workers,
        )
    if config.loss == "deepmot":
        loss_fn: DeepMOTLoss | SmoothL1Loss = DeepMOTLoss(
            build_matcher(config.matcher).to(device), config.deepmot
        )
    else:  # Smooth-L1; "vanilla" uses the predictor's own single-object objective
        loss_fn = SmoothL1Loss()

    def checkpoint(iteration: int) -> None:
        run.save_checkpoint(training_state(config, model, optimizer, iteration, scaler))

    run.start(config.to_dict())
    last: dict[str, float] = {}
    model.train()

    def step(iteration: int) -> StepReport:
        if isinstance(loss_fn, DeepMOTLoss):
            loss_fn.config = replace(loss_fn.config, scale=config.scale_at(iteration))
        if prefetch:
            frames = next(read_ahead)
            for index, sequence in enumerate(sampler.sequences):
                sequence.frame_source.frames = frames.get(index, {})
        rng = np.random.default_rng([config.seed, iteration])
        starts = sampler.sample(rng, config.batch_size)
        # one generator per clip: a clip rolls out the same in whichever process
        mine = dist.shard(list(zip(starts, rng.spawn(len(starts)), strict=True)))
        diagnose = isinstance(loss_fn, DeepMOTLoss) and iteration % config.diagnose_every == 0
        if isinstance(trained, DistributedModule):
            trained.forward_calls = 0
        with precision:
            if config.loss == "vanilla":
                loss, counts = single_object_step([s for s, _ in mine], predictor, device)
                result = StepResult(loss, dict.fromkeys(TERMS, float("nan")), counts)
            else:
                result = run_clips(
                    [s for s, _ in mine],
                    predictor,
                    loss_fn,
                    config,
                    [r for _, r in mine],
                    history_len,
                    device,
                    diagnose,
                )
        grads = dict.fromkeys(GRADIENT_TERMS, float("nan"))
        if diagnose:
            grads = gradient_norms(result.records, loss_fn)
        optimizer.zero_grad(set_to_none=True)
        learns = result.loss.requires_grad
        if isinstance(trained, DistributedModule):
            # every process joins the gradient reduction, with or without tracks
            loss = result.loss if learns else result.loss.detach()
            if trained.forward_calls == 0:
                with precision:
                    loss = loss + _placeholder_loss(predictor, mine[0][0], history_len, device)
            scaler.scale(loss + zero_term(model)).backward()
        elif learns:
            scaler.scale(result.loss).backward()
        # the step is skipped when no clip of the global batch had a track (as with one
        # process); the figures are the global batch's
        sums = dist.sum_named(
            {
                "learns": float(learns),
                "stop": float(run.stop_requested is not None),
                "loss": float(result.loss.detach()),
                **{f"soft_{k}": result.soft[k] for k in TERMS},
                # norms of gradients of means over all clips: squares add up
                **{f"grad_{k}": grads[k] ** 2 / dist.world_size**2 for k in GRADIENT_TERMS},
                **{f"count_{k}": result.counts[k] for k in _COUNTS},
            }
        )
        if sums["learns"] > 0:
            scaler.step(optimizer)
            scaler.update()
        if dist.enabled:
            grads = {k: math.sqrt(sums[f"grad_{k}"]) for k in GRADIENT_TERMS}
        totals = StepResult(result.loss, {}, {k: sums[f"count_{k}"] for k in _COUNTS})
        last.clear()
        last.update(
            {
                "loss": sums["loss"] / dist.world_size,
                **{k: sums[f"soft_{k}"] / dist.world_size for k in TERMS},
                **{f"grad_{k}": v for k, v in grads.items()},
                "true_mota": totals.true_mota,
                "true_motp": totals.true_motp,
                "scale": loss_fn.config.scale if isinstance(loss_fn, DeepMOTLoss) else 0.0,
            }
        )
        return StepReport(
            [f"{last[k]:.6g}" for k in LOG_FIELDS[1:-1]],
            {"loss": f"{last['loss']:.4f}", "mota": f"{totals.true_mota:.3f}"},
            stop_elsewhere=sums["stop"] > 0,
        )

    iteration = fit(
        run,
        step,
        run.start_iteration,
        config.iterations,
        checkpoint,
        config.checkpoint_every,
        f"train {config.tracker} ({config.loss})",
        progress,
    )
    weights = Path(out) / trainable.weights_file
    model.eval()
    if run.main:
        card = {
            "tracker": config.tracker,
            "train": config.to_dict(),
            "iterations": iteration,
            "sequences": [s.name for s in sequences],
        }
        trainable.save(model, weights, card)
    return {"iterations": iteration, "weights": str(weights), "last": last}
