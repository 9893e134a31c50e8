"""deepmot: train multi-object trackers directly on MOTA, MOTP and friends (DeepMOT, CVPR 2020).

The top-level package imports nothing heavy, so that ``deepmot eval`` starts without torch.
"""

from pathlib import Path

from deepmot.errors import DeepMOTError, MOTFormatError

__version__ = "0.1.0"
__all__ = ["WEIGHTS_DIR", "DeepMOTError", "MOTFormatError", "__version__"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""The weights shipped in the package (DHNs, the light detector, GOTURN, SiamRPN)."""
