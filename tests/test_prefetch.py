"""Frames read ahead by DataLoader workers: the same training, with the rollout served from
what the workers read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deepmot.data.frames import RenderedFrames
from deepmot.data.synthetic import SceneConfig, generate_scene
from deepmot.engine.prefetch import PrefetchedFrames, prefetching
from deepmot.io.weights import read_weights
from deepmot.train.clips import ClipSampler, StepClipFrames
from deepmot.train.config import AugmentationConfig, TrackerTrainConfig
from deepmot.train.tracker import train_tracker


def _sequences() -> list:
    return [
        generate_scene(
            SceneConfig(frames=8, width=128, height=96, people=3, seed=s, name=f"S{s}")
        ).to_sequence()
        for s in (5, 6)
    ]


def test_a_step_reads_every_frame_of_this_process_clips():
    sequences = prefetching(_sequences())
    assert all(isinstance(s.frame_source, PrefetchedFrames) for s in sequences)
    sampler = ClipSampler(sequences, 3, 2, 1.0, AugmentationConfig())
    starts = sampler.sample(np.random.default_rng([4, 9]), 4)
    for rank in (0, 1):
        frames = StepClipFrames(sampler, 4, seed=4, rank=rank, world_size=2)[9]
        wanted = {
            (sequences.index(s.sequence), f)
            for s in starts[rank::2]
            for f in range(s.start, s.start + 3)
        }
        got = {(i, f) for i, images in frames.items() for f in images}
        assert got == wanted
        for i, f in got:
            source = sequences[i].frame_source.source
            np.testing.assert_array_equal(frames[i][f], source.read(f))


def test_workers_train_the_same_weights_without_reading_in_the_rollout(tmp_path: Path, monkeypatch):
    config = TrackerTrainConfig(
        tracker="goturn",
        matcher="sinkhorn",
        iterations=2,
        batch_size=2,
        sampling="clips",
        clip_length=3,
        det_file=None,
    )
    train_tracker(_sequences(), tmp_path / "w0", config, progress=False)
    reads = []
    original = RenderedFrames.read

    def counted(self, frame):
        reads.append(frame)  # in this process only: the workers have their own list
        return original(self, frame)

    monkeypatch.setattr(RenderedFrames, "read", counted)
    train_tracker(_sequences(), tmp_path / "w1", config, progress=False, workers=1)
    assert reads == []
    _, zero = read_weights(tmp_path / "w0" / "goturn.safetensors", "goturn")
    _, one = read_weights(tmp_path / "w1" / "goturn.safetensors", "goturn")
    assert zero.keys() == one.keys()
    for key in zero:
        assert torch.equal(zero[key], one[key]), key
