"""Directions in weight space and the points along them (Li et al., NeurIPS 2018, Sec. 4).

A *filter-normalised* random direction has, for every filter of every conv and fully connected weight (a slice
``w[i]`` along the output dimension), a Gaussian filter ``d[i]`` rescaled to ``||w[i]||``; parameters with one
dimension or less (BN scales and shifts, biases) are zero in it, so BN parameters and biases stay at their trained
values. Directions are drawn on the CPU from a seeded generator, so they are the same on every device.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

Params = dict[str, torch.Tensor]
EPS = 1e-10  # Li et al.'s guard against a zero direction filter


def is_filtered(tensor: torch.Tensor) -> bool:
    """Whether a parameter takes part in a direction: conv and linear weights do, BN parameters and biases do not."""
    return tensor.dim() > 1


def filter_normalize(direction: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> Params:
    """``direction`` with each filter rescaled to the norm of the matching weight filter; BN and bias entries zero."""
    out = {}
    for name, w in weights.items():
        d = direction[name]
        if not is_filtered(w):
            out[name] = torch.zeros_like(w)
            continue
        d_norm = d.flatten(1).norm(dim=1)
        w_norm = w.flatten(1).norm(dim=1)
        scale = w_norm / (d_norm + EPS)
        out[name] = d * scale.view(-1, *([1] * (d.dim() - 1)))
    return out


def random_direction(weights: Mapping[str, torch.Tensor], generator: torch.Generator) -> Params:
    """A filter-normalised Gaussian direction for ``weights``, drawn from ``generator`` (a CPU generator)."""
    raw = {
        name: torch.randn(w.shape, generator=generator, dtype=torch.float64).to(w.dtype).to(w.device)
        for name, w in weights.items()
    }
    return filter_normalize(raw, weights)


def directions(weights: Mapping[str, torch.Tensor], seed: int, count: int = 2) -> list[Params]:
    """``count`` filter-normalised directions from ``seed``: the same directions for the same weights and seed."""
    generator = torch.Generator().manual_seed(seed)
    return [random_direction(weights, generator) for _ in range(count)]


def move(weights: Mapping[str, torch.Tensor], steps: list[tuple[float, Mapping[str, torch.Tensor]]]) -> Params:
    """``weights + sum(coefficient * direction)``."""
    out = {}
    for name, w in weights.items():
        value = w.clone()
        for coefficient, direction in steps:
            value.add_(direction[name], alpha=float(coefficient))
        out[name] = value
    return out


def interpolate(start: Mapping[str, torch.Tensor], end: Mapping[str, torch.Tensor], alpha: float) -> Params:
    """``(1 - alpha) * start + alpha * end`` for floating tensors; other tensors (BN's batch counters) from ``end``.

    At ``alpha`` 0 and 1 the result is exactly ``start`` and ``end``.
    """
    out = {}
    for name, e in end.items():
        s = start[name]
        if not e.is_floating_point():
            out[name] = e
        elif alpha == 0:
            out[name] = s.clone()
        elif alpha == 1:
            out[name] = e.clone()
        else:
            out[name] = torch.lerp(s, e, float(alpha))
    return out


def axis(points: int, span: float) -> np.ndarray:
    """``points`` evenly spaced coordinates from ``-span`` to ``span`` (Li et al.: 51 points over [-1, 1])."""
    return np.linspace(-span, span, points)
