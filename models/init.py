"""Weight initialisations besides the paper's He init: delta-orthogonal and Fixup's rescaling (orthogonal is
``nn.init.orthogonal_``).

Each takes a built net's convs; the gain is the activation's (sqrt 2 for ReLU, as He et al. 2015 derive; 1 for a
TAT / DKS activation, whose Q(1) = 1 already). The classifier keeps PyTorch's default init, as in the paper's nets,
except under Fixup, which zeroes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


@torch.no_grad()
def delta_orthogonal_(weight: torch.Tensor, gain: float) -> torch.Tensor:
    """Xiao et al. (2018)'s delta-orthogonal kernel: an orthogonal (out, in) matrix at the kernel's centre, zeros
    elsewhere, so each conv is an isometry of every position's channel vector.

    Where a conv widens (out > in) the matrix has orthonormal columns and would thin the signal's second moment per
    channel by in / out; it is scaled by sqrt(out / in), as the scaled uniform orthogonal init of DKS (Martens et al.
    2021) does, so every conv keeps it. Kernels must have odd sides (they have a centre).
    """
    out_channels, in_channels, *sides = weight.shape
    if any(side % 2 == 0 for side in sides):
        raise ValueError(f"a delta-orthogonal kernel needs odd sides, got {tuple(sides)}")
    centre = weight.new_empty(out_channels, in_channels)
    nn.init.orthogonal_(centre, gain=gain * max(1.0, math.sqrt(out_channels / in_channels)))
    weight.zero_()
    weight[(slice(None), slice(None), *(side // 2 for side in sides))] = centre
    return weight


@torch.no_grad()
def fixup_(blocks: Sequence[nn.Module], classifier: nn.Linear) -> None:
    """Fixup (Zhang, Dauphin and Ma 2019) on He-initialised convs: in each of the L residual branches of m convs,
    every conv but the last scaled by L^(-1/(2m-2)), the last zeroed; the classifier zeroed (weight and bias).

    The scalar biases and multipliers are made at their initial values (0 and 1) by ``models.layers``.
    """
    depth = len(blocks)
    for block in blocks:
        convs = [module for module in block.children() if isinstance(module, nn.Conv2d)]
        for conv in convs[:-1]:
            conv.weight.mul_(depth ** (-1.0 / (2 * len(convs) - 2)))
        convs[-1].weight.zero_()
    classifier.weight.zero_()
    classifier.bias.zero_()
