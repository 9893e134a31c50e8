"""MOTChallenge text formats: ground truth, detections, tracker results and ``seqinfo.ini``.

Files are 1-based in frames and store boxes as ``x, y, w, h`` (top-left corner, size). The
tables below keep that layout (``boxes_xywh``, float64) so that a file read and written again
is the same file's numbers exactly; conversion to the library's ``xyxy`` float32 happens in
:mod:`deepmot.data.sequence`.

Layouts (one row per box, comma separated; whitespace separation is accepted too):

- ground truth, MOT16/17/20: ``frame, id, x, y, w, h, flag, class, visibility`` (9 columns);
  MOT15: ``frame, id, x, y, w, h, flag, wx, wy, wz`` (10 columns: class and visibility are
  taken as pedestrian and 1);
- detections: ``frame, id(-1), x, y, w, h, score[, ...]`` (7 to 10 columns);
- results: ``frame, id, x, y, w, h[, score, -1, -1, -1]`` (6 to 10 columns).

Every reader validates and raises :class:`~deepmot.errors.MOTFormatError` naming the file and
line. Rows are returned sorted by (frame, id) whatever the order in the file. Writers write to a
temporary file and rename it, so a crash never leaves half a file behind.
"""

from __future__ import annotations

import configparser
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io.atomic import atomic_write_text

__all__ = [
    "GroundTruth",
    "Detections",
    "Results",
    "SeqInfo",
    "frame_range",
    "read_gt",
    "read_detections",
    "read_results",
    "read_seqinfo",
    "write_gt",
    "write_detections",
    "write_results",
    "write_seqinfo",
    "find_sequences",
    "atomic_write_text",
]

PEDESTRIAN = 1  # MOTChallenge class id of pedestrians
MAX_EXACT_ID = 2**53  # numbers are parsed as float64, exact for integers up to here


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth rows of one sequence, sorted by (frame, id).

    Attributes: ``frames (K,) int64`` 1-based; ``ids (K,) int64``; ``boxes_xywh (K, 4) float64``;
    ``flags (K,) int64`` (1 = evaluate, 0 = ignore); ``classes (K,) int64`` (1 = pedestrian);
    ``visibility (K,) float64`` in [0, 1].
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_xywh: np.ndarray
    flags: np.ndarray
    classes: np.ndarray
    visibility: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Detections:
    """Detection rows of one sequence, sorted by frame (stable within a frame).

    Attributes: ``frames (K,) int64``; ``boxes_xywh (K, 4) float64``; ``scores (K,) float64``
    (-1 where the file has no confidence, as in the cleaned MOT17 detections).
    """

    frames: np.ndarray
    boxes_xywh: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Results:
    """Tracker output rows of one sequence, sorted by (frame, id).

    Attributes: ``frames (K,) int64``; ``ids (K,) int64``; ``boxes_xywh (K, 4) float64``;
    ``scores (K,) float64`` (1 where the file has no score column).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_xywh: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a ``seqinfo.ini``."""

    name: str
    seq_length: int
    im_width: int
    im_height: int
    frame_rate: float = 30.0
    im_dir: str = "img1"
    im_ext: str = ".jpg"
    extra: dict[str, str] = field(default_factory=dict)


Table = TypeVar("Table", GroundTruth, Detections, Results)


def frame_range(table: Table, first: int, last: int) -> Table:
    """The rows of frames ``first..last`` of a table, renumbered so that ``first`` is frame 1
    (a clip of a sequence, e.g. its validation frames)."""
    keep = (table.frames >= first) & (table.frames <= last)
    values = {name: getattr(table, name)[keep] for name in table.__dataclass_fields__}
    values["frames"] = values["frames"] - (first - 1)
    return replace(table, **values)


# --------------------------------------------------------------------------- parsing


def _parse_clean_table(
    text: str, min_cols: int, max_cols: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Fast path for a well-formed comma-separated file: numpy's C parser, no blank lines.

    Returns None whenever the file is anything but clean, so that the careful parser can name
    the offending line. Blank lines need no search of their own (15 ms on MOT17's results):
    NumPy skips them, so the table then has fewer rows than the file has lines.
    """
    n_lines = text.count("\n") + (not text.endswith("\n"))
    if not text:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(io.StringIO(text), delimiter=",", ndmin=2, comments=None)
    except ValueError:
        return None
    if table.shape[0] != n_lines or not min_cols <= table.shape[1] <= max_cols:
        return None
    if table.shape[1] == max_cols:
        return table, np.arange(1, n_lines + 1)
    padded = np.full((table.shape[0], max_cols), np.nan)
    padded[:, : table.shape[1]] = table
    return padded, np.arange(1, n_lines + 1)


def _parse_rows(
    path: Path, min_cols: int, max_cols: int, layout: str
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a numeric CSV file into a float64 table padded with NaN to ``max_cols`` columns.

    Returns ``(table (K, max_cols), line_numbers (K,))``; blank lines are skipped. Raises
    :class:`MOTFormatError` naming the first offending line.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise MOTFormatError(path, "file not found") from None
    except UnicodeDecodeError:
        raise MOTFormatError(path, "not a text file") from None
    fast = _parse_clean_table(text, min_cols, max_cols)
    if fast is not None:
        return fast
    lines = text.splitlines()
    numbers: list[int] = []
    rows: list[list[str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(",") if "," in line else line.split()
        if fields and not fields[-1].strip():  # a trailing comma
            fields.pop()
        numbers.append(number)
        rows.append(fields)
    line_numbers = np.asarray(numbers, dtype=np.int64)
    if not rows:
        return np.zeros((0, max_cols)), line_numbers
    widths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero((widths < min_cols) | (widths > max_cols))
    if bad.size:
        i = bad[0]
        expected = str(min_cols) if min_cols == max_cols else f"{min_cols} to {max_cols}"
        raise MOTFormatError(
            path,
            f"expected {expected} columns ({layout}), found {widths[i]}",
            line=int(line_numbers[i]),
        )
    table = np.full((len(rows), max_cols), np.nan)
    for width in np.unique(widths):
        members = np.flatnonzero(widths == width)
        flat = [value for i in members for value in rows[i]]
        try:
            values = np.asarray(flat, dtype=np.float64)
        except ValueError:
            values = _parse_floats_slowly(path, [rows[i] for i in members], line_numbers[members])
        table[members, :width] = values.reshape(len(members), width)
    return table, line_numbers


def _parse_floats_slowly(path: Path, rows: list[list[str]], numbers: np.ndarray) -> np.ndarray:
    """Row-by-row float parsing, used when the fast path fails: names the first bad field."""
    values = []
    for fields, number in zip(rows, numbers, strict=True):
        for column, value in enumerate(fields, start=1):
            try:
                values.append(float(value))
            except ValueError:
                raise MOTFormatError(
                    path, f"column {column} is not a number: {value.strip()!r}", line=int(number)
                ) from None
    return np.asarray(values)


def _check_finite(
    path: Path, table: np.ndarray, lines: np.ndarray, columns: Sequence[int], names: str
) -> None:
    values = table[:, list(columns)]
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise MOTFormatError(path, f"{names} must be finite numbers", line=int(lines[bad[0]]))


def _check_frames(path: Path, table: np.ndarray, lines: np.ndarray) -> np.ndarray:
    frames = table[:, 0]
    bad = np.flatnonzero(~np.isfinite(frames) | (frames < 1) | (frames != np.round(frames)))
    if bad.size:
        i = bad[0]
        raise MOTFormatError(
            path, f"frame must be an integer >= 1, found {frames[i]:g}", line=int(lines[i])
        )
    return frames.astype(np.int64)


def _check_ids(path: Path, table: np.ndarray, lines: np.ndarray) -> np.ndarray:
    ids = table[:, 1]
    bad = np.flatnonzero(~np.isfinite(ids) | (ids != np.round(ids)))
    if bad.size:
        i = bad[0]
        raise MOTFormatError(path, f"id must be an integer, found {ids[i]:g}", line=int(lines[i]))
    big = np.flatnonzero(np.abs(ids) > MAX_EXACT_ID)
    if big.size:
        i = big[0]
        raise MOTFormatError(
            path,
            f"id {ids[i]:.0f} is too large (ids up to 2**53 are read exactly)",
            line=int(lines[i]),
        )
    return ids.astype(np.int64)


def _check_boxes(path: Path, table: np.ndarray, lines: np.ndarray) -> np.ndarray:
    boxes = table[:, 2:6]
    _check_finite(path, table, lines, (2, 3), "x and y")
    sizes = boxes[:, 2:]
    bad = np.flatnonzero(~(sizes >= 0).all(axis=1))  # catches NaN too
    if bad.size:
        i = bad[0]
        w, h = sizes[i]
        raise MOTFormatError(
            path,
            f"width and height must be >= 0 and not NaN, found w={w:g} h={h:g}",
            line=int(lines[i]),
        )
    if not np.isfinite(sizes).all():
        i = np.flatnonzero(~np.isfinite(sizes).all(axis=1))[0]
        raise MOTFormatError(path, "width and height must be finite", line=int(lines[i]))
    return boxes.copy()


def _order_by_frame_and_id(
    frames: np.ndarray, ids: np.ndarray, tiebreak: np.ndarray
) -> tuple[np.ndarray, int]:
    """Row order by (frame, id, tiebreak) and the position in it of the first repeated pair (-1)."""
    order = np.lexsort((tiebreak, ids, frames))
    f, i = frames[order], ids[order]
    repeated = np.flatnonzero((f[1:] == f[:-1]) & (i[1:] == i[:-1]))
    return order, int(repeated[0]) + 1 if repeated.size else -1


def _sort_and_check_unique(
    path: Path, frames: np.ndarray, ids: np.ndarray, lines: np.ndarray
) -> np.ndarray:
    """Order rows by (frame, id) and reject a (frame, id) pair that occurs twice."""
    order, repeat = _order_by_frame_and_id(frames, ids, lines)
    if repeat >= 0:
        first, second = order[repeat - 1], order[repeat]
        raise MOTFormatError(
            path,
            f"id {ids[second]} appears twice in frame {frames[second]} "
            f"(also on line {lines[first]})",
            line=int(lines[second]),
        )
    return order


# --------------------------------------------------------------------------- readers


def read_gt(path: str | Path) -> GroundTruth:
    """Read a ground-truth file (MOT16/17/20 9-column or MOT15 10-column layout)."""
    path = Path(path)
    table, lines = _parse_rows(path, 9, 10, "frame,id,x,y,w,h,flag,class,visibility")
    frames = _check_frames(path, table, lines)
    ids = _check_ids(path, table, lines)
    boxes = _check_boxes(path, table, lines)
    ten = ~np.isnan(table[:, 9])
    if ten.any() and not ten.all():
        i = np.flatnonzero(ten != ten[0])[0]
        raise MOTFormatError(
            path, "rows mix the 9-column and 10-column ground-truth layouts", line=int(lines[i])
        )
    _check_finite(path, table, lines, (6,), "flag")
    flags = table[:, 6].astype(np.int64)
    if ten.any():  # MOT15: flag, then world coordinates; every box is a fully visible pedestrian
        classes = np.full(len(table), PEDESTRIAN, dtype=np.int64)
        visibility = np.ones(len(table))
    else:
        _check_finite(path, table, lines, (7, 8), "class and visibility")
        classes = table[:, 7].astype(np.int64)
        visibility = table[:, 8].copy()
    order = _sort_and_check_unique(path, frames, ids, lines)
    return GroundTruth(
        frames=frames[order],
        ids=ids[order],
        boxes_xywh=boxes[order],
        flags=flags[order],
        classes=classes[order],
        visibility=visibility[order],
    )


def read_detections(path: str | Path) -> Detections:
    """Read a detection file; the id column is ignored, a missing score column is an error."""
    path = Path(path)
    table, lines = _parse_rows(path, 7, 10, "frame,-1,x,y,w,h,score[,...]")
    frames = _check_frames(path, table, lines)
    boxes = _check_boxes(path, table, lines)
    _check_finite(path, table, lines, (6,), "score")
    order = np.argsort(frames, kind="stable")
    return Detections(frames=frames[order], boxes_xywh=boxes[order], scores=table[order, 6])


def read_results(path: str | Path) -> Results:
    """Read a tracker result file; a (frame, id) pair used twice is an error."""
    path = Path(path)
    table, lines = _parse_rows(path, 6, 10, "frame,id,x,y,w,h[,score,-1,-1,-1]")
    frames = _check_frames(path, table, lines)
    ids = _check_ids(path, table, lines)
    boxes = _check_boxes(path, table, lines)
    scores = np.where(np.isnan(table[:, 6]), 1.0, table[:, 6])
    order = _sort_and_check_unique(path, frames, ids, lines)
    return Results(
        frames=frames[order], ids=ids[order], boxes_xywh=boxes[order], scores=scores[order]
    )


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Read ``seqinfo.ini``; ``seqLength``, ``imWidth`` and ``imHeight`` are required."""
    path = Path(path)
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep the camelCase keys
    try:
        parser.read_string(path.read_text(), source=str(path))
    except FileNotFoundError:
        raise MOTFormatError(path, "file not found") from None
    except configparser.Error as error:
        raise MOTFormatError(path, f"not an ini file: {error}") from None
    if "Sequence" not in parser:
        raise MOTFormatError(path, "no [Sequence] section")
    section = dict(parser["Sequence"])

    def number(key: str, kind: type) -> int | float:
        if key not in section:
            raise MOTFormatError(path, f"missing key {key!r} in [Sequence]")
        try:
            value = kind(section.pop(key))
        except ValueError:
            raise MOTFormatError(path, f"{key} is not a valid {kind.__name__}") from None
        if value <= 0:
            raise MOTFormatError(path, f"{key} must be > 0, found {value}")
        return value

    seq_length = number("seqLength", int)
    im_width = number("imWidth", int)
    im_height = number("imHeight", int)
    frame_rate = number("frameRate", float) if "frameRate" in section else 30.0
    return SeqInfo(
        name=section.pop("name", path.parent.name),
        seq_length=int(seq_length),
        im_width=int(im_width),
        im_height=int(im_height),
        frame_rate=float(frame_rate),
        im_dir=section.pop("imDir", "img1"),
        im_ext=section.pop("imExt", ".jpg"),
        extra=section,
    )


# --------------------------------------------------------------------------- writers


def _format_number(value: float) -> str:
    """Shortest text that reads back as the same float64; integers without a decimal point."""
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _format_table(columns: Iterable[np.ndarray]) -> str:
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    if not cols or len(cols[0]) == 0:
        return ""
    table = np.stack(cols, axis=1)
    if not np.isfinite(table).all():
        raise ValueError("cannot write non-finite numbers to a MOTChallenge file")
    return "".join(",".join(_format_number(v) for v in row) + "\n" for row in table.tolist())


def write_gt(path: str | Path, gt: GroundTruth) -> None:
    """Write ground truth in the 9-column MOT16/17/20 layout, atomically."""
    b = gt.boxes_xywh
    atomic_write_text(
        path,
        _format_table(
            [
                gt.frames,
                gt.ids,
                b[:, 0],
                b[:, 1],
                b[:, 2],
                b[:, 3],
                gt.flags,
                gt.classes,
                gt.visibility,
            ]
        ),
    )


def write_detections(path: str | Path, dets: Detections) -> None:
    """Write detections as ``frame,-1,x,y,w,h,score,-1,-1,-1``, atomically."""
    b, n = dets.boxes_xywh, len(dets)
    minus = np.full(n, -1.0)
    atomic_write_text(
        path,
        _format_table(
            [
                dets.frames,
                minus,
                b[:, 0],
                b[:, 1],
                b[:, 2],
                b[:, 3],
                dets.scores,
                minus,
                minus,
                minus,
            ]
        ),
    )


def write_results(path: str | Path, results: Results) -> None:
    """Write tracker results as ``frame,id,x,y,w,h,score,-1,-1,-1``, atomically.

    Raises ``ValueError`` if a (frame, id) pair occurs twice: such a file is not a valid result.
    """
    frames, ids = np.asarray(results.frames), np.asarray(results.ids)
    order, repeat = _order_by_frame_and_id(frames, ids, np.arange(len(frames)))
    if repeat >= 0:
        row = order[repeat]
        raise ValueError(f"id {ids[row]} appears twice in frame {frames[row]}")
    b, minus = results.boxes_xywh[order], np.full(len(order), -1.0)
    columns = [frames[order], ids[order], b[:, 0], b[:, 1], b[:, 2], b[:, 3], results.scores[order]]
    atomic_write_text(path, _format_table([*columns, minus, minus, minus]))


def write_seqinfo(path: str | Path, info: SeqInfo) -> None:
    """Write a ``seqinfo.ini`` in the MOTChallenge key order, atomically."""
    keys = {
        "name": info.name,
        "imDir": info.im_dir,
        "frameRate": _format_number(info.frame_rate),
        "seqLength": str(info.seq_length),
        "imWidth": str(info.im_width),
        "imHeight": str(info.im_height),
        "imExt": info.im_ext,
        **info.extra,
    }
    atomic_write_text(path, "[Sequence]\n" + "".join(f"{k}={v}\n" for k, v in keys.items()))


# --------------------------------------------------------------------------- discovery


def is_sequence_dir(path: str | Path) -> bool:
    """A sequence folder holds a ``seqinfo.ini`` or a ``gt/gt.txt``."""
    path = Path(path)
    return (path / "seqinfo.ini").is_file() or (path / "gt" / "gt.txt").is_file()


def find_sequences(root: str | Path) -> list[Path]:
    """Sequence folders under ``root`` (``root`` itself if it is one), sorted by path.

    Works for the MOTChallenge layout (``MOT17/train/MOT17-02-FRCNN/``) and for flat folders of
    sequences alike. Does not descend into a sequence folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    if is_sequence_dir(root):
        return [root]
    found: list[Path] = []
    for current, dirs, _ in os.walk(root):
        dirs.sort()
        here = Path(current)
        keep = []
        for name in dirs:
            if is_sequence_dir(here / name):
                found.append(here / name)
            elif not name.startswith("."):
                keep.append(name)
        dirs[:] = keep
    return sorted(found)


def select_names(names: Iterable[str], patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """The ``names`` chosen by ``patterns`` (``--sequences`` of every command): a name is chosen
    when it equals a pattern or starts with one (``MOT17-02`` chooses ``MOT17-02-FRCNN`` and
    ``MOT17-02-SDP``; ``MOT17`` every MOT17 sequence).

    Returns ``(chosen, unmatched)``: the chosen names in the patterns' order (each once), and
    the patterns that chose nothing.
    """
    names = list(names)
    chosen: dict[str, None] = {}
    unmatched = []
    for pattern in patterns:
        hits = [n for n in names if n == pattern] or [n for n in names if n.startswith(pattern)]
        chosen.update(dict.fromkeys(hits))
        if not hits:
            unmatched.append(pattern)
    return list(chosen), unmatched


def select_sequences(paths: Iterable[Path], patterns: Iterable[str], root: Path) -> list[Path]:
    """The sequence folders among ``paths`` that ``patterns`` choose (see :func:`select_names`),
    in the patterns' order.

    Raises:
        DeepMOTError: a pattern chose nothing (the message names it and the sequences there).
    """
    by_name = {p.name: p for p in paths}
    names, unmatched = select_names(by_name, patterns)
    if unmatched:
        there = list(by_name)
        shown = ", ".join(there[:8]) + (f" and {len(there) - 8} more" if len(there) > 8 else "")
        raise DeepMOTError(
            f"--sequences {' '.join(unmatched)}: no sequence under {root} is named or starts so "
            f"(there: {shown})"
        )
    return [by_name[n] for n in names]
