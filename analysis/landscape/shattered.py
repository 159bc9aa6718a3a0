"""Shattered gradients (Balduzzi et al., ICML 2017, "The Shattered Gradients Problem: If resnets are the answer,
then what is the question?").

Balduzzi et al. feed a net a 1-D line of inputs and look at the gradient of its output with respect to the input
along the line: in deep plain nets it decorrelates like white noise from one input to the next, in ResNets it stays
correlated (brown noise). On images the line runs between two training images, ``x(t) = x_a + t (x_b - x_a)`` for
``t`` in [0, 1] (mean-subtracted, as the net sees them), and the output is the logit of ``x_a``'s class. Each input
pixel's gradient is a sequence along ``t``; the autocorrelation pools them:

    R(k) = sum_{t, d} g~(t, d) g~(t + k, d) / sum_{t, d} g~(t, d)^2,   g~ = g minus its mean over t,

so R(0) = 1, and a white-noise gradient has R(k) ~ 0 for k > 0. The *autocorrelation length* is the lag where
R first drops below 1/e, interpolated linearly between the two lags around the crossing (so white noise gives a
length under one step); it is censored at the largest lag computed when R stays above 1/e.

Per-input gradients come from ``torch.func.vmap`` over ``grad`` of one input's output: BN runs in eval mode, so
inputs do not interact and this is each input's own gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

Params = dict[str, torch.Tensor]
THRESHOLD = 1 / math.e


def input_gradients(
    net: nn.Module, params: Params, buffers: Params, inputs: torch.Tensor, output: int, batch_size: int = 256
) -> torch.Tensor:
    """``d net(x)[output] / d x`` for every input ``x`` (BN in eval mode), as an (N, C*H*W) float64 tensor."""
    net.eval()

    def one(x: torch.Tensor) -> torch.Tensor:
        return functional_call(net, (params, buffers), (x.unsqueeze(0),))[0, output]

    per_input = vmap(grad(one))
    chunks = [per_input(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return torch.cat(chunks).flatten(1).to(torch.float64).cpu()


def autocorrelation(gradients: torch.Tensor | np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """R(0..max_lag) of a (T, D) sequence of gradients (see the module docstring); R(0) = 1.

    An all-constant sequence (no variation along the line) has no autocorrelation: NaN beyond lag 0.
    """
    g = np.asarray(gradients, dtype=np.float64)
    g = g.reshape(len(g), -1)
    t = len(g)
    max_lag = t - 1 if max_lag is None else min(max_lag, t - 1)
    centred = g - g.mean(axis=0, keepdims=True)
    energy = float((centred**2).sum())
    if energy == 0:
        return np.array([1.0] + [math.nan] * max_lag)
    return np.array([float((centred[: t - k] * centred[k:]).sum()) / energy for k in range(max_lag + 1)])


@dataclass(frozen=True)
class Length:
    """Where an autocorrelation curve first drops below 1/e, in lag steps; ``censored`` if it never does."""

    lag: float
    censored: bool


def autocorrelation_length(curve: np.ndarray, threshold: float = THRESHOLD) -> Length:
    """The first crossing of ``threshold``, linearly interpolated between the lags on either side of it."""
    curve = np.asarray(curve, dtype=np.float64)
    below = np.flatnonzero(curve < threshold)
    if len(below) == 0:
        return Length(float(len(curve) - 1), True)
    k = int(below[0])
    if k == 0:
        return Length(0.0, False)
    before, after = curve[k - 1], curve[k]
    return Length(float(k - 1 + (before - threshold) / (before - after)), False)


def line_inputs(start: torch.Tensor, end: torch.Tensor, points: int) -> tuple[torch.Tensor, np.ndarray]:
    """``points`` inputs evenly spaced from ``start`` to ``end`` (both included), and their positions ``t``."""
    t = np.linspace(0.0, 1.0, points)
    weights = torch.tensor(t, dtype=start.dtype, device=start.device).view(-1, *([1] * start.dim()))
    return start.unsqueeze(0) + weights * (end - start).unsqueeze(0), t
