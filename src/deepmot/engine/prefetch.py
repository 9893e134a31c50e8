"""Reading a tracker's training frames ahead, in ``torch.utils.data.DataLoader`` workers.

The trackers that regress from pixels read every frame of their clips (decoding a JPEG of
``img1/``, or rendering a synthetic scene) in the middle of the rollout. Every step's clips
are drawn from a generator seeded by (seed, step), so which frames a step needs is known
before it runs: a dataset of steps (e.g. :class:`deepmot.train.clips.StepClipFrames`, the
frames of this process's clips) lets DataLoader workers read the next steps' frames while the
model trains, and
:class:`PrefetchedFrames`, wrapped around each sequence's frame source, serves them to the
rollout (any other frame is read as before).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np

from deepmot.data.frames import FrameSource
from deepmot.data.sequence import Sequence

__all__ = ["PrefetchedFrames", "prefetching", "step_loader"]


class PrefetchedFrames:
    """A frame source serving the frames read ahead for the current step (:attr:`frames`,
    ``{frame: (H, W, 3) uint8}``), and reading any other frame from ``source``."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.frames: dict[int, np.ndarray] = {}

    def read(self, frame: int) -> np.ndarray:
        image = self.frames.get(frame)
        return image if image is not None else self.source.read(frame)


def prefetching(sequences: list[Sequence]) -> list[Sequence]:
    """Shallow copies of ``sequences`` (same ground truth and detections) whose frames come
    through a :class:`PrefetchedFrames`; the given sequences are left as they are."""
    copies = []
    for sequence in sequences:
        twin = copy.copy(sequence)
        if sequence.frame_source is not None:
            twin.frame_source = PrefetchedFrames(sequence.frame_source)
        copies.append(twin)
    return copies


def _unchanged(item: Any) -> Any:
    """The DataLoader's collate function: a step's item is its batch already."""
    return item


def step_loader(dataset: Any, start: int, stop: int, workers: int) -> Iterator[Any]:
    """``dataset[start], ..., dataset[stop - 1]`` (a dataset of training steps), read ahead
    by ``workers`` ``torch.utils.data.DataLoader`` processes (in this process with 0)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=None,
        sampler=range(start, stop),
        num_workers=workers,
        collate_fn=_unchanged,
    )
    return iter(loader)
