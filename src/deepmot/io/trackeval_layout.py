"""Where the ground truth and the tracker files of an evaluation are: our folders and TrackEval's.

Ground truth (``gt_root``), any of:

- a folder of MOTChallenge sequence folders (``<seq>/gt/gt.txt``, ``seqinfo.ini``), searched
  recursively, e.g. ``MOT17/train``;
- TrackEval's MOTChallenge gt folder ``gt/mot_challenge/`` holding ``<BENCHMARK>-<split>/``
  and ``seqmaps/<BENCHMARK>-<split>.txt`` (the sequences evaluated are the seqmap's), or one of
  its ``<BENCHMARK>-<split>/`` folders (its seqmap is then looked up in ``../seqmaps/``);
- a KITTI tracking gt folder (TrackEval's ``gt/kitti/kitti_2d_box_train/``): ``label_02/<seq>.txt``
  and ``evaluate_tracking.seqmap.<split>``.

Tracker results (``results``), any of:

- a folder of ``<seq>.txt`` files: one tracker, named after the folder (after its parent when
  the folder is TrackEval's ``data``);
- a folder of tracker folders ``<name>/data/<seq>.txt`` (TrackEval's
  ``trackers/mot_challenge/MOT17-train/``): several trackers;
- TrackEval's trackers root (``trackers/mot_challenge/``) holding ``<BENCHMARK>-<split>/``.

Seqmaps (MOTChallenge) are CSV files with a header row, then one sequence name a line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io.mot import find_sequences

__all__ = [
    "GtLayout",
    "EvaluationError",
    "SequenceSource",
    "find_trackers",
    "read_mot_seqmap",
    "resolve_gt",
]


class EvaluationError(DeepMOTError):
    """The inputs of an evaluation do not fit together (missing result file, unknown sequence,
    missing seqmap or tracker)."""


@dataclass(frozen=True)
class SequenceSource:
    """One sequence's ground truth.

    Attributes:
        name: the sequence's name (result files are ``<name>.txt``).
        gt_path: its gt file (``<seq>/gt/gt.txt`` or ``label_02/<seq>.txt``).
        seq_dir: the MOTChallenge sequence folder (None for KITTI).
        num_frames: the length given by a KITTI seqmap; None for MOTChallenge (``seqinfo.ini``).
    """

    name: str
    gt_path: Path
    seq_dir: Path | None = None
    num_frames: int | None = None


@dataclass(frozen=True)
class GtLayout:
    """The sequences of an evaluation and how to read them.

    Attributes:
        kind: ``"MOT"`` (MOTChallenge files) or ``"KITTI"``.
        folder: the folder the sequences are in.
        sequences: name to source, in evaluation order.
        seqmap: the seqmap file used, if any.
        gt_set: TrackEval's ``<BENCHMARK>-<split>`` name, if the layout has one.
    """

    kind: str
    folder: Path
    sequences: dict[str, SequenceSource]
    seqmap: Path | None = None
    gt_set: str | None = None
    notes: list[str] = field(default_factory=list)


def read_mot_seqmap(path: str | Path) -> list[str]:
    """Sequence names of a MOTChallenge seqmap (header row, then a name a line)."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise MOTFormatError(path, "seqmap not found") from None
    names: list[str] = []
    for number, row in enumerate(rows, start=1):
        if number == 1 or not row or not row[0].strip():
            continue
        name = row[0].strip()
        if name in names:
            raise MOTFormatError(path, f"sequence {name} is listed twice", line=number)
        names.append(name)
    if not names:
        raise MOTFormatError(path, "no sequences (expected a header row, then a name a line)")
    return names


def _kitti_layout(folder: Path, split: str | None, seqmap: Path | None) -> GtLayout:
    from deepmot.io.kitti import read_kitti_seqmap

    if seqmap is None:
        split = split or "training"
        seqmap = folder / f"evaluate_tracking.seqmap.{split}"
        if not seqmap.is_file():
            found = sorted(p.name for p in folder.glob("evaluate_tracking.seqmap.*"))
            raise EvaluationError(
                f"{folder}: no seqmap {seqmap.name} for split {split!r}"
                + (f"; found {', '.join(found)} (pass --split)" if found else "")
            )
    lengths = read_kitti_seqmap(seqmap)
    sequences = {}
    for name, length in lengths.items():
        gt_path = folder / "label_02" / f"{name}.txt"
        if not gt_path.is_file():
            raise EvaluationError(f"{seqmap}: sequence {name} has no ground truth ({gt_path})")
        sequences[name] = SequenceSource(name=name, gt_path=gt_path, num_frames=length)
    return GtLayout(kind="KITTI", folder=folder, sequences=sequences, seqmap=seqmap)


def _mot_sequences(folder: Path, names: list[str], seqmap: Path) -> dict[str, SequenceSource]:
    sequences = {}
    for name in names:
        seq_dir = folder / name
        gt_path = seq_dir / "gt" / "gt.txt"
        if not gt_path.is_file():
            raise EvaluationError(f"{seqmap}: sequence {name} has no ground truth ({gt_path})")
        sequences[name] = SequenceSource(name=name, gt_path=gt_path, seq_dir=seq_dir)
    return sequences


def resolve_gt(
    gt_root: str | Path,
    *,
    benchmark: str = "auto",
    split: str | None = None,
    seqmap: str | Path | None = None,
) -> GtLayout:
    """Find the sequences of ``gt_root`` in any of the layouts of the module doc.

    ``benchmark`` (``"KITTI"``, a MOTChallenge-style name or ``"auto"``) and ``split`` pick
    TrackEval's ``<BENCHMARK>-<split>`` folder; ``seqmap`` overrides the seqmap file.
    """
    root = Path(gt_root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: ground-truth folder does not exist")
    seqmap = Path(seqmap) if seqmap is not None else None
    if benchmark.upper() == "KITTI" or (root / "label_02").is_dir():
        return _kitti_layout(root, split, seqmap)

    gt_set: str | None = None
    folder = root
    if (root / "seqmaps").is_dir() and not (root / "gt").is_dir():
        # TrackEval's gt/mot_challenge/: pick <BENCHMARK>-<split>.
        split_name = split or "train"
        if benchmark != "auto":
            gt_set = f"{benchmark}-{split_name}"
        else:
            sets = sorted(
                p.name
                for p in root.iterdir()
                if p.is_dir() and p.name != "seqmaps" and p.name.endswith(f"-{split_name}")
            )
            if len(sets) != 1:
                raise EvaluationError(
                    f"{root}: {'several' if sets else 'no'} <BENCHMARK>-{split_name} folders"
                    + (f" ({', '.join(sets)})" if sets else "")
                    + "; pass --benchmark (and --split)"
                )
            gt_set = sets[0]
        folder = root / gt_set
        if not folder.is_dir():
            raise EvaluationError(f"{root}: no folder {gt_set} (TrackEval's <BENCHMARK>-<split>)")
        if seqmap is None:
            seqmap = root / "seqmaps" / f"{gt_set}.txt"
            if not seqmap.is_file():
                raise EvaluationError(f"{root}: no seqmap seqmaps/{gt_set}.txt")
    elif seqmap is None and (root.parent / "seqmaps" / f"{root.name}.txt").is_file():
        gt_set = root.name
        seqmap = root.parent / "seqmaps" / f"{root.name}.txt"

    if seqmap is not None:
        names = read_mot_seqmap(seqmap)
        return GtLayout(
            kind="MOT",
            folder=folder,
            sequences=_mot_sequences(folder, sorted(names), seqmap),
            seqmap=seqmap,
            gt_set=gt_set,
        )
    sequences: dict[str, SequenceSource] = {}
    for seq_dir in find_sequences(folder):
        if seq_dir.name in sequences:
            raise EvaluationError(
                f"two sequences are named {seq_dir.name}: {sequences[seq_dir.name].seq_dir} "
                f"and {seq_dir}"
            )
        sequences[seq_dir.name] = SequenceSource(
            name=seq_dir.name, gt_path=seq_dir / "gt" / "gt.txt", seq_dir=seq_dir
        )
    if not sequences:
        raise EvaluationError(f"{root}: no sequences found (folders with gt/gt.txt or seqinfo.ini)")
    return GtLayout(kind="MOT", folder=folder, sequences=sequences)


def find_trackers(
    results: str | Path,
    *,
    gt_set: str | None = None,
    sub_folder: str = "data",
    names: list[str] | None = None,
) -> dict[str, Path]:
    """Tracker name to the folder of its ``<seq>.txt`` files (see the module doc).

    ``names`` keeps only those trackers, in that order (TrackEval's ``TRACKERS_TO_EVAL``).
    """
    root = Path(results)
    if not root.is_dir():
        raise EvaluationError(f"{root}: results folder does not exist")
    if gt_set is not None and (root / gt_set).is_dir() and not list(root.glob("*.txt")):
        root = root / gt_set  # TrackEval's trackers root
    found: dict[str, Path] = {}
    if any(p.is_file() for p in root.glob("*.txt")):
        name = root.parent.name if root.name == sub_folder else root.name
        found[name] = root
    else:
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            data = child / sub_folder
            if data.is_dir():
                found[child.name] = data
        if not found and (root / sub_folder).is_dir():
            found[root.name] = root / sub_folder
    if names is not None:
        missing = [n for n in names if n not in found]
        if missing:
            raise EvaluationError(
                f"no tracker{'s' if len(missing) > 1 else ''} {', '.join(missing)} in {root} "
                f"(trackers there: {', '.join(found) or 'none'})"
            )
        found = {n: found[n] for n in names}
    if not found:
        raise EvaluationError(
            f"{root}: no result files (<seq>.txt) and no tracker folders (<name>/{sub_folder}/)"
        )
    return found
