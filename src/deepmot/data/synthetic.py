"""Synthetic MOTChallenge sequences: walking pedestrians, occlusion, a noisy detector, frames.

Nothing to download: :func:`generate_scene` simulates a street seen by a fixed (or gently
panning) camera and returns the annotations in memory; :func:`write_sequence` writes a
MOTChallenge folder (``img1/000001.jpg``..., ``gt/gt.txt``, ``det/det.txt``, ``seqinfo.ini``)
and :func:`write_dataset` several of them (``SYNTH-01``, ``SYNTH-02``, ...).

The world: people walk on a flat ground plane seen by a pinhole camera above it, so a person
further away is smaller and higher up in the image. Each person has a height (1.5-1.95 m), a
box aspect (width/height 0.36-0.44), a preferred speed, and walks with a smoothly varying
heading and speed (Ornstein-Uhlenbeck turn rate and speed), stops now and then, keeps a little
distance to others, and turns back at the far end of the street. People enter from outside the
image (left, right, bottom) and leave through the image borders; the crowd is kept near
``SceneConfig.people``.

Conventions of the files written:

- Boxes are the full extent of a person, **not clipped** to the image (as in MOTChallenge
  ground truth): a person entering through a border has a box partly outside the image, with
  negative ``x`` or ``y`` possible. A person is annotated in every frame in which their box
  overlaps the image, however occluded (as in MOT17, which annotates fully occluded people
  with visibility 0). Coordinates are continuous pixel coordinates with ``(0, 0)`` the
  top-left corner of the image (MOTChallenge counts from 1; the half-pixel-to-one-pixel
  difference is irrelevant to IoU-based evaluation). Boxes are rounded to 0.01 px.
- ``visibility`` is the fraction of the box area that is inside the image and not covered by
  the boxes of people in front (:func:`box_visibility`; depth order is the bottom edge, since
  everyone stands on the same ground plane), rounded to 1e-4.
- ``flag`` and ``class`` are 1 (evaluated pedestrian) for every row. Ids are ``1..N`` in
  order of first appearance in the image and never reused; a person who leaves and comes back
  (possible with camera motion) keeps their id.
- Detections (``det/det.txt``) come from a simulated detector: a person is found with
  probability ``(1 - miss_rate) * ramp(visibility)`` (0 below ``min_visibility``, 1 above
  ``full_visibility``, linear between); a found box is the true box with Gaussian jitter of
  the centre (``box_jitter`` times width/height) and log-normal jitter of the size, clipped to
  the image. False positives are Poisson(``fp_rate``) per frame, person-shaped boxes of a
  size plausible for where they stand. Scores are Beta-distributed, higher for true
  detections. Rows are sorted by frame, then by decreasing score.

All randomness comes from ``numpy.random.Generator`` objects seeded from ``SceneConfig.seed``
through independent streams (motion, appearance, detector, camera, background), so the same
config gives the same files byte for byte, and changing a detector parameter does not move
anybody.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import cv2
import numpy as np

from deepmot.data import _synthetic_render as render
from deepmot.data.frames import RenderedFrames
from deepmot.data.sequence import Sequence
from deepmot.io import mot

__all__ = [
    "SceneConfig",
    "SyntheticScene",
    "box_visibility",
    "generate_scene",
    "write_sequence",
    "dataset_configs",
    "write_dataset",
]

logger = logging.getLogger(__name__)

MEAN_PERSON_HEIGHT_M = 1.75  # the person whose image height near_height/far_height describe
MAX_PERSON_HEIGHT_M = 1.95
STRIDE_M = 1.4  # metres walked per gait cycle (two steps)


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines a synthetic sequence; the same config gives the same files.

    Scene:
        frames: number of frames. width, height: image size in pixels. people: how many people
            the view holds (new people walk in as others leave; people on their way in count,
            so about 80% of it are in the image on average). frame_rate:
            frames per second. seed: the seed of every random stream. name: sequence name.
        camera_motion: pan the camera: a smooth translation of the whole image (boxes and
            pixels) of up to ``camera_amplitude`` times the width (x) and half that times the
            height (y).
        horizon: row of the horizon as a fraction of the height. near_height, far_height: image
            height (fraction of the image height) of a 1.75 m person standing at the bottom
            edge and at the far end of the street.
    Walking:
        walk_speed, walk_speed_std: preferred speed in m/s (mean, std over people).
        turn_rate_std: std of the turn rate in rad/s (smooth, 2 s correlation time).
        entry_rate: per second and per missing person, the rate at which people enter.
        stop_rate, stop_duration: how often (per second) a person stops, for how long (s).
    Detector:
        miss_rate: probability of missing a well visible person. min_visibility,
            full_visibility: below the first a person is never detected, above the second
            with probability ``1 - miss_rate``, linear between.
        fp_rate: mean number of false positives per frame (Poisson).
        box_jitter: std of the box centre noise as a fraction of width/height, and of the log
            of the size noise.
        tp_score_beta, fp_score_beta: Beta(a, b) distributions of the scores of true and false
            detections.
    Output:
        jpeg_quality: JPEG quality of the frames (1-100).
    """

    frames: int = 300
    width: int = 640
    height: int = 480
    people: int = 20
    frame_rate: float = 30.0
    seed: int = 0
    name: str = "SYNTH-01"
    camera_motion: bool = False
    camera_amplitude: float = 0.06
    horizon: float = 0.2
    near_height: float = 0.5
    far_height: float = 0.1
    walk_speed: float = 1.3
    walk_speed_std: float = 0.2
    turn_rate_std: float = 0.3
    entry_rate: float = 0.5
    stop_rate: float = 0.02
    stop_duration: float = 3.0
    miss_rate: float = 0.05
    min_visibility: float = 0.1
    full_visibility: float = 0.6
    fp_rate: float = 0.5
    box_jitter: float = 0.04
    tp_score_beta: tuple[float, float] = (8.0, 1.5)
    fp_score_beta: tuple[float, float] = (2.0, 4.0)
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"SceneConfig: {what}")

        need(
            isinstance(self.frames, int) and self.frames >= 1,
            f"frames must be >= 1, got {self.frames}",
        )
        need(
            isinstance(self.width, int)
            and isinstance(self.height, int)
            and min(self.width, self.height) >= 64,
            f"width and height must be integers >= 64, got {self.width}x{self.height}",
        )
        need(
            isinstance(self.people, int) and self.people >= 0,
            f"people must be >= 0, got {self.people}",
        )
        need(
            isinstance(self.seed, int) and self.seed >= 0,
            f"seed must be an integer >= 0, got {self.seed}",
        )
        need(
            bool(self.name) and "/" not in self.name,
            f"name must be a folder name, got {self.name!r}",
        )
        need(self.frame_rate > 0, f"frame_rate must be > 0, got {self.frame_rate}")
        need(0 <= self.camera_amplitude <= 0.25, "camera_amplitude must be in [0, 0.25]")
        need(0.05 <= self.horizon <= 0.6, f"horizon must be in [0.05, 0.6], got {self.horizon}")
        need(
            0 < self.far_height < self.near_height,
            f"need 0 < far_height < near_height, got {self.far_height}, {self.near_height}",
        )
        # The camera must be above everyone's head, or people could not leave through the bottom.
        limit = MEAN_PERSON_HEIGHT_M * (1 - self.horizon) / (MAX_PERSON_HEIGHT_M * 1.05)
        need(
            self.near_height < limit,
            f"near_height={self.near_height} puts the camera below head height; "
            f"use near_height < {limit:.3f} with horizon={self.horizon}",
        )
        for name in (
            "walk_speed",
            "walk_speed_std",
            "turn_rate_std",
            "entry_rate",
            "stop_rate",
            "fp_rate",
            "box_jitter",
        ):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        need(
            self.walk_speed > 0 and self.stop_duration > 0,
            "walk_speed and stop_duration must be > 0",
        )
        need(0 <= self.miss_rate <= 1, f"miss_rate must be in [0, 1], got {self.miss_rate}")
        need(
            0 <= self.min_visibility < self.full_visibility <= 1,
            "need 0 <= min_visibility < full_visibility <= 1",
        )
        for name in ("tp_score_beta", "fp_score_beta"):
            ab = getattr(self, name)
            need(len(ab) == 2 and min(ab) > 0, f"{name} must be two positive numbers, got {ab}")
        need(
            1 <= self.jpeg_quality <= 100,
            f"jpeg_quality must be in 1..100, got {self.jpeg_quality}",
        )


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Camera:
    """A pinhole camera ``cam_height`` metres above a flat ground, looking level.

    World coordinates: ``X`` metres to the right, ``Z`` metres away from the camera.
    """

    width: int
    height: int
    focal: float  # pixels
    cam_height: float  # metres
    horizon_y: float  # pixels
    z_far: float  # metres: the far end of the street

    @classmethod
    def from_config(cls, cfg: SceneConfig) -> _Camera:
        focal = float(cfg.width)  # about 53 degrees of horizontal field of view
        cam_height = MEAN_PERSON_HEIGHT_M * (1 - cfg.horizon) / cfg.near_height
        z_far = focal * MEAN_PERSON_HEIGHT_M / (cfg.far_height * cfg.height)
        return cls(cfg.width, cfg.height, focal, cam_height, cfg.horizon * cfg.height, z_far)

    def boxes(
        self, x: np.ndarray, z: np.ndarray, tall: np.ndarray, aspect: np.ndarray
    ) -> np.ndarray:
        """Image boxes ``(K, 4) xyxy`` of people standing at ``(x, z)`` (no camera motion)."""
        foot = self.horizon_y + self.focal * self.cam_height / z
        h = self.focal * tall / z
        cx = self.width / 2 + self.focal * x / z
        half_w = aspect * h / 2
        return np.stack([cx - half_w, foot - h, cx + half_w, foot], axis=-1)

    def z_at_foot(self, foot_y: np.ndarray) -> np.ndarray:
        return self.focal * self.cam_height / (foot_y - self.horizon_y)

    def x_at(self, cx: np.ndarray, z: np.ndarray) -> np.ndarray:
        return (cx - self.width / 2) * z / self.focal


def box_visibility(boxes_xyxy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Visible fraction of each box given the others in front of it and the image borders.

    A box is in front of another if its bottom edge is lower in the image (larger ``y2``: the
    person stands closer to the camera); on a tie the later row is in front. The visible part
    of a box is its part inside the image ``[0, width] x [0, height]`` not covered by the union
    of the boxes in front; the union is measured exactly (grid of the box edges).

    Args:
        boxes_xyxy: ``(K, 4)`` boxes.
        width, height: image size.

    Returns:
        ``(K,) float64`` in [0, 1]; 0 for a box of zero area.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    k = len(boxes)
    out = np.zeros(k)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inner = np.stack(
        [
            np.clip(boxes[:, 0], 0, width),
            np.clip(boxes[:, 1], 0, height),
            np.clip(boxes[:, 2], 0, width),
            np.clip(boxes[:, 3], 0, height),
        ],
        axis=1,
    )
    bottom = boxes[:, 3]
    index = np.arange(k)
    for i in range(k):
        x1, y1, x2, y2 = inner[i]
        if area[i] <= 0 or x2 <= x1 or y2 <= y1:
            continue
        front = (bottom > bottom[i]) | ((bottom == bottom[i]) & (index > i))
        occ = boxes[front]
        occ = np.stack(
            [
                np.maximum(occ[:, 0], x1),
                np.maximum(occ[:, 1], y1),
                np.minimum(occ[:, 2], x2),
                np.minimum(occ[:, 3], y2),
            ],
            axis=1,
        )
        occ = occ[(occ[:, 2] > occ[:, 0]) & (occ[:, 3] > occ[:, 1])]
        covered = 0.0
        if len(occ):
            xs = np.unique(np.concatenate([[x1, x2], occ[:, 0], occ[:, 2]]))
            ys = np.unique(np.concatenate([[y1, y2], occ[:, 1], occ[:, 3]]))
            mx, my = (xs[1:] + xs[:-1]) / 2, (ys[1:] + ys[:-1]) / 2
            in_x = (occ[:, 0, None] < mx) & (mx < occ[:, 2, None])  # (m, nx)
            in_y = (occ[:, 1, None] < my) & (my < occ[:, 3, None])  # (m, ny)
            cell = (in_y[:, :, None] & in_x[:, None, :]).any(axis=0)  # (ny, nx)
            covered = float((np.diff(ys)[:, None] * np.diff(xs)[None, :] * cell).sum())
        out[i] = ((x2 - x1) * (y2 - y1) - covered) / area[i]
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------- simulation


@dataclass
class _Crowd:
    """State of the people currently in the simulation, one entry per person (arrays (n,))."""

    key: np.ndarray  # int: index into the list of everyone ever spawned
    x: np.ndarray
    z: np.ndarray
    heading: np.ndarray  # rad; 0 = +X (right), pi/2 = +Z (away)
    turn: np.ndarray  # rad/s
    speed: np.ndarray  # m/s
    preferred: np.ndarray  # m/s
    stopped: np.ndarray  # bool
    phase: np.ndarray  # gait cycles walked

    def take(self, keep: np.ndarray) -> _Crowd:
        return _Crowd(*(getattr(self, f.name)[keep] for f in fields(self)))

    def extend(self, other: _Crowd) -> _Crowd:
        return _Crowd(
            *(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )


@dataclass(frozen=True)
class _Person:
    tall: float  # metres
    aspect: float  # box width / height
    look: render.Look


def _camera_offsets(cfg: SceneConfig, rng: np.random.Generator) -> np.ndarray:
    """``(frames, 2)`` smooth camera translation in pixels: sums of slow sinusoids."""
    if not cfg.camera_motion or cfg.camera_amplitude == 0:
        return np.zeros((cfg.frames, 2))
    t = np.arange(cfg.frames) / cfg.frame_rate
    out = np.zeros((cfg.frames, 2))
    for axis, amplitude in (
        (0, cfg.camera_amplitude * cfg.width),
        (1, 0.5 * cfg.camera_amplitude * cfg.height),
    ):
        periods = rng.uniform(4.0, 15.0, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = rng.uniform(0.3, 1.0, 3)
        wave = (
            weights[:, None] * np.sin(2 * np.pi * t[None, :] / periods[:, None] + phases[:, None])
        ).sum(0)
        out[:, axis] = amplitude * wave / weights.sum()
    return out


class _Simulation:
    """Walks the crowd frame by frame; collects per-frame boxes of the people in view."""

    def __init__(
        self, cfg: SceneConfig, camera: _Camera, rngs: dict[str, np.random.Generator]
    ) -> None:
        self.cfg, self.cam = cfg, camera
        self.rng, self.look_rng = rngs["motion"], rngs["appearance"]
        self.dt = 1.0 / cfg.frame_rate
        self.people: list[_Person] = []
        # Spawn just outside what the camera can ever see; remove a little further out.
        self.margin_x = cfg.camera_amplitude * cfg.width
        self.margin_y = 0.5 * cfg.camera_amplitude * cfg.height
        self.spawn_gap = 0.02 * cfg.width + 2.0
        self.remove_gap = 0.06 * cfg.width + 4.0

    def _new_people(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draw body and look of ``n`` new people; returns keys, heights, aspects, speeds."""
        rng, cfg = self.rng, self.cfg
        tall = np.clip(rng.normal(1.72, 0.08, n), 1.5, MAX_PERSON_HEIGHT_M)
        aspect = rng.uniform(0.36, 0.44, n)
        speed = np.clip(
            rng.normal(cfg.walk_speed, cfg.walk_speed_std, n), 0.3 * cfg.walk_speed, 2.5
        )
        start = len(self.people)
        for i in range(n):
            self.people.append(
                _Person(float(tall[i]), float(aspect[i]), render.random_look(self.look_rng))
            )
        return np.arange(start, start + n), tall, aspect, speed

    def _crowd(self, keys, x, z, heading, speed) -> _Crowd:
        n = len(keys)
        return _Crowd(
            key=keys, x=x, z=z, heading=heading, turn=np.zeros(n), speed=speed.copy(),
            preferred=speed, stopped=np.zeros(n, dtype=bool), phase=self.rng.uniform(0, 1, n),
        )  # fmt: skip

    def initial(self) -> _Crowd:
        """``people`` people inside the view, anywhere from the bottom edge to the far end."""
        n, cam, rng = self.cfg.people, self.cam, self.rng
        keys, _, _, speed = self._new_people(n)
        far_foot = cam.horizon_y + cam.focal * cam.cam_height / cam.z_far
        z = cam.z_at_foot(rng.uniform(far_foot, 0.97 * cam.height, n))
        x = cam.x_at(rng.uniform(0.05, 0.95, n) * cam.width, z)
        return self._crowd(keys, x, z, rng.uniform(0, 2 * np.pi, n), speed)

    def spawn(self, n: int) -> _Crowd:
        """``n`` people just outside the image (left, right or bottom), heading in."""
        cam, rng = self.cam, self.rng
        keys, tall, aspect, speed = self._new_people(n)
        side = rng.choice(3, size=n, p=[0.4, 0.4, 0.2])  # left, right, bottom
        z = rng.uniform(cam.z_at_foot(np.float64(cam.height)) * 1.05, cam.z_far * 0.95, n)
        half_w = aspect * cam.focal * tall / z / 2
        gap = self.margin_x + self.spawn_gap
        cx = np.where(side == 0, -gap - half_w, cam.width + gap + half_w)
        heading = np.where(side == 0, 0.0, np.pi) + rng.uniform(-0.9, 0.9, n)
        bottom = side == 2
        if bottom.any():
            # head top just below the image: horizon + f (c - tall) / z = height + gap
            top = cam.height + self.margin_y + self.spawn_gap
            z[bottom] = cam.focal * (cam.cam_height - tall[bottom]) / (top - cam.horizon_y)
            cx[bottom] = rng.uniform(0.15, 0.85, bottom.sum()) * cam.width
            heading[bottom] = np.pi / 2 + rng.uniform(-0.6, 0.6, bottom.sum())
        return self._crowd(keys, cam.x_at(cx, z), z, heading, speed)

    def step(self, c: _Crowd) -> _Crowd:
        """Advance everyone by one frame: smooth turning and speed, stops, spacing, far wall."""
        rng, dt, cfg, n = self.rng, self.dt, self.cfg, len(c.key)
        if n == 0:
            return c
        tau_turn, tau_speed = 2.0, 1.0
        c.turn += -c.turn * dt / tau_turn + cfg.turn_rate_std * math.sqrt(
            2 * dt / tau_turn
        ) * rng.normal(size=n)
        toggle = rng.random(n) < np.where(c.stopped, dt / cfg.stop_duration, cfg.stop_rate * dt)
        c.stopped ^= toggle
        target = np.where(c.stopped, 0.0, c.preferred)
        c.speed += (target - c.speed) * dt / tau_speed + 0.05 * math.sqrt(
            2 * dt / tau_speed
        ) * rng.normal(size=n)
        c.speed = np.clip(c.speed, 0.0, 2.5)
        # Beyond the far end of the street, steer back (a U-turn over about two seconds).
        beyond = (c.z > self.cam.z_far) & (np.sin(c.heading) > 0)
        steer = np.where(beyond, -np.sign(np.cos(c.heading) + 1e-9) * 1.5, 0.0)
        c.heading = (c.heading + (c.turn + steer) * dt) % (2 * np.pi)
        c.x = c.x + c.speed * dt * np.cos(c.heading)
        c.z = c.z + c.speed * dt * np.sin(c.heading)
        # Keep about half a metre between people: push overlapping pairs apart.
        d = np.stack([c.x, c.z], axis=1)
        diff = d[:, None, :] - d[None, :, :]
        dist = np.maximum(np.linalg.norm(diff, axis=2), 1e-6) + np.eye(n)
        push = np.clip(0.5 - dist, 0, None) / dist * 0.1
        move = (diff * push[..., None]).sum(axis=1)
        c.x, c.z = c.x + move[:, 0], np.maximum(c.z + move[:, 1], 0.3)
        c.phase = c.phase + c.speed * dt / STRIDE_M
        return c

    def gone(self, boxes: np.ndarray) -> np.ndarray:
        """People whose box (without camera motion) is well outside the image: they left."""
        gx, gy = self.margin_x + self.remove_gap, self.margin_y + self.remove_gap
        return (
            (boxes[:, 2] < -gx)
            | (boxes[:, 0] > self.cam.width + gx)
            | (boxes[:, 1] > self.cam.height + gy)
        )


# --------------------------------------------------------------------------- the scene


@dataclass(frozen=True, eq=False)
class SyntheticScene:
    """A generated sequence in memory: annotations, detections and what it takes to render.

    Attributes:
        config: the config it was generated from.
        gt: ground truth (rows sorted by frame, id; see the module docstring for conventions).
        detections: the simulated detector's output.
        seqinfo: the ``seqinfo.ini`` contents.
        det_gt_ids: ``(D,) int64``, for each detection row the gt id it came from, -1 for a
            false positive (not written to files; for tests and analysis).
        camera_offsets: ``(frames, 2) float64`` camera translation (x, y) in pixels per frame.
    """

    config: SceneConfig
    gt: mot.GroundTruth
    detections: mot.Detections
    seqinfo: mot.SeqInfo
    det_gt_ids: np.ndarray
    camera_offsets: np.ndarray
    _people: list[_Person] = field(repr=False)
    _gait: np.ndarray = field(repr=False)  # (K,) gait phase index of each gt row
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.seqinfo.name

    @property
    def num_ids(self) -> int:
        """Number of distinct people annotated."""
        return int(self.gt.ids.max()) if len(self.gt) else 0

    def to_sequence(self, cache_size: int = 32) -> Sequence:
        """The scene as a :class:`~deepmot.data.sequence.Sequence` whose frames are rendered on
        demand (:meth:`render_frame`, the last ``cache_size`` kept in memory)."""
        info = self.seqinfo
        return Sequence(
            info.name,
            info.seq_length,
            info.im_width,
            info.im_height,
            info.frame_rate,
            self.gt,
            self.detections,
            RenderedFrames(self.render_frame, cache_size),
        )

    def _background(self) -> np.ndarray:
        if "background" not in self._cache:
            cfg, cam = self.config, _Camera.from_config(self.config)
            px, py = self._pad()
            seed = int(np.random.SeedSequence(cfg.seed).spawn(5)[4].generate_state(1)[0])
            self._cache["background"] = render.make_background(
                cfg.width + 2 * px,
                cfg.height + 2 * py,
                cam.horizon_y + py,
                cam.focal,
                cam.cam_height,
                seed,
            )
        return self._cache["background"]

    def _pad(self) -> tuple[int, int]:
        """Background margin (x, y): the largest camera shift the config allows, plus one.

        It depends on the config only, so a scene with and without camera motion share one
        background.
        """
        cfg = self.config
        px = math.ceil(cfg.camera_amplitude * cfg.width) + 1
        py = math.ceil(0.5 * cfg.camera_amplitude * cfg.height) + 1
        return px, py

    def _sprite(self, person_id: int, phase: int) -> tuple[np.ndarray, np.ndarray]:
        key = (person_id, phase)
        if key not in self._cache:
            person = self._people[person_id - 1]
            self._cache[key] = render.draw_person(person.look, person.aspect, phase)
        return self._cache[key]

    def render_frame(self, frame: int) -> np.ndarray:
        """Render frame ``frame`` (1-based) as ``(height, width, 3) uint8`` RGB."""
        cfg = self.config
        if not 1 <= frame <= cfg.frames:
            raise IndexError(f"frame {frame} is outside 1..{cfg.frames} of {self.name}")
        px, py = self._pad()
        dx, dy = np.round(self.camera_offsets[frame - 1]).astype(int)
        image = self._background()[
            py - dy : py - dy + cfg.height, px - dx : px - dx + cfg.width
        ].copy()
        lo, hi = np.searchsorted(self.gt.frames, [frame, frame + 1])
        boxes = self.gt.boxes_xywh[lo:hi].copy()
        boxes[:, 2:] += boxes[:, :2]
        for row in np.argsort(boxes[:, 3], kind="stable"):  # far to near
            rgb, alpha = self._sprite(int(self.gt.ids[lo + row]), int(self._gait[lo + row]))
            render.paste(image, rgb, alpha, boxes[row])
        return image


def _simulate(cfg: SceneConfig, camera: _Camera, rngs, offsets: np.ndarray):
    """Run the crowd; returns per-row arrays (frame, key, box xyxy, gait) and the people.

    The crowd is topped up towards ``cfg.people`` people in view, counting people on their way
    in (spawned, not yet seen) and not counting those who left the image.
    """
    sim = _Simulation(cfg, camera, rngs)
    crowd = sim.initial()
    empty = np.zeros(0, np.int64)
    frames, keys, gait, boxes = [empty], [empty], [empty], [np.zeros((0, 4))]
    spawn_p = 1 - math.exp(-cfg.entry_rate * sim.dt)
    seen = np.zeros(0, dtype=bool)  # by key: has been in the image
    counted = len(crowd.key)
    for t in range(cfg.frames):
        if t:
            crowd = sim.step(crowd)
            missing = cfg.people - counted
            if missing > 0:
                n_new = int(sim.rng.binomial(missing, spawn_p))
                if n_new:
                    crowd = crowd.extend(sim.spawn(n_new))
        seen = np.concatenate([seen, np.zeros(len(sim.people) - len(seen), dtype=bool)])
        tall = np.array([sim.people[k].tall for k in crowd.key])
        aspect = np.array([sim.people[k].aspect for k in crowd.key])
        world = camera.boxes(crowd.x, crowd.z, tall, aspect).reshape(-1, 4)
        b = world + np.tile(offsets[t], 2)
        inside = (b[:, 2] > 0) & (b[:, 0] < cfg.width) & (b[:, 3] > 0) & (b[:, 1] < cfg.height)
        frames.append(np.full(inside.sum(), t + 1))
        keys.append(crowd.key[inside])
        boxes.append(b[inside])
        phase = np.floor(crowd.phase[inside] * render.GAIT_PHASES).astype(np.int64)
        gait.append(phase % render.GAIT_PHASES)
        # Crowd bookkeeping uses the view without camera motion, so that the walkers (and the
        # random streams) are the same with and without it.
        in_view = (world[:, 2] > 0) & (world[:, 0] < cfg.width)
        in_view &= (world[:, 3] > 0) & (world[:, 1] < cfg.height)
        seen[crowd.key[in_view]] = True
        keep = ~sim.gone(world)
        counted = int((in_view | ~seen[crowd.key])[keep].sum())
        crowd = crowd.take(keep)
    cat = np.concatenate
    return cat(frames), cat(keys), cat(boxes), cat(gait), sim.people


def _detect(
    cfg: SceneConfig, camera: _Camera, gt: mot.GroundTruth, rng: np.random.Generator
) -> tuple[mot.Detections, np.ndarray]:
    """The simulated detector: misses, jitter and scores for gt rows, plus false positives."""
    k = len(gt)
    vis = gt.visibility
    ramp = np.clip((vis - cfg.min_visibility) / (cfg.full_visibility - cfg.min_visibility), 0, 1)
    found = rng.random(k) < (1 - cfg.miss_rate) * ramp
    noise = rng.normal(size=(k, 4)) * cfg.box_jitter
    x, y, w, h = gt.boxes_xywh.T
    cx, cy = x + w / 2 + noise[:, 0] * w, y + h / 2 + noise[:, 1] * h
    w2, h2 = w * np.exp(noise[:, 2]), h * np.exp(noise[:, 3])
    tp_boxes = np.stack([cx - w2 / 2, cy - h2 / 2, cx + w2 / 2, cy + h2 / 2], axis=1)
    tp_scores = rng.beta(*cfg.tp_score_beta, size=k)

    n_fp = rng.poisson(cfg.fp_rate, size=cfg.frames)
    fp_frames = np.repeat(np.arange(1, cfg.frames + 1), n_fp)
    m = len(fp_frames)
    far_foot = camera.horizon_y + camera.focal * camera.cam_height / camera.z_far
    foot = rng.uniform(far_foot, camera.height, m)
    fh = (
        MEAN_PERSON_HEIGHT_M
        * camera.focal
        / camera.z_at_foot(foot)
        * np.exp(rng.normal(0, 0.15, m))
    )
    fw = fh * rng.uniform(0.3, 0.5, m)
    fcx = rng.uniform(fw / 2, camera.width - fw / 2)
    fp_boxes = np.stack([fcx - fw / 2, foot - fh, fcx + fw / 2, foot], axis=1)
    fp_scores = rng.beta(*cfg.fp_score_beta, size=m)

    boxes = np.concatenate([tp_boxes[found], fp_boxes])
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, cfg.width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, cfg.height)
    frames = np.concatenate([gt.frames[found], fp_frames])
    scores = np.clip(np.round(np.concatenate([tp_scores[found], fp_scores]), 4), 1e-4, 1.0)
    source = np.concatenate([gt.ids[found], np.full(m, -1)])
    keep = ((boxes[:, 2] - boxes[:, 0]) >= 2) & ((boxes[:, 3] - boxes[:, 1]) >= 2)
    boxes, frames, scores, source = boxes[keep], frames[keep], scores[keep], source[keep]
    order = np.lexsort((-scores, frames))
    xywh = np.round(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1), 2)[order]
    dets = mot.Detections(
        frames=frames[order].astype(np.int64), boxes_xywh=xywh, scores=scores[order]
    )
    return dets, source[order].astype(np.int64)


def generate_scene(config: SceneConfig | None = None) -> SyntheticScene:
    """Simulate a sequence: ground truth, detections and seqinfo, without rendering anything.

    Rendering happens on demand in :meth:`SyntheticScene.render_frame` (and in
    :func:`write_sequence`), so a scene for pixel-free training costs only the simulation.
    """
    cfg = config if config is not None else SceneConfig()
    camera = _Camera.from_config(cfg)
    streams = np.random.SeedSequence(cfg.seed).spawn(5)  # the 5th seeds the background
    rngs = {
        name: np.random.default_rng(s)
        for name, s in zip(("motion", "appearance", "detector", "camera"), streams[:4], strict=True)
    }
    offsets = _camera_offsets(cfg, rngs["camera"])
    frames, keys, boxes, gait, people = _simulate(cfg, camera, rngs, offsets)

    # Ids in order of first appearance (ties: spawn order); never reused.
    first_seen: dict[int, int] = {}
    for key in keys.tolist():
        first_seen.setdefault(key, len(first_seen) + 1)
    ids = np.array([first_seen[k] for k in keys.tolist()], dtype=np.int64)
    by_id = [people[k] for k in sorted(first_seen, key=first_seen.get)]
    order = np.lexsort((ids, frames))
    frames, ids, boxes, gait = frames[order], ids[order], boxes[order], gait[order]

    xywh = np.round(np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1), 2)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    visibility = np.zeros(len(frames))
    bounds = np.searchsorted(frames, np.arange(1, cfg.frames + 2))
    for t in range(cfg.frames):
        lo, hi = bounds[t], bounds[t + 1]
        if hi > lo:
            visibility[lo:hi] = box_visibility(xyxy[lo:hi], cfg.width, cfg.height)
    ones = np.ones(len(frames), dtype=np.int64)
    gt = mot.GroundTruth(
        frames=frames.astype(np.int64), ids=ids, boxes_xywh=xywh, flags=ones, classes=ones.copy(),
        visibility=np.round(visibility, 4),
    )  # fmt: skip
    dets, det_gt_ids = _detect(cfg, camera, gt, rngs["detector"])
    extra = {
        "generator": "deepmot.synthetic",
        "seed": str(cfg.seed),
        "cameraMotion": str(int(cfg.camera_motion)),
    }
    info = mot.SeqInfo(
        cfg.name, cfg.frames, cfg.width, cfg.height, cfg.frame_rate, "img1", ".jpg", extra
    )
    return SyntheticScene(cfg, gt, dets, info, det_gt_ids, offsets, by_id, gait)


# --------------------------------------------------------------------------- writing


def _encode_jpeg(image_rgb: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(image_rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return buf.tobytes()


def write_sequence(
    scene: SyntheticScene,
    out_dir: str | Path,
    render: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``scene`` as a MOTChallenge sequence folder ``out_dir``.

    Everything is written into a hidden temporary folder next to ``out_dir`` and renamed into
    place at the end, so ``out_dir`` is either absent, the old folder, or the complete new one.

    Args:
        scene: a scene from :func:`generate_scene`.
        out_dir: the sequence folder to create (conventionally named ``scene.name``).
        render: write ``img1/*.jpg``; without it the folder holds annotations only.
        overwrite: replace an existing ``out_dir``; otherwise an existing one is an error.
        progress: show a progress bar while rendering.

    Returns:
        ``out_dir``. Raises ``FileExistsError`` if it exists and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir}: already exists (pass overwrite=True to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    tmp = out_dir.with_name(f".{out_dir.name}.{token}.tmp")
    tmp.mkdir()
    try:
        if render:
            from tqdm import tqdm

            img_dir = tmp / scene.seqinfo.im_dir
            img_dir.mkdir()
            frames = tqdm(
                range(1, scene.config.frames + 1),
                desc=f"render {scene.name}",
                unit="frame",
                disable=not progress,
            )
            for frame in frames:
                data = _encode_jpeg(scene.render_frame(frame), scene.config.jpeg_quality)
                (img_dir / f"{frame:06d}{scene.seqinfo.im_ext}").write_bytes(data)
        mot.write_gt(tmp / "gt" / "gt.txt", scene.gt)
        mot.write_detections(tmp / "det" / "det.txt", scene.detections)
        mot.write_seqinfo(tmp / "seqinfo.ini", scene.seqinfo)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.{token}.old")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "wrote %s: %d frames %dx%d, %d people, %d gt boxes, %d detections%s",
        out_dir, scene.config.frames, scene.config.width, scene.config.height,
        scene.num_ids, len(scene.gt), len(scene.detections), "" if render else " (no images)",
    )  # fmt: skip
    return out_dir


def dataset_configs(
    sequences: int = 4,
    config: SceneConfig | None = None,
    seed: int | None = None,
    prefix: str = "SYNTH",
) -> list[SceneConfig]:
    """Configs of the sequences of :func:`write_dataset`: ``config`` with derived seeds and names.

    Sequence ``i`` (1-based) is named ``f"{prefix}-{i:02d}"``; its seed is drawn from
    ``numpy.random.SeedSequence(seed)`` (``seed`` defaults to ``config.seed``), so the
    sequences differ from each other and the same ``seed`` gives the same dataset.
    """
    if sequences < 1:
        raise ValueError(f"sequences must be >= 1, got {sequences}")
    cfg = config if config is not None else SceneConfig()
    base = cfg.seed if seed is None else seed
    children = np.random.SeedSequence(base).spawn(sequences)
    return [
        replace(cfg, seed=int(child.generate_state(1)[0]), name=f"{prefix}-{i:02d}")
        for i, child in enumerate(children, start=1)
    ]


def write_dataset(
    out_root: str | Path,
    sequences: int = 4,
    config: SceneConfig | None = None,
    seed: int | None = None,
    render: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Generate and write ``sequences`` synthetic sequences under ``out_root``.

    See :func:`dataset_configs` for names and seeds. Checks that no target folder exists
    (unless ``overwrite``) before writing any. Returns the sequence folders.
    """
    out_root = Path(out_root)
    configs = dataset_configs(sequences, config, seed)
    targets = [out_root / c.name for c in configs]
    if not overwrite:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise FileExistsError(
                f"already exist: {', '.join(existing)} (pass overwrite=True to replace)"
            )
    for cfg, target in zip(configs, targets, strict=True):
        write_sequence(
            generate_scene(cfg), target, render=render, overwrite=overwrite, progress=progress
        )
    return targets
