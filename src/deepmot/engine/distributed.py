"""Training on several processes or machines: PyTorch's DistributedDataParallel under torchrun.

``torchrun --nproc-per-node N -m deepmot train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set;
:func:`setup` reads them and joins the process group (``nccl`` on CUDA, ``gloo`` on the CPU;
each process on ``cuda:LOCAL_RANK``). Without ``WORLD_SIZE`` > 1 nothing changes: one process,
no process group.

The trainers keep one-process semantics: ``batch_size`` is the **global** batch. Every process
draws the step's samples from the same (seed, step) generator, exactly as one process would,
and trains on its share (:meth:`Distributed.shard`: samples ``rank, rank + N, ...``); only the
trained module is wrapped in :class:`DistributedModule` (DDP), whose backward averages the
gradients, so N processes take the same optimisation steps as one process on the whole batch
(up to the order of floating-point sums). The world size must divide the batch size (a
:class:`~deepmot.errors.DeepMOTError` otherwise). Logged figures are reduced across processes
(:meth:`Distributed.all_sum`), and only rank 0 writes files (``TrainingRun`` gates them), so a
run folder — and its resume, on any number of processes — is the same as one process's.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from deepmot.errors import DeepMOTError

__all__ = [
    "AMP_DTYPES",
    "Distributed",
    "DistributedModule",
    "autocast",
    "grad_scaler",
    "precision_and_seed",
    "setup",
    "zero_term",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``--amp`` choices and the autocast dtype of each
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

_RENDEZVOUS = ("RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedModule(DistributedDataParallel):
    """DDP that also answers for the wrapped module's attributes (``history_len``, ``config``)
    through ``.module``, so a predictor built around it works unchanged, and counts its
    forward calls (:attr:`forward_calls`, reset by the trainer each step)."""

    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        super().__init__(module, **kwargs)
        self.forward_calls = 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.forward_calls += 1
        return super().forward(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


class _Method(nn.Module):
    """``forward`` of this module is ``module.<method>`` (DDP only syncs through forward)."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.module, self.method)(*args, **kwargs)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run (one process: rank 0 of 1, nothing to synchronise).

    Attributes:
        rank: the global rank; world_size: the number of processes; local_rank: the rank on
        this machine; device: this process's device; owns_group: whether :func:`setup`
        started the process group (and :meth:`close` ends it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """Whether there are several processes to synchronise."""
        return self.world_size > 1

    def check_batch(self, batch_size: int, option: str = "batch_size") -> None:
        """Raise :class:`DeepMOTError` unless the world size divides the global batch."""
        if batch_size % self.world_size:
            raise DeepMOTError(
                f"{option} {batch_size} is the global batch and {self.world_size} processes "
                f"cannot share it equally: choose a multiple of {self.world_size} (or run "
                "another number of processes)"
            )

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of the step's samples: ``items[rank::world_size]``."""
        return list(items[self.rank :: self.world_size])

    def wrap(self, module: nn.Module, method: str = "forward") -> nn.Module:
        """``module`` in :class:`DistributedModule` (itself with one process). With
        ``method``, calling the result calls that method of ``module`` instead of forward."""
        target = module if method == "forward" else _Method(module, method)
        if not self.enabled:
            return target
        ids = [self.device.index] if self.device.type == "cuda" else None
        # no buffers synchronised in forward, so no collective there: processes may call it a
        # different number of times per step (clips whose tracks all ended)
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
            buffers = {"forward_sync_buffers": False}  # torch >= 2.14
        else:
            buffers = {"broadcast_buffers": False}
        return DistributedModule(target, device_ids=ids, **buffers)

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (float64; the values themselves with one)."""
        if not self.enabled:
            return [float(v) for v in values]
        import torch.distributed as dist

        device = self.device if self.device.type == "cuda" else torch.device("cpu")
        tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def sum_named(self, values: dict[str, float]) -> dict[str, float]:
        """:meth:`all_sum` of named values: each name's value summed over the processes."""
        return dict(zip(values, self.all_sum(list(values.values())), strict=True))

    def average_buffers(self, module: nn.Module) -> None:
        """Set ``module``'s floating-point buffers (BatchNorm's running statistics) to their
        mean over the processes, in one collective (nothing with one process)."""
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if not self.enabled or not buffers:
            return
        import torch.distributed as dist

        flat = torch.cat([b.detach().reshape(-1).double() for b in buffers])
        dist.all_reduce(flat)
        flat /= self.world_size
        for buffer, mean in zip(buffers, flat.split([b.numel() for b in buffers]), strict=True):
            buffer.copy_(mean.view_as(buffer))

    def close(self) -> None:
        """End the process group if :func:`setup` started it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def zero_term(module: nn.Module) -> Tensor:
    """``0 * sum of the trainable parameters``: added to a process's loss, every parameter
    gets a gradient (an exact zero) in every step, so DDP's reduction never waits for one."""
    params = [p for p in module.parameters() if p.requires_grad]
    return 0.0 * torch.stack([p.sum() for p in params]).sum()


def _env_int(name: str, default: int | None = None) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise DeepMOTError(f"environment variable {name}={text!r}: not an integer") from None


def setup(device: str, backend: str | None = None) -> Distributed:
    """Join the process group torchrun's environment describes (see the module doc).

    Args:
        device: the run's device (``cpu``, ``cuda``, ``cuda:N``); under several processes a
            CUDA run uses ``cuda:LOCAL_RANK``.
        backend: ``"gloo"``, ``"nccl"`` or None (``nccl`` for CUDA, ``gloo`` otherwise).

    Raises:
        DeepMOTError: ``WORLD_SIZE`` > 1 without the other rendezvous variables, ``nccl``
            without CUDA, an unknown backend.
    """
    if backend not in (None, "gloo", "nccl"):
        raise DeepMOTError(f"distributed backend must be gloo or nccl, got {backend!r}")
    cuda = device.startswith("cuda")
    if backend == "nccl" and not (cuda and torch.cuda.is_available()):
        raise DeepMOTError(
            "the nccl backend needs CUDA devices"
            + ("" if cuda else f" and --device cuda (this run's device is {device})")
            + (
                ""
                if torch.cuda.is_available()
                else f"; CUDA is not available on this machine (torch {torch.__version__})"
            )
            + "; use gloo"
        )
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # the caller started it
        rank, world = dist.get_rank(), dist.get_world_size()
        local = _env_int("LOCAL_RANK", rank) or 0
        return Distributed(rank, world, local, _device(device, local, world), owns_group=False)
    world = _env_int("WORLD_SIZE", 1)
    if world is None or world < 1:
        raise DeepMOTError(f"environment variable WORLD_SIZE={world}: must be >= 1")
    if world == 1:
        return Distributed(device=torch.device(device))
    missing = [name for name in _RENDEZVOUS if not os.environ.get(name)]
    if cuda and not os.environ.get("LOCAL_RANK"):
        missing.append("LOCAL_RANK")
    if missing:
        raise DeepMOTError(
            f"WORLD_SIZE={world} asks for {world} processes, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: launch with torchrun "
            "(torchrun --nproc-per-node N -m deepmot ...), which sets them"
        )
    rank = _env_int("RANK")
    if not 0 <= rank < world:
        raise DeepMOTError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world})")
    local = _env_int("LOCAL_RANK", rank)
    if not dist.is_available():
        raise DeepMOTError(f"this torch build ({torch.__version__}) has no torch.distributed")
    where = _device(device, local, world)
    if where.type == "cuda":
        torch.cuda.set_device(where)
    chosen = backend or ("nccl" if where.type == "cuda" else "gloo")
    dist.init_process_group(chosen, rank=rank, world_size=world)
    log.info(
        "process %d of %d (%s on %s, rendezvous %s:%s)",
        rank, world, chosen, where, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"],
    )  # fmt: skip
    return Distributed(rank, world, local, where, owns_group=True)


def _device(device: str, local_rank: int, world: int) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` for a CUDA run on several processes."""
    if device.startswith("cuda") and world > 1:
        if torch.cuda.is_available() and local_rank >= torch.cuda.device_count():
            raise DeepMOTError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} "
                "CUDA device(s): start at most that many processes per machine"
            )
        return torch.device("cuda", local_rank)
    return torch.device(device)


def autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass: ``torch.autocast`` with ``amp`` (``"bf16"`` or
    ``"fp16"``) on CUDA, and ``"bf16"`` on the CPU too (CPU autocast; a speed-up on CPUs
    with bfloat16 instructions, a slow-down on others); a no-op with None.

    Raises:
        DeepMOTError: an unknown ``amp``, ``"fp16"`` off CUDA (its loss scaling is CUDA's),
            ``amp`` on a device other than CUDA or the CPU.
    """
    if amp is None:
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise DeepMOTError(f"amp must be one of {', '.join(AMP_DTYPES)}, got {amp!r}")
    if device.type == "cpu" and amp == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type != "cuda":
        raise DeepMOTError(
            f"mixed precision --amp {amp} runs on CUDA (and bf16 on the CPU too); this run's "
            f"device is {device}"
            + (" (use --amp bf16 on the CPU)" if device.type == "cpu" else " (drop --amp)")
        )
    return torch.autocast("cuda", dtype=AMP_DTYPES[amp])


def grad_scaler(device: torch.device, amp: str | None) -> torch.amp.GradScaler:
    """The loss scaler fp16 needs (a pass-through otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16" and device.type == "cuda")


def precision_and_seed(
    dist: Distributed, batch_size: int, amp: str | None, seed: int
) -> tuple[contextlib.AbstractContextManager, torch.amp.GradScaler]:
    """What every trainer does first: check that ``batch_size`` divides among the processes,
    seed torch's generator, and make the forward pass's :func:`autocast` and the
    :func:`grad_scaler` for ``amp`` on ``dist.device``."""
    dist.check_batch(batch_size)
    torch.manual_seed(seed)
    return autocast(dist.device, amp), grad_scaler(dist.device, amp)
