"""Training and test data for the Deep Hungarian Net: pairs (D, A*).

For every frame of every sequence that has ground truth and public detections, D is the
distance matrix of paper eqs. 3–4 between the detections (rows, standing in for track
predictions) and the active pedestrian ground-truth boxes (columns). The augmentation of the
supplementary (A.1) draws a threshold ``t`` uniformly from [0, 1) and sets every entry above it
to a large value; A* is SciPy's Hungarian on D with the same threshold (pairs above ``t`` are
left unassigned). Without augmentation A* matches ``min(N, M)`` pairs.

The split is **by video**: a sequence is in the training or the test split as a whole, and
MOT16-xx / MOT17-xx (the same video) always go to the same side.

On disk a split is one safetensors file of flat arrays (see :class:`DHNDataset`) next to a
``manifest.json`` that lists the sources, counts and the config that built them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepmot.assign.hungarian import hungarian
from deepmot.boxes import distance_matrix
from deepmot.data.sequence import Sequence as MOTSequence
from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_bytes, atomic_write_text
from deepmot.io.mot import find_sequences
from deepmot.loss.config import LARGE_VALUE

__all__ = [
    "DHNDataConfig",
    "DHNDataset",
    "LARGE_VALUE",
    "augment",
    "build_dhn_data",
    "collate",
    "frame_matrices",
    "size_grouped_batches",
    "uniform_matrices",
    "uniform_training_matrices",
    "video_key",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DHNDataConfig:
    """How ``deepmot dhn data`` builds the (D, A*) sets.

    Attributes:
        test_sequences: sequences (videos) of the test split; everything else trains.
        augment_prob: share of matrices that get the threshold augmentation (supp. A.1 applies
            it to all; the rest keep every entry and A* matches ``min(N, M)`` pairs).
        large_value: the value written into entries above the threshold.
        train_copies: matrices drawn per frame and detection file in the training split (each
            with its own threshold); the test split always gets one.
        uniform_sizes: square sizes of the uniform-random set of the size study (Fig. 8).
        uniform_per_size: matrices per size (the paper uses 10).
        seed: seeds the thresholds and the uniform matrices.
    """

    test_sequences: tuple[str, ...] = ("MOT17-10", "PETS09-S2L1", "KITTI-13")
    augment_prob: float = 1.0
    large_value: float = LARGE_VALUE
    train_copies: int = 1
    uniform_sizes: tuple[int, ...] = tuple(range(2, 301, 10))
    uniform_per_size: int = 10
    seed: int = 0


def video_key(name: str) -> str:
    """The video a sequence shows: ``MOT16-10`` and ``MOT17-10-FRCNN`` are both ``MOT-10``."""
    match = re.match(r"MOT1[67]-(\d+)", name)
    return f"MOT-{match.group(1)}" if match else name


def augment(
    d: np.ndarray, rng: np.random.Generator, prob: float = 1.0, large_value: float = LARGE_VALUE
) -> tuple[np.ndarray, float]:
    """The supplementary's augmentation of one distance matrix.

    Args:
        d: ``(N, M)`` distances in [0, 1].
        rng: draws whether to augment and the threshold.
        prob: probability of augmenting.
        large_value: written into entries above the threshold.

    Returns:
        The (copied) matrix and the threshold (``inf`` when not augmented).
    """
    d = np.array(d, dtype=np.float32, copy=True)
    if rng.random() >= prob:
        return d, float("inf")
    threshold = float(rng.random())
    d[d > threshold] = large_value
    return d, threshold


def frame_matrices(sequence: MOTSequence) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame, D)`` for every frame with detections and active pedestrians; D is ``(N, M)``
    float32 with detections as rows and ground-truth boxes as columns."""
    if sequence.im_width is None or sequence.im_height is None:
        raise DeepMOTError(f"sequence {sequence.name}: image size unknown (no seqinfo.ini)")
    for frame in sequence.frames:
        gt = sequence.gt_at(frame).active_pedestrians().boxes
        dets = sequence.detections_at(frame)[:, :4]
        if len(gt) == 0 or len(dets) == 0:
            continue
        d = distance_matrix(dets, gt, float(sequence.im_width), float(sequence.im_height))
        yield frame, np.clip(d.astype(np.float32), 0.0, 1.0)


def uniform_matrices(
    sizes: Sequence[int], per_size: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Square uniform-random D in [0, 1) and their Hungarian A* (size study, Fig. 8)."""
    rng = np.random.default_rng(seed)
    ds, As = [], []
    for size in sizes:
        for _ in range(per_size):
            d = rng.random((size, size), dtype=np.float32)
            ds.append(d)
            As.append(hungarian(d))
    return ds, As


def uniform_training_matrices(
    count: int, max_size: int, seed: int, augment_prob: float = 0.5
) -> DHNDataset:
    """``count`` rectangular uniform-random D in [0, 1) for training, ``N`` and ``M`` drawn
    independently and log-uniformly from 1 to ``max_size`` (small and large alike), each given
    the threshold augmentation with probability ``augment_prob``; A* is the Hungarian solution
    with the same threshold. Drawn from their own seed, so never the size study's matrices."""
    rng = np.random.default_rng([seed, 7])
    sizes = np.exp(rng.uniform(0.0, np.log(max_size + 1), size=(count, 2))).astype(np.int64)
    ds, As, ts = [], [], []
    for n, m in np.clip(sizes, 1, max_size):
        d, t = augment(rng.random((n, m), dtype=np.float32), rng, augment_prob)
        ds.append(d)
        As.append(hungarian(d, None if np.isinf(t) else t))
        ts.append(t)
    return DHNDataset.from_matrices(ds, As, ts, sources=["uniform random"])


class DHNDataset(torch.utils.data.Dataset):
    """A split of (D, A*) pairs held as flat arrays.

    Arrays: ``d (T,) float32`` and ``a (T,) uint8`` (all matrices flattened row-major one after
    the other), ``shapes (K, 2) int64``, ``offsets (K + 1,) int64``, ``thresholds (K,)
    float32`` (``inf``: not augmented), ``source (K,) int64`` (index into ``sources``),
    ``frame (K,) int64``.
    """

    def __init__(
        self,
        d: np.ndarray,
        a: np.ndarray,
        shapes: np.ndarray,
        thresholds: np.ndarray | None = None,
        source: np.ndarray | None = None,
        frame: np.ndarray | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        self.d = np.asarray(d, dtype=np.float32)
        self.a = np.asarray(a, dtype=np.uint8)
        self.shapes = np.asarray(shapes, dtype=np.int64).reshape(-1, 2)
        sizes = self.shapes.prod(1)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if self.offsets[-1] != len(self.d) or len(self.d) != len(self.a):
            raise DeepMOTError("DHN data: shapes do not add up to the stored matrices")
        k = len(self.shapes)
        self.thresholds = (
            np.full(k, np.inf, np.float32)
            if thresholds is None
            else np.asarray(thresholds, np.float32)
        )
        self.source = np.zeros(k, np.int64) if source is None else np.asarray(source, np.int64)
        self.frame = np.zeros(k, np.int64) if frame is None else np.asarray(frame, np.int64)
        self.sources = list(sources)

    @classmethod
    def from_matrices(
        cls,
        ds: Sequence[np.ndarray],
        As: Sequence[np.ndarray],
        thresholds: Sequence[float] | None = None,
        source: Sequence[int] | None = None,
        frame: Sequence[int] | None = None,
        sources: Sequence[str] = (),
    ) -> DHNDataset:
        shapes = np.array([d.shape for d in ds], dtype=np.int64).reshape(-1, 2)
        flat_d = np.concatenate([np.ravel(d) for d in ds]) if ds else np.zeros(0, np.float32)
        flat_a = np.concatenate([np.ravel(a) for a in As]) if As else np.zeros(0, np.uint8)
        return cls(flat_d, flat_a, shapes, thresholds, source, frame, sources)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D (N, M) float32, A* (N, M) float32)`` tensors."""
        n, m = self.shapes[index]
        s = slice(self.offsets[index], self.offsets[index + 1])
        d = torch.from_numpy(self.d[s].reshape(n, m))
        a = torch.from_numpy(self.a[s].reshape(n, m).astype(np.float32))
        return d, a

    def subset(self, indices: Sequence[int] | np.ndarray) -> DHNDataset:
        """A new dataset of the given matrices, in that order."""
        indices = np.asarray(indices, dtype=np.int64)
        parts = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices]
        flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return DHNDataset(
            self.d[flat],
            self.a[flat],
            self.shapes[indices],
            self.thresholds[indices],
            self.source[indices],
            self.frame[indices],
            self.sources,
        )

    def concat(self, other: DHNDataset) -> DHNDataset:
        """A new dataset: this one's matrices, then ``other``'s (sources renumbered)."""
        return DHNDataset(
            np.concatenate([self.d, other.d]),
            np.concatenate([self.a, other.a]),
            np.concatenate([self.shapes, other.shapes]),
            np.concatenate([self.thresholds, other.thresholds]),
            np.concatenate([self.source, other.source + len(self.sources)]),
            np.concatenate([self.frame, other.frame]),
            [*self.sources, *other.sources],
        )

    def save(self, path: str | Path) -> None:
        """Write one safetensors file (atomically); ``sources`` go into its metadata."""
        from safetensors.numpy import save

        # Bytes through atomic_write_bytes, not save_file onto the temporary path: safetensors
        # recreates the file it writes with mode 0600, and the data would keep that mode.
        data = save(
            {
                "d": self.d,
                "a": self.a,
                "shapes": self.shapes,
                "thresholds": self.thresholds,
                "source": self.source,
                "frame": self.frame,
            },
            metadata={"sources": json.dumps(self.sources)},
        )
        atomic_write_bytes(path, data)

    @classmethod
    def load(cls, path: str | Path) -> DHNDataset:
        """Read a file written by :meth:`save`."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise DeepMOTError(f"{path}: no such DHN data file")
        with safe_open(str(path), framework="numpy") as f:
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            sources = json.loads((f.metadata() or {}).get("sources", "[]"))
        return cls(
            arrays["d"],
            arrays["a"],
            arrays["shapes"],
            arrays.get("thresholds"),
            arrays.get("source"),
            arrays.get("frame"),
            sources,
        )


def collate(
    items: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a list of ``(D (N_i, M_i), A* (N_i, M_i))`` into a batch.

    Returns:
        ``D (B, N, M)``, ``A* (B, N, M)`` and ``mask (B, N, M) bool`` (True on the valid
        top-left ``N_i x M_i`` block of each matrix).
    """
    n = max(d.shape[0] for d, _ in items)
    m = max(d.shape[1] for d, _ in items)
    b = len(items)
    d_out = torch.full((b, n, m), pad_value, dtype=torch.float32)
    a_out = torch.zeros((b, n, m), dtype=torch.float32)
    mask = torch.zeros((b, n, m), dtype=torch.bool)
    for i, (d, a) in enumerate(items):
        d_out[i, : d.shape[0], : d.shape[1]] = d
        a_out[i, : a.shape[0], : a.shape[1]] = a
        mask[i, : d.shape[0], : d.shape[1]] = True
    return d_out, a_out, mask


def size_grouped_batches(
    shapes: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    max_entries: int | None = None,
) -> list[np.ndarray]:
    """Indices cut into batches of similar matrix size, in shuffled batch order.

    Matrices are sorted by ``(N * M, N, M)`` (ties broken at random when ``rng`` is given),
    cut into consecutive batches of ``batch_size``, and the batches are shuffled: little
    padding per batch and still a random order (NOTES.md: 2.4x faster on CPU than random
    batches).

    Args:
        shapes: ``(K, 2)`` matrix shapes.
        batch_size: matrices per batch (the last batch may be smaller).
        rng: shuffles; None keeps the sorted order.
        max_entries: also cut a batch before ``len(batch) * N * M`` of its largest matrix
            would pass this (large matrices come in smaller batches); None: no cap. The cuts
            depend on the shapes only, so every epoch has the same number of batches.
    """
    shapes = np.asarray(shapes).reshape(-1, 2)
    k = len(shapes)
    tie = rng.random(k) if rng is not None else np.arange(k)
    entries = shapes[:, 0] * shapes[:, 1]
    order = np.lexsort((tie, shapes[:, 1], shapes[:, 0], entries))
    if max_entries is None:
        batches = [order[i : i + batch_size] for i in range(0, k, batch_size)]
    else:
        batches, start = [], 0
        for i in range(1, k + 1):
            size = i - start
            if i == k or size == batch_size or (size + 1) * entries[order[i]] > max_entries:
                batches.append(order[start:i])
                start = i
    if rng is not None:
        perm = rng.permutation(len(batches))
        batches = [batches[i] for i in perm]
    return batches


@dataclass
class _SplitBuilder:
    ds: list[np.ndarray] = field(default_factory=list)
    As: list[np.ndarray] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    frame: list[int] = field(default_factory=list)

    def add(self, d: np.ndarray, a: np.ndarray, t: float, source: int, frame: int) -> None:
        self.ds.append(d)
        self.As.append(a)
        self.thresholds.append(t)
        self.source.append(source)
        self.frame.append(frame)


def build_dhn_data(
    mot_root: str | Path,
    out: str | Path,
    config: DHNDataConfig | None = None,
    progress: bool = True,
) -> dict:
    """Build ``train.safetensors``, ``test.safetensors``, ``uniform.safetensors`` and
    ``manifest.json`` in ``out`` from every sequence under ``mot_root`` that has ground truth
    and detection files.

    Returns:
        The manifest (also written to ``out/manifest.json``).
    """
    from tqdm import tqdm

    config = config or DHNDataConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    test_keys = {video_key(s) for s in config.test_sequences}
    jobs: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for path in find_sequences(mot_root):
        if not (path / "gt" / "gt.txt").is_file():
            skipped.append(f"{path.name} (no gt)")
            continue
        files = MOTSequence.detection_files(path)
        if not files:
            skipped.append(f"{path.name} (no detection files)")
        jobs.extend((path, f) for f in files)
    if not jobs:
        raise DeepMOTError(f"{mot_root}: no sequence with ground truth and detections")
    found_keys = {video_key(p.name) for p, _ in jobs}
    missing = sorted(test_keys - found_keys)
    if missing:
        raise DeepMOTError(
            f"{mot_root}: test sequences not found (or without detections): {missing}"
        )

    splits = {"train": _SplitBuilder(), "test": _SplitBuilder()}
    sources: list[str] = []
    counts: dict[str, dict] = {}
    for path, det_file in tqdm(jobs, desc="dhn data", unit="file", disable=not progress):
        sequence = MOTSequence.from_dir(path, det_file=det_file)
        split = "test" if video_key(path.name) in test_keys else "train"
        copies = 1 if split == "test" else config.train_copies
        source_id = len(sources)
        sources.append(f"{path.name}/det/{det_file}")
        n_added = 0
        for frame, d in frame_matrices(sequence):
            for _ in range(copies):
                d_aug, t = augment(d, rng, config.augment_prob, config.large_value)
                a = hungarian(d_aug, None if np.isinf(t) else t)
                splits[split].add(d_aug, a, t, source_id, frame)
                n_added += 1
        counts[sources[-1]] = {"split": split, "matrices": n_added}

    files = {}
    for name, builder in splits.items():
        data = DHNDataset.from_matrices(
            builder.ds, builder.As, builder.thresholds, builder.source, builder.frame, sources
        )
        data.save(out / f"{name}.safetensors")
        files[name] = _summary(data)
    ds, As = uniform_matrices(config.uniform_sizes, config.uniform_per_size, config.seed + 1)
    uniform = DHNDataset.from_matrices(ds, As)
    uniform.save(out / "uniform.safetensors")
    files["uniform"] = _summary(uniform)

    manifest = {
        "mot_root": str(Path(mot_root).resolve()),
        "config": asdict(config),
        "split": "by video; test = " + ", ".join(config.test_sequences),
        "rows": "detections",
        "columns": "active pedestrian ground truth (flag 1, class 1)",
        "files": files,
        "sources": counts,
        "skipped": skipped,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def _summary(data: DHNDataset) -> dict:
    if len(data) == 0:
        return {"matrices": 0}
    sizes = data.shapes
    return {
        "matrices": len(data),
        "entries": int(sizes.prod(1).sum()),
        "max_rows": int(sizes[:, 0].max()),
        "max_cols": int(sizes[:, 1].max()),
        "mean_rows": round(float(sizes[:, 0].mean()), 2),
        "mean_cols": round(float(sizes[:, 1].mean()), 2),
        "ones": int(data.a.sum()),
        "augmented": int(np.isfinite(data.thresholds).sum()),
    }
