"""Drawing for :mod:`deepmot.data.synthetic`: pedestrian sprites, a textured background, frames.

Pure numpy/OpenCV. Images here are ``(H, W, 3) uint8`` **RGB**; alpha masks are
``(H, W) uint8``. Nothing in this module draws random numbers from a shared generator: each
sprite and the background take their own seed, so a frame renders the same whatever was
rendered before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

GAIT_PHASES = 8  # sprites per person, one per eighth of a walking cycle
SPRITE_HEIGHT = 160  # canonical sprite height in pixels; frames resize it to the box


@dataclass(frozen=True)
class Look:
    """Appearance of one person: colours (RGB), a shirt pattern and a texture seed.

    ``pattern``: 0 plain, 1 horizontal stripes, 2 checks, 3 dots, 4 vertical stripes.
    """

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    pattern_color: tuple[int, int, int]
    trousers: tuple[int, int, int]
    shoes: tuple[int, int, int]
    pattern: int
    pattern_period: int
    long_hair: bool
    texture_seed: int


_SKIN_TONES = np.array(
    [
        [255, 224, 196],
        [241, 194, 160],
        [224, 172, 135],
        [198, 134, 96],
        [141, 85, 54],
        [92, 58, 38],
    ],
    dtype=np.float64,
)


def _rgb(values: np.ndarray) -> tuple[int, int, int]:
    v = np.clip(np.round(values), 0, 255).astype(int)
    return int(v[0]), int(v[1]), int(v[2])


def _hsv_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]):
    """A random colour with hue uniform and saturation/value in the given ranges (RGB)."""
    hsv = np.array(
        [[[rng.uniform(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]],
        dtype=np.float32,
    )
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
    return _rgb(rgb.astype(np.float64))


def random_look(rng: np.random.Generator) -> Look:
    """Draw one person's appearance from ``rng``."""
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] + rng.normal(0, 8, 3)
    hair_v = rng.uniform(0.1, 0.6)
    hair = _rgb(np.array([90, 60, 30]) * hair_v * 2 + rng.normal(0, 10, 3))
    return Look(
        skin=_rgb(skin),
        hair=hair,
        shirt=_hsv_color(rng, (0.3, 0.95), (0.35, 0.95)),
        pattern_color=_hsv_color(rng, (0.0, 0.9), (0.2, 1.0)),
        trousers=_hsv_color(rng, (0.1, 0.7), (0.12, 0.6)),
        shoes=_rgb(np.full(3, rng.uniform(15, 90))),
        pattern=int(rng.integers(5)),
        pattern_period=int(rng.integers(6, 14)),
        long_hair=bool(rng.random() < 0.35),
        texture_seed=int(rng.integers(2**31)),
    )


def _shirt_texture(look: Look, height: int, width: int) -> np.ndarray:
    """The shirt fabric as an ``(height, width, 3) float32`` RGB image."""
    tex = np.empty((height, width, 3), dtype=np.float32)
    tex[:] = look.shirt
    p = look.pattern_period
    yy, xx = np.mgrid[0:height, 0:width]
    if look.pattern == 1:
        on = (yy // (p // 2 + 1)) % 2 == 0
    elif look.pattern == 2:
        on = ((yy // p) + (xx // p)) % 2 == 0
    elif look.pattern == 3:
        on = ((yy % p - p / 2) ** 2 + (xx % p - p / 2) ** 2) < (p / 4) ** 2
    elif look.pattern == 4:
        on = (xx // (p // 2 + 1)) % 2 == 0
    else:
        on = np.zeros((height, width), dtype=bool)
    tex[on] = look.pattern_color
    return tex


class _Canvas:
    """An RGB image and its alpha mask drawn together: every shape is opaque where drawn."""

    def __init__(self, height: int, width: int) -> None:
        self.rgb = np.zeros((height, width, 3), dtype=np.uint8)
        self.alpha = np.zeros((height, width), dtype=np.uint8)

    def line(self, a: tuple[int, int], b: tuple[int, int], color, thickness: int) -> None:
        cv2.line(self.rgb, a, b, color, thickness, cv2.LINE_AA)
        cv2.line(self.alpha, a, b, 255, thickness, cv2.LINE_AA)

    def ellipse(self, center, axes, color, start: float = 0, end: float = 360) -> None:
        cv2.ellipse(self.rgb, center, axes, 0, start, end, color, -1, cv2.LINE_AA)
        cv2.ellipse(self.alpha, center, axes, 0, start, end, 255, -1, cv2.LINE_AA)

    def polygon(self, points: np.ndarray, color) -> None:
        cv2.fillConvexPoly(self.rgb, points, color, cv2.LINE_AA)
        cv2.fillConvexPoly(self.alpha, points, 255, cv2.LINE_AA)

    def rectangle(self, a: tuple[int, int], b: tuple[int, int], color) -> None:
        cv2.rectangle(self.rgb, a, b, color, -1)
        cv2.rectangle(self.alpha, a, b, 255, -1)

    def texture(self, mask: np.ndarray, image: np.ndarray) -> None:
        """Paint ``image`` (float RGB) where ``mask`` (uint8) is set."""
        m = mask[..., None].astype(np.float32) / 255
        self.rgb[:] = (self.rgb * (1 - m) + image * m).astype(np.uint8)
        self.alpha[:] = np.maximum(self.alpha, mask)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def draw_person(look: Look, aspect: float, phase: int) -> tuple[np.ndarray, np.ndarray]:
    """One sprite of a walking person filling its box.

    Args:
        look: the person's appearance.
        aspect: box width / height (about 0.4).
        phase: gait phase in ``0..GAIT_PHASES-1``.

    Returns:
        ``(rgb (h, w, 3) uint8, alpha (h, w) uint8)`` with ``h = SPRITE_HEIGHT`` and
        ``w = round(aspect * h)``.
    """
    h = SPRITE_HEIGHT
    w = max(8, int(round(aspect * h)))
    cv = _Canvas(h, w)
    s = math.sin(2 * math.pi * phase / GAIT_PHASES)
    c = math.cos(2 * math.pi * phase / GAIT_PHASES)
    cx = w / 2

    # Legs: hips to feet, spread by the gait phase; the lifted foot rises a little.
    leg_t = max(2, int(round(0.17 * w)))
    hip_y, foot_y, spread = 0.52 * h, 0.955 * h, 0.14 * w
    feet = [
        (cx - 0.06 * w - spread * s, foot_y - 0.025 * h * max(0.0, c)),
        (cx + 0.06 * w + spread * s, foot_y - 0.025 * h * max(0.0, -c)),
    ]
    for hx, (fx, fy) in zip((cx - 0.11 * w, cx + 0.11 * w), feet, strict=True):
        cv.line(_pt(hx, hip_y), _pt(fx, fy), look.trousers, leg_t)
        shoe_axes = (max(2, int(0.11 * w)), max(1, int(0.022 * h)))
        cv.ellipse(_pt(fx, fy + 0.005 * h), shoe_axes, look.shoes)
    pelvis = [(-0.24, 0.5), (0.24, 0.5), (0.2, 0.6), (-0.2, 0.6)]
    cv.polygon(np.array([_pt(cx + u * w, v * h) for u, v in pelvis]), look.trousers)

    # Arms swing against the legs; drawn before the torso so that it covers the shoulders.
    arm_t, hand_r = max(2, int(round(0.13 * w))), max(1, int(round(0.07 * w)))
    for side in (-1, 1):
        hand_x = min(max(cx + side * (0.38 * w - 0.08 * w * s), 0.06 * w), 0.94 * w)
        hand_y = 0.5 * h - 0.02 * h * abs(s)
        cv.line(_pt(cx + side * 0.3 * w, 0.2 * h), _pt(hand_x, hand_y), look.shirt, arm_t)
        cv.ellipse(_pt(hand_x, hand_y + hand_r), (hand_r, hand_r), look.skin)

    # Torso in the shirt's fabric.
    torso = [(-0.33, 0.165), (0.33, 0.165), (0.26, 0.53), (-0.26, 0.53)]
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.array([_pt(cx + u * w, v * h) for u, v in torso]), 255, cv2.LINE_AA)
    for side in (-1, 1):
        cv2.circle(mask, _pt(cx + side * 0.27 * w, 0.19 * h), max(1, int(0.07 * w)), 255, -1)
    cv.texture(mask, _shirt_texture(look, h, w))

    # Neck, head and hair.
    cv.rectangle(_pt(cx - 0.05 * w, 0.13 * h), _pt(cx + 0.05 * w, 0.18 * h), look.skin)
    head_c = _pt(cx, 0.085 * h)
    head_ax = (max(2, int(0.085 * h * 0.78)), max(2, int(0.075 * h)))
    cv.ellipse(head_c, head_ax, look.skin)
    hair_ax = (head_ax[0] + 1, head_ax[1] + 1)
    cv.ellipse(head_c, hair_ax, look.hair, start=180, end=360)
    if look.long_hair:
        left, right = cx - hair_ax[0], cx + hair_ax[0]
        top, bottom = 0.085 * h, 0.185 * h
        cv.rectangle(_pt(left, top), _pt(left + 0.3 * hair_ax[0], bottom), look.hair)
        cv.rectangle(_pt(right - 0.3 * hair_ax[0], top), _pt(right, bottom), look.hair)

    # Texture: fabric noise and a soft top-lit shading, so people differ beyond flat colours.
    rng = np.random.default_rng([look.texture_seed, phase])
    noise = rng.normal(0.0, 7.0, (h, w, 1)).astype(np.float32)
    shade = np.linspace(1.08, 0.85, h, dtype=np.float32)[:, None, None]
    rgb = np.clip(cv.rgb.astype(np.float32) * shade + noise, 0, 255).astype(np.uint8)
    return rgb, cv.alpha


def make_background(
    width: int, height: int, horizon_y: float, focal: float, cam_height: float, seed: int
) -> np.ndarray:
    """A textured street scene: a facade with windows above the horizon, paving below.

    Args:
        width, height: canvas size in pixels (the image plus the camera-motion margin).
        horizon_y: row of the horizon on the canvas.
        focal: focal length in pixels; ``cam_height``: camera height in metres (for the
            perspective of the paving grid).
        seed: texture seed.

    Returns:
        ``(height, width, 3) uint8`` RGB.
    """
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), dtype=np.float32)
    hz = int(round(horizon_y))
    facade = np.array(_hsv_color(rng, (0.05, 0.35), (0.45, 0.8)), dtype=np.float32)
    ground = np.array(_hsv_color(rng, (0.0, 0.15), (0.45, 0.65)), dtype=np.float32)
    img[:hz] = facade
    img[hz:] = ground
    # Windows on the facade.
    glass = np.array(_hsv_color(rng, (0.1, 0.4), (0.15, 0.4)), dtype=np.float32)
    step_x = max(12, int(rng.uniform(0.06, 0.1) * width))
    step_y = max(10, int(rng.uniform(0.6, 0.9) * step_x))
    x0 = int(rng.integers(step_x))
    for y in range(int(0.15 * step_y), hz - step_y // 2, step_y):
        for x in range(x0, width, step_x):
            if rng.random() < 0.85:
                cv2.rectangle(img, (x, y), (x + step_x // 2, y + step_y // 2), glass.tolist(), -1)
    cv2.rectangle(img, (0, max(0, hz - 4)), (width, hz), (facade * 0.6).tolist(), -1)
    # Paving grid in perspective: rows every 1.5 m in depth, joints converging to the horizon.
    line = (ground * 0.8).tolist()
    for k in range(1, 60):
        z = 1.5 * k
        y = horizon_y + focal * cam_height / z
        if y < height:
            cv2.line(img, (0, int(y)), (width, int(y)), line, 1, cv2.LINE_AA)
    vx = width / 2
    for k in range(-40, 41):
        # the joint X = 1.5 k metres: at depth z it is at x = vx + focal * X / z
        z_bottom = focal * cam_height / max(height - horizon_y, 1)
        x_bottom = vx + focal * 1.5 * k / z_bottom
        cv2.line(img, (int(vx), hz), (int(x_bottom), height), line, 1, cv2.LINE_AA)
    # Low-frequency stains and fine grain.
    low = rng.normal(0, 1, (max(2, height // 40), max(2, width // 40), 1)).astype(np.float32)
    low = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    img += low * 5 + rng.normal(0, 4, (height, width, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, box: np.ndarray) -> None:
    """Alpha-blend a sprite resized to ``box`` (x1, y1, x2, y2) into ``frame`` in place."""
    x1, y1 = int(round(box[0])), int(round(box[1]))
    w = max(1, int(round(box[2])) - x1)
    h = max(1, int(round(box[3])) - y1)
    H, W = frame.shape[:2]
    fx1, fy1, fx2, fy2 = max(x1, 0), max(y1, 0), min(x1 + w, W), min(y1 + h, H)
    if fx1 >= fx2 or fy1 >= fy2:
        return
    interp = cv2.INTER_AREA if h < rgb.shape[0] else cv2.INTER_LINEAR
    sprite = cv2.resize(rgb, (w, h), interpolation=interp)
    mask = cv2.resize(alpha, (w, h), interpolation=interp)
    sx, sy = fx1 - x1, fy1 - y1
    sprite = sprite[sy : sy + fy2 - fy1, sx : sx + fx2 - fx1].astype(np.float32)
    a = mask[sy : sy + fy2 - fy1, sx : sx + fx2 - fx1, None].astype(np.float32) / 255
    region = frame[fy1:fy2, fx1:fx2]
    region[:] = (region * (1 - a) + sprite * a).astype(np.uint8)
