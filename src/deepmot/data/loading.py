"""Sequence folders to :class:`~deepmot.data.sequence.Sequence` objects, by the rules every
command follows: the folders found under a root (:func:`deepmot.io.mot.find_sequences`), the
``--sequences`` choice (names or prefixes, :func:`deepmot.io.mot.select_sequences`), the
detection file (:meth:`~deepmot.data.sequence.Sequence.choose_detection_file`: the one named,
else ``det/det.txt``, else the only one) and a part of the frames (the paper's split or a
fraction range).

What a caller needs decides which folders count (``need``): ``"detections"`` to track (the
sequences without a detection file are skipped with a warning), ``"gt"`` to train a tracker
(detections where there are), ``"frames"`` to train or evaluate a detector (frames and ground
truth, detections unused). Bad input raises :class:`~deepmot.errors.DeepMOTError` with a
one-line message naming the folder or the option.

Standard library only at module level (the CLI imports :func:`part_frames` while building its
parsers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from deepmot.errors import DeepMOTError

if TYPE_CHECKING:
    from deepmot.data.sequence import Sequence

__all__ = ["Need", "clip_part", "load_sequences", "part_frames", "usable_sequence_dirs"]

log = logging.getLogger(__name__)

Need = Literal["detections", "gt", "frames"]


def part_frames(seq_length: int, part: str) -> range:
    """The frames of ``part``, 1-based: ``train`` / ``val``, the paper's split
    (:func:`deepmot.data.sequence.paper_split`), else ``A:B`` (two fractions), frames
    ``int(n * A) + 1 .. int(n * B)`` of the ``n = seq_length`` frames."""
    from deepmot.data.sequence import paper_split

    if part in ("train", "val"):
        return paper_split(seq_length)[0 if part == "train" else 1]
    start, end = (float(x) for x in part.split(":"))
    return range(int(seq_length * start) + 1, int(seq_length * end) + 1)


def clip_part(sequence: Sequence, part: str) -> Sequence:
    """``sequence`` cut to the frames of ``part`` (:func:`part_frames`), renumbered from 1;
    DeepMOTError (naming ``--part``) when the part holds no frame of it."""
    frames = part_frames(sequence.seq_length, part)
    if len(frames) == 0:
        raise DeepMOTError(
            f"--part {part}: no frame of {sequence.name} ({sequence.seq_length} frames)"
        )
    return sequence.clip(frames)


def _chosen_dirs(
    root: Path, sequences: Iterable[str] | None, det_file: str | None, need: Need
) -> dict[Path, str | None]:
    """The sequence folders under ``root`` that ``sequences`` choose, each with its detection
    file (None: it has none)."""
    from deepmot.data.sequence import Sequence
    from deepmot.io.mot import find_sequences, select_sequences

    if not root.is_dir():
        raise DeepMOTError(f"MOT_ROOT {root}: no such folder of sequences")
    paths = find_sequences(root)
    if not paths:
        with_gt = " (with gt/gt.txt)" if need == "gt" else ""
        raise DeepMOTError(f"MOT_ROOT {root}: no sequence folders{with_gt} in it")
    sequences = list(sequences or ())
    chosen = select_sequences(paths, sequences, root) if sequences else paths
    return {p: Sequence.choose_detection_file(p, det_file) for p in chosen}


def _no_detection_file(
    root: Path, det_file: str | None, chosen: Iterable[Path], option: str
) -> DeepMOTError:
    """The error for a detection file that none of the ``chosen`` folders has."""
    from deepmot.data.sequence import Sequence

    found = sorted({f for p in chosen for f in Sequence.detection_files(p)})
    wanted = f"det/{det_file}" if det_file else "a detection file in det/"
    return DeepMOTError(
        f"{option}: no sequence under {root} has {wanted} (they have: "
        f"{', '.join(found) or 'no detection files'})"
    )


def usable_sequence_dirs(
    root: str | Path, det_file: str | None = None, sequences: Iterable[str] | None = None
) -> tuple[list[tuple[Path, str]], list[str]]:
    """The sequence folders under ``root`` chosen by ``sequences`` (names or prefixes) that
    have a detection file, with its name, and the names of the chosen ones that have none
    (to track: a caller reads each folder when it gets to it).

    Raises:
        DeepMOTError: no sequence folder, a pattern that chooses none, a sequence whose
            detection file is ambiguous, or no sequence with a detection file.
    """
    root = Path(root)
    files = _chosen_dirs(root, sequences, det_file, "detections")
    usable = [(p, f) for p, f in files.items() if f is not None]
    if not usable:
        option = f"--det-file {det_file}" if det_file else f"MOT_ROOT {root}"
        raise _no_detection_file(root, det_file, files, option)
    return usable, [p.name for p, f in files.items() if f is None]


def load_sequences(
    root: str | Path,
    det_file: str | None = None,
    sequences: Iterable[str] | None = None,
    need: Need = "detections",
    part: str | None = None,
    explicit: bool = True,
) -> list[Sequence]:
    """The sequences under ``root`` that a command needs, read.

    Args:
        root: a folder of sequence folders (or one sequence folder).
        det_file: the detection file's name in ``det/`` (None: ``det.txt``, else the only one);
            unused for ``need="frames"``.
        sequences: names or prefixes choosing sequences (None: all). For ``need="frames"``,
            prefixes that keep the names starting with one of them, an unmatched one no error
            (a detector reads several roots, each with some of them).
        need: ``"detections"``: the sequences with a detection file, the others skipped with
            a warning naming them; ``"gt"``: those with ground truth, each with its detection
            file where it has one (one warning names those without); ``"frames"``: those with
            frames and ground truth, read with ``det/det.txt`` if any.
        part: only these frames of each sequence (:func:`clip_part`); None: all.
        explicit: ``need="gt"``: whether ``det_file`` was asked for (then no sequence having
            it is an error) rather than a stored default.

    Raises:
        DeepMOTError: no folder or no sequence in it, a pattern that chooses none, an
            ambiguous detection file, a detection file no sequence has, no sequence with what
            ``need`` asks, a part with no frame of a sequence.
    """
    root = Path(root)
    if need == "frames":
        found = _with_frames(root, sequences)
    elif need == "gt":
        found = _with_gt(root, det_file, sequences, explicit)
    elif need == "detections":
        from deepmot.data.sequence import Sequence

        usable, skipped = usable_sequence_dirs(root, det_file, sequences)
        if skipped:
            what = f"det/{det_file}" if det_file else "detections"
            log.warning(
                "skipped %d sequence(s) without %s: %s", len(skipped), what, ", ".join(skipped)
            )
        found = [Sequence.from_dir(p, det_file=f) for p, f in usable]
    else:
        raise ValueError(f"need must be detections, gt or frames, got {need!r}")
    return found if part is None else [clip_part(s, part) for s in found]


def _with_gt(
    root: Path, det_file: str | None, sequences: Iterable[str] | None, explicit: bool
) -> list[Sequence]:
    from deepmot.data.sequence import Sequence

    files = _chosen_dirs(root, sequences, det_file, "gt")
    if det_file is not None and explicit and not any(files.values()):
        raise _no_detection_file(root, det_file, files, f"--det-file {det_file}")
    found, without = [], []
    for path, name in files.items():
        if name is None:
            without.append(path.name)
        sequence = Sequence.from_dir(path, det_file=name)
        if sequence.gt is not None:
            found.append(sequence)
    if without:
        wanted = f"det/{det_file}" if det_file else "a detection file"
        log.warning(
            "%d of %d sequences have no %s and train without detections: %s",
            len(without), len(files), wanted, _names(without),
        )  # fmt: skip
    if not found:
        raise DeepMOTError(f"MOT_ROOT {root}: no sequence with ground truth (gt/gt.txt)")
    return found


def _with_frames(root: Path, prefixes: Iterable[str] | None) -> list[Sequence]:
    from deepmot.data.sequence import Sequence
    from deepmot.io.mot import find_sequences

    prefixes = list(prefixes or ())
    paths = [p for p in find_sequences(root) if not prefixes or p.name.startswith(tuple(prefixes))]
    found = [s for s in map(Sequence.from_dir, paths) if s.gt is not None and s.has_images]
    if not found:
        raise DeepMOTError(
            f"MOT_ROOT {root}: no sequence with img1/ and gt/gt.txt"
            + (f" whose name starts with {' or '.join(prefixes)}" if prefixes else "")
        )
    return found


def _names(names: list[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
