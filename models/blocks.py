"""Building blocks of the paper's networks: the two shortcut modules, the basic and bottleneck blocks, and their
pre-activation versions (He et al. 2016b, "Identity Mappings in Deep Residual Networks")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import PAPER_LAYERS, Layers
from .options import Shortcut, StrideIn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with padding 1 and no bias (the following BN has its own shift)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 1x1 convolution with no bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def bottleneck_strides(stride: int, stride_in: StrideIn) -> tuple[int, int]:
    """The strides of a bottleneck's first 1x1 and its 3x3 conv: the block's stride goes to the one ``stride_in``
    names (the paper's 1x1, or torchvision's "v1.5" 3x3)."""
    return (stride, 1) if stride_in == "1x1" else (1, stride)


class ZeroPadShortcut(nn.Module):
    """Option A: identity that subsamples by `stride` and appends zero channels, so it has no parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"out_channels must be >= in_channels for a zero-padding shortcut, got {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ProjectionShortcut(nn.Module):
    """Options B and C: a strided 1x1 convolution followed by BN, matching the block's output shape.

    With ``norm=False`` (pre-activation units, whose additions take un-normalised tensors) the conv alone.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: bool = True) -> None:
        super().__init__()
        self.conv = conv1x1(in_channels, out_channels, stride)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.bn is None else self.bn(x)


def make_shortcut(option: Shortcut, in_channels: int, out_channels: int, stride: int, norm: bool = True) -> nn.Module:
    """The shortcut of one block: A pads where the shape changes, B projects there, C projects everywhere.

    ``norm=False`` leaves the BN out of a projection (pre-activation units).
    """
    reshapes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and reshapes):
        return ProjectionShortcut(in_channels, out_channels, stride, norm)
    if option == "A" and reshapes:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    if option in ("A", "B"):
        return nn.Identity()
    raise ValueError(f"shortcut must be one of 'A', 'B', 'C', got {option!r}")


class BasicBlock(nn.Module):
    """Two 3x3 convs (conv-BN-ReLU-conv-BN), plus the shortcut when there is one, then ReLU; plain if None.

    A downsampling basic block strides its first 3x3 conv; unlike a bottleneck it has no choice of `stride_in`.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int,
        shortcut: nn.Module | None,
        layers: Layers = PAPER_LAYERS,
    ) -> None:
        super().__init__()
        self.conv1 = layers.conv(in_channels, width, 3, stride)
        self.bn1 = layers.norm_layer(width)
        self.conv2 = layers.conv(width, width, 3)
        self.bn2 = layers.branch_end(width)
        self.relu = layers.act()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)

    def last_bn(self) -> nn.Module:
        """The BN whose output meets the shortcut (zeroing its gamma makes the block start as the identity), or what
        a BN-free net has in its place (``Layers.branch_end``)."""
        return self.bn2

    def responses(self) -> list[tuple[str, nn.Module]]:
        """The module whose output is each 3x3 conv's response (Figure 7), in order: here the BN after it."""
        return [("bn1", self.bn1), ("bn2", self.bn2)]


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand to 4*width (each with BN), plus the shortcut, then ReLU; plain if None.

    A downsampling block strides its first 1x1 conv (`stride_in="1x1"`, the paper and its Caffe release) or its
    3x3 conv (`"3x3"`, torchvision's "v1.5"); the second costs more MACs and keeps more of the input.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int,
        shortcut: nn.Module | None,
        stride_in: StrideIn = "1x1",
        layers: Layers = PAPER_LAYERS,
    ) -> None:
        super().__init__()
        stride_1x1, stride_3x3 = bottleneck_strides(stride, stride_in)
        self.conv1 = layers.conv(in_channels, width, 1, stride_1x1)
        self.bn1 = layers.norm_layer(width)
        self.conv2 = layers.conv(width, width, 3, stride_3x3)
        self.bn2 = layers.norm_layer(width)
        self.conv3 = layers.conv(width, width * self.expansion, 1)
        self.bn3 = layers.branch_end(width * self.expansion)
        self.relu = layers.act()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)

    def last_bn(self) -> nn.Module:
        """The BN whose output meets the shortcut (zeroing its gamma makes the block start as the identity), or what
        a BN-free net has in its place (``Layers.branch_end``)."""
        return self.bn3

    def responses(self) -> list[tuple[str, nn.Module]]:
        """The module whose output is the 3x3 conv's response (Figure 7): the BN after it (1x1 convs do not count)."""
        return [("bn2", self.bn2)]


def _pre_activate(block: PreActBasicBlock | PreActBottleneck, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A pre-activation unit's BN-ReLU of its input, and what its shortcut takes: the input itself on an identity
    path, the pre-activated input where the shape changes. The first unit's input is pre-activated by the stem."""
    if block.bn1 is None:
        return x, x
    activated = block.relu(block.bn1(x))  # in place on the BN's output; x itself is kept for the identity path
    return activated, activated if block.activates_shortcut else x


class PreActBasicBlock(nn.Module):
    """He et al. 2016b's full pre-activation unit: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus the shortcut, no ReLU after.

    ``bnK`` is the BN *before* ``convK``. The network's first unit has no BN of its own (``pre_activated=False``):
    the stem's BN-ReLU is its pre-activation (the paper's "first activation right after conv1"). Where the shape
    changes, the shortcut also takes the pre-activated input (pre-activation on both paths, as the authors' code);
    elsewhere it takes the unit's input unchanged, the identity path of the paper. A plain net (shortcut None) is
    a chain conv-BN-ReLU-conv-..., the original plain net.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int,
        shortcut: nn.Module | None,
        pre_activated: bool = True,
        layers: Layers = PAPER_LAYERS,
    ) -> None:
        super().__init__()
        self.bn1 = layers.norm_layer(in_channels) if pre_activated else None
        self.conv1 = layers.conv(in_channels, width, 3, stride)
        self.bn2 = layers.norm_layer(width)
        self.conv2 = layers.conv(width, width, 3)
        self.relu = layers.act()
        self.shortcut = shortcut
        self.activates_shortcut = stride != 1 or in_channels != width * self.expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated, identity = _pre_activate(self, x)
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        if self.shortcut is not None:
            out = out + self.shortcut(identity)
        return out

    def responses(self) -> list[tuple[str, nn.Module]]:
        """Each 3x3 conv's response (Figure 7): conv1's is the BN after it (before ReLU); conv2 meets the addition
        with no BN in between, so its response is its own output."""
        return [("bn2", self.bn2), ("conv2", self.conv2)]


class PreActBottleneck(nn.Module):
    """The pre-activation bottleneck: BN-ReLU-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 (to 4*width), plus the shortcut.

    He et al. 2016b's CIFAR ResNet-164 and -1001 units. ``bnK`` precedes ``convK``; ``pre_activated`` and the
    shortcut's input are as in ``PreActBasicBlock``; ``stride_in`` as in ``Bottleneck``.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int,
        shortcut: nn.Module | None,
        stride_in: StrideIn = "1x1",
        pre_activated: bool = True,
        layers: Layers = PAPER_LAYERS,
    ) -> None:
        super().__init__()
        stride_1x1, stride_3x3 = bottleneck_strides(stride, stride_in)
        self.bn1 = layers.norm_layer(in_channels) if pre_activated else None
        self.conv1 = layers.conv(in_channels, width, 1, stride_1x1)
        self.bn2 = layers.norm_layer(width)
        self.conv2 = layers.conv(width, width, 3, stride_3x3)
        self.bn3 = layers.norm_layer(width)
        self.conv3 = layers.conv(width, width * self.expansion, 1)
        self.relu = layers.act()
        self.shortcut = shortcut
        self.activates_shortcut = stride != 1 or in_channels != width * self.expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated, identity = _pre_activate(self, x)
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.shortcut is not None:
            out = out + self.shortcut(identity)
        return out

    def responses(self) -> list[tuple[str, nn.Module]]:
        """The 3x3 conv's response (Figure 7): the BN after it, before its ReLU."""
        return [("bn3", self.bn3)]


Block = BasicBlock | Bottleneck | PreActBasicBlock | PreActBottleneck
