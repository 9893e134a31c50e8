"""Motion trackers: a constant-velocity baseline and a learned motion regressor.

Both are :class:`~deepmot.trackers.predictor.MotionModel` s: they map each track's recent
boxes ``history (T, L, 4)`` (with ``mask (T, L)``) to its box in the next frame ``(T, 4)``.
:class:`~deepmot.trackers.predictor.MotionPredictor` adapts one to the predictor contract, and
:class:`~deepmot.trackers.management.ManagedTracker` puts it inside the shared track management
behind the one tracker interface (``reset`` / ``update``); the registrations are at the end.

* :class:`ConstantVelocityModel` — no learning: the box moves by its mean velocity over the
  last ``velocity_steps`` steps (Tracktor's optional motion model, ``n_steps: 1``,
  ``center_only: True``). This is the "Vanilla" row of the paper's tables for a motion tracker.
* :class:`LearnedMotionModel` — a small MLP that regresses like Tracktor's box head, but from
  motion alone (and, optionally, the detections near each track): its input is the history
  expressed in Faster R-CNN box-coder space relative to the last box (so it is invariant to
  where the box is and how big it is), the last box's position in the image, and the nearest
  detections in the same space; it outputs a correction, in box-coder space, of a
  constant-velocity (or identity) prediction. The last layer starts at zero, so an untrained
  model *is* the constant-velocity tracker; training (DeepMOT loss or Smooth-L1) moves it from
  there. It is differentiable from ``history`` and ``detections`` to the boxes it returns.

Weights are saved with :func:`save_motion_model` (safetensors, atomic) next to a JSON card
holding the :class:`LearnedMotionConfig`; :func:`load_motion_model` reads them back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from deepmot.boxes import box_iou
from deepmot.io.weights import load_state, read_weights, save_weights
from deepmot.trackers.predictor import (
    MotionPredictor,
    Prediction,
    Predictor,
    TrackBatch,
    module_device,
)
from deepmot.trackers.registry import Trainable, register_tracker, register_trainable

__all__ = [
    "ConstantVelocityConfig",
    "ConstantVelocityModel",
    "LearnedMotionConfig",
    "LearnedMotionModel",
    "UNVERIFIED_KEY",
    "decode_deltas",
    "encode_boxes",
    "load_motion_model",
    "save_motion_model",
]

UNVERIFIED_KEY = "unverified_frames"
"""The key, in a track's ``extras``, of the learned motion predictor's count of the frames since
a detection last verified the track (an input of its confidence head)."""
_CONFIDENCE_INPUTS = 2  # verified at t − 1, log(1 + frames unverified)
_MIN_SIZE = 1e-3  # px: widths/heights are floored here before dividing or taking logs
_MAX_LOG_SCALE = math.log(1000.0 / 16)  # torchvision's BoxCoder clamp of dw, dh


# --------------------------------------------------------------------------- box coder


def encode_boxes(boxes: Tensor, reference: Tensor) -> Tensor:
    """Faster R-CNN box-coder deltas of ``boxes`` relative to ``reference``.

    ``dx = (cx - cx_r) / w_r``, ``dy = (cy - cy_r) / h_r``, ``dw = log(w / w_r)``,
    ``dh = log(h / h_r)`` (weights 1).

    Args:
        boxes: ``(..., 4)`` xyxy; reference: ``(..., 4)`` xyxy, broadcastable.

    Returns:
        ``(..., 4)`` deltas; differentiable.
    """
    w = (boxes[..., 2] - boxes[..., 0]).clamp(min=_MIN_SIZE)
    h = (boxes[..., 3] - boxes[..., 1]).clamp(min=_MIN_SIZE)
    wr = (reference[..., 2] - reference[..., 0]).clamp(min=_MIN_SIZE)
    hr = (reference[..., 3] - reference[..., 1]).clamp(min=_MIN_SIZE)
    dx = ((boxes[..., 0] + boxes[..., 2]) - (reference[..., 0] + reference[..., 2])) / (2 * wr)
    dy = ((boxes[..., 1] + boxes[..., 3]) - (reference[..., 1] + reference[..., 3])) / (2 * hr)
    return torch.stack([dx, dy, torch.log(w / wr), torch.log(h / hr)], dim=-1)


def decode_deltas(deltas: Tensor, reference: Tensor) -> Tensor:
    """Inverse of :func:`encode_boxes`: ``(..., 4)`` deltas + ``(..., 4)`` xyxy reference to
    ``(..., 4)`` xyxy. ``dw``, ``dh`` are clamped at ``log(1000 / 16)`` as torchvision does."""
    wr = (reference[..., 2] - reference[..., 0]).clamp(min=_MIN_SIZE)
    hr = (reference[..., 3] - reference[..., 1]).clamp(min=_MIN_SIZE)
    cx = (reference[..., 0] + reference[..., 2]) / 2 + deltas[..., 0] * wr
    cy = (reference[..., 1] + reference[..., 3]) / 2 + deltas[..., 1] * hr
    w = wr * torch.exp(deltas[..., 2].clamp(max=_MAX_LOG_SCALE))
    h = hr * torch.exp(deltas[..., 3].clamp(max=_MAX_LOG_SCALE))
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _check_history(history: Tensor, mask: Tensor) -> None:
    if history.ndim != 3 or history.shape[-1] != 4:
        raise ValueError(f"history must have shape (T, L, 4), got {tuple(history.shape)}")
    if mask.shape != history.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(history.shape[:2])}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )


def _mean_velocity(history: Tensor, mask: Tensor, steps: int, center_only: bool) -> Tensor:
    """Mean per-frame displacement ``(T, 4)`` over the last ``steps`` valid steps (0 if none)."""
    recent, valid = history[:, -(steps + 1) :], mask[:, -(steps + 1) :]
    diffs = recent[:, 1:] - recent[:, :-1]  # (T, s, 4)
    if center_only:
        centre = (diffs[..., :2] + diffs[..., 2:]) / 2
        diffs = torch.cat([centre, centre], dim=-1)
    pair = (valid[:, 1:] & valid[:, :-1]).to(diffs.dtype)[..., None]  # (T, s, 1)
    return (diffs * pair).sum(1) / pair.sum(1).clamp(min=1)


# --------------------------------------------------------------------------- constant velocity


@dataclass(frozen=True)
class ConstantVelocityConfig:
    """Settings of :class:`ConstantVelocityModel`.

    Attributes:
        velocity_steps: the velocity is the mean displacement over this many recent steps
            (Tracktor's ``motion_model.n_steps: 1``).
        center_only: move the centre only and keep the size (Tracktor's
            ``center_only: True``); False extrapolates all four coordinates.
    """

    velocity_steps: int = 1
    center_only: bool = True

    def __post_init__(self) -> None:
        if self.velocity_steps < 1:
            raise ValueError(f"velocity_steps must be >= 1, got {self.velocity_steps}")


class ConstantVelocityModel(nn.Module):
    """Constant-velocity extrapolation: ``box_t = box_{t-1} + mean velocity`` (no parameters).

    A track with a single box stays where it is.
    """

    def __init__(self, config: ConstantVelocityConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ConstantVelocityConfig()

    @property
    def history_len(self) -> int:
        return self.config.velocity_steps + 1

    def forward(
        self,
        history: Tensor,
        mask: Tensor,
        detections: Tensor | None = None,
        image_size: tuple[float, float] | None = None,
    ) -> Tensor:
        """``history (T, L, 4)`` xyxy + ``mask (T, L)`` -> ``(T, 4)`` xyxy; ignores the
        detections and the image size."""
        _check_history(history, mask)
        velocity = _mean_velocity(
            history, mask, self.config.velocity_steps, self.config.center_only
        )
        return history[:, -1] + velocity


# --------------------------------------------------------------------------- learned


@dataclass(frozen=True)
class LearnedMotionConfig:
    """Settings of :class:`LearnedMotionModel` (not from the paper, which trains image-based
    trackers; kept small so that it trains in minutes on a CPU).

    Attributes:
        history_len: recent boxes per track fed to the network.
        hidden: width of the hidden layers.
        num_layers: hidden layers of the MLP.
        use_detections: also feed the ``num_neighbours`` detections of the predicted frame
            that overlap the base prediction most (box-coder deltas, IoU, a validity flag).
        num_neighbours: how many detections per track.
        use_position: feed the last box's centre and size over the image size (tracks near a
            border behave differently); zeros where the image size is unknown.
        base: ``"constant_velocity"`` or ``"identity"``: the prediction the network corrects
            (its output starts at zero, so the untrained model returns the base).
        base_velocity_steps: ``velocity_steps`` of the constant-velocity base.
        max_delta: input deltas are clamped to ``[-max_delta, max_delta]`` (far detections).
        correct_unverified: apply the learned correction to tracks no detection verified at
            t − 1 (invisible ones, which the track management moves for up to K frames).
            False moves them by the base prediction alone: training sees verified tracks only,
            and an invisible track's corrections chain on its own outputs and lean on the
            detections near it, which are other people's. The default, False, was measured
            on MOT17 tuning frames (35-50%, ``benchmarks/table_motion.py --tune``, 100 steps,
            seeds 0-2): it raised the DeepMOT-trained model's IDF1 in each of 5 training
            settings (pairs 60.71 -> 61.69, clips of 5 with refinement 61.51 -> 62.54, against
            62.29 untrained) with MOTA within ±0.18; the untrained model is unchanged.
        confidence: a second small MLP (``confidence_hidden`` wide, ``num_layers`` deep) on
            the same features, plus whether the track was verified at t − 1 and for how many
            frames it has not been, predicts each track's confidence in (0, 1) (the
            :class:`~deepmot.trackers.predictor.Prediction` ``scores``): the track management
            reports an unverified track above ``report_confidence`` and ends one below
            ``end_confidence``. Off by default (no scores: every existing number unchanged).
            Its last layer starts at zero: an untrained head says 0.5 for every track.
        confidence_hidden: width of its hidden layers.
        confidence_max_unverified: the count of unverified frames the head sees is capped
            here: training clips show it short gaps only, and a track unverified for longer
            looks to it like one unverified this long (train on clips longer than this).
    """

    history_len: int = 5
    hidden: int = 64
    num_layers: int = 2
    use_detections: bool = True
    num_neighbours: int = 4
    use_position: bool = True
    base: str = "constant_velocity"
    base_velocity_steps: int = 1
    max_delta: float = 4.0
    correct_unverified: bool = False
    confidence: bool = False
    confidence_hidden: int = 32
    confidence_max_unverified: int = 10

    def __post_init__(self) -> None:
        if self.history_len < 2:
            raise ValueError(f"history_len must be >= 2, got {self.history_len}")
        if self.base_velocity_steps >= self.history_len:
            raise ValueError("base_velocity_steps must be < history_len")
        if self.base not in ("constant_velocity", "identity"):
            raise ValueError(f"base must be 'constant_velocity' or 'identity', got {self.base!r}")
        for name in (
            "hidden",
            "num_layers",
            "num_neighbours",
            "base_velocity_steps",
            "confidence_hidden",
            "confidence_max_unverified",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_delta <= 0:
            raise ValueError(f"max_delta must be > 0, got {self.max_delta}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LearnedMotionConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown LearnedMotionConfig keys {sorted(unknown)}")
        return cls(**values)


class LearnedMotionModel(nn.Module):
    """Predict each track's next box from its recent boxes (and nearby detections).

    Input features per track (all invariant to translation and scale of the track):

    * each history box encoded relative to the last box (``L x 4``) and the mask (``L``);
    * with ``use_position``: ``(cx / W, cy / H, w / W, h / H)`` of the last box;
    * with ``use_detections``: for the ``M`` detections with the highest IoU with the base
      prediction, their deltas relative to it, the IoU and a validity flag (``M x 6``).

    Output: ``decode(encode(base, last) + mlp(features), last)`` with ``base`` the
    constant-velocity (or identity) prediction. The MLP's last layer is zero-initialised.

    Args:
        config: :class:`LearnedMotionConfig`.
    """

    def __init__(self, config: LearnedMotionConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else LearnedMotionConfig()
        c = self.config
        in_size = c.history_len * 5 + 4 + (c.num_neighbours * 6 if c.use_detections else 0)
        layers: list[nn.Module] = []
        width = in_size
        for _ in range(c.num_layers):
            layers += [nn.Linear(width, c.hidden), nn.ReLU()]
            width = c.hidden
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if c.confidence:
            # its own layers, so that training it alone leaves the boxes as they are
            layers, width = [], in_size + _CONFIDENCE_INPUTS
            for _ in range(c.num_layers):
                layers += [nn.Linear(width, c.confidence_hidden), nn.ReLU()]
                width = c.confidence_hidden
            last = nn.Linear(width, 1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.confidence_mlp = nn.Sequential(*layers, last)

    @property
    def history_len(self) -> int:
        return self.config.history_len

    def base_prediction(self, history: Tensor, mask: Tensor) -> Tensor:
        """The prediction the network corrects, ``(T, 4)`` xyxy."""
        if self.config.base == "identity":
            return history[:, -1]
        velocity = _mean_velocity(history, mask, self.config.base_velocity_steps, True)
        return history[:, -1] + velocity

    def features(
        self,
        history: Tensor,
        mask: Tensor,
        base: Tensor,
        detections: Tensor | None,
        image_size: tuple[float, float] | None,
    ) -> Tensor:
        """The network's input ``(T, F)``; see the class doc."""
        c = self.config
        t = len(history)
        limit = c.max_delta
        last = history[:, -1]
        fmask = mask.to(history.dtype)
        rel = encode_boxes(history, last[:, None]).clamp(-limit, limit) * fmask[..., None]
        parts = [rel.flatten(1), fmask]
        if c.use_position and image_size is not None:
            width, height = float(image_size[0]), float(image_size[1])
            scale = history.new_tensor([width, height, width, height])
            cx = (last[:, 0] + last[:, 2]) / 2
            cy = (last[:, 1] + last[:, 3]) / 2
            size = last[:, 2:] - last[:, :2]
            parts.append(torch.stack([cx, cy, size[:, 0], size[:, 1]], dim=1) / scale)
        else:
            parts.append(history.new_zeros((t, 4)))
        if c.use_detections:
            parts.append(self._neighbour_features(base, detections))
        return torch.cat(parts, dim=1)

    def _neighbour_features(self, base: Tensor, detections: Tensor | None) -> Tensor:
        m = self.config.num_neighbours
        t = len(base)
        if detections is None or len(detections) == 0 or t == 0:
            return base.new_zeros((t, m * 6))
        dets = detections[:, :4].to(base.dtype)
        iou = box_iou(base, dets)  # (T, K)
        deltas = encode_boxes(dets[None], base[:, None]).clamp(
            -self.config.max_delta, self.config.max_delta
        )  # (T, K, 4)
        # rank by IoU, ties (IoU 0: far detections) by centre distance in box units
        with torch.no_grad():
            key = iou - 1e-3 * deltas[..., :2].pow(2).sum(-1)
        k = min(m, dets.shape[0])
        idx = key.topk(k, dim=1).indices  # (T, k)
        near_iou = iou.gather(1, idx)
        near = deltas.gather(1, idx[..., None].expand(t, k, 4))
        feats = torch.cat([near, near_iou[..., None], torch.ones_like(near_iou)[..., None]], -1)
        if k < m:
            feats = torch.cat([feats, feats.new_zeros((t, m - k, 6))], dim=1)
        return feats.flatten(1)

    def forward(
        self,
        history: Tensor,
        mask: Tensor,
        detections: Tensor | None = None,
        image_size: tuple[float, float] | None = None,
    ) -> Tensor:
        """Predicted boxes.

        Args:
            history: ``(T, L, 4)`` xyxy, oldest first, the last column the most recent box;
                ``L`` may differ from ``config.history_len`` (the last ones are used, missing
                ones count as padding).
            mask: ``(T, L)`` bool, True where ``history`` holds a box.
            detections: ``(K, 4|5|6)`` xyxy[+score[+class]] of the predicted frame, or None.
            image_size: ``(width, height)`` or None.

        Returns:
            ``(T, 4)`` xyxy, differentiable with respect to ``history``, ``detections`` and
            the parameters.
        """
        _check_history(history, mask)
        history, mask = self._fit_length(history, mask)
        base = self.base_prediction(history, mask)
        if len(history) == 0:
            return base
        last = history[:, -1]
        x = self.features(history, mask, base, detections, image_size)
        correction = self.head(self.mlp(x))
        return decode_deltas(encode_boxes(base, last) + correction, last)

    def confidence(
        self,
        history: Tensor,
        mask: Tensor,
        verified: Tensor,
        unverified_frames: Tensor,
        detections: Tensor | None = None,
        image_size: tuple[float, float] | None = None,
    ) -> Tensor:
        """Each track's confidence ``(T,)`` in (0, 1), differentiable (needs
        ``config.confidence``).

        Args:
            history, mask, detections, image_size: as :meth:`forward`.
            verified: ``(T,)`` bool, whether a detection verified the track at t − 1.
            unverified_frames: ``(T,)`` frames since a detection last verified it (0 if it
                did at t − 1).
        """
        if not self.config.confidence:
            raise ValueError("this motion model has no confidence head (config.confidence)")
        _check_history(history, mask)
        history, mask = self._fit_length(history, mask)
        base = self.base_prediction(history, mask)
        if len(history) == 0:
            return base.new_zeros((0,))
        x = self.features(history, mask, base, detections, image_size)
        state = torch.stack(
            [verified.to(x.dtype), torch.log1p(unverified_frames.to(x.dtype))], dim=1
        )
        logit = self.confidence_mlp(torch.cat([x, state], dim=1))[:, 0]
        return torch.sigmoid(logit)

    def _fit_length(self, history: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        length = self.config.history_len
        if history.shape[1] >= length:
            return history[:, -length:], mask[:, -length:]
        pad = length - history.shape[1]
        first = history[:, :1].expand(-1, pad, -1)
        return torch.cat([first, history], 1), torch.cat(
            [mask.new_zeros((len(mask), pad)), mask], 1
        )


class LearnedMotionPredictor(MotionPredictor):
    """:class:`~deepmot.trackers.predictor.MotionPredictor` of a :class:`LearnedMotionModel`
    that, unless its config's ``correct_unverified``, moves the tracks not verified at t − 1
    by the model's base prediction (the untrained model's) and the others by the model; with
    the config's ``confidence``, its scores are the confidence head's (each track's count of
    frames since it was last verified lives in its ``extras``, :data:`UNVERIFIED_KEY`)."""

    model: LearnedMotionModel

    def predict(
        self,
        frame: Any,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        out = super().predict(frame, tracks, detections, image_size)
        device = out.boxes.device
        boxes = out.boxes
        if not (self.model.config.correct_unverified or bool(tracks.verified.all())):
            history, mask = self.model._fit_length(
                tracks.history.to(device), tracks.mask.to(device)
            )
            base = self.model.base_prediction(history, mask)
            boxes = torch.where(tracks.verified.to(device)[:, None], out.boxes, base)
        if not self.model.config.confidence:
            return Prediction(boxes)
        return Prediction(boxes, scores=self._confidence(tracks, detections, image_size))

    def _confidence(
        self, tracks: TrackBatch, detections: Tensor | None, image_size: tuple[int, int] | None
    ) -> Tensor:
        """The confidence head's ``(T,)``; counts each track's unverified frames first."""
        counts = []
        for extra, verified in zip(tracks.extras, tracks.verified.tolist(), strict=True):
            extra[UNVERIFIED_KEY] = 0 if verified else int(extra.get(UNVERIFIED_KEY, 0)) + 1
            counts.append(min(extra[UNVERIFIED_KEY], self.model.config.confidence_max_unverified))
        device = module_device(self.model)
        return self.model.confidence(
            tracks.history.to(device),
            tracks.mask.to(device),
            tracks.verified.to(device),
            torch.tensor(counts, dtype=torch.float32, device=device),
            None if detections is None else detections.to(device),
            image_size,
        )


# --------------------------------------------------------------------------- save / load


def save_motion_model(
    model: LearnedMotionModel, path: str | Path, card: dict[str, Any] | None = None
) -> None:
    """Write the weights to ``path`` (safetensors, config in its metadata) and a JSON card to
    ``path`` with suffix ``.json`` (the config plus ``card``), both atomically."""
    save_weights(model, model.config.to_dict(), path, card)


def load_motion_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> LearnedMotionModel:
    """Read weights written by :func:`save_motion_model` (config from the file's metadata, else
    from the JSON card beside it). Returns the model in eval mode."""
    config, state = read_weights(path, "motion-model", map_location)
    return load_state(LearnedMotionModel(LearnedMotionConfig.from_dict(config)), state, path)


# --------------------------------------------------------------------------- registrations


@register_tracker("constant_velocity", config=ConstantVelocityConfig)
def constant_velocity(config: ConstantVelocityConfig) -> Predictor:
    """The untrained "Vanilla" motion tracker."""
    return MotionPredictor(ConstantVelocityModel(config))


MOTION = register_trainable(
    Trainable(
        name="motion",
        config=LearnedMotionConfig,
        build=LearnedMotionModel,
        predictor=LearnedMotionPredictor,
        save=save_motion_model,
        load=load_motion_model,
        weights_file="motion.safetensors",
        detections_switch="use_detections",
    )
)
"""The learned motion tracker; untrained, it behaves as ``constant_velocity``."""
