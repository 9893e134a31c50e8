"""KITTI tracking text formats: ``label_02/<seq>.txt`` (gt and tracker results) and seqmaps.

A row (space separated, 17 columns, an 18th with the score in tracker files)::

    frame id type truncated occluded alpha x1 y1 x2 y2 h w l X Y Z rotation_y [score]

Frames are 0-based; boxes are corners ``x1, y1, x2, y2`` in pixels. The types are KITTI's
(case-insensitive): Car, Van, Truck, Pedestrian, Person (sitting), Cyclist, Tram, Misc,
DontCare (and ``car_2``, read as Car, as the reference does). ``evaluate_tracking.seqmap.<split>``
lists the sequences, one a line: ``name empty first_frame last_frame`` (the 4th column is the
number of frames the reference allots the sequence, frames ``0..last_frame - 1``).

Readers raise :class:`~deepmot.errors.MOTFormatError` naming file and line: wrong column count,
unknown type, a field that is not a number, a frame or id that is not an integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepmot.errors import MOTFormatError

__all__ = [
    "KITTI_CLASSES",
    "KittiTable",
    "read_kitti_seqmap",
    "read_kitti_tracking",
]

#: KITTI type names to the class ids the reference (TrackEval's ``Kitti2DBox``) gives them.
KITTI_CLASSES: dict[str, int] = {
    "car": 1,
    "van": 2,
    "truck": 3,
    "pedestrian": 4,
    "person": 5,  # person sitting
    "cyclist": 6,
    "tram": 7,
    "misc": 8,
    "dontcare": 9,
    "car_2": 1,
}
DONTCARE = KITTI_CLASSES["dontcare"]
LAYOUT = "frame id type truncated occluded alpha x1 y1 x2 y2 h w l X Y Z rotation_y [score]"


@dataclass(frozen=True)
class KittiTable:
    """The rows of one KITTI tracking file, in file order.

    Attributes: ``frames (K,) int64`` 0-based; ``ids (K,) int64``; ``classes (K,) int64``
    (:data:`KITTI_CLASSES`); ``truncation (K,)``, ``occlusion (K,) int64`` (the file's numbers
    cast to integers, as the reference does); ``boxes (K, 4) float64`` ``x1, y1, x2, y2``;
    ``scores (K,) float64`` (1 without an 18th column); ``lines (K,) int64`` 1-based line numbers.
    """

    path: Path
    frames: np.ndarray
    ids: np.ndarray
    classes: np.ndarray
    truncation: np.ndarray
    occlusion: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def read_kitti_tracking(path: str | Path) -> KittiTable:
    """Read a KITTI tracking gt or result file (see the module doc); rows stay in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise MOTFormatError(path, "file not found") from None
    except UnicodeDecodeError:
        raise MOTFormatError(path, "not a text file") from None
    numbers: list[int] = []
    types: list[str] = []
    values: list[str] = []
    widths: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(",") if "," in line else line.split()
        fields = [f.strip() for f in fields]
        if fields and not fields[-1]:  # a trailing delimiter
            fields.pop()
        if not fields:
            continue
        if not 17 <= len(fields) <= 18:
            raise MOTFormatError(
                path, f"expected 17 or 18 columns ({LAYOUT}), found {len(fields)}", line=number
            )
        numbers.append(number)
        types.append(fields[2].lower())
        widths.append(len(fields))
        values.extend(fields[:2])
        values.extend(fields[3:17])
        values.append(fields[17] if len(fields) == 18 else "1")
    lines = np.asarray(numbers, dtype=np.int64)
    n = len(lines)
    try:
        table = np.asarray(values, dtype=np.float64).reshape(n, 17)
    except ValueError:
        table = _parse_slowly(path, values, lines)
    classes = np.empty(n, dtype=np.int64)
    for i, name in enumerate(types):
        cls = KITTI_CLASSES.get(name)
        if cls is None:
            raise MOTFormatError(
                path,
                f"unknown type {name!r}; KITTI types: Car, Van, Truck, Pedestrian, Person, "
                "Cyclist, Tram, Misc, DontCare",
                line=int(lines[i]),
            )
        classes[i] = cls
    if n and not np.isfinite(table).all():
        i = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
        raise MOTFormatError(path, "every field must be a finite number", line=int(lines[i]))
    frames, ids = table[:, 0], table[:, 1]
    bad = np.flatnonzero((frames < 0) | (frames != np.round(frames)))
    if bad.size:
        i = int(bad[0])
        raise MOTFormatError(
            path, f"frame must be an integer >= 0, found {frames[i]:g}", line=int(lines[i])
        )
    bad = np.flatnonzero((ids != np.round(ids)) | (np.abs(ids) > 2**53))
    if bad.size:
        i = int(bad[0])
        raise MOTFormatError(path, f"id must be an integer, found {ids[i]:g}", line=int(lines[i]))
    return KittiTable(
        path=path,
        frames=frames.astype(np.int64),
        ids=ids.astype(np.int64),
        classes=classes,
        truncation=table[:, 2].astype(np.int64),
        occlusion=table[:, 3].astype(np.int64),
        boxes=table[:, 5:9].copy(),
        scores=table[:, 16].copy(),
        lines=lines,
    )


_COLUMN_OF_VALUE = (1, 2, *range(4, 18), 18)  # 1-based file column of each parsed value


def _parse_slowly(path: Path, values: list[str], lines: np.ndarray) -> np.ndarray:
    out = np.empty(len(values))
    for k, value in enumerate(values):
        try:
            out[k] = float(value)
        except ValueError:
            row, col = divmod(k, 17)
            raise MOTFormatError(
                path,
                f"column {_COLUMN_OF_VALUE[col]} is not a number: {value!r}",
                line=int(lines[row]),
            ) from None
    return out.reshape(len(lines), 17)


def read_kitti_seqmap(path: str | Path) -> dict[str, int]:
    """Sequence name to number of frames, from an ``evaluate_tracking.seqmap.*`` file.

    Rows with fewer than 4 fields are skipped, as the reference skips them.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise MOTFormatError(path, "seqmap not found") from None
    out: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(",") if "," in line else line.split()
        fields = [f.strip() for f in fields]
        if len(fields) < 4:
            continue
        try:
            length = int(fields[3])
        except ValueError:
            raise MOTFormatError(
                path, f"column 4 (number of frames) is not an integer: {fields[3]!r}", line=number
            ) from None
        if length < 0:
            raise MOTFormatError(
                path, f"number of frames must be >= 0, found {length}", line=number
            )
        if fields[0] in out:
            raise MOTFormatError(path, f"sequence {fields[0]} is listed twice", line=number)
        out[fields[0]] = length
    if not out:
        raise MOTFormatError(path, "no sequences (expected rows 'name empty first last')")
    return out
