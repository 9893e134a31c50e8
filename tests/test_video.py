"""Video as input: frames decoded by ``VideoFrames`` equal OpenCV's sequential reads in any read
order, ``deepmot frames`` writes a sequence folder that reads back as the video, ``deepmot track
VIDEO`` tracks a video as is, and a missing or broken video is a one-line error.

The videos are written here with ``cv2.VideoWriter`` (MJPG in .avi, mp4v in .mp4, VP9 in .mkv);
the real ones (MS-MPEG-4 v3 in PETS09-S2L1.avi, mp4v in TUD-Campus.mp4) are checked where the
shared data is.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from _eval_helpers import SHARED_DATA

from deepmot.cli import main
from deepmot.data.frames import IMAGE_EXTENSIONS, VideoFrames, extract_frames
from deepmot.data.sequence import Sequence
from deepmot.errors import DeepMOTError, MOTFormatError
from deepmot.io.mot import read_results, read_seqinfo

FRAMES, WIDTH, HEIGHT, FPS = 30, 64, 48, 10.0
#: intra-frame (MJPG) and predicted-frame codecs, the latter with key frames every 12 frames
#: (mp4v, FFmpeg's default) or fewer, so that seeking lands between key frames
CODECS = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "VP90"}


def known_frame(k: int) -> np.ndarray:
    """Frame ``k`` (1-based) as written: a grey ramp and a white 12x12 square moving 3 px a
    frame (from the left again after 17 frames), RGB."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = np.linspace(30, 160, WIDTH, dtype=np.uint8)[None, :, None]
    image[..., 2] = 90  # some colour, so that an RGB/BGR mix-up shows
    x = 3 * (k % 17)
    image[18:30, x : x + 12] = 255
    return image


def write_video(path: Path, frames: list[np.ndarray], fps: float = FPS) -> Path:
    height, width = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*CODECS[path.suffix])
    writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def sequential_reads(path: Path) -> list[np.ndarray]:
    """Every frame by plain ``cv2.VideoCapture.read`` calls, as RGB: the oracle."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module", params=sorted(CODECS))
def video(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video")
    frames = [known_frame(k) for k in range(1, FRAMES + 1)]
    return write_video(folder / f"clip{request.param}", frames)


def test_the_source_knows_the_video(video: Path) -> None:
    source = VideoFrames(video)
    assert len(source) == FRAMES and (source.width, source.height) == (WIDTH, HEIGHT)
    assert source.fps == pytest.approx(FPS)
    image = source.read(3)
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    assert not image.flags.writeable
    # the content written, within the codec's loss: the square is where frame 3 put it
    error = np.abs(image.astype(int) - known_frame(3).astype(int))
    assert error.mean() < 6, error.mean()
    assert image[20:28, 11:19].min() > 200 and image[20:28, 30:40].max() < 200
    with pytest.raises(IndexError):
        source.read(FRAMES + 1)
    with pytest.raises(IndexError):
        source.read(0)


@pytest.mark.parametrize("seek", [True, False])
def test_any_read_order_gives_the_sequential_pixels(video: Path, seek: bool) -> None:
    oracle = sequential_reads(video)
    assert len(oracle) == FRAMES
    source = VideoFrames(video, seek=seek, max_skip=2, cache_size=2)
    order = [*range(1, FRAMES + 1), *np.random.default_rng(0).integers(1, FRAMES + 1, 30)]
    order += [29, 1, 17, 16, 16, 25, 2, 30, 13, 14]  # backwards, repeated, beyond max_skip
    for frame in order:
        assert np.array_equal(source.read(int(frame)), oracle[frame - 1]), frame
    assert [np.array_equal(a, b) for a, b in zip(source, oracle, strict=True)] == [True] * FRAMES


def test_the_source_survives_pickling_and_closing(video: Path) -> None:
    source = VideoFrames(video)
    source.read(4)
    copy = pickle.loads(pickle.dumps(source))
    assert np.array_equal(copy.read(4), source.read(4))
    source.close()
    assert np.array_equal(source.read(2), copy.read(2))


def test_extract_frames_writes_a_sequence_folder(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "SEQ"
    info = extract_frames(video, out, progress=False)
    assert (out / "seqinfo.ini").read_text() == (
        f"[Sequence]\nname=clip\nimDir=img1\nframeRate=10\nseqLength={FRAMES}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n"
    )
    assert read_seqinfo(out / "seqinfo.ini") == info
    names = sorted(p.name for p in (out / "img1").iterdir())
    assert names == [f"{k:06d}.jpg" for k in range(1, FRAMES + 1)]
    assert sorted(p.name for p in out.iterdir()) == ["img1", "seqinfo.ini"]  # nothing partial
    sequence = Sequence.from_dir(out)
    assert (len(sequence), sequence.im_width, sequence.im_height) == (FRAMES, WIDTH, HEIGHT)
    for frame, decoded in enumerate(sequential_reads(video), start=1):
        written = sequence.read_image(frame).astype(int)  # JPEG quality 95 of the decoded frame
        assert np.abs(written - decoded).mean() < 1.5 and np.abs(written - decoded).max() < 48


def test_png_frames_are_the_decoded_frames(video: Path, tmp_path: Path) -> None:
    info = extract_frames(video, tmp_path / "S", name="mine", ext=".png", progress=False)
    assert (info.name, info.im_ext) == ("mine", ".png")
    sequence = Sequence.from_dir(tmp_path / "S")
    for frame, decoded in enumerate(sequential_reads(video), start=1):
        assert np.array_equal(sequence.read_image(frame), decoded)


def test_an_interrupted_extraction_leaves_no_sequence(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = []

    def imwrite(path: str, image: np.ndarray, params: list[int]) -> bool:
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        return cv2.imencode(".jpg", image)[0]

    monkeypatch.setattr(cv2, "imwrite", imwrite)
    (tmp_path / "SEQ" / "gt").mkdir(parents=True)  # a folder the user made: it stays
    with pytest.raises(KeyboardInterrupt):
        extract_frames(video, tmp_path / "SEQ", progress=False)
    assert [p.name for p in (tmp_path / "SEQ").iterdir()] == ["gt"]
    with pytest.raises(KeyboardInterrupt):
        extract_frames(video, tmp_path / "NEW", progress=False)
    assert not (tmp_path / "NEW").exists()


def test_extract_frames_refuses_a_sequence_folder(video: Path, tmp_path: Path) -> None:
    (tmp_path / "S" / "img1").mkdir(parents=True)
    with pytest.raises(DeepMOTError, match="holds img1 already"):
        extract_frames(video, tmp_path / "S", progress=False)
    with pytest.raises(ValueError, match="quality"):
        extract_frames(video, tmp_path / "T", quality=0)
    with pytest.raises(ValueError, match="ext"):
        extract_frames(video, tmp_path / "T", ext=".bmp")


def test_a_sequence_from_a_video_with_its_files(video: Path, tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,10,20,30,1,1,1\n30,1,14,10,20,30,1,1,1\n")
    det = tmp_path / "det.txt"
    det.write_text("2,-1,10,10,20,30,0.9,-1,-1,-1\n")
    sequence = Sequence.from_video(video, gt=gt, det=det)
    assert (sequence.name, len(sequence), sequence.frame_rate) == ("clip", FRAMES, FPS)
    assert sequence.gt_at(30).ids.tolist() == [1]
    assert np.allclose(sequence.detections_at(2), [[10, 10, 30, 40, 0.9]])
    assert np.array_equal(sequence.read_image(5), sequential_reads(video)[4])
    clip = sequence.clip(range(4, 7))
    assert np.array_equal(clip.read_image(1), sequential_reads(video)[3])
    assert Sequence.from_video(video, name="x").detections is None
    gt.write_text("31,1,10,10,20,30,1,1,1\n")
    with pytest.raises(MOTFormatError, match="frame 31 is beyond the 30 frames"):
        Sequence.from_video(video, gt=gt)


def broken_files(folder: Path, video: Path) -> dict[str, Path]:
    """A missing file, a file that is no video, a video cut after 400 bytes (it does not open),
    and a VP9 video cut 40 bytes into its first cluster (it opens, no frame decodes)."""
    folder.mkdir(exist_ok=True)
    text = folder / "notes.mp4"
    text.write_text("not a video\n")
    cut = folder / f"cut{video.suffix}"
    cut.write_bytes(video.read_bytes()[:400])
    vp9 = write_video(folder / "vp9.mkv", [known_frame(k) for k in range(1, FRAMES + 1)])
    data = vp9.read_bytes()
    empty = folder / "empty.mkv"
    empty.write_bytes(data[: data.index(b"\x1f\x43\xb6\x75") + 40])  # Matroska's Cluster id
    return {"missing": folder / "missing.mp4", "text": text, "cut": cut, "empty": empty}


def test_broken_videos_are_errors_naming_the_file(video: Path, tmp_path: Path) -> None:
    broken = broken_files(tmp_path, video)
    for path in broken.values():
        with pytest.raises(DeepMOTError, match=str(path)):
            VideoFrames(path)
    with pytest.raises(DeepMOTError, match="no frame could be decoded"):
        VideoFrames(broken["empty"])
    with pytest.raises(DeepMOTError, match="is a folder"):
        VideoFrames(tmp_path)


def test_a_video_cut_short(tmp_path: Path) -> None:
    """The header counts 30 frames, 3 decode: reading past them is an error naming the file;
    ``deepmot frames`` writes the frames that decode."""
    video = write_video(tmp_path / "v.avi", [known_frame(k) for k in range(1, FRAMES + 1)])
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    decoded = sequential_reads(cut)
    source = VideoFrames(cut)
    assert len(source) == FRAMES and 0 < len(decoded) < FRAMES
    assert np.array_equal(source.read(len(decoded)), decoded[-1])
    with pytest.raises(DeepMOTError, match=f"{cut}: frame {FRAMES} does not decode"):
        source.read(FRAMES)
    info = extract_frames(cut, tmp_path / "S", progress=False)
    assert info.seq_length == len(decoded) == len(list((tmp_path / "S" / "img1").iterdir()))


# --------------------------------------------------------------------------- the commands


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


@pytest.mark.parametrize("command", ["frames", "track"])
def test_commands_report_a_broken_video_in_one_line(
    command: str, video: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for kind, path in broken_files(tmp_path / "bad", video).items():
        argv = [command, str(path), "--out", str(tmp_path / kind), "--no-progress"]
        if command == "track":
            argv += ["--tracker", "constant_velocity"]
        code, err = run_cli(argv, capsys)
        assert_one_line_error(code, err, str(path))
        assert not (tmp_path / kind).exists() or command == "track"


def test_frames_command(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "SEQ"
    argv = ["frames", str(video), "--out", str(out), "--ext", "PNG", "--name", "S1"]
    assert main([*argv, "--no-progress"]) == 0
    info = read_seqinfo(out / "seqinfo.ini")
    assert (info.name, info.seq_length, info.im_ext) == ("S1", FRAMES, ".png")
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, str(out), "img1")
    code, err = run_cli([*argv[:3], str(tmp_path / "T"), "--quality", "101"], capsys)
    assert_one_line_error(code, err, "--quality", "1..100")


def test_frames_command_imports_no_torch(video: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from deepmot.cli import main\n"
        f"rc = main(['frames', {str(video)!r}, '--out', {str(tmp_path / 'S')!r}, "
        "'--no-progress'])\n"
        "print('TORCH', 'torch' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "TORCH False" in done.stdout


def test_a_broken_video_is_one_line_from_the_shell(tmp_path: Path) -> None:
    """FFmpeg's and OpenCV's own messages (written by the C libraries, past Python's stderr)
    are silenced: OpenCV's AVI reader complained about the cut MJPG file."""
    import subprocess
    import sys

    video = write_video(tmp_path / "v.avi", [known_frame(k) for k in range(1, FRAMES + 1)])
    broken = broken_files(tmp_path, video)
    for path in (broken["cut"], broken["empty"]):
        argv = ["frames", str(path), "--out", str(tmp_path / "S")]
        done = subprocess.run(
            [sys.executable, "-m", "deepmot", *argv], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2
        assert done.stderr.strip().count("\n") == 0 and str(path) in done.stderr, done.stderr


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic scene (people the shipped detector was trained on) as an .mp4, and its
    ground truth as a MOTChallenge file."""
    from deepmot.data.synthetic import SceneConfig, generate_scene
    from deepmot.io.mot import write_gt

    folder = tmp_path_factory.mktemp("street")
    scene = generate_scene(SceneConfig(frames=5, people=3, width=160, height=120, seed=1))
    video = write_video(folder / "street.mp4", [scene.render_frame(k) for k in range(1, 6)])
    sequence = scene.to_sequence()
    write_gt(folder / "gt.txt", sequence.gt)
    return video, folder / "gt.txt"


def test_track_a_video_with_the_detector(street: tuple[Path, Path], tmp_path: Path) -> None:
    video, _ = street
    out = tmp_path / "r"
    argv = ["track", str(video), "--tracker", "constant_velocity", "--out", str(out), "--video"]
    assert main([*argv, "--no-progress"]) == 0
    results = read_results(out / "street.txt")
    assert len(results) == 0 or 1 <= results.frames.min() <= results.frames.max() <= 5
    assert sorted(p.name for p in out.iterdir()) == ["street.mp4", "street.txt"]
    assert len(sequential_reads(out / "street.mp4")) == 5


def test_track_a_video_with_its_detections(street: tuple[Path, Path], tmp_path: Path) -> None:
    """The ground truth as detections: the tracks are the people, and the rendering has them
    over the ground truth."""
    video, gt = street
    det = tmp_path / "det.txt"
    rows = [line.split(",") for line in gt.read_text().splitlines()]
    det.write_text("".join(f"{r[0]},-1,{','.join(r[2:6])},1,-1,-1,-1\n" for r in rows))
    out = tmp_path / "r"
    argv = ["track", str(video), "--tracker", "kalman", "--out", str(out), "--det", str(det)]
    argv += ["--gt", str(gt), "--name", "S", "--video", str(tmp_path / "v"), "--no-progress"]
    assert main(argv) == 0
    results = read_results(out / "S.txt")
    assert len(results) >= len(rows) // 2
    assert len(sequential_reads(tmp_path / "v" / "S.mp4")) == 5


def test_tracktor_tracks_a_video_with_its_own_detector(
    street: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepmot.commands import track

    configs = []
    own = track._own_detector

    def spy(tracker, min_score):
        configs.append((own(tracker, min_score), tracker.predictor.config))
        return configs[-1][0]

    monkeypatch.setattr(track, "_own_detector", spy)
    video, _ = street
    argv = ["track", str(video), "--tracker", "tracktor", "--out", str(tmp_path), "--no-progress"]
    assert main([*argv, "--min-score", "0.6"]) == 0
    [(used, config)] = configs
    assert used and config.private and config.detection_thresh == 0.6
    results = read_results(tmp_path / "street.txt")
    assert len(results) == 0 or results.frames.max() <= 5


def test_a_tracker_without_a_detector_tracks_a_video_with_the_shipped_one(
    street: tuple[Path, Path], tmp_path: Path
) -> None:
    # SORT has its own management and no detector: the shipped detector finds the people
    video, _ = street
    argv = ["track", str(video), "--tracker", "sort", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    results = read_results(tmp_path / "street.txt")
    assert len(results) == 0 or results.frames.max() <= 5


def test_video_options_do_not_go_with_a_folder(
    street: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    video, gt = street
    argv = ["track", str(tmp_path), "--out", str(tmp_path / "r"), "--tracker", "kalman"]
    code, err = run_cli([*argv, "--det", str(gt)], capsys)
    assert_one_line_error(code, err, "--det goes with a video file")
    argv = ["track", str(video), "--out", str(tmp_path / "r"), "--tracker", "kalman"]
    code, err = run_cli([*argv, "--sequences", "MOT17"], capsys)
    assert_one_line_error(code, err, "--sequences goes with MOT_ROOT")
    argv = ["track", str(tmp_path), "--out", str(tmp_path / "r"), "--tracker", "kalman"]
    code, err = run_cli([*argv, "--min-score", "0.3"], capsys)
    assert_one_line_error(code, err, "--min-score goes with a video file")


def test_the_parsers_constants_are_the_librarys() -> None:
    from deepmot.commands.frames import EXTENSIONS
    from deepmot.commands.track import MIN_DETECTION_SCORE
    from deepmot.detection.config import MIN_DETECTION_SCORE as LIBRARY_SCORE

    assert EXTENSIONS == IMAGE_EXTENSIONS and MIN_DETECTION_SCORE == LIBRARY_SCORE


# --------------------------------------------------------------------------- the real videos

VIDEOS = SHARED_DATA / "video"


def real_video(name: str) -> Path:
    path = VIDEOS / name
    if not path.is_file():
        pytest.skip(f"real video not found at {path}")
    return path


def test_tud_campus_video() -> None:
    """mp4v: 71 frames of 640x480, random reads (seeks) equal to the sequential ones."""
    path = real_video("TUD-Campus.mp4")
    source = VideoFrames(path)
    assert (len(source), source.width, source.height) == (71, 640, 480)
    oracle = sequential_reads(path)
    assert len(oracle) == 71
    for frame in [70, 3, 50, 49, 71, 1, 36, 12, 60]:
        assert np.array_equal(source.read(frame), oracle[frame - 1]), frame


def test_tud_campus_sequence_from_the_video(mot_root: Path) -> None:
    sequence = Sequence.from_video(
        real_video("TUD-Campus.mp4"),
        gt=mot_root / "TUD-Campus" / "gt" / "gt.txt",
        det=mot_root / "TUD-Campus" / "det" / "det.txt",
    )
    assert (sequence.name, len(sequence)) == ("TUD-Campus", 71)
    assert len(sequence.gt_at(71).ids) > 0 and len(sequence.detections_at(1)) > 0


@pytest.mark.slow
def test_pets09_video_seeks_exactly() -> None:
    """MS-MPEG-4 v3 (4 s to decode on a 2-core CPU)."""
    path = real_video("PETS09-S2L1.avi")
    oracle = sequential_reads(path)
    source = VideoFrames(path)
    assert (len(source), len(oracle), source.width, source.height) == (795, 795, 768, 576)
    for frame in [700, 300, 795, 1, 401, 598, 597, 100]:
        assert np.array_equal(source.read(frame), oracle[frame - 1]), frame


def test_tracking_the_video_equals_tracking_the_sequence_folder(
    mot_root: Path, tmp_path: Path
) -> None:
    """TUD-Campus with its public detections: the video and the sequence folder give the same
    result file (the motion trackers see the boxes and the image size, both the same)."""
    video = real_video("TUD-Campus.mp4")
    det = mot_root / "TUD-Campus" / "det" / "det.txt"
    common = ["--tracker", "kalman", "--no-progress"]
    argv = ["track", str(mot_root), "--sequences", "TUD-Campus", "--out", str(tmp_path / "a")]
    assert main([*argv, *common]) == 0
    argv = ["track", str(video), "--det", str(det), "--out", str(tmp_path / "b")]
    assert main([*argv, *common]) == 0
    folder = (tmp_path / "a" / "TUD-Campus.txt").read_text()
    assert folder and (tmp_path / "b" / "TUD-Campus.txt").read_text() == folder
