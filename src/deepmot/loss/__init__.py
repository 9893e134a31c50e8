"""The losses a tracker trains with.

- :mod:`.config`: ``DeepMOTLossConfig`` (torch-free: the command line takes its defaults there);
- :mod:`.deepmot`: the DeepMOT loss, differentiable MOTA and MOTP (paper Sec. 4.2, eqs. 5-9);
- :mod:`.smooth_l1`: the Smooth-L1 baseline of the paper's tables.

Nothing is imported here, so that reading the config does not import torch.
"""
