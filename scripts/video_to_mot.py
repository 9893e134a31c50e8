"""Decode a video into a MOTChallenge sequence folder: ``OUT/img1/000001.jpg`` ... (frame k of
the video is MOTChallenge frame k), with ``gt/``, ``det/`` and ``seqinfo.ini`` copied from the
annotation folder.

    python scripts/video_to_mot.py ../shared/data/video/PETS09-S2L1.avi \
        ../shared/data/mot/PETS09-S2L1 /work/scratch/real/PETS09-S2L1

Used to make the real training and validation frames of the detector (docs/detector.md); the
frames are data, kept outside the repository.
"""

from __future__ import annotations

import argparse
import configparser
import shutil
import sys
from pathlib import Path

import cv2


def decode(video: Path, annotations: Path, out: Path, quality: int = 95) -> int:
    """Write every frame of ``video`` as ``out/img1/%06d.jpg`` and copy the annotation
    folder's ``gt/``, ``det/`` and ``seqinfo.ini``; returns the number of frames.

    Raises:
        SystemExit: the video cannot be read, or its frame count or size differ from
            ``seqinfo.ini``.
    """
    info = configparser.ConfigParser()
    if not info.read(annotations / "seqinfo.ini"):
        sys.exit(f"{annotations / 'seqinfo.ini'}: no such file")
    expected = int(info["Sequence"]["seqLength"])
    size = (int(info["Sequence"]["imWidth"]), int(info["Sequence"]["imHeight"]))
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        sys.exit(f"{video}: OpenCV cannot open this video")
    (out / "img1").mkdir(parents=True, exist_ok=True)
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += 1
        if (frame.shape[1], frame.shape[0]) != size:
            sys.exit(f"{video}: frame {count} is {frame.shape[1]}x{frame.shape[0]}, not {size}")
        name = str(out / "img1" / f"{count:06d}.jpg")
        cv2.imwrite(name, frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    capture.release()
    if count != expected:
        sys.exit(f"{video}: {count} frames, seqinfo.ini says {expected}")
    for name in ("gt", "det"):
        if (annotations / name).is_dir():
            shutil.copytree(annotations / name, out / name, dirs_exist_ok=True)
    shutil.copy(annotations / "seqinfo.ini", out / "seqinfo.ini")
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("annotations", type=Path, help="folder with seqinfo.ini and gt/")
    parser.add_argument("out", type=Path, help="sequence folder to write")
    args = parser.parse_args()
    print(f"{args.out}: {decode(args.video, args.annotations, args.out)} frames")


if __name__ == "__main__":
    main()
