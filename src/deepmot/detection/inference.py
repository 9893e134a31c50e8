"""A frozen backbone made fast for inference on the CPU.

Two runtimes, the same features (relative differences about 2e-6 on ``mobilenet_v2_fpn``):

- ``"torch"``: a copy with each frozen BatchNorm (torchvision's ``FrozenBatchNorm2d``, which
  computes ``conv(x) * scale + shift`` as two more passes over every activation) folded into
  the convolution before it (``torch.nn.utils.fusion.fuse_conv_bn_weights``), in channels-last
  memory, where oneDNN's convolutions run faster. ``detector_real``'s backbone on 768x576
  frames: 142 ms instead of 230 ms (2-core CPU, 2 threads).
- ``"openvino"``: that copy exported (``torch.export``), converted by OpenVINO
  (``openvino.convert_model``) and compiled for the CPU, once per input size (seconds);
  1.6-1.9x faster than the torch copy on the same CPU. Needs the ``openvino`` extra
  (``pip install 'deepmot[openvino]'``).

``"auto"`` (the default) takes OpenVINO where it is installed and the backbone is on the CPU,
else torch. A process compiles each backbone once per input size: the compiled models are
kept by a fingerprint of the folded weights (the last :data:`COMPILED_KEPT`), so trackers
built one after another on the same frozen backbone (a table's rows, a tuning study's trials)
share one. :class:`InferenceBackbone` keeps the copy beside the trainable backbone and rebuilds
it when the original's weights are loaded again or it moves to another device or dtype.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import logging
import time
import weakref
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.ops.misc import FrozenBatchNorm2d

from deepmot.errors import DeepMOTError

__all__ = [
    "RUNTIMES",
    "InferenceBackbone",
    "fold_frozen_batchnorm",
    "inference_copy",
    "resolve_runtime",
]

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino")
"""What a backbone's inference copy runs on (see the module doc)."""

AUTO_USES_OPENVINO = True
"""Whether ``"auto"`` takes OpenVINO where it is installed. The test suite turns it off
(``tests/conftest.py``): one pytest process that compiled OpenVINO models for hundreds of
trackers crashed (SIGSEGV) twice at the same point, a cause not found; the OpenVINO tests ask
for it by name."""


def fold_frozen_batchnorm(module: nn.Module) -> int:
    """Fold each ``FrozenBatchNorm2d`` that directly follows a ``Conv2d`` in an
    ``nn.Sequential`` into that convolution, in place (the norm becomes ``nn.Identity``).

    Returns how many were folded; a norm that follows anything else is left as it is.
    """
    folded = 0
    for child in module.children():
        if isinstance(child, nn.Sequential):
            names = list(child._modules)
            for before, after in zip(names, names[1:], strict=False):
                conv, norm = child._modules[before], child._modules[after]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, FrozenBatchNorm2d):
                    weight, bias = fuse_conv_bn_weights(
                        conv.weight,
                        conv.bias,
                        norm.running_mean,
                        norm.running_var,
                        norm.eps,
                        norm.weight,
                        norm.bias,
                    )
                    conv.weight, conv.bias = weight, bias
                    child._modules[after] = nn.Identity()
                    folded += 1
        folded += fold_frozen_batchnorm(child)
    return folded


def inference_copy(
    backbone: nn.Module, memory_format: torch.memory_format = torch.channels_last
) -> nn.Module:
    """A folded, gradient-free copy of ``backbone`` in eval mode, its weights in
    ``memory_format`` (channels-last for oneDNN's convolutions)."""
    fast = copy.deepcopy(backbone).eval()
    fold_frozen_batchnorm(fast)
    fast.requires_grad_(False)
    return fast.to(memory_format=memory_format)


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """``"torch"`` or ``"openvino"`` for ``runtime`` on ``device`` (see the module doc).

    Raises:
        DeepMOTError: an unknown runtime, or ``"openvino"`` asked for where it cannot run.
    """
    if runtime not in RUNTIMES:
        raise DeepMOTError(
            f"backbone runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}"
        )
    installed = importlib.util.find_spec("openvino") is not None
    if runtime == "openvino":
        if not installed:
            raise DeepMOTError(
                "the openvino backbone runtime needs OpenVINO: pip install 'deepmot[openvino]'"
            )
        if device.type != "cpu":
            raise DeepMOTError(f"the openvino backbone runtime runs on the CPU, not {device}")
        return "openvino"
    if runtime == "auto" and AUTO_USES_OPENVINO and installed and device.type == "cpu":
        return "openvino"
    return "torch"


@functools.cache
def _core() -> Any:
    """The process's one OpenVINO ``Core`` (OpenVINO's advice: one per application)."""
    import openvino as ov

    return ov.Core()


class _TorchBackbone:
    """The folded copy in PyTorch, fed channels-last images like its weights."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        return self.module(images.contiguous(memory_format=torch.channels_last))


COMPILED_KEPT = 8
"""How many compiled backbones (weights and input size) a process keeps for reuse."""

_COMPILED: OrderedDict[tuple[str, tuple[int, ...], int], tuple[Any, list[str]]] = OrderedDict()


def weights_fingerprint(module: nn.Module) -> str:
    """A digest of ``module``'s state (names, shapes, dtypes and values): equal for two
    modules that compute the same function with the same weights."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(value.shape)}{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _OpenVINOBackbone:
    """A backbone compiled by OpenVINO, once per input size and process (the compiled
    models are shared through ``_COMPILED`` by weights fingerprint); returns the torch
    copy's dict."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.fingerprint = weights_fingerprint(module)
        self.compiled: dict[tuple[int, ...], tuple[Any, list[str]]] = {}

    def _shared(self, images: Tensor) -> tuple[Any, list[str]]:
        """The compiled model for ``images``' size: the process's, else compiled now."""
        key = (self.fingerprint, tuple(images.shape), torch.get_num_threads())
        if key in _COMPILED:
            _COMPILED.move_to_end(key)
        else:
            _COMPILED[key] = self._compile(images)
            while len(_COMPILED) > COMPILED_KEPT:
                _COMPILED.popitem(last=False)
        return _COMPILED[key]

    def _compile(self, images: Tensor) -> tuple[Any, list[str]]:
        import openvino as ov

        start = time.perf_counter()
        with torch.no_grad():
            names = list(self.module(images))
            # sizes computed from the input (TF-SAME padding, the FPN's upsampling) are
            # constants of the exported graph: right, as each input size gets its own
            model = ov.convert_model(torch.export.export(self.module, (images,)))
        settings = {
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        request = _core().compile_model(model, "CPU", settings).create_infer_request()
        log.info(
            "backbone compiled by OpenVINO %s for %s input in %.1f s",
            ov.__version__,
            "x".join(map(str, images.shape)),
            time.perf_counter() - start,
        )
        return request, names

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        images = images.float()
        key = tuple(images.shape)
        if key not in self.compiled:
            self.compiled[key] = self._shared(images)
        request, names = self.compiled[key]
        outputs = request.infer({0: images.contiguous().numpy()})
        # the request reuses its buffers: copy, as the features outlive the next call
        values = [torch.from_numpy(outputs[i].copy()) for i in range(len(names))]
        return dict(zip(names, values, strict=True))


def _dropper(owner: InferenceBackbone) -> Any:
    """The backbone's load hook that drops ``owner``'s copy: a plain function holding
    ``owner`` weakly, so that copying the backbone (:func:`inference_copy`) copies neither
    ``owner`` nor its compiled models."""
    ref = weakref.ref(owner)

    def drop(module: nn.Module, incompatible: object) -> None:
        alive = ref()
        if alive is not None:
            alive._copy = None

    return drop


class InferenceBackbone:
    """Calls a frozen backbone through its inference copy, made on first use (see the
    module doc for ``runtime``).

    The copy is dropped when ``backbone``'s state dict is loaded again (directly or through a
    module holding it) and remade when ``backbone`` has moved to another device or dtype.
    Not an ``nn.Module``: the copy is never part of a state dict.

    Shapes: ``images (B, 3, H, W)`` -> the backbone's ``{level: (B, C, h, w)}``.
    """

    def __init__(self, backbone: nn.Module, runtime: str = "auto") -> None:
        self.backbone = backbone
        self.runtime = runtime
        self._copy: Any = None
        self._made_for: tuple[torch.device, torch.dtype] | None = None
        backbone.register_load_state_dict_post_hook(_dropper(self))

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        parameter = next(self.backbone.parameters())
        where = (parameter.device, parameter.dtype)
        if self._copy is None or self._made_for != where:
            if resolve_runtime(self.runtime, parameter.device) == "openvino":
                fast = _OpenVINOBackbone(inference_copy(self.backbone, torch.contiguous_format))
            else:
                fast = _TorchBackbone(inference_copy(self.backbone))
            self._copy, self._made_for = fast, where
        with torch.no_grad():
            return self._copy(images)
