"""A MOTChallenge sequence in memory: per-frame ground truth, detections, image size and frames.

``Sequence.from_dir`` reads a sequence folder (``seqinfo.ini``, ``gt/gt.txt``, ``det/*.txt``,
``img1/``); any part but one of ``seqinfo.ini`` / ``gt/gt.txt`` may be absent.
``Sequence.from_video`` reads a video file, with ground truth and detections where given. Boxes
come out as ``float32`` ``xyxy`` numpy arrays, the library's convention. Frames come from a
:class:`~deepmot.data.frames.FrameSource`: the ``img1/`` folder, a video, or a synthetic scene
rendered on demand (``SyntheticScene.to_sequence()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepmot.data.frames import FrameSource, ImageFolder, VideoFrames
from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io import mot

__all__ = ["FrameGT", "Sequence", "paper_split"]


@dataclass(frozen=True)
class FrameGT:
    """Ground truth of one frame: ``ids (K,) int64``, ``boxes (K, 4) float32 xyxy``,
    ``classes (K,) int64``, ``flags (K,) int64``, ``visibility (K,) float32``."""

    ids: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    flags: np.ndarray
    visibility: np.ndarray

    def active_pedestrians(self) -> FrameGT:
        """The rows an evaluation counts: flag not 0 and class pedestrian (as the devkit)."""
        keep = (self.flags != 0) & (self.classes == mot.PEDESTRIAN)
        return FrameGT(
            *(a[keep] for a in (self.ids, self.boxes, self.classes, self.flags, self.visibility))
        )


def _xywh_to_xyxy32(boxes_xywh: np.ndarray) -> np.ndarray:
    out = np.asarray(boxes_xywh, dtype=np.float32).copy()
    out[:, 2:] += out[:, :2]
    return out


def _frame_slices(frames: np.ndarray, length: int) -> np.ndarray:
    """``(length + 2,)`` offsets such that rows of frame f are ``offsets[f]:offsets[f + 1]``."""
    return np.searchsorted(frames, np.arange(length + 2), side="left")


def paper_split(seq_length: int, train: float = 0.5, val: float = 0.25) -> tuple[range, range]:
    """Frames of the paper's ablation split (supplementary A.2), 1-based.

    The first ``train`` share of the frames trains, the last ``val`` share validates; the part in
    between is left out so that the two never touch.
    """
    if seq_length < 1:
        raise ValueError(f"seq_length must be >= 1, got {seq_length}")
    if not (train > 0 and val > 0 and train + val <= 1):
        raise ValueError(f"need 0 < train, 0 < val and train + val <= 1, got {train}, {val}")
    n_train = int(seq_length * train)
    n_val = int(seq_length * val)
    return range(1, n_train + 1), range(seq_length - n_val + 1, seq_length + 1)


class Sequence:
    """One sequence: ground truth and detections indexed by frame, image size, frames.

    Args:
        name: sequence name.
        seq_length: number of frames (frames are ``1..seq_length``).
        im_width, im_height: image size in pixels, or None where unknown.
        frame_rate: frames per second.
        gt: ground-truth table, or None.
        detections: detection table, or None.
        frame_source: where the frames come from (:class:`~deepmot.data.frames.ImageFolder`,
            :class:`~deepmot.data.frames.VideoFrames`,
            :class:`~deepmot.data.frames.RenderedFrames`), or None.
        frame_offset: frame ``f`` is the source's frame ``f + frame_offset`` (for a clip of a
            longer sequence).
    """

    def __init__(
        self,
        name: str,
        seq_length: int,
        im_width: int | None,
        im_height: int | None,
        frame_rate: float = 30.0,
        gt: mot.GroundTruth | None = None,
        detections: mot.Detections | None = None,
        frame_source: FrameSource | None = None,
        frame_offset: int = 0,
    ) -> None:
        self.name = name
        self.frame_offset = frame_offset
        self.seq_length = int(seq_length)
        self.im_width = im_width
        self.im_height = im_height
        self.frame_rate = frame_rate
        self.gt = gt
        self.detections = detections
        self.frame_source = frame_source
        for table, what in ((gt, "gt"), (detections, "detections")):
            if table is not None and len(table) and (np.diff(table.frames) < 0).any():
                raise ValueError(f"{what} rows must be sorted by frame (the readers sort them)")
        if gt is not None:
            self._gt_boxes = _xywh_to_xyxy32(gt.boxes_xywh)
            self._gt_slices = _frame_slices(gt.frames, self.seq_length)
        if detections is not None:
            self._det_boxes = _xywh_to_xyxy32(detections.boxes_xywh)
            self._det_slices = _frame_slices(detections.frames, self.seq_length)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_dir(cls, path: str | Path, det_file: str | None = None) -> Sequence:
        """Load a sequence folder.

        Args:
            path: the folder (holding ``seqinfo.ini`` and/or ``gt/gt.txt``).
            det_file: a detection file name inside ``det/`` (e.g. ``"deepmot_clean_FRCNN.txt"``);
                by default ``det/det.txt`` if present, else no detections.

        Without ``seqinfo.ini`` the length is the last frame in the files and the image size is
        read from the first frame image if there is one (else None).
        """
        path = Path(path)
        if not path.is_dir():
            raise DeepMOTError(f"{path}: not a sequence folder (no such directory)")
        info_path, gt_path = path / "seqinfo.ini", path / "gt" / "gt.txt"
        if not info_path.is_file() and not gt_path.is_file():
            raise DeepMOTError(f"{path}: not a sequence folder (neither seqinfo.ini nor gt/gt.txt)")
        info = mot.read_seqinfo(info_path) if info_path.is_file() else None
        gt = mot.read_gt(gt_path) if gt_path.is_file() else None
        if det_file is not None:
            det_path = path / "det" / det_file
            if not det_path.is_file():
                options = ", ".join(cls.detection_files(path)) or "none"
                raise DeepMOTError(f"{det_path}: no such detection file (available: {options})")
        else:
            det_path = path / "det" / "det.txt"
        dets = mot.read_detections(det_path) if det_path.is_file() else None

        im_dir = path / (info.im_dir if info else "img1")
        im_ext = info.im_ext if info else ".jpg"
        image_dir = im_dir if im_dir.is_dir() else None
        source = ImageFolder(image_dir, im_ext) if image_dir is not None else None
        if info is not None:
            length, width, height, rate, name = (
                info.seq_length,
                info.im_width,
                info.im_height,
                info.frame_rate,
                info.name,
            )
            for table, table_path in ((gt, gt_path), (dets, det_path)):
                if table is not None and len(table) and table.frames[-1] > length:
                    raise MOTFormatError(
                        table_path,
                        f"frame {table.frames[-1]} is beyond seqLength={length} of {info_path}",
                    )
        else:
            last = [int(t.frames[-1]) for t in (gt, dets) if t is not None and len(t)]
            length, rate, name = max(last, default=0), 30.0, path.name
            width, height = _image_size(image_dir, im_ext)
        return cls(name, length, width, height, rate, gt, dets, source)

    @classmethod
    def from_video(
        cls,
        video: str | Path,
        gt: str | Path | None = None,
        det: str | Path | None = None,
        name: str | None = None,
        frame_rate: float | None = None,
    ) -> Sequence:
        """A sequence whose frames are decoded from ``video`` (:class:`VideoFrames`): frame
        ``k`` of the files is the video's ``k``-th frame.

        Args:
            video: the video file.
            gt: a MOTChallenge ground-truth file of it, or None.
            det: a MOTChallenge detection file of it, or None (then no detections: give them
                with :meth:`with_detections`).
            name: the sequence's name (default: the video's file name without its suffix).
            frame_rate: frames per second (default: the video's).

        Raises:
            DeepMOTError: the video cannot be read (see :class:`VideoFrames`), a file is
                malformed, or a file has rows beyond the video's last frame.
        """
        source = VideoFrames(video)
        tables = []
        for path, read in ((gt, mot.read_gt), (det, mot.read_detections)):
            table = read(path) if path is not None else None
            if table is not None and len(table) and table.frames[-1] > len(source):
                raise MOTFormatError(
                    path,
                    f"frame {table.frames[-1]} is beyond the {len(source)} frames of {video}",
                )
            tables.append(table)
        return cls(
            name or Path(video).stem,
            len(source),
            source.width,
            source.height,
            frame_rate or source.fps,
            tables[0],
            tables[1],
            source,
        )

    def with_detections(self, detections: mot.Detections | None) -> Sequence:
        """This sequence with other detections (e.g. a detector's, for a video without any)."""
        return Sequence(
            self.name,
            self.seq_length,
            self.im_width,
            self.im_height,
            self.frame_rate,
            self.gt,
            detections,
            self.frame_source,
            self.frame_offset,
        )

    @staticmethod
    def detection_files(path: str | Path) -> list[str]:
        """Names of the detection files in a sequence folder's ``det/``."""
        det_dir = Path(path) / "det"
        return sorted(p.name for p in det_dir.glob("*.txt")) if det_dir.is_dir() else []

    @staticmethod
    def choose_detection_file(path: str | Path, det_file: str | None = None) -> str | None:
        """The detection file of a sequence folder, by the rule every command follows:
        ``det_file`` when given, else ``det/det.txt`` when present, else the only file of
        ``det/``; None when ``det/`` has no file (or lacks ``det_file``).

        Raises:
            DeepMOTError: no ``det_file`` and several files in ``det/``, none ``det.txt``
                (the message lists them).
        """
        files = Sequence.detection_files(path)
        if det_file is not None:
            return det_file if det_file in files else None
        if "det.txt" in files or len(files) < 2:
            return "det.txt" if "det.txt" in files else (files[0] if files else None)
        raise DeepMOTError(
            f"{path}: det/ has {len(files)} detection files and no det.txt ({', '.join(files)}); "
            f"choose one with --det-file, e.g. --det-file {files[0]}"
        )

    # ------------------------------------------------------------------ per-frame access

    def __len__(self) -> int:
        return self.seq_length

    def __repr__(self) -> str:
        size = f"{self.im_width}x{self.im_height}" if self.im_width else "unknown size"
        n_gt = len(self.gt) if self.gt is not None else 0
        n_det = len(self.detections) if self.detections is not None else 0
        return f"Sequence({self.name!r}, {self.seq_length} frames, {size}, {n_gt} gt, {n_det} dets)"

    @property
    def frames(self) -> range:
        return range(1, self.seq_length + 1)

    def _check_frame(self, frame: int) -> None:
        if not 1 <= frame <= self.seq_length:
            raise IndexError(f"frame {frame} is outside 1..{self.seq_length} of {self.name}")

    def gt_at(self, frame: int) -> FrameGT:
        """Ground truth of ``frame`` (all rows, including flag-0 and non-pedestrian ones)."""
        if self.gt is None:
            raise DeepMOTError(f"sequence {self.name} has no ground truth")
        self._check_frame(frame)
        s = slice(self._gt_slices[frame], self._gt_slices[frame + 1])
        gt = self.gt
        return FrameGT(
            gt.ids[s],
            self._gt_boxes[s],
            gt.classes[s],
            gt.flags[s],
            gt.visibility[s].astype(np.float32),
        )

    def detections_at(self, frame: int) -> np.ndarray:
        """Detections of ``frame`` as ``(K, 5) float32``: xyxy + score."""
        if self.detections is None:
            raise DeepMOTError(f"sequence {self.name} has no detections loaded")
        self._check_frame(frame)
        s = slice(self._det_slices[frame], self._det_slices[frame + 1])
        scores = self.detections.scores[s].astype(np.float32)[:, None]
        return np.concatenate([self._det_boxes[s], scores], axis=1)

    @property
    def has_images(self) -> bool:
        """Whether frames can be read (an image folder, a video or a rendered scene)."""
        return self.frame_source is not None

    @property
    def image_dir(self) -> Path | None:
        """The image folder, where the frames come from one."""
        source = self.frame_source
        return source.image_dir if isinstance(source, ImageFolder) else None

    def image_path(self, frame: int) -> Path:
        """Path of the image of ``frame`` (``img1/000001.jpg``), for a folder source."""
        if not isinstance(self.frame_source, ImageFolder):
            raise DeepMOTError(f"sequence {self.name} has no image folder")
        self._check_frame(frame)
        return self.frame_source.path(frame + self.frame_offset)

    def read_image(self, frame: int) -> np.ndarray:
        """The image of ``frame`` as ``(H, W, 3) uint8`` RGB (from the frame source)."""
        if self.frame_source is None:
            raise DeepMOTError(
                f"sequence {self.name} has no frames (no img1/ folder, video or scene)"
            )
        self._check_frame(frame)
        return self.frame_source.read(frame + self.frame_offset)

    def clip(self, frames: range) -> Sequence:
        """The consecutive ``frames`` of this sequence as a sequence of their own, renumbered
        from 1 (e.g. the validation split, to be tracked and evaluated on its own)."""
        if len(frames) == 0 or frames.step != 1 or frames[0] < 1 or frames[-1] > self.seq_length:
            raise ValueError(f"frames must be a non-empty step-1 range within 1..{self.seq_length}")
        first, last = frames[0], frames[-1]

        def cut(table):
            return None if table is None else mot.frame_range(table, first, last)

        return Sequence(
            f"{self.name}[{first}:{last}]",
            len(frames),
            self.im_width,
            self.im_height,
            self.frame_rate,
            cut(self.gt),
            cut(self.detections),
            self.frame_source,
            self.frame_offset + first - 1,
        )

    def split(self, train: float = 0.5, val: float = 0.25) -> tuple[range, range]:
        """The paper's train/validation frames of this sequence; see :func:`paper_split`."""
        return paper_split(self.seq_length, train, val)


def _image_size(image_dir: Path | None, ext: str) -> tuple[int | None, int | None]:
    """Size of the first image in ``image_dir``, or (None, None)."""
    if image_dir is None:
        return None, None
    first = next(iter(sorted(image_dir.glob(f"*{ext}"))), None)
    if first is None:
        return None, None
    import cv2

    image = cv2.imread(str(first), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DeepMOTError(f"{first}: unreadable image")
    return int(image.shape[1]), int(image.shape[0])
