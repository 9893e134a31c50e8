"""``deepmot frames VIDEO --out SEQ``: decode a video into a MOTChallenge sequence folder."""

from __future__ import annotations

import argparse
import logging

from deepmot.commands._args import HelpFormatter, existing_file, output_dir

log = logging.getLogger(__name__)

#: the image formats (``deepmot.data.frames.IMAGE_EXTENSIONS``; a test keeps them equal)
EXTENSIONS = (".jpg", ".png")


def _extension(text: str) -> str:
    """``jpg``, ``.JPG`` -> ``.jpg`` (argparse then checks it against the choices)."""
    text = text.lower()
    return text if text.startswith(".") else f".{text}"


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..100, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "frames",
        help="decode a video into a MOTChallenge sequence folder (img1/, seqinfo.ini)",
        description=(
            "Decode every frame of VIDEO (any file OpenCV reads: .mp4, .avi, ...) into "
            "SEQ/img1/000001.jpg, ... and write SEQ/seqinfo.ini (name, frame rate, length, "
            "size), so that SEQ reads like a MOTChallenge sequence: add gt/gt.txt or "
            "det/det.txt to it, or track it with 'deepmot track'. Frame k of the video is "
            "frame k of the sequence. seqinfo.ini is written last: a sequence folder without it "
            "is not complete."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("video", type=existing_file, metavar="VIDEO", help="the video file")
    parser.add_argument(
        "--out",
        type=output_dir,
        required=True,
        metavar="SEQ",
        help="the sequence folder (made; it may hold gt/ or det/ already, not img1/ or "
        "seqinfo.ini)",
    )
    parser.add_argument(
        "--name", help="the sequence name in seqinfo.ini (default: VIDEO's name without suffix)"
    )
    parser.add_argument(
        "--ext",
        type=_extension,
        choices=EXTENSIONS,
        default=".jpg",
        help="image format (.png is lossless, and larger)",
    )
    parser.add_argument("--quality", type=_quality, default=95, help="JPEG quality, 1 to 100")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deepmot.data.frames import extract_frames

    info = extract_frames(
        args.video,
        args.out,
        name=args.name,
        ext=args.ext,
        quality=args.quality,
        progress=not args.no_progress,
    )
    log.info(
        "wrote %d frames (%dx%d, %g fps) of %s to %s/%s",
        info.seq_length,
        info.im_width,
        info.im_height,
        info.frame_rate,
        args.video,
        args.out,
        info.im_dir,
    )
    return 0
