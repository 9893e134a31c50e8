"""Synthetic scenes (deepmot.data.synthetic), the frame drawing helpers and ``deepmot synth``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from deepmot.cli import main
from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import (
    SceneConfig,
    box_visibility,
    dataset_configs,
    generate_scene,
    write_dataset,
    write_sequence,
)
from deepmot.io.mot import find_sequences
from deepmot.viz.frames import draw_boxes, id_color, save_frame_with_boxes, write_png

SMALL = SceneConfig(frames=12, width=160, height=120, people=6, seed=7)


def _xyxy(boxes_xywh: np.ndarray) -> np.ndarray:
    out = np.array(boxes_xywh, dtype=np.float64)
    out[:, 2:] += out[:, :2]
    return out


def _iou(a_xywh: np.ndarray, b_xywh: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(N, M)``, an oracle independent of deepmot.boxes."""
    a, b = _xyxy(a_xywh), _xyxy(b_xywh)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _tracks(gt):
    """Frames, ids and boxes of the gt rows ordered by (id, frame)."""
    order = np.lexsort((gt.frames, gt.ids))
    f, i, b = gt.frames[order], gt.ids[order], gt.boxes_xywh[order]
    return f, i, b


# --------------------------------------------------------------------------- determinism, files


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a = write_sequence(generate_scene(SMALL), tmp_path / "a" / "S", progress=False)
    b = write_sequence(generate_scene(SMALL), tmp_path / "b" / "S", progress=False)
    c = write_sequence(generate_scene(replace(SMALL, seed=8)), tmp_path / "c" / "S", progress=False)
    files_a, files_b, files_c = _files(a), _files(b), _files(c)
    assert len([n for n in files_a if n.startswith("img1/")]) == SMALL.frames
    assert files_a == files_b
    assert files_a["gt/gt.txt"] != files_c["gt/gt.txt"]
    assert files_a["img1/000001.jpg"] != files_c["img1/000001.jpg"]


def test_written_sequence_reads_back_exactly(tmp_path):
    scene = generate_scene(SMALL)
    folder = write_sequence(scene, tmp_path / "SYNTH-01", progress=False)
    seq = Sequence.from_dir(folder)
    assert (seq.name, len(seq), seq.im_width, seq.im_height, seq.frame_rate) == (
        "SYNTH-01",
        12,
        160,
        120,
        30.0,
    )
    for name in ("frames", "ids", "boxes_xywh", "flags", "classes", "visibility"):
        np.testing.assert_array_equal(getattr(seq.gt, name), getattr(scene.gt, name), err_msg=name)
    for name in ("frames", "boxes_xywh", "scores"):
        np.testing.assert_array_equal(
            getattr(seq.detections, name), getattr(scene.detections, name), err_msg=name
        )
    assert len(scene.gt) > 0 and len(scene.detections) > 0
    assert (scene.gt.flags == 1).all() and (scene.gt.classes == 1).all()
    assert sorted(p.name for p in (folder / "img1").iterdir()) == [
        f"{f:06d}.jpg" for f in range(1, 13)
    ]
    image = seq.read_image(12)
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    # The JPEG is the rendered frame up to compression.
    diff = np.abs(image.astype(int) - scene.render_frame(12).astype(int))
    assert diff.mean() < 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_render_false_writes_annotations_only(tmp_path):
    folder = write_sequence(generate_scene(SMALL), tmp_path / "S", render=False)
    assert not (folder / "img1").exists()
    seq = Sequence.from_dir(folder)
    assert seq.image_dir is None and len(seq.gt) > 0


def test_existing_folder_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "S"
    write_sequence(generate_scene(SMALL), target, render=False)
    with pytest.raises(FileExistsError, match="already exists"):
        write_sequence(generate_scene(SMALL), target, render=False)
    other = generate_scene(replace(SMALL, seed=99))
    write_sequence(other, target, render=False, overwrite=True)
    np.testing.assert_array_equal(Sequence.from_dir(target).gt.ids, other.gt.ids)
    assert [p.name for p in tmp_path.iterdir()] == ["S"]


def test_rendered_frames_have_the_configured_size_and_differ_over_time():
    scene = generate_scene(replace(SMALL, width=200, height=100))
    first, last = scene.render_frame(1), scene.render_frame(12)
    assert first.shape == (100, 200, 3) and first.dtype == np.uint8
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 0.5  # people moved
    with pytest.raises(IndexError):
        scene.render_frame(13)


def test_dataset_names_and_seeds(tmp_path):
    paths = write_dataset(tmp_path, sequences=3, config=SMALL, render=False, progress=False)
    assert [p.name for p in paths] == ["SYNTH-01", "SYNTH-02", "SYNTH-03"]
    assert find_sequences(tmp_path) == paths
    gts = [(p / "gt" / "gt.txt").read_bytes() for p in paths]
    assert len(set(gts)) == 3
    seeds = [c.seed for c in dataset_configs(3, SMALL)]
    assert seeds == [c.seed for c in dataset_configs(3, SMALL)] and len(set(seeds)) == 3
    assert seeds != [c.seed for c in dataset_configs(3, SMALL, seed=1)]
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path, sequences=3, config=SMALL, render=False)


@pytest.mark.parametrize(
    "change",
    [
        {"frames": 0},
        {"width": 10},
        {"people": -1},
        {"miss_rate": 1.5},
        {"fp_rate": -0.1},
        {"min_visibility": 0.7, "full_visibility": 0.6},
        {"far_height": 0.6},
        {"near_height": 0.9},
        {"tp_score_beta": (0.0, 1.0)},
        {"name": "a/b"},
    ],
)
def test_bad_config_raises_value_error(change):
    with pytest.raises(ValueError, match="SceneConfig"):
        SceneConfig(**change)


# --------------------------------------------------------------------------- tracks and ids


@pytest.fixture(scope="module")
def street():
    """A 300-frame scene without pixels: enough for entries, exits and occlusions."""
    return generate_scene(SceneConfig(frames=300, people=15, seed=3))


def test_ids_are_unique_per_frame_and_numbered_by_first_appearance(street):
    gt = street.gt
    pairs = gt.frames * 10_000 + gt.ids
    assert len(np.unique(pairs)) == len(pairs)
    ids = np.unique(gt.ids)
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    first = np.array([gt.frames[gt.ids == i].min() for i in ids])
    assert (np.diff(first) >= 0).all()


def test_tracks_move_smoothly(street):
    f, i, b = _tracks(street.gt)
    same = (i[1:] == i[:-1]) & (f[1:] == f[:-1] + 1)
    assert same.sum() > 0.9 * (len(f) - len(np.unique(i)))
    centre = b[:, :2] + b[:, 2:] / 2
    h = b[:, 3]
    step = np.abs(centre[1:] - centre[:-1])[same] / h[:-1][same, None]
    growth = np.abs(np.log(h[1:] / h[:-1]))[same]
    assert step.max() < 0.08  # under 8% of the height per frame (about 4% measured)
    assert growth.max() < 0.05
    aspect = b[:, 2] / b[:, 3]
    assert aspect.min() > 0.3 and aspect.max() < 0.5


def test_people_enter_and_leave_through_the_borders(street):
    """Ids appear and disappear only at the image borders, so no id is handed to someone else."""
    w, h = street.config.width, street.config.height
    f, i, b = _tracks(street.gt)
    xyxy = _xyxy(b)
    crosses = (xyxy[:, 0] < 0) | (xyxy[:, 1] < 0) | (xyxy[:, 2] > w) | (xyxy[:, 3] > h)
    starts = np.r_[True, i[1:] != i[:-1]] | np.r_[True, f[1:] != f[:-1] + 1]
    ends = np.r_[i[1:] != i[:-1], True] | np.r_[f[1:] != f[:-1] + 1, True]
    entries = starts & (f > 1)
    exits = ends & (f < street.config.frames)
    assert entries.sum() >= 5 and exits.sum() >= 5
    assert crosses[entries].all() and crosses[exits].all()


# --------------------------------------------------------------------------- visibility


def test_box_visibility_hand_computed_cases():
    behind, front = [10, 10, 30, 50], [20, 20, 40, 60]  # front has the lower bottom edge
    vis = box_visibility(np.array([behind, front], dtype=float), 100, 100)
    # front covers x 20..30, y 20..50 of behind: 10*30 of 20*40
    np.testing.assert_allclose(vis, [1 - 300 / 800, 1.0])
    hidden = box_visibility(np.array([[12, 12, 18, 40], [10, 10, 30, 50]], float), 100, 100)
    np.testing.assert_allclose(hidden, [0.0, 1.0])
    half_out = box_visibility(np.array([[-10, 0, 10, 20]], float), 100, 100)
    np.testing.assert_allclose(half_out, [0.5])
    # Two occluders overlapping each other: the union is counted once.
    two = box_visibility(np.array([[0, 0, 10, 10], [0, 0, 6, 11], [4, 0, 10, 12]], float), 50, 50)
    np.testing.assert_allclose(two[0], 0.0)
    np.testing.assert_allclose(box_visibility(np.array([[5, 5, 5, 9]], float), 50, 50), [0.0])
    assert box_visibility(np.zeros((0, 4)), 50, 50).shape == (0,)


def test_scene_visibility_is_low_when_occluded_and_full_when_alone(street):
    gt = street.gt
    assert ((gt.visibility >= 0) & (gt.visibility <= 1)).all()
    w, h = street.config.width, street.config.height
    alone = overlapped = 0
    for t in range(1, street.config.frames + 1, 5):
        rows = np.flatnonzero(gt.frames == t)
        boxes = _xyxy(gt.boxes_xywh[rows])
        iou = _iou(gt.boxes_xywh[rows], gt.boxes_xywh[rows])
        np.fill_diagonal(iou, 0)
        inside = (boxes[:, :2] >= 0).all(1) & (boxes[:, 2] <= w) & (boxes[:, 3] <= h)
        for j, row in enumerate(rows):
            if inside[j] and iou[j].max() == 0:
                assert gt.visibility[row] == 1.0
                alone += 1
            # a box inside another whose bottom edge is lower is fully hidden
            k = np.flatnonzero(
                (boxes[:, 0] <= boxes[j, 0])
                & (boxes[:, 1] <= boxes[j, 1])
                & (boxes[:, 2] >= boxes[j, 2])
                & (boxes[:, 3] > boxes[j, 3])
            )
            if len(k):
                assert gt.visibility[row] == 0.0
            # mostly covered by one box in front: at most the uncovered part is visible
            lower = boxes[:, 3] > boxes[j, 3]
            cover = np.clip(
                np.minimum(boxes[lower, 2:], boxes[j, 2:])
                - np.maximum(boxes[lower, :2], boxes[j, :2]),
                0,
                None,
            ).prod(-1)
            area = (boxes[j, 2:] - boxes[j, :2]).prod()
            if len(cover) and cover.max() > 0.6 * area:
                assert gt.visibility[row] <= 1 - cover.max() / area + 1e-4
                overlapped += 1
    assert alone > 20 and overlapped > 5


# --------------------------------------------------------------------------- detector


def test_detector_statistics_match_the_config():
    cfg = SceneConfig(frames=1000, people=20, miss_rate=0.1, fp_rate=1.0, box_jitter=0.04, seed=11)
    scene = generate_scene(cfg)
    gt, dets = scene.gt, scene.detections
    # Match detections to gt boxes clipped to the image (detections are clipped) at IoU 0.5.
    clipped = _xyxy(gt.boxes_xywh)
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, cfg.width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, cfg.height)
    clipped[:, 2:] -= clipped[:, :2]
    found = np.zeros(len(gt), dtype=bool)
    matched_det = np.zeros(len(dets), dtype=bool)
    g_lo = np.searchsorted(gt.frames, np.arange(1, cfg.frames + 2))
    d_lo = np.searchsorted(dets.frames, np.arange(1, cfg.frames + 2))
    for t in range(cfg.frames):
        gi, di = np.arange(g_lo[t], g_lo[t + 1]), np.arange(d_lo[t], d_lo[t + 1])
        if len(gi) and len(di):
            iou = _iou(clipped[gi], dets.boxes_xywh[di])
            r, c = linear_sum_assignment(-iou)
            ok = iou[r, c] >= 0.5
            found[gi[r[ok]]] = True
            matched_det[di[c[ok]]] = True
    vis = gt.visibility
    well_visible = vis >= cfg.full_visibility
    assert well_visible.sum() > 5000
    miss = 1 - found[well_visible].mean()
    assert abs(miss - cfg.miss_rate) < 0.02, miss
    assert 1 - found[vis < cfg.min_visibility].mean() > 0.95  # hidden people are missed
    fp_per_frame = (~matched_det).sum() / cfg.frames
    assert abs(fp_per_frame - cfg.fp_rate) < 0.15, fp_per_frame
    # Scores: true detections score higher.
    assert dets.scores[matched_det].mean() > dets.scores[~matched_det].mean() + 0.3
    assert ((dets.scores > 0) & (dets.scores <= 1)).all()
    # Box jitter: centre offsets of well visible, untruncated matches have std ~ box_jitter.
    source = scene.det_gt_ids
    assert ((source >= 0) == matched_det).mean() > 0.97
    key = {
        (f, i): k for k, (f, i) in enumerate(zip(gt.frames.tolist(), gt.ids.tolist(), strict=True))
    }
    tp = np.flatnonzero(source >= 0)
    g = np.array(
        [key[(f, i)] for f, i in zip(dets.frames[tp].tolist(), source[tp].tolist(), strict=True)]
    )
    assert (vis[g] >= cfg.min_visibility).all()  # by construction, never below
    full = _xyxy(gt.boxes_xywh[g])
    inside = (vis[g] == 1.0) & (full[:, :2] >= 0).all(1)
    inside &= (full[:, 2] <= cfg.width) & (full[:, 3] <= cfg.height)
    gb, db = gt.boxes_xywh[g[inside]], dets.boxes_xywh[tp[inside]]
    dx = (db[:, 0] + db[:, 2] / 2 - gb[:, 0] - gb[:, 2] / 2) / gb[:, 2]
    assert abs(dx.std() - cfg.box_jitter) < 0.01, dx.std()
    # Detections stay in the image.
    d = _xyxy(dets.boxes_xywh)
    assert (d[:, :2] >= 0).all() and (d[:, 2] <= cfg.width).all() and (d[:, 3] <= cfg.height).all()


# --------------------------------------------------------------------------- camera motion


def test_camera_motion_shifts_every_box_by_the_camera_offset():
    still = generate_scene(replace(SMALL, frames=60, width=320, height=240, people=10))
    moving = generate_scene(replace(still.config, camera_motion=True))
    off = moving.camera_offsets
    assert np.abs(off).max() > 5 and np.abs(np.diff(off, axis=0)).max() < 2  # smooth, not tiny
    assert not still.camera_offsets.any()
    matched = total = 0
    for t in range(1, 61):
        a = _xyxy(moving.gt.boxes_xywh[moving.gt.frames == t]) - np.tile(off[t - 1], 2)
        b = _xyxy(still.gt.boxes_xywh[still.gt.frames == t])
        total += len(a)
        if len(a) and len(b):
            err = np.abs(a[:, None, :] - b[None, :, :]).max(-1).min(1)
            matched += int((err < 0.03).sum())
    assert matched > 0.9 * total  # the rest are in view in one scene only
    # The pixels move too: the facade above the heads is the still frame shifted.
    t = int(np.argmax(np.abs(off[:, 0]))) + 1
    dx, dy = np.round(off[t - 1]).astype(int)
    assert dx != 0
    m, s = moving.render_frame(t), still.render_frame(t)
    np.testing.assert_array_equal(m[20:40, 40:280], s[20 - dy : 40 - dy, 40 - dx : 280 - dx])


# --------------------------------------------------------------------------- drawing


def test_draw_boxes_colours_each_id_and_leaves_the_input_alone():
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    out = draw_boxes(image, np.array([[10, 10, 30, 50], [40, 5, 70, 55]]), ids=np.array([3, 4]))
    assert not image.any() and out.shape == image.shape
    assert tuple(out[30, 10]) == id_color(3) and tuple(out[30, 70]) == id_color(4)
    assert id_color(3) != id_color(4) and id_color(3) == id_color(3)
    plain = draw_boxes(image, np.array([[10, 10, 30, 50]]), color=(255, 0, 0))
    assert tuple(plain[30, 10]) == (255, 0, 0)
    with pytest.raises(ValueError, match="ids"):
        draw_boxes(image, np.zeros((2, 4)), ids=np.array([1]))
    with pytest.raises(ValueError, match="uint8"):
        draw_boxes(image.astype(float), np.zeros((0, 4)))


def test_save_frame_with_boxes_writes_a_png(tmp_path):
    folder = write_sequence(generate_scene(SMALL), tmp_path / "S", progress=False)
    seq = Sequence.from_dir(folder)
    path = save_frame_with_boxes(seq, 5, tmp_path / "out" / "f5.png", detections=True)
    assert path == tmp_path / "out" / "f5.png"
    png = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert png.shape == (120, 160, 3)
    rgb = png[..., ::-1]
    # A fully visible box inside the image has its id's colour on its left edge.
    gt = seq.gt_at(5)
    boxes = np.round(gt.boxes).astype(int)
    clear = (
        (gt.visibility == 1)
        & (boxes[:, :2] >= 0).all(1)
        & (boxes[:, 2] < 160)
        & (boxes[:, 3] < 120)
    )
    assert clear.any()
    j = int(np.flatnonzero(clear)[0])
    x1, y1, _, y2 = boxes[j]
    edge = rgb[(y1 + y2) // 2 - 3 : (y1 + y2) // 2 + 4, x1].astype(int)
    assert (np.abs(edge - id_color(int(gt.ids[j]))).max(1) <= 2).any()
    assert [p.name for p in path.parent.iterdir()] == ["f5.png"]
    with pytest.raises(ValueError, match=".png"):
        write_png(tmp_path / "x.jpg", rgb)


# --------------------------------------------------------------------------- command line


def test_cli_synth_end_to_end(tmp_path, caplog):
    out = tmp_path / "out"
    args = ["synth", str(out), "--sequences", "2", "--frames", "8", "--width", "160"]
    args += ["--height", "120", "--people", "5", "--seed", "4", "--no-progress"]
    with caplog.at_level("INFO"):
        assert main(args) == 0
    assert "SYNTH-02" in caplog.text and "preview" in caplog.text
    paths = find_sequences(out)
    assert [p.name for p in paths] == ["SYNTH-01", "SYNTH-02"]
    for p in paths:
        seq = Sequence.from_dir(p)
        assert len(seq) == 8 and (seq.im_width, seq.im_height) == (160, 120)
        assert len(list((p / "img1").glob("*.jpg"))) == 8
    preview = cv2.imread(str(out / "SYNTH-01_preview.png"))
    assert preview.shape == (120, 160, 3)
    before = _files(paths[0])
    assert main(args) == 2  # refuses to overwrite
    assert _files(paths[0]) == before
    assert main([*args, "--overwrite", "--no-images", "--camera-motion"]) == 0
    assert not (paths[0] / "img1").exists()
    assert cv2.imread(str(out / "SYNTH-01_preview.png")).shape == (120, 160, 3)


def test_cli_synth_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "unused", "--frames", "0"])
    assert "--frames" in capsys.readouterr().err


def test_cli_synth_does_not_import_torch(tmp_path):
    code = (
        "import sys; from deepmot.cli import main; "
        f"main(['synth', {str(tmp_path / 'o')!r}, '--sequences', '1', '--frames', '2', "
        "'--width', '64', '--height', '64', '--no-progress']); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
