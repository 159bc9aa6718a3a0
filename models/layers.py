"""The layers a block is made of, for the paper's nets and their BN-free variants (issue 22).

``Layers`` makes a block's convs, the modules in BN's places and its activations: the paper's (conv without bias,
BN, ReLU), or without BN: nothing in BN's place, Fixup's scalar biases and multiplier (Zhang, Dauphin and Ma 2019),
SkipInit's branch multiplier (De and Smith 2020), and TAT / DKS activations. The paper's path builds exactly the
modules it always did, in the same order, so its nets and their outputs are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .options import Init, Norm


class Bias(nn.Module):
    """A learnable scalar added to a tensor (Fixup's biases), initialised to 0."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class Multiplier(nn.Module):
    """A learnable scalar times a tensor, then optionally a learnable scalar bias: Fixup's branch end (scale 1, bias
    0) or SkipInit's (scale 0, no bias), each in the place of the BN that meets the shortcut."""

    def __init__(self, scale: float, bias: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), float(scale)))
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale
        return x if self.bias is None else x + self.bias


class InputShift(nn.Module):
    """A learnable scalar added to a layer's input (Fixup's bias before every conv and the classifier), initialised
    to 0: mixed in before the layer's class, which keeps its weight, its probes and its counts."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.shift = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x + self.shift)


class ShiftedConv2d(InputShift, nn.Conv2d):
    """A conv (still an ``nn.Conv2d``) whose input is first shifted by Fixup's scalar bias."""


class ShiftedLinear(InputShift, nn.Linear):
    """The classifier with Fixup's scalar bias on its input."""


class ScaledShortcut(nn.Module):
    """``weight * shortcut(x)``: the shortcut of a block relu(alpha * shortcut(x) + F(x)) with alpha below 1.

    Only nets with alpha != 1 hold one: the paper's block (alpha 1) adds the shortcut itself, with no multiply.
    """

    def __init__(self, shortcut: nn.Module, weight: float) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.weight = float(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) * self.weight

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class TransformedActivation(nn.Module):
    """``output_scale * (phi(input_scale * x + input_shift) + output_shift)`` with phi leaky ReLU or softplus: the
    form in which the dks package transforms an activation for TAT and DKS (a missing parameter is skipped)."""

    def __init__(
        self,
        base: str,
        negative_slope: float | None = None,
        input_scale: float | None = None,
        input_shift: float | None = None,
        output_shift: float | None = None,
        output_scale: float | None = None,
    ) -> None:
        super().__init__()
        if base not in ("leaky_relu", "softplus"):
            raise ValueError(f"base must be one of 'leaky_relu', 'softplus', got {base!r}")
        self.base = base
        self.params = {
            "negative_slope": negative_slope,
            "input_scale": input_scale,
            "input_shift": input_shift,
            "output_shift": output_shift,
            "output_scale": output_scale,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params
        if p["input_scale"] is not None:
            x = x * p["input_scale"]
        if p["input_shift"] is not None:
            x = x + p["input_shift"]
        x = F.leaky_relu(x, p["negative_slope"]) if self.base == "leaky_relu" else F.softplus(x)
        if p["output_shift"] is not None:
            x = x + p["output_shift"]
        if p["output_scale"] is not None:
            x = x * p["output_scale"]
        return x

    def extra_repr(self) -> str:
        return ", ".join([self.base] + [f"{k}={v:.6g}" for k, v in self.params.items() if v is not None])


@dataclass(frozen=True)
class Layers:
    """How one net makes its layers: the paper's by default; ``activation`` holds a transformed activation's
    ``TransformedActivation`` arguments (None: ReLU)."""

    norm: Norm = "bn"
    init: Init = "he"
    activation: Mapping[str, object] | None = field(default=None)

    def conv(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
        """A conv without bias, padded to keep the size at stride 1 (Fixup: shifted by its scalar bias first)."""
        kind = ShiftedConv2d if self.init == "fixup" else nn.Conv2d
        return kind(in_channels, out_channels, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=False)

    def norm_layer(self, channels: int) -> nn.Module:
        """What follows a conv inside a branch: BN, Fixup's scalar bias, or nothing."""
        if self.norm == "bn":
            return nn.BatchNorm2d(channels)
        return Bias() if self.init == "fixup" else nn.Identity()

    def branch_end(self, channels: int) -> nn.Module:
        """What follows a residual branch's last conv, before the addition: BN, Fixup's scale and bias, SkipInit's
        multiplier at 0, or nothing."""
        if self.init == "fixup":
            return Multiplier(1.0, bias=True)
        if self.init == "skipinit":
            return Multiplier(0.0, bias=False)
        return self.norm_layer(channels)

    def act(self) -> nn.Module:
        """The activation: ReLU (in place, as the paper's nets), or the transformed one."""
        return nn.ReLU(inplace=True) if self.activation is None else TransformedActivation(**self.activation)

    def classifier(self, in_features: int, classes: int) -> nn.Linear:
        return (ShiftedLinear if self.init == "fixup" else nn.Linear)(in_features, classes)


PAPER_LAYERS = Layers()
"""The paper's layers: conv (no bias), BN, ReLU."""
