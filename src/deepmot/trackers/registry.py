"""The tracker registry: names -> predictors in the shared track management; trainable ones.

A tracker is one file plus a registration. A builder returns the tracker's
:class:`~deepmot.trackers.predictor.Predictor`; :func:`create_tracker` puts it inside
:class:`~deepmot.trackers.management.ManagedTracker` with the management settings::

    @register_tracker("constant_velocity", config=ConstantVelocityConfig)
    def constant_velocity(config: ConstantVelocityConfig) -> Predictor:
        return MotionPredictor(ConstantVelocityModel(config))

A tracker with its own association and track lifecycle (SORT, ByteTrack, OC-SORT) registers
the whole :class:`~deepmot.trackers.base.Tracker` instead, with
:func:`register_standalone`; :func:`create_tracker` then passes the overrides to its config::

    @register_standalone("sort", config=SortConfig)
    def sort(config: SortConfig) -> Tracker:
        return SortTracker(config)

A *trainable* tracker registers a :class:`Trainable` instead: how to build its trained module
from its config, wrap the module as a predictor, and save and load its weights (the
``io.weights`` format). It is then both a tracker (``create_tracker(name, weights=...)``) and
something ``deepmot train --tracker NAME`` can train::

    register_trainable(Trainable("motion", LearnedMotionConfig, LearnedMotionModel,
                                 MotionPredictor, save_motion_model, load_motion_model))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from torch import nn

from deepmot import WEIGHTS_DIR
from deepmot.trackers.base import Tracker
from deepmot.trackers.management import ManagedTracker, TrackManagementConfig
from deepmot.trackers.predictor import Predictor

__all__ = [
    "Trainable",
    "TrackerEntry",
    "create_tracker",
    "get_trainable",
    "list_trackers",
    "list_trainable",
    "register_standalone",
    "register_tracker",
    "register_trainable",
    "shipped_weights",
    "tracker_entry",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trainable:
    """What a trainable tracker supplies to the trainer.

    Attributes:
        name: the registered name.
        config: its model config class (a frozen dataclass with ``to_dict``/``from_dict``).
        build: ``config -> nn.Module``, the module whose parameters are trained.
        predictor: ``module -> Predictor``, the module behind the predictor contract (its
            ``predict`` is called with gradients during training).
        save: ``(module, path, card) -> None``, writes weights (atomically) with their card.
        load: ``path -> module``, reads them back (in eval mode).
        weights_file: the file name the trainer writes into its run folder.
        management: the track management it tracks with by default (its refinement rule is
            also the training clips', :mod:`deepmot.train.rollout`).
        needs_images: its predictor regresses from the frame, whatever its settings (the
            trainer then insists on sequences with frames).
        detections_switch: the name of the model config's boolean field that makes the model
            look at the detections (the learned motion model's ``use_detections``); None: it
            never looks at them. See :meth:`uses_detections`.
        backbones: the model configs ``deepmot train --backbone NAME`` starts from, by name
            (GOTURN's and SiamRPN's ``light`` and ``alexnet``); empty: no backbone to choose.
    """

    name: str
    config: type
    build: Callable[[Any], nn.Module]
    predictor: Callable[[nn.Module], Predictor]
    save: Callable[[nn.Module, str | Path, dict[str, Any] | None], None]
    load: Callable[[str | Path], nn.Module]
    weights_file: str
    management: TrackManagementConfig = TrackManagementConfig()
    needs_images: bool = False
    detections_switch: str | None = None
    backbones: dict[str, Callable[[], Any]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        switch = self.detections_switch
        if switch is not None and switch not in {f.name for f in fields(self.config)}:
            raise ValueError(f"{self.config.__name__} has no field {switch!r} (detections_switch)")

    def uses_detections(self, model_config: Any) -> bool:
        """Whether the model of ``model_config`` looks at the detections (the trainer then
        insists on sequences with detections; tracking gives them the same)."""
        switch = self.detections_switch
        return switch is not None and bool(getattr(model_config, switch))

    def config_from_dict(self, values: dict[str, Any] | None) -> Any:
        """The model config from stored settings (None: the defaults)."""
        return self.config.from_dict(dict(values or {}))


@dataclass(frozen=True)
class TrackerEntry:
    """A registered tracker and its config class: either ``builder(config, weights) ->
    Predictor`` for the shared track management, or ``standalone(config) -> Tracker``, a
    whole tracker with its own management (then ``builder`` is None)."""

    name: str
    config: type
    builder: Callable[[Any, str | Path | None], Predictor] | None
    management: TrackManagementConfig
    trainable: Trainable | None = None
    standalone: Callable[[Any], Tracker] | None = None


_TRACKERS: dict[str, TrackerEntry] = {}


def register_tracker(
    name: str, config: type, management: TrackManagementConfig | None = None
) -> Callable[[Callable[[Any], Predictor]], Callable[[Any], Predictor]]:
    """Decorator registering ``builder(config) -> Predictor`` as tracker ``name``."""

    def decorate(builder: Callable[[Any], Predictor]) -> Callable[[Any], Predictor]:
        def build(settings: Any, weights: str | Path | None) -> Predictor:
            if weights is not None:
                raise ValueError(f"tracker {name!r} has no trained weights to load")
            return builder(settings)

        _add(TrackerEntry(name, config, build, management or TrackManagementConfig()))
        return builder

    return decorate


def register_standalone(
    name: str, config: type
) -> Callable[[Callable[[Any], Tracker]], Callable[[Any], Tracker]]:
    """Decorator registering ``builder(config) -> Tracker``, a whole tracker with its own
    association and track lifecycle, as tracker ``name`` (no shared management, no weights)."""

    def decorate(builder: Callable[[Any], Tracker]) -> Callable[[Any], Tracker]:
        _add(TrackerEntry(name, config, None, TrackManagementConfig(), standalone=builder))
        return builder

    return decorate


def register_trainable(trainable: Trainable) -> Trainable:
    """Register a trainable tracker (see :class:`Trainable`); returns it."""

    def build(settings: Any, weights: str | Path | None) -> Predictor:
        module = trainable.load(weights) if weights is not None else trainable.build(settings)
        return trainable.predictor(module.eval())

    _add(TrackerEntry(trainable.name, trainable.config, build, trainable.management, trainable))
    return trainable


def _add(entry: TrackerEntry) -> None:
    if entry.name in _TRACKERS:
        raise ValueError(f"a tracker named {entry.name!r} is registered already")
    _TRACKERS[entry.name] = entry


def list_trackers() -> list[str]:
    """Names :func:`create_tracker` accepts."""
    return sorted(_TRACKERS)


def list_trainable() -> list[str]:
    """Names of the trackers ``deepmot train`` can train."""
    return sorted(n for n, e in _TRACKERS.items() if e.trainable is not None)


def tracker_entry(name: str) -> TrackerEntry:
    """The registration of ``name``; ValueError listing the valid names if unknown."""
    if name not in _TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; valid names: {', '.join(list_trackers())}")
    return _TRACKERS[name]


def get_trainable(name: str) -> Trainable:
    """The :class:`Trainable` of ``name``; ValueError listing the trainable names if none."""
    entry = tracker_entry(name)
    if entry.trainable is None:
        raise ValueError(
            f"tracker {name!r} has nothing to train; trainable: {', '.join(list_trainable())}"
        )
    return entry.trainable


def shipped_weights(name: str) -> Path | None:
    """The weights shipped with the package for tracker ``name``: ``deepmot.WEIGHTS_DIR /``
    its :attr:`Trainable.weights_file`, None for a tracker that is not trainable or has none
    shipped; ValueError for an unknown name."""
    trainable = tracker_entry(name).trainable
    if trainable is None:
        return None
    path = WEIGHTS_DIR / trainable.weights_file
    return path if path.is_file() else None


def create_tracker(
    name: str, weights: str | Path | None = None, pretrained: bool = True, **overrides: Any
) -> Tracker:
    """Build a registered tracker by name.

    Args:
        name: one of :func:`list_trackers`.
        weights: trained weights of a trainable tracker (they fix its model config).
        pretrained: without ``weights``, load the tracker's :func:`shipped_weights` where it
            has them (GOTURN, SiamRPN), as ``deepmot track`` does; False builds the model
            untrained from its config (what a trainer starts from; model overrides need it
            for a tracker with shipped weights). Trackers without shipped weights are built
            the same either way (Tracktor's untrained build holds the shipped detector).
        **overrides: fields of :class:`~deepmot.trackers.management.TrackManagementConfig`
            (e.g. ``max_invisible=30``) or of the tracker's config (e.g. ``velocity_steps=3``),
            ``image_size=(width, height)``, or ``management=TrackManagementConfig(...)``
            replacing the tracker's default management. A standalone tracker (SORT, ByteTrack,
            OC-SORT) takes its own config's fields and ``image_size`` only.

    Returns:
        A :class:`~deepmot.trackers.management.ManagedTracker`, or the standalone tracker.

    Raises:
        ValueError: an unknown name (the message lists the valid ones) or setting, or model
            settings given together with weights (shipped ones included).
    """
    entry = tracker_entry(name)
    if weights is None and pretrained:
        weights = shipped_weights(name)
        if weights is not None:
            log.info("tracker %r: the shipped weights %s", name, weights)
    overrides = dict(overrides)
    image_size = overrides.pop("image_size", None)
    if entry.standalone is not None:
        return _standalone(entry, weights, image_size, overrides)
    management = overrides.pop("management", None) or entry.management
    if not isinstance(management, TrackManagementConfig):
        raise TypeError(
            f"management must be a TrackManagementConfig, got {type(management).__name__}"
        )
    manage_names = {f.name for f in fields(TrackManagementConfig)}
    model_names = {f.name for f in fields(entry.config)}
    unknown = set(overrides) - manage_names - model_names
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)} for tracker {name!r}; valid: "
            f"{sorted(manage_names | model_names | {'image_size', 'management', 'weights'})}"
        )
    management = replace(management, **{k: v for k, v in overrides.items() if k in manage_names})
    model_overrides = {k: v for k, v in overrides.items() if k in model_names}
    if weights is not None and model_overrides:
        raise ValueError(
            f"trained weights fix the model's config; got overrides {sorted(model_overrides)}"
        )
    settings = None if weights is not None else entry.config(**model_overrides)
    return ManagedTracker(entry.builder(settings, weights), management, image_size)


def _standalone(
    entry: TrackerEntry,
    weights: str | Path | None,
    image_size: tuple[int, int] | None,
    overrides: dict[str, Any],
) -> Tracker:
    """A standalone tracker from its config's overrides, reset for ``image_size``."""
    if weights is not None:
        raise ValueError(f"tracker {entry.name!r} has no trained weights to load")
    names = {f.name for f in fields(entry.config)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(
            f"unknown settings {sorted(unknown)} for tracker {entry.name!r} (it has its own "
            f"track management); valid: {sorted(names | {'image_size'})}"
        )
    tracker = entry.standalone(entry.config(**overrides))
    tracker.reset(image_size=image_size)
    return tracker
