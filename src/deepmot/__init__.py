"""deepmot: train multi-object trackers directly on MOTA, MOTP and friends (DeepMOT, CVPR 2020).

The top-level package imports nothing heavy, so that ``deepmot eval`` starts without torch.
"""

from deepmot.errors import DeepMOTError, MOTFormatError

__version__ = "0.1.0"
__all__ = ["DeepMOTError", "MOTFormatError", "__version__"]
