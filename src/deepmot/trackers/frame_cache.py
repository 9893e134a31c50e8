"""Per-frame results shared by several runs of one model over the same frames (the trials of
``deepmot tune``).

What a predictor computes from a frame alone — Tracktor's backbone features, the ECC camera
warp between two frames, the public detections re-scored by its box head — does not change
with the track-management settings a tuner searches, so every trial after the first can read
it instead of computing it. A predictor that can use such a cache has the optional hook
``use_frame_cache(cache)`` (see :mod:`deepmot.trackers.predictor`).

Entries are keyed by a digest of the frame's pixels (:meth:`FrameCache.digest`, BLAKE2b), so a
frame read again from disk or rendered again hits the same entry. Memory is bounded by
``max_bytes`` (the tensors and arrays held): entries are added until the next one would pass
the bound, then no more are added and none are evicted. Runs over the same frames in the same
order are what the cache serves; an LRU would evict each frame before its next use there,
while this keeps the first frames that fit for every later run. A cache belongs to one model
(:meth:`FrameCache.claim`): another model's features would be wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
from torch import Tensor

__all__ = ["FrameCache", "size_in_bytes"]

T = TypeVar("T")

#: frames whose digest is remembered by identity (a frame is looked up several times in a row)
_RECENT = 4


def size_in_bytes(value: Any) -> int:
    """The bytes held by the tensors and arrays in ``value`` (nested dicts, lists, tuples);
    other objects count 0."""
    if isinstance(value, Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(size_in_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(size_in_bytes(v) for v in value)
    return 0


class FrameCache:
    """Results keyed by frame digests, up to ``max_bytes`` (see the module doc).

    Args:
        max_bytes: the most bytes of tensors and arrays held (> 0).

    Attributes:
        hits, misses: lookups answered from the cache / computed.
        skipped: computed results not kept because the cache was full.
        nbytes: bytes held.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.hits = self.misses = self.skipped = self.nbytes = 0
        self._entries: dict[Hashable, Any] = {}
        self._recent: list[tuple[Any, str]] = []
        self._owner: int | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, owner: object) -> None:
        """Bind the cache to ``owner`` (the model whose results it holds); ValueError if
        another owner has it."""
        if self._owner is not None and self._owner != id(owner):
            raise ValueError("this FrameCache holds another model's results; use one per model")
        self._owner = id(owner)

    def digest(self, array: np.ndarray | Tensor) -> str:
        """A digest of ``array``'s values, shape and type (remembered for the last few
        objects: a frame is looked up several times in a row)."""
        for seen, known in self._recent:
            if seen is array:
                return known
        values = np.ascontiguousarray(
            array.detach().cpu().numpy() if isinstance(array, Tensor) else array
        )
        digest = hashlib.blake2b(values.data, digest_size=16)
        digest.update(f"{values.shape}{values.dtype}".encode())
        known = digest.hexdigest()
        self._recent = [(array, known), *self._recent[: _RECENT - 1]]
        return known

    def lookup(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value stored under ``key``, or ``compute()`` (kept if it fits)."""
        if key in self._entries:
            self.hits += 1
            return self._entries[key]
        self.misses += 1
        value = compute()
        size = size_in_bytes(value)
        if self.nbytes + size <= self.max_bytes:
            self._entries[key] = value
            self.nbytes += size
        else:
            self.skipped += 1
        return value

    def stats(self) -> dict[str, float]:
        """Entries, hits, misses, skipped, and the MiB held and allowed."""
        return {
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "skipped": self.skipped,
            "mib": round(self.nbytes / 2**20, 1),
            "max_mib": round(self.max_bytes / 2**20, 1),
        }
