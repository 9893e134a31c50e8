"""Trackers behind one interface (``reset()``, ``update(dets, frame=None) -> tracks``) and their
registry.

``create_tracker(name, **overrides)`` builds a registered tracker:

* ``"constant_velocity"``: :class:`~deepmot.trackers.motion.ConstantVelocityModel` in the
  shared track management (the "Vanilla" motion tracker);
* ``"motion"``: :class:`~deepmot.trackers.motion.LearnedMotionModel` in the same management;
  ``weights=PATH`` loads trained weights (untrained, it behaves as constant velocity).

Overrides are fields of :class:`~deepmot.trackers.management.TrackManagementConfig` (e.g.
``max_invisible=30``) or of the motion model's config (e.g. ``velocity_steps=3``), plus
``image_size=(width, height)``; ``management=TrackManagementConfig(...)`` replaces the whole
management config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from deepmot.trackers.base import Tracker, check_detections, track_sequence
from deepmot.trackers.management import (
    MotionModel,
    Track,
    TrackManagementConfig,
    TrackManager,
    TrackState,
    stack_histories,
)
from deepmot.trackers.motion import (
    ConstantVelocityConfig,
    ConstantVelocityModel,
    LearnedMotionConfig,
    LearnedMotionModel,
    MotionTracker,
    load_motion_model,
    save_motion_model,
)

__all__ = [
    "TRACKERS",
    "ConstantVelocityConfig",
    "ConstantVelocityModel",
    "LearnedMotionConfig",
    "LearnedMotionModel",
    "MotionModel",
    "MotionTracker",
    "Track",
    "TrackManagementConfig",
    "TrackManager",
    "TrackState",
    "Tracker",
    "check_detections",
    "create_tracker",
    "list_trackers",
    "load_motion_model",
    "save_motion_model",
    "stack_histories",
    "track_sequence",
]


def _split_overrides(
    overrides: dict[str, Any], model_config: type, tracker: str
) -> tuple[TrackManagementConfig, dict[str, Any], tuple[int, int] | None]:
    """Sort ``overrides`` into management fields, model-config fields and the image size."""
    overrides = dict(overrides)
    image_size = overrides.pop("image_size", None)
    management = overrides.pop("management", None) or TrackManagementConfig()
    if not isinstance(management, TrackManagementConfig):
        raise TypeError(
            f"management must be a TrackManagementConfig, got {type(management).__name__}"
        )
    manage_names = {f.name for f in fields(TrackManagementConfig)}
    model_names = {f.name for f in fields(model_config)}
    unknown = set(overrides) - manage_names - model_names
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)} for tracker {tracker!r}; valid: "
            f"{sorted(manage_names | model_names | {'image_size', 'management'})}"
        )
    management = replace(management, **{k: v for k, v in overrides.items() if k in manage_names})
    model_overrides = {k: v for k, v in overrides.items() if k in model_names}
    return management, model_overrides, image_size


def _constant_velocity(**overrides: Any) -> MotionTracker:
    management, model_overrides, size = _split_overrides(
        overrides, ConstantVelocityConfig, "constant_velocity"
    )
    model = ConstantVelocityModel(ConstantVelocityConfig(**model_overrides))
    return MotionTracker(model, management, size)


def _motion(weights: str | None = None, **overrides: Any) -> MotionTracker:
    management, model_overrides, size = _split_overrides(overrides, LearnedMotionConfig, "motion")
    if weights is not None:
        if model_overrides:
            raise ValueError(
                f"trained weights fix the model's config; got overrides {sorted(model_overrides)}"
            )
        model = load_motion_model(weights)
    else:
        model = LearnedMotionModel(LearnedMotionConfig(**model_overrides)).eval()
    return MotionTracker(model, management, size)


TRACKERS: dict[str, Callable[..., Tracker]] = {
    "constant_velocity": _constant_velocity,
    "motion": _motion,
}
"""Registered trackers: name -> builder taking ``**overrides``."""


def list_trackers() -> list[str]:
    """Names :func:`create_tracker` accepts."""
    return sorted(TRACKERS)


def create_tracker(name: str, **overrides: Any) -> Tracker:
    """Build a registered tracker by name.

    Args:
        name: one of :func:`list_trackers`.
        **overrides: settings replacing the defaults (see the module doc).

    Raises:
        ValueError: an unknown name (the message lists the valid ones) or setting.
    """
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; valid names: {', '.join(list_trackers())}")
    return TRACKERS[name](**overrides)
