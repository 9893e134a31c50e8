"""Trackers behind one contract (``reset()``, ``update(dets, frame=None) -> tracks``) and their
registry.

Every tracker is a :class:`~deepmot.trackers.predictor.Predictor` inside the shared track
management (:class:`~deepmot.trackers.management.ManagedTracker`). ``create_tracker(name,
weights=None, **overrides)`` builds a registered one:

* ``"constant_velocity"``: :class:`~deepmot.trackers.motion.ConstantVelocityModel` (the
  "Vanilla" motion tracker);
* ``"kalman"``: :class:`~deepmot.trackers.kalman.KalmanPredictor`, the SORT / ByteTrack
  Kalman filter (constant velocity in centre, aspect, height);
* ``"goturn"``: :class:`~deepmot.trackers.goturn.GoturnPredictor`, GOTURN as MOT-by-SOT
  (trainable, needs the frames);
* ``"siamrpn"``: :class:`~deepmot.trackers.siamrpn.SiamRPNPredictor`, SiamRPN as
  MOT-by-SOT (trainable, needs the frames);
* ``"motion"``: :class:`~deepmot.trackers.motion.LearnedMotionModel`, trainable;
  ``weights=PATH`` loads trained weights (untrained, it behaves as constant velocity);
* ``"tracktor"``: :class:`~deepmot.trackers.tracktor.TracktorPredictor`, regression through a
  Faster R-CNN's RoI heads (needs frames), trainable; ``weights=PATH`` loads Tracktor or
  detector weights;
* ``"sort"``, ``"bytetrack"``, ``"ocsort"``: the baselines people compare against,
  :class:`~deepmot.trackers.sort.SortTracker`, :class:`~deepmot.trackers.bytetrack.ByteTracker`
  and :class:`~deepmot.trackers.ocsort.OCSortTracker`: whole trackers with their own
  association and track lifecycle (no shared management; overrides are their configs' fields).

Overrides are fields of :class:`~deepmot.trackers.management.TrackManagementConfig` (e.g.
``max_invisible=30``) or of the tracker's config (e.g. ``velocity_steps=3``), plus
``image_size=(width, height)``; ``management=TrackManagementConfig(...)`` replaces the whole
management config. See :mod:`deepmot.trackers.registry` for adding a tracker.
"""

from __future__ import annotations

from deepmot.trackers.base import Tracker, check_detections, track_sequence
from deepmot.trackers.bytetrack import ByteTrackConfig, ByteTracker
from deepmot.trackers.goturn import GoturnConfig, GoturnPredictor
from deepmot.trackers.kalman import KalmanConfig, KalmanPredictor
from deepmot.trackers.management import (
    ManagedTracker,
    Track,
    TrackManagementConfig,
    TrackManager,
    TrackState,
)
from deepmot.trackers.motion import (
    ConstantVelocityConfig,
    ConstantVelocityModel,
    LearnedMotionConfig,
    LearnedMotionModel,
    load_motion_model,
    save_motion_model,
)
from deepmot.trackers.ocsort import OCSortConfig, OCSortTracker
from deepmot.trackers.predictor import (
    MotionModel,
    MotionPredictor,
    Prediction,
    Predictor,
    TrackBatch,
    stack_histories,
)
from deepmot.trackers.registry import (
    Trainable,
    create_tracker,
    get_trainable,
    list_trackers,
    list_trainable,
    register_tracker,
    register_trainable,
)
from deepmot.trackers.siamrpn import SiamRPNConfig, SiamRPNPredictor
from deepmot.trackers.sort import SortConfig, SortTracker
from deepmot.trackers.tracktor import TracktorConfig, TracktorPredictor

__all__ = [
    "ByteTrackConfig",
    "ByteTracker",
    "ConstantVelocityConfig",
    "ConstantVelocityModel",
    "GoturnConfig",
    "GoturnPredictor",
    "KalmanConfig",
    "KalmanPredictor",
    "LearnedMotionConfig",
    "LearnedMotionModel",
    "ManagedTracker",
    "MotionModel",
    "MotionPredictor",
    "OCSortConfig",
    "OCSortTracker",
    "Prediction",
    "Predictor",
    "SiamRPNConfig",
    "SiamRPNPredictor",
    "SortConfig",
    "SortTracker",
    "Track",
    "TrackBatch",
    "TrackManagementConfig",
    "TrackManager",
    "TrackState",
    "Tracker",
    "TracktorConfig",
    "TracktorPredictor",
    "Trainable",
    "check_detections",
    "create_tracker",
    "get_trainable",
    "list_trackers",
    "list_trainable",
    "load_motion_model",
    "register_tracker",
    "register_trainable",
    "save_motion_model",
    "stack_histories",
    "track_sequence",
]
