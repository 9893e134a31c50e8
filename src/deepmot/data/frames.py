"""Where a sequence's frames come from: an image folder, a video file, or a synthetic scene
rendered on demand.

A frame source maps a frame number (1-based, in the source's own numbering) to the image as an
``(H, W, 3) uint8`` RGB array. :class:`~deepmot.data.sequence.Sequence` holds one and reads
frames through it, so trackers that regress from pixels train and track on a MOTChallenge
``img1/`` folder, a video and in-memory synthetic scenes alike, without writing them to disk.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from deepmot.errors import DeepMOTError

if TYPE_CHECKING:
    from torch import Tensor

    from deepmot.io.mot import SeqInfo

__all__ = [
    "IMAGE_EXTENSIONS",
    "FrameSource",
    "ImageFolder",
    "RenderedFrames",
    "VideoFrames",
    "extract_frames",
    "image_to_tensor",
]

IMAGE_EXTENSIONS = (".jpg", ".png")
"""Image formats :func:`extract_frames` writes."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class FrameSource(Protocol):
    """``read(frame) -> (H, W, 3) uint8`` RGB for ``frame`` in the source's numbering."""

    def read(self, frame: int) -> np.ndarray: ...


class ImageFolder:
    """Frames stored as ``<image_dir>/<frame:06d><ext>`` (the MOTChallenge ``img1/`` layout).

    Args:
        image_dir: the folder.
        ext: file extension with its dot (``.jpg``).
    """

    def __init__(self, image_dir: str | Path, ext: str = ".jpg") -> None:
        self.image_dir = Path(image_dir)
        self.ext = ext

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.image_dir)!r}, {self.ext!r})"

    def path(self, frame: int) -> Path:
        """The file of ``frame``."""
        return self.image_dir / f"{frame:06d}{self.ext}"

    def read(self, frame: int) -> np.ndarray:
        """Decode ``frame`` (OpenCV) as RGB; a missing or unreadable file is a DeepMOTError."""
        import cv2

        path = self.path(frame)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DeepMOTError(f"{path}: missing or unreadable image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class RenderedFrames:
    """Frames rendered on demand by ``render(frame)`` (a synthetic scene), with an LRU cache.

    Rendering is deterministic (the scene's seed), so a cached frame equals a re-rendered one.

    Args:
        render: ``frame -> (H, W, 3) uint8`` RGB, e.g. ``SyntheticScene.render_frame``.
        cache_size: frames kept (the last ones read); 0 disables the cache.
    """

    def __init__(self, render: Any, cache_size: int = 32) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.render = render
        self.cache_size = cache_size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def read(self, frame: int) -> np.ndarray:
        """The rendered ``frame`` (read-only array; copy it to draw on it)."""
        image = self._cache.get(frame)
        if image is not None:
            self._cache.move_to_end(frame)
            return image
        image = np.asarray(self.render(frame), dtype=np.uint8)
        image.setflags(write=False)
        if self.cache_size:
            self._cache[frame] = image
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image


class VideoFrames:
    """Frames decoded from a video file with OpenCV; frame ``k`` (1-based) is the ``k``-th
    decoded frame (MOTChallenge's numbering when the video was made from a sequence).

    The capture stays open and reads forward, so a sequential pass decodes every frame once.
    A read behind the capture's position, or more than ``max_skip`` frames ahead, seeks
    (``CAP_PROP_POS_FRAMES``: OpenCV's FFmpeg reader seeks to an earlier key frame and decodes
    forward); the tests check that it gives the pixels of a sequential read for MJPG, mp4v
    (MPEG-4 part 2, as ``TUD-Campus.mp4``), VP9 and MS-MPEG-4 v3 (``PETS09-S2L1.avi``); H.264
    could not be checked (OpenCV's wheels do not write it). ``seek=False`` never seeks (reopens
    and reads forward instead), for codecs where it would not be exact. The last ``cache_size``
    frames read are kept, so a frame read twice in a row is decoded once.

    Args:
        path: the video file.
        seek: seek for backward and far reads (else reopen and read forward).
        max_skip: most frames read forward (decoded and dropped) instead of seeking.
        cache_size: frames kept (read-only arrays; copy one to draw on it).

    Raises:
        DeepMOTError: no such file, a file OpenCV cannot open as a video, or one whose first
            frame does not decode; each message names the file.
    """

    def __init__(
        self, path: str | Path, seek: bool = True, max_skip: int = 64, cache_size: int = 8
    ) -> None:
        if max_skip < 0 or cache_size < 0:
            raise ValueError(f"max_skip and cache_size must be >= 0, got {max_skip}, {cache_size}")
        self.path = Path(path)
        self.seek = seek
        self.max_skip = max_skip
        self.cache_size = cache_size
        if not self.path.exists():
            raise DeepMOTError(f"{self.path}: no such video file")
        if self.path.is_dir():
            raise DeepMOTError(f"{self.path}: is a folder, not a video file")
        self._capture = self._open()
        import cv2

        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS)) or 25.0
        self._next = 1  # the frame the capture decodes next
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        first = self._decode_next()
        if first is None:
            raise DeepMOTError(f"{self.path}: no frame could be decoded (a corrupt video?)")
        self.height, self.width = first.shape[:2]
        # some containers do not store the count: then count the frames by decoding them
        self.frame_count = count if count > 0 else self._count_by_decoding()

    def __repr__(self) -> str:
        return (
            f"VideoFrames({str(self.path)!r}: {self.frame_count} frames, "
            f"{self.width}x{self.height}, {self.fps:g} fps)"
        )

    def __len__(self) -> int:
        return self.frame_count

    def _open(self) -> Any:
        import cv2

        # A bad file must give our one-line error alone: FFmpeg's messages are silenced, and
        # OpenCV's while it opens; with FFmpeg named, OpenCV tries none of its other readers
        # (they print their complaints)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        ffmpeg = cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG)
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG if ffmpeg else cv2.CAP_ANY)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not capture.isOpened():
            raise DeepMOTError(f"{self.path}: OpenCV cannot open it as a video")
        return capture

    def _decode_next(self) -> np.ndarray | None:
        """Decode the capture's next frame (RGB, cached) and advance; None at the end."""
        import cv2

        ok, image = self._capture.read()
        if not ok:
            return None
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        image.setflags(write=False)
        self._remember(self._next, image)
        self._next += 1
        return image

    def _remember(self, frame: int, image: np.ndarray) -> None:
        """Keep ``image`` as ``frame`` in the cache (the oldest out when full)."""
        if self.cache_size:
            self._cache[frame] = image
            self._cache.move_to_end(frame)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _count_by_decoding(self) -> int:
        """The frames that decode (for a container that does not store their count)."""
        count = self._next - 1
        while self._capture.grab():
            count += 1
        self._rewind(1)
        return count

    def _rewind(self, frame: int) -> None:
        """Put the capture before ``frame``: seek, or (re)open it and read from the start."""
        import cv2

        capture = self._capture
        if (
            capture is not None
            and self.seek
            and capture.set(cv2.CAP_PROP_POS_FRAMES, frame - 1)
            and int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == frame - 1
        ):
            self._next = frame
            return
        if capture is not None:
            capture.release()
        self._capture = self._open()
        self._next = 1

    def read(self, frame: int) -> np.ndarray:
        """``frame`` (1-based) as an ``(H, W, 3) uint8`` RGB read-only array.

        Raises:
            IndexError: ``frame`` outside ``1..frame_count``.
            DeepMOTError: the frame does not decode (a video shorter than its header says).
        """
        if not 1 <= frame <= self.frame_count:
            raise IndexError(f"frame {frame} is outside 1..{self.frame_count} of {self.path}")
        image = self._cache.get(frame)
        if image is not None:
            self._cache.move_to_end(frame)
            return image
        if self._capture is None or frame < self._next or frame - self._next > self.max_skip:
            self._rewind(frame)
        while self._next < frame:
            if not self._capture.grab():
                break
            self._next += 1
        image = self._decode_next() if self._next == frame else None
        if image is None:
            raise DeepMOTError(
                f"{self.path}: frame {frame} does not decode (the video says it has "
                f"{self.frame_count} frames; is the file cut short?)"
            )
        return image

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame from the first, in order, to the last one that decodes (whatever the
        header's count)."""
        self._rewind(1)
        while (image := self._decode_next()) is not None:
            yield image

    def close(self) -> None:
        """Release the capture (a later read opens it again)."""
        if self._capture is not None:
            self._capture.release()
        self._capture = None
        self._cache.clear()

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (DataLoader workers): the capture is opened again on the first read."""
        return {**self.__dict__, "_capture": None, "_cache": OrderedDict()}


def extract_frames(
    video: str | Path,
    out: str | Path,
    name: str | None = None,
    ext: str = ".jpg",
    quality: int = 95,
    progress: bool = True,
) -> SeqInfo:
    """Decode ``video`` into the MOTChallenge sequence folder ``out``: ``out/img1/000001.jpg``,
    ... and ``out/seqinfo.ini``, so that every tool that reads sequence folders reads it.

    The frames go to a hidden folder inside ``out``, renamed ``img1`` once every frame is
    written; ``seqinfo.ini`` is written last (atomically). An interrupted run thus leaves no
    ``img1/`` and no ``seqinfo.ini``: nothing that looks like a complete sequence.

    Args:
        video: the video file.
        out: the sequence folder (made; it may hold ``gt/`` or ``det/`` already, not ``img1/``
            or ``seqinfo.ini``).
        name: the sequence name in ``seqinfo.ini`` (default: the video's file name without
            its suffix).
        ext: the image format, one of :data:`IMAGE_EXTENSIONS` (``.png`` is lossless).
        quality: JPEG quality, 1 to 100 (OpenCV's default 95).
        progress: show a tqdm progress bar.

    Returns:
        The :class:`~deepmot.io.mot.SeqInfo` written (``seq_length``: the frames decoded).

    Raises:
        DeepMOTError: the video cannot be read, or ``out`` holds a sequence already.
        ValueError: an unknown ``ext`` or a quality outside 1..100.
    """
    import shutil
    import tempfile

    import cv2
    from tqdm.auto import tqdm

    from deepmot.io.mot import SeqInfo, write_seqinfo

    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"ext must be one of {', '.join(IMAGE_EXTENSIONS)}, got {ext!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    out = Path(out)
    for held in ("img1", "seqinfo.ini"):
        if (out / held).exists():
            raise DeepMOTError(f"{out}: holds {held} already; choose a new folder")
    source = VideoFrames(video, cache_size=0)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".img1.partial-", dir=out))
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    name = name or source.path.stem
    count = 0
    try:
        bar = tqdm(total=len(source), desc=name, unit="frame", disable=not progress)
        for count, image in enumerate(source, start=1):
            path = partial / f"{count:06d}{ext}"
            if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
                raise OSError(f"{path}: OpenCV could not write the image")
            bar.update(1)
        bar.close()
        os.replace(partial, out / "img1")
    finally:
        if partial.exists():
            shutil.rmtree(partial)
            if made and not any(out.iterdir()):
                out.rmdir()
    info = SeqInfo(
        name=name,
        seq_length=count,
        im_width=source.width,
        im_height=source.height,
        frame_rate=round(source.fps, 3),
        im_dir="img1",
        im_ext=ext,
    )
    write_seqinfo(out / "seqinfo.ini", info)
    return info


def image_to_tensor(image: np.ndarray, normalize: bool = False) -> Tensor:
    """``(H, W, 3) uint8`` RGB to a ``(3, H, W) float32`` tensor in [0, 1]; with ``normalize``,
    standardised with the ImageNet mean and standard deviation (what torchvision's backbones
    were trained with)."""
    import torch

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image must be an (H, W, 3) uint8 array, got {image.dtype} {tuple(image.shape)}"
        )
    if not image.flags.writeable:  # a cached frame: torch.from_numpy would warn on it
        image = image.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        std = torch.tensor(IMAGENET_STD)[:, None, None]
        tensor = (tensor - mean) / std
    return tensor
