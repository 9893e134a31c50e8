"""Settings of a tracker training run, importable without torch (the CLI takes its defaults here).

:class:`TrackerTrainConfig` is the one source of truth: the tracker and its model settings, the
loss (:class:`~deepmot.loss.config.DeepMOTLossConfig`, all of it), the matcher, the sampling
(frame pairs or clips) with its :class:`AugmentationConfig`, and the optimisation. The CLI maps
its flags onto these fields and writes the resolved config into the run folder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from deepmot.assign.matcher import parse_matcher
from deepmot.loss.config import DeepMOTLossConfig

__all__ = ["MOTION_TRAINING", "AugmentationConfig", "TrackerTrainConfig"]


@dataclass(frozen=True)
class AugmentationConfig:
    """Trajectory augmentation of the tracks a training clip starts from (and of births).

    Attributes:
        perturb: probability that a track's starting box is rescaled and shifted (supp. A.2:
            "rescaled by 0.8–1.2, shifted by up to 0.25 of its size"; applied to every track,
            not to one box per clip as an indentation slip in the authors' code did).
        scale_range: the rescaling factors.
        max_offset: the largest shift, as a share of the box's width and height.
        drop: probability that an object starts the clip without a track (a missed object).
        false_tracks: mean number (Poisson) of false tracks per clip start, boxes of a typical
            size placed at random in the image.
        swap: probability, per track, of being picked for an id swap; picked tracks exchange
            ids in random pairs (the objects keep their earlier matches, so every swapped
            track is an ID switch at the clip's next frame).
        jitter: standard deviation, as a share of the box's width and height, of Gaussian noise
            added to every box of a starting history (and to births): the error of the boxes
            a tracker keeps at test time (refined by noisy detections), where ``perturb``
            moves only the last box, and by far more.
    """

    # Defaults measured for the motion tracker (benchmarks/table_motion.py --tune):
    # the supplementary's perturbation of the last box (perturb=1, designed for Tracktor,
    # whose regressor sees the pixels) teaches a motion model to distrust an accurate last box;
    # on synthetic tuning frames DeepMOT went from MOTA 50.0 (perturb=1) to 57.3 (perturb=0,
    # jitter=0.03, lr 1e-3) against 56.4 untrained. Image-based trackers may want perturb=1.
    perturb: float = 0.0
    scale_range: tuple[float, float] = (0.8, 1.2)
    max_offset: float = 0.25
    drop: float = 0.0
    false_tracks: float = 0.0
    swap: float = 0.0
    jitter: float = 0.03

    def __post_init__(self) -> None:
        if self.jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {self.jitter}")
        for name in ("perturb", "drop", "swap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"augmentation {name} must be a probability in [0, 1], got {value}"
                )
        if self.false_tracks < 0:
            raise ValueError(f"false_tracks must be >= 0, got {self.false_tracks}")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        if self.max_offset < 0:
            raise ValueError(f"max_offset must be >= 0, got {self.max_offset}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentationConfig:
        values = _known(cls, values)
        if "scale_range" in values:
            values["scale_range"] = tuple(values["scale_range"])
        return cls(**values)


@dataclass(frozen=True)
class TrackerTrainConfig:
    """Settings of a tracker training run; defaults from the paper where it gives them.

    Attributes:
        tracker: a trainable tracker's registered name (``deepmot train --tracker``).
        model: the tracker's model settings (fields of its config class; empty: defaults).
        loss: ``"deepmot"``, ``"smoothl1"`` (the paper's baseline), or ``"vanilla"``: a
            single-object tracker's own objective on frame pairs (:mod:`deepmot.train.sot`).
        deepmot: the DeepMOT loss's settings (δ, λ, γ, softmax scale, gating, dMOTA on/off).
        matcher: ``"dhn"`` (the shipped DHN), ``"dhn:PATH"`` (a DHN weights file) or
            ``"sinkhorn"``; frozen during training.
        sampling: ``"pairs"`` (tracks from the ground truth at t − 1, predicted at t) or
            ``"clips"`` (``clip_length`` frames in which the tracker runs on its own outputs).
        clip_length: frames per clip (the authors trained Tracktor on 10-frame clips).
        refine_iou: in clips, a track's box that overlaps a detection of its frame by more
            than this is refined with it before the next frame by the track management's own
            rule (supp. A.2: "higher than 0.6, we output their average"):
            :func:`~deepmot.trackers.management.match_and_refine` with the ``match_iou`` and
            ``refine_weight`` of the tracker's default management (``Trainable.management``;
            the paper's plain average for the motion tracker); None keeps the raw prediction.
        score_refined: the loss (DeepMOT or Smooth-L1) scores each predicted box after that
            refinement (moved towards its detection, what tracking reports) instead of the
            raw prediction, so that a model which copies the detections gains nothing; needs
            ``refine_iou``. False: the paper's loss on the regressor's output.
        augment: :class:`AugmentationConfig`.
        lr: Adam's learning rate (A.2: 1e-4; 1e-3 measured better for the motion tracker).
        scale_start: a softmax scale to start from, moved geometrically to ``deepmot.scale``
            over the run (soft to sharp); None keeps ``deepmot.scale`` throughout.
        iterations: optimisation steps.
        batch_size: pairs or clips per step.
        train_fraction: the first share of each sequence that trains (A.2: 50%).
        det_file: the detection file the sequences were loaded with (a record; whether the
            model looks at detections is its own setting, the same in training and tracking).
        checkpoint_every: steps between checkpoints.
        diagnose_every: steps between measurements of the gradient each loss term sends to
            the boxes (``log.csv``'s ``grad_*`` columns; each costs a few extra backward
            passes, so not every step by default).
        seed: seeds the model's initialisation and every step's samples.
        device: where the model trains.
        init_weights: trained weights of the same tracker to start from (fine-tuning, e.g.
            Smooth-L1 or DeepMOT from the Vanilla SOT model); None: a fresh model.
        focal_weight: weight of the focal classification term added to the loss of every
            frame (:mod:`deepmot.train.focal`), for trackers that score anchors (SiamRPN); the
            authors' released SiamRPN training used 10 (``utils/loss.py``, ``focaLoss``); 0
            leaves it out.
        focal_gamma: its focal exponent (the authors': 2, ``weighted_binary_focal_entropy``).
        freeze: parameters to keep fixed, by name prefix in the model's ``named_parameters``
            (e.g. ``features.0`` for a backbone's first layer; the authors froze SiamRPN's
            early layers); empty: all train.
        appearance: how the ReID head's appearance term enters the loss (the paper's
            +ReIDhead, Sec. 5.2 and supp. A.2 "Training with the ReIDhead"): the cosine
            distance between each track's mean embedding over the clip's earlier frames and the
            embedding of each ground-truth object's RoI. ``"joint"``: averaged with the two box
            terms into one D (eq. 3 with a third term); ``"branch"``: a second DeepMOT loss on
            the matrix of cosine distances alone, added to the boxes' (the authors' released
            code); ``"none"``: boxes only. FP~, FN~, IDS~ and dMOTP then train the predictor's
            ReID head (Tracktor with ``reid="head"``). DeepMOT loss only; the paper trains it
            on ten-frame clips (``sampling="clips"``, ``clip_length=10``).
        confidence: how the tracker's per-track confidence (its predictor's ``scores``, e.g.
            the motion model with ``model={"confidence": True}``) trains. ``"presence"``: the
            DeepMOT loss weights each track's part of FP~, FN~, IDS~ and dMOTP by it
            (``docs/loss.md``, "Presence-weighted loss"; loss ``deepmot``); ``"bce"``: binary
            cross-entropy against "the scored box matches an object at IoU >= 0.5" (Hungarian
            on IoU), ``confidence_weight`` times it added to the loss (``deepmot`` or
            ``smoothl1``); ``"none"``: not trained. With either of the first two, the clips
            mark a track unverified, as the track management does at test time, when no
            detection of its frame matches it at IoU >= ``verify_iou`` (so the predictor sees,
            as when tracking, which tracks are unverified), and a track that no object matches
            lives on while it is unverified (the management keeps it, invisible), so that a
            drifting unverified track is scored again; without, every track is verified and
            an unmatched one ends.
        confidence_weight: weight of the BCE term.
        confidence_lr: Adam's learning rate of the confidence head's parameters (names
            starting with ``confidence_``); None: ``lr``. The head starts from 0.5 everywhere
            and its per-track gradient is about 1/M of a frame's objects, so at ``lr`` it
            barely leaves 0.5 in a short run.
        verify_iou: the least IoU of that verification (the management's ``match_iou``).
    """

    tracker: str = "motion"
    model: dict[str, Any] = field(default_factory=dict)
    loss: Literal["deepmot", "smoothl1", "vanilla"] = "deepmot"
    deepmot: DeepMOTLossConfig = field(default_factory=DeepMOTLossConfig)
    matcher: str = "dhn"
    sampling: Literal["pairs", "clips"] = "pairs"
    clip_length: int = 10
    refine_iou: float | None = None
    score_refined: bool = False
    augment: AugmentationConfig = field(default_factory=AugmentationConfig)
    lr: float = 1e-3  # Adam; A.2's 1e-4 left the motion model where it started in 200 steps
    scale_start: float | None = None
    iterations: int = 500
    batch_size: int = 16
    train_fraction: float = 0.5  # first 50% of each sequence trains (A.2)
    det_file: str | None = "deepmot_clean_FRCNN.txt"
    checkpoint_every: int = 100
    diagnose_every: int = 10
    seed: int = 0
    device: str = "cpu"
    init_weights: str | None = None
    focal_weight: float = 0.0
    focal_gamma: float = 2.0
    freeze: tuple[str, ...] = ()
    appearance: Literal["none", "joint", "branch"] = "none"
    confidence: Literal["none", "presence", "bce"] = "none"
    confidence_weight: float = 1.0
    confidence_lr: float | None = None
    verify_iou: float = 0.3  # TrackManagementConfig.match_iou

    def __post_init__(self) -> None:
        if self.appearance not in ("none", "joint", "branch"):
            raise ValueError(
                f"appearance must be 'none', 'joint' or 'branch', got {self.appearance!r}"
            )
        if self.appearance != "none" and self.loss != "deepmot":
            raise ValueError("appearance (the ReID head's term in D) needs loss 'deepmot'")
        if self.loss not in ("deepmot", "smoothl1", "vanilla"):
            raise ValueError(f"loss must be 'deepmot', 'smoothl1' or 'vanilla', got {self.loss!r}")
        if self.sampling not in ("pairs", "clips"):
            raise ValueError(f"sampling must be 'pairs' or 'clips', got {self.sampling!r}")
        parse_matcher(self.matcher)
        for name in ("iterations", "batch_size", "checkpoint_every", "diagnose_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_length < 2:
            raise ValueError(f"clip_length must be >= 2, got {self.clip_length}")
        if not 0 < self.train_fraction <= 1:
            raise ValueError(f"train_fraction must lie in (0, 1], got {self.train_fraction}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.scale_start is not None and not self.scale_start > 0:
            raise ValueError(f"scale_start must be > 0, got {self.scale_start}")
        for name in ("focal_weight", "focal_gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.focal_weight > 0 and self.loss == "vanilla":
            raise ValueError("focal_weight adds to the deepmot or smoothl1 loss, not to vanilla")
        if self.refine_iou is not None and not 0 <= self.refine_iou <= 1:
            raise ValueError(f"refine_iou must lie in [0, 1], got {self.refine_iou}")
        if self.confidence not in ("none", "presence", "bce"):
            raise ValueError(
                f"confidence must be 'none', 'presence' or 'bce', got {self.confidence!r}"
            )
        if self.confidence == "presence" and self.loss != "deepmot":
            raise ValueError(
                "confidence 'presence' weights the DeepMOT loss: it needs loss 'deepmot'"
            )
        if self.confidence == "bce" and self.loss == "vanilla":
            raise ValueError(
                "confidence 'bce' adds to the deepmot or smoothl1 loss, not to vanilla"
            )
        if self.confidence_lr is not None and not self.confidence_lr > 0:
            raise ValueError(f"confidence_lr must be > 0, got {self.confidence_lr}")
        if self.confidence_weight < 0:
            raise ValueError(f"confidence_weight must be >= 0, got {self.confidence_weight}")
        if not 0 <= self.verify_iou <= 1:
            raise ValueError(f"verify_iou must lie in [0, 1], got {self.verify_iou}")
        if self.score_refined and self.refine_iou is None:
            raise ValueError("score_refined scores the refined boxes: it needs refine_iou")

    def scale_at(self, iteration: int) -> float:
        """The softmax scale of step ``iteration`` (0-based): ``scale_start`` moved
        geometrically to ``deepmot.scale`` at the last step; ``deepmot.scale`` without one."""
        end = self.deepmot.scale
        if self.scale_start is None or self.iterations <= 1:
            return end
        progress = min(1.0, iteration / (self.iterations - 1))
        return float(self.scale_start * (end / self.scale_start) ** progress)

    @property
    def frames_per_sample(self) -> int:
        """Frames of one training sample: 2 for pairs, ``clip_length`` for clips."""
        return 2 if self.sampling == "pairs" else self.clip_length

    @property
    def matcher_path(self) -> Path | None:
        """The DHN weights file of a ``"dhn:PATH"`` matcher; None for ``"dhn"``, Sinkhorn and a
        shipped DHN named ``"dhn:NAME"`` (no file of that name, shipped weights of it)."""
        from deepmot import WEIGHTS_DIR

        path = parse_matcher(self.matcher)[1]
        if not path:
            return None
        shipped = (WEIGHTS_DIR / f"dhn_{path}.safetensors").is_file()
        return None if shipped and not Path(path).is_file() else Path(path)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrackerTrainConfig:
        values = _known(cls, values)
        values["deepmot"] = DeepMOTLossConfig.from_dict(values.get("deepmot", {}))
        values["augment"] = AugmentationConfig.from_dict(values.get("augment", {}))
        values["model"] = dict(values.get("model", {}))
        values["freeze"] = tuple(values.get("freeze", ()))
        return cls(**values)


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return dict(values)


MOTION_TRAINING: dict[str, Any] = {"sampling": "clips", "clip_length": 5, "refine_iou": 0.6}
""":class:`TrackerTrainConfig` fields with which the MOT17 motion tables (``deepmot reproduce
comparison`` / ``loss-ablation``) train the learned motion tracker, with either loss: clips of 5
frames where it runs on its own outputs, each kept box averaged with a detection overlapping it
by more than 0.6 (supp. A.2's test-time refinement, by the motion tracker's management rule:
0.6 and the plain average are its defaults), the loss on the raw prediction. Chosen on
MOT17 tuning frames only (train on the first 35% of each sequence, score frames 35-50%,
``benchmarks/table_motion.py --tune``, 100 steps, seeds 0-2), by the largest smaller margin over
the untrained model on MOTA and IDF1 among pairs, pairs without detections, pairs or clips
scoring the refined box, and lower learning rates: DeepMOT MOTA 49.14 ± 0.18, IDF1 62.54 ± 0.36
against 48.96 / 62.29 untrained (pairs: 49.05 / 61.69), measured while the rollout paired each
box with its highest-IoU detection without the management's ``match_iou`` gate and refined
only the tracks left alive. ``deepmot demo`` keeps frame pairs,
which trained the better model on the synthetic scenes' own tuning frames."""
