"""Tracker settings files: the JSON that ``deepmot tune`` writes and ``deepmot track --config``
reads.

One JSON object: ``"tracker"`` (the registered name the settings were made for, optional) and
the settings themselves, each a field of
:class:`~deepmot.trackers.management.TrackManagementConfig` or of the tracker's model config::

    {"tracker": "constant_velocity", "max_invisible": 12, "match_iou": 0.41, ...}

The settings go to :func:`~deepmot.trackers.registry.create_tracker` as overrides. Every
mistake in a file (bad JSON, an unknown key, a value of the wrong type or range) is a
:class:`~deepmot.errors.DeepMOTError` naming the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_text
from deepmot.trackers.management import TrackManagementConfig
from deepmot.trackers.registry import tracker_entry

__all__ = ["TrackerSettings", "read_tracker_settings", "setting_names", "write_tracker_settings"]

TRACKER_KEY = "tracker"


@dataclass(frozen=True)
class TrackerSettings:
    """A settings file's content: the tracker it names (None: any) and its overrides."""

    tracker: str | None
    settings: dict[str, Any]


def setting_names(tracker: str) -> dict[str, str]:
    """Every setting ``tracker`` accepts: field name to its declared type (as text)."""
    entry = tracker_entry(tracker)
    names = {f.name: str(f.type) for f in fields(TrackManagementConfig)}
    names.update({f.name: str(f.type) for f in fields(entry.config)})
    return names


def _type_ok(value: Any, declared: str) -> bool:
    """Whether a JSON value fits a dataclass field's declared type (unknown types pass)."""
    options = {part.strip() for part in declared.split("|")}
    if value is None:
        return "None" in options
    if isinstance(value, bool):
        return "bool" in options or not options & {"int", "float"}
    if isinstance(value, int):
        return bool(options & {"int", "float"}) or not options & {"bool", "str"}
    if isinstance(value, float):
        return "float" in options or not options & {"int", "bool", "str"}
    if isinstance(value, str):
        return "str" in options or not options & {"int", "float", "bool"}
    return not options & {"int", "float", "bool", "str", "None"}


def read_tracker_settings(path: str | Path, tracker: str | None = None) -> TrackerSettings:
    """Read and check a settings file.

    Args:
        path: the JSON file.
        tracker: the tracker it will configure; None: the one the file names.

    Raises:
        DeepMOTError: unreadable JSON, not an object, no tracker named anywhere, a tracker
            other than the file's, an unknown key, or a value of the wrong type or range (the
            message names the file and the key).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DeepMOTError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise DeepMOTError(f"{path}: a tracker settings file holds one JSON object")
    named = data.pop(TRACKER_KEY, None)
    if named is not None and tracker is not None and named != tracker:
        raise DeepMOTError(
            f"{path}: the settings are for tracker {named!r}, not {tracker!r} (drop --tracker "
            f"or give --tracker {named})"
        )
    name = tracker or named
    if name is None:
        raise DeepMOTError(f'{path}: names no tracker; add "tracker": NAME or give --tracker')
    try:
        known = setting_names(name)
    except ValueError as error:
        raise DeepMOTError(f"{path}: {error}") from None
    for key, value in data.items():
        if key not in known:
            raise DeepMOTError(
                f"{path}: unknown key {key!r} for tracker {name!r}; valid keys: "
                f"{', '.join([TRACKER_KEY, *sorted(known)])}"
            )
        if not _type_ok(value, known[key]):
            raise DeepMOTError(f"{path}: key {key!r} must be {known[key]}, got {json.dumps(value)}")
    try:  # the configs' own range checks, with the file named
        manage = {f.name for f in fields(TrackManagementConfig)}
        TrackManagementConfig(**{k: v for k, v in data.items() if k in manage})
    except (ValueError, TypeError) as error:
        raise DeepMOTError(f"{path}: {error}") from None
    return TrackerSettings(name, data)


def write_tracker_settings(path: str | Path, tracker: str, settings: Mapping[str, Any]) -> None:
    """Write ``settings`` for ``tracker`` atomically (keys checked as :func:`read_...` does).

    Raises:
        ValueError: a key ``tracker`` does not accept.
    """
    known = setting_names(tracker)
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(f"unknown settings {unknown} for tracker {tracker!r}")
    text = json.dumps({TRACKER_KEY: tracker, **settings}, indent=2)
    atomic_write_text(path, text + "\n")
