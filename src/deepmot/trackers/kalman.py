"""A Kalman-filter motion baseline: constant velocity in centre / aspect / height (SORT, ByteTrack).

The filter is the one DeepSORT introduced and ByteTrack reuses (``kalman_filter.py`` in both):

* state ``(cx, cy, a, h, vcx, vcy, va, vh)``: box centre, aspect ratio ``a = w / h``, height,
  and their velocities per frame;
* measurement ``(cx, cy, a, h)`` (the state's first four entries, ``H = [I 0]``);
* constant-velocity motion ``F = [[I, dt I], [0, I]]``;
* process and measurement noise proportional to the box height (so a large, near box may move
  more pixels than a small, far one), except for the aspect ratio, whose noise is fixed.

:class:`KalmanBoxFilter` holds the maths, vectorised over tracks (numpy float64).
:class:`KalmanPredictor` puts it behind the :class:`~deepmot.trackers.predictor.Predictor`
contract, so that it tracks inside the same
:class:`~deepmot.trackers.management.TrackManager` as the constant-velocity model and the
learned motion model. Its per-track state lives in the track's ``extras`` dict, not on the
predictor, so one predictor serves any number of sequences and needs no reset.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from deepmot.trackers.management import DETECTION_KEY
from deepmot.trackers.predictor import Frame, Prediction, Predictor, TrackBatch
from deepmot.trackers.registry import register_tracker

__all__ = [
    "KalmanBoxFilter",
    "KalmanConfig",
    "KalmanPredictor",
    "xyah_to_xyxy",
    "xyxy_to_xyah",
]

STATE_KEY = "kalman"
"""The key of a track's filter state ``(mean (8,), cov (8, 8))`` in its ``extras`` dict."""


@dataclass(frozen=True)
class KalmanConfig:
    """Settings of :class:`KalmanBoxFilter`; defaults from DeepSORT's and ByteTrack's
    ``kalman_filter.py`` (``deep_sort/kalman_filter.py``, ``yolox/tracker/kalman_filter.py``).

    Attributes:
        std_weight_position: standard deviation of the position (centre and height) noise per
            pixel of box height (``_std_weight_position = 1. / 20``).
        std_weight_velocity: the same for the velocities (``_std_weight_velocity = 1. / 160``).
        dt: time step between frames in the motion matrix (``dt = 1.``).
        std_aspect_position: process noise standard deviation of the aspect ratio (``1e-2``
            in their ``predict``), in aspect units, not scaled by the height.
        std_aspect_velocity: process noise standard deviation of the aspect velocity
            (``1e-5``).
        std_aspect_measurement: measurement noise standard deviation of the aspect ratio
            (``1e-1`` in their ``project``).
        init_position_factor: the initial position standard deviation is this times
            ``std_weight_position * h`` (``2`` in their ``initiate``; the initial aspect
            standard deviation is ``std_aspect_position``, their ``1e-2``).
        init_velocity_factor: the initial velocity standard deviation is this times
            ``std_weight_velocity * h`` (``10`` in their ``initiate``; the initial aspect
            velocity standard deviation is ``std_aspect_velocity``, their ``1e-5``).
        hold_height_unverified: before predicting a track that no detection verified at
            t − 1, set its height velocity to 0, so that a lost box does not keep growing or
            shrinking (ByteTrack's ``STrack.multi_predict`` does this for tracks that are not
            in the ``Tracked`` state). Its centre keeps moving at the learned velocity.
        min_size: px; widths and heights are floored here wherever they are divided by or
            scale a noise, and the predicted boxes' sizes too, so a degenerate (zero-height)
            box gives finite output. Not in the references, which assume positive heights.
        measure_detection: update the filter with the detection that verified a track, as
            detected (SORT, DeepSORT and ByteTrack measure the detection). False measures the
            box the track management kept instead: the prediction itself where their IoU is
            below the refinement threshold, its average with the detection above it, so the
            filter sees little or none of the innovation and drifts. Measured on PETS09-S2L1
            (7 fps, ``det.txt``) tuning frames 35-50%: MOTA 25.81 with False, 72.33 with True
            (constant velocity: 60.74); see docs/baselines.md.
    """

    std_weight_position: float = 1.0 / 20
    std_weight_velocity: float = 1.0 / 160
    dt: float = 1.0
    std_aspect_position: float = 1e-2
    std_aspect_velocity: float = 1e-5
    std_aspect_measurement: float = 1e-1
    init_position_factor: float = 2.0
    init_velocity_factor: float = 10.0
    hold_height_unverified: bool = True
    min_size: float = 1.0
    measure_detection: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in ("hold_height_unverified", "measure_detection"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{f.name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{f.name} must be finite and > 0, got {value}")
        if not isinstance(self.hold_height_unverified, bool):
            raise TypeError("hold_height_unverified must be a bool")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> KalmanConfig:
        """A config from :meth:`to_dict`'s output (missing keys take the defaults)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown KalmanConfig settings {unknown}; valid: {sorted(names)}")
        return cls(**values)


# --------------------------------------------------------------------------- box formats


def xyxy_to_xyah(boxes: np.ndarray, min_size: float = 1.0) -> np.ndarray:
    """Corner boxes to the filter's measurement space.

    Args:
        boxes: ``(..., 4)`` xyxy.
        min_size: heights below this (px) are taken as this, so the aspect ratio stays finite.

    Returns:
        ``(..., 4)`` float64 ``(cx, cy, a, h)`` with ``a = w / h``; ``w`` is floored at 0.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    w = np.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    h = np.maximum(boxes[..., 3] - boxes[..., 1], min_size)
    cx = (boxes[..., 0] + boxes[..., 2]) / 2
    cy = (boxes[..., 1] + boxes[..., 3]) / 2
    return np.stack([cx, cy, w / h, h], axis=-1)


def xyah_to_xyxy(xyah: np.ndarray, min_size: float = 1.0) -> np.ndarray:
    """The filter's ``(cx, cy, a, h)`` back to corner boxes.

    Args:
        xyah: ``(..., 4)`` ``(cx, cy, a, h)``.
        min_size: the width and height are floored here (px), so every box has an area.

    Returns:
        ``(..., 4)`` float64 xyxy centred on ``(cx, cy)``.
    """
    xyah = np.asarray(xyah, dtype=np.float64)
    h = np.maximum(xyah[..., 3], min_size)
    w = np.maximum(xyah[..., 2] * h, min_size)
    cx, cy = xyah[..., 0], xyah[..., 1]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


# --------------------------------------------------------------------------- the filter


class KalmanBoxFilter:
    """A constant-velocity Kalman filter over ``(cx, cy, a, h)``, vectorised over tracks.

    All arrays are float64: ``mean (T, 8)`` ``(cx, cy, a, h, vcx, vcy, va, vh)``, ``cov
    (T, 8, 8)``, measurements ``(T, 4)`` ``(cx, cy, a, h)``. The noise of each track is scaled
    by its height (the measurement's in :meth:`initiate`, the state's in :meth:`predict` and
    :meth:`update`, as in DeepSORT and ByteTrack), floored at ``config.min_size``.

    Args:
        config: :class:`KalmanConfig` (None: the defaults).
    """

    ndim = 4

    def __init__(self, config: KalmanConfig | None = None) -> None:
        self.config = config if config is not None else KalmanConfig()
        n = self.ndim
        self.motion_mat = np.eye(2 * n)
        self.motion_mat[:n, n:] = self.config.dt * np.eye(n)
        self.update_mat = np.eye(n, 2 * n)

    def _height(self, h: np.ndarray) -> np.ndarray:
        return np.maximum(h, self.config.min_size)

    def _stds(self, h: np.ndarray, position: float, aspect: float) -> np.ndarray:
        """``(T, 4)`` standard deviations ``(position * h, position * h, aspect, position * h)``."""
        scaled = position * self._height(h)
        return np.stack([scaled, scaled, np.full_like(scaled, aspect), scaled], axis=-1)

    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New states from unassociated measurements ``(T, 4)``: the measured position, zero
        velocity, and a diagonal covariance with standard deviations ``(2 wp h, 2 wp h, 1e-2,
        2 wp h, 10 wv h, 10 wv h, 1e-5, 10 wv h)`` (defaults; ``wp``, ``wv`` the weights).

        Returns:
            ``mean (T, 8)``, ``cov (T, 8, 8)``.
        """
        cfg = self.config
        z = _as_rows(measurements, 4, "measurements")
        h = z[:, 3]
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        position = cfg.init_position_factor * cfg.std_weight_position
        velocity = cfg.init_velocity_factor * cfg.std_weight_velocity
        std = np.concatenate(
            [
                self._stds(h, position, cfg.std_aspect_position),
                self._stds(h, velocity, cfg.std_aspect_velocity),
            ],
            axis=1,
        )
        return mean, _diag(np.square(std))

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step ahead: ``mean' = F mean``, ``cov' = F cov F^T + Q`` with ``Q`` diagonal,
        standard deviations ``(wp h, wp h, 1e-2, wp h, wv h, wv h, 1e-5, wv h)`` (defaults) and
        ``h`` the height of ``mean`` before the step.

        Returns:
            ``mean (T, 8)``, ``cov (T, 8, 8)`` (new arrays).
        """
        cfg = self.config
        mean, cov = self._check(mean, cov)
        h = mean[:, 3]
        std = np.concatenate(
            [
                self._stds(h, cfg.std_weight_position, cfg.std_aspect_position),
                self._stds(h, cfg.std_weight_velocity, cfg.std_aspect_velocity),
            ],
            axis=1,
        )
        f = self.motion_mat
        return mean @ f.T, f @ cov @ f.T + _diag(np.square(std))

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state's distribution in measurement space: ``H mean`` ``(T, 4)`` and
        ``S = H cov H^T + R`` ``(T, 4, 4)``, ``R`` diagonal with standard deviations ``(wp h,
        wp h, 1e-1, wp h)`` (defaults)."""
        cfg = self.config
        mean, cov = self._check(mean, cov)
        std = self._stds(mean[:, 3], cfg.std_weight_position, cfg.std_aspect_measurement)
        hm = self.update_mat
        return mean @ hm.T, hm @ cov @ hm.T + _diag(np.square(std))

    def update(
        self, mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Correct predicted states with measurements ``(T, 4)``: gain ``K = cov H^T S^-1``,
        ``mean' = mean + K (z - H mean)``, ``cov' = cov - K S K^T``.

        Returns:
            ``mean (T, 8)``, ``cov (T, 8, 8)`` (new arrays).
        """
        mean, cov = self._check(mean, cov)
        z = _as_rows(measurements, 4, "measurements")
        if len(z) != len(mean):
            raise ValueError(f"{len(z)} measurements for {len(mean)} states")
        projected, s = self.project(mean, cov)
        # K^T = S^-1 (H cov): S and cov are symmetric. S is positive definite (R is).
        gain = np.swapaxes(np.linalg.solve(s, self.update_mat @ cov), -1, -2)
        innovation = z - projected
        new_mean = mean + np.einsum("tij,tj->ti", gain, innovation)
        new_cov = cov - gain @ s @ np.swapaxes(gain, -1, -2)
        return new_mean, (new_cov + np.swapaxes(new_cov, -1, -2)) / 2

    def _check(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = _as_rows(mean, 8, "mean")
        cov = np.asarray(cov, dtype=np.float64)
        if cov.shape != (len(mean), 8, 8):
            raise ValueError(f"cov must have shape ({len(mean)}, 8, 8), got {cov.shape}")
        return mean, cov


def _as_rows(values: np.ndarray, width: int, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != width:
        raise ValueError(f"{name} must have shape (T, {width}), got {values.shape}")
    return values


def _diag(values: np.ndarray) -> np.ndarray:
    """``(T, n)`` -> ``(T, n, n)`` diagonal matrices."""
    out = np.zeros((*values.shape, values.shape[-1]))
    idx = np.arange(values.shape[-1])
    out[:, idx, idx] = values
    return out


# --------------------------------------------------------------------------- the predictor


class KalmanPredictor(Predictor):
    """A :class:`KalmanBoxFilter` behind the :class:`~deepmot.trackers.predictor.Predictor`
    contract: no image, no score, no parameters.

    Each track's state ``(mean (8,), cov (8, 8))`` float64 is kept in
    ``tracks.extras[i]["kalman"]`` as the prediction for the frame being tracked. On each
    :meth:`predict` call (frame t), for track ``i``:

    * without a state, or with a restarted history (one valid box in ``mask``: a new or
      revived track), the filter is initiated from ``history[i, -1]`` (zero velocity);
    * otherwise, if ``verified[i]`` (a detection verified the box at t − 1), the state is first
      updated with the measurement: the detection that verified it
      (``tracks.extras[i]["detection"]``, which the track management records), or with
      ``config.measure_detection`` off the box the management kept at t − 1,
      ``history[i, -1]``; an unverified track is not updated (its last box is the filter's own
      prediction), and with ``config.hold_height_unverified`` its height velocity is set to 0;
    * then every state is predicted one step, and its box is the track's box at t.

    Degenerate boxes: heights below ``config.min_size`` are taken as ``min_size`` for the
    aspect ratio and the noise, and predicted widths and heights are floored at ``min_size``,
    so a zero-height box gives a finite, ``min_size``-high prediction rather than NaN.

    The output does not depend on the history beyond the last box and the mask, so it has no
    gradient with respect to it (the filter has nothing to train).

    Args:
        config: :class:`KalmanConfig` (None: the defaults).
    """

    needs_images = False
    history_len = 2  # the last box, and one more to tell a restarted history from a continuing one

    def __init__(self, config: KalmanConfig | None = None) -> None:
        self.config = config if config is not None else KalmanConfig()
        self.filter = KalmanBoxFilter(self.config)

    def predict(
        self,
        frame: Frame,
        tracks: TrackBatch,
        detections: Tensor | None,
        image_size: tuple[int, int] | None,
    ) -> Prediction:
        """The tracks' boxes at t: ``Prediction(boxes (T, 4) float32 xyxy)`` on the history's
        device, ``scores`` None. Reads and writes ``tracks.extras[i]["kalman"]``."""
        history = tracks.history
        if history.shape[1] < 2:
            raise ValueError(
                "KalmanPredictor needs at least 2 boxes of history per track to tell a new or "
                f"revived track from a continuing one, got {history.shape[1]}"
            )
        count = len(tracks)
        if count == 0:
            return Prediction(torch.zeros((0, 4), dtype=torch.float32, device=history.device))
        cfg = self.config
        restarted = tracks.mask.detach().cpu().sum(dim=1).numpy() <= 1
        verified = tracks.verified.detach().cpu().numpy().astype(bool)
        boxes = history[:, -1].detach().to("cpu", torch.float64).numpy().copy()
        if cfg.measure_detection:
            for i, extra in enumerate(tracks.extras):
                detection = extra.get(DETECTION_KEY)
                if verified[i] and detection is not None:
                    boxes[i] = detection.detach().to("cpu", torch.float64).numpy()
        last = xyxy_to_xyah(boxes, cfg.min_size)

        mean = np.zeros((count, 8))
        cov = np.zeros((count, 8, 8))
        fresh = np.zeros(count, dtype=bool)
        for i, extra in enumerate(tracks.extras):
            state = extra.get(STATE_KEY)
            if state is None or restarted[i]:
                fresh[i] = True
            else:
                mean[i], cov[i] = state
        if fresh.any():
            mean[fresh], cov[fresh] = self.filter.initiate(last[fresh])
        measured = ~fresh & verified
        if measured.any():
            mean[measured], cov[measured] = self.filter.update(
                mean[measured], cov[measured], last[measured]
            )
        if cfg.hold_height_unverified:
            mean[~fresh & ~verified, 7] = 0.0
        mean, cov = self.filter.predict(mean, cov)

        for i, extra in enumerate(tracks.extras):
            extra[STATE_KEY] = (mean[i].copy(), cov[i].copy())
        boxes = xyah_to_xyxy(mean[:, :4], cfg.min_size)
        return Prediction(torch.as_tensor(boxes, dtype=torch.float32, device=history.device))


@register_tracker("kalman", config=KalmanConfig)
def kalman(config: KalmanConfig) -> KalmanPredictor:
    """The Kalman-filter baseline (SORT / ByteTrack motion) in the shared track management."""
    return KalmanPredictor(config)
