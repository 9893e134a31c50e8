"""The per-frame cache the trials of `deepmot tune` share (Tracktor's backbone features, ECC
warps, re-scored detections): bounded, exact, and the backbone runs once per frame."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmot.cli import main
from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence
from deepmot.trackers import track_sequence
from deepmot.trackers.frame_cache import FrameCache
from deepmot.trackers.management import ManagedTracker
from deepmot.trackers.tracktor import (
    TRACKTOR_MANAGEMENT,
    TracktorModel,
    TracktorPredictor,
    build_tracktor,
)


def _scene(seed: int, frames: int = 12):
    config = SceneConfig(
        frames=frames, width=320, height=240, people=5, seed=seed, name=f"C{seed}",
        camera_motion=True,
    )  # fmt: skip
    return generate_scene(config)


def test_cache_keeps_what_fits_and_counts() -> None:
    cache = FrameCache(max_bytes=100)
    calls = []

    def compute(n: int):
        calls.append(n)
        return torch.zeros(n, dtype=torch.uint8)  # n bytes

    assert cache.lookup("a", lambda: compute(60)).shape == (60,)
    assert cache.lookup("a", lambda: compute(60)).shape == (60,)  # kept: not computed again
    assert cache.lookup("b", lambda: compute(50)).shape == (50,)  # 110 > 100: not kept
    assert cache.lookup("b", lambda: compute(50)).shape == (50,)
    assert cache.lookup("c", lambda: compute(40)).shape == (40,)  # 100 <= 100: kept
    assert calls == [60, 50, 50, 40]
    assert cache.stats() | {"mib": 0} == {
        "entries": 2, "hits": 1, "misses": 4, "skipped": 2, "mib": 0, "max_mib": 0.0,
    }  # fmt: skip
    assert cache.nbytes == 100


def test_cache_digest_and_owner() -> None:
    cache = FrameCache(max_bytes=1)
    frame = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert cache.digest(frame) == cache.digest(frame.copy())  # same pixels, another object
    assert cache.digest(frame) == cache.digest(torch.from_numpy(frame.copy()))
    assert cache.digest(frame) != cache.digest(frame.reshape(4, 2, 3).copy())  # shape counts
    changed = frame.copy()
    changed[0, 0, 0] += 1
    assert cache.digest(frame) != cache.digest(changed)
    first, second = object(), object()
    cache.claim(first)
    cache.claim(first)
    with pytest.raises(ValueError, match="another model"):
        cache.claim(second)
    with pytest.raises(ValueError, match="max_bytes"):
        FrameCache(0)


def _run(model: TracktorModel, sequence, cache: FrameCache | None, **settings):
    predictor = TracktorPredictor(model)
    if cache is not None:
        predictor.use_frame_cache(cache)
    tracker = ManagedTracker(predictor, replace(TRACKTOR_MANAGEMENT, **settings))
    return track_sequence(tracker, sequence, progress=False)


def _same(a, b) -> None:
    for field in ("frames", "ids", "boxes_xywh", "scores"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_tracking_with_the_cache_is_exactly_tracking_without(monkeypatch) -> None:
    """Two settings (as two trials) share one cache; each run equals the uncached run of the
    same settings to the bit, the second run computes no backbone features, and a cache too
    small for all frames is exact too."""
    sequence = _scene(7, frames=6).to_sequence()
    model = build_tracktor()
    calls = []
    features = TracktorModel.features
    monkeypatch.setattr(
        TracktorModel, "features", lambda self, image: calls.append(1) or features(self, image)
    )
    other = {"birth_min_frames": 3, "track_nms": 0.3, "min_track_score": 0.8}
    plain = [_run(model, sequence, None), _run(model, sequence, None, **other)]
    assert len(calls) == 2 * len(sequence)
    assert len(plain[0]) > 0 and not np.array_equal(plain[0].boxes_xywh, plain[1].boxes_xywh)
    calls.clear()
    cache = FrameCache(2**30)
    _same(_run(model, sequence, cache), plain[0])
    assert len(calls) == len(sequence)
    misses = cache.misses  # features and detections per frame, ECC warps per frame pair
    assert 2 * len(sequence) < misses < 3 * len(sequence) and cache.skipped == 0
    _same(_run(model, sequence, cache, **other), plain[1])
    assert len(calls) == len(sequence) and cache.misses == misses  # all read from the cache
    small = FrameCache(int(2.5 * cache.nbytes / len(sequence)))  # about two frames
    _same(_run(model, sequence, small, **other), plain[1])
    _same(_run(model, sequence, small, **other), plain[1])
    assert small.skipped > 0 and small.hits > 0


def _run_thresholded(model: TracktorModel, sequence, cache: FrameCache | None, threshold: float):
    predictor = TracktorPredictor(model)
    predictor.config = replace(predictor.config, detection_thresh=threshold)
    if cache is not None:
        predictor.use_frame_cache(cache)
    return track_sequence(ManagedTracker(predictor, TRACKTOR_MANAGEMENT), sequence, progress=False)


def test_predictors_with_other_birth_thresholds_share_a_cache_exactly() -> None:
    """The re-scored detections are kept before the birth threshold: a trial with another
    ``detection_thresh`` reads them from the cache and still applies its own threshold."""
    sequence = _scene(7, frames=6).to_sequence()
    model = build_tracktor()
    scores = []
    predictor = TracktorPredictor(model)
    for frame in sequence.frames:
        dets = torch.from_numpy(sequence.detections_at(frame))
        scores.append(predictor._birth_material(sequence.read_image(frame), dets)[:, 4])
    low, high = np.quantile(torch.cat(scores).numpy(), [0.2, 0.8])  # thresholds that differ
    plain = [_run_thresholded(model, sequence, None, t) for t in (low, high)]
    assert not np.array_equal(plain[0].ids, plain[1].ids) or len(plain[0]) != len(plain[1])
    cache = FrameCache(2**30)
    for threshold, expected in zip((low, high), plain, strict=True):
        _same(_run_thresholded(model, sequence, cache, threshold), expected)


def test_cache_belongs_to_one_model() -> None:
    cache = FrameCache(2**20)
    TracktorPredictor(build_tracktor()).use_frame_cache(cache)
    with pytest.raises(ValueError, match="another model"):
        TracktorPredictor(build_tracktor()).use_frame_cache(cache)


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "mot"
    for seed in (1, 2):
        write_sequence(_scene(seed, frames=8), root / f"C{seed}", progress=False)
    return root


def _count_backbone(monkeypatch) -> list:
    calls = []
    features = TracktorModel.features
    monkeypatch.setattr(
        TracktorModel, "features", lambda self, image: calls.append(1) or features(self, image)
    )
    return calls


TRAIN, VAL = 2 * 4, 2 * 2  # frames 1-4 and 7-8 of each 8-frame sequence
TUNE = ["--tracker", "tracktor", "--trials", "3", "--no-progress"]


def test_tune_tracktor_on_a_folder_runs_the_backbone_once_per_frame(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """`deepmot tune --tracker tracktor` on MOT folders with img1/: 3 trials and the two
    validation runs compute each frame's features once."""
    root = _folder(tmp_path)
    calls = _count_backbone(monkeypatch)
    assert main(["tune", str(root), *TUNE, "--out", str(tmp_path / "cached")]) == 0
    assert len(calls) == TRAIN + VAL
    out = capsys.readouterr().out
    assert "3 trials in" in out and "trials/min); frame cache:" in out
    cache = json.loads((tmp_path / "cached" / "summary.json").read_text())["cache"]
    assert cache["entries"] == cache["misses"] > 0 and cache["hits"] > cache["misses"]


@pytest.mark.slow
def test_tune_tracktor_with_the_cache_finds_what_it_finds_without(
    tmp_path: Path, monkeypatch
) -> None:
    """The same study without the cache: the backbone runs once per frame per run, and every
    figure of the summary is the same."""
    root = _folder(tmp_path)
    calls = _count_backbone(monkeypatch)
    assert main(["tune", str(root), *TUNE, "--out", str(tmp_path / "cached")]) == 0
    calls.clear()
    assert (
        main(["tune", str(root), *TUNE, "--out", str(tmp_path / "plain"), "--cache-mib", "0"]) == 0
    )
    assert len(calls) == 3 * TRAIN + 2 * VAL
    cached, plain = (
        json.loads((tmp_path / name / "summary.json").read_text()) for name in ("cached", "plain")
    )
    assert plain["cache"] is None
    for key in ("train", "val", "best", "best_trial"):
        assert cached[key] == plain[key], key


def test_negative_cache_bound_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    args = ["tune", str(tmp_path), *TUNE, "--cache-mib", "-1", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "--cache-mib -1: must be >= 0" in capsys.readouterr().err
