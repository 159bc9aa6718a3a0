"""Building blocks of the paper's networks: the two shortcut modules and the basic and bottleneck blocks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .options import Shortcut, StrideIn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with padding 1 and no bias (the following BN has its own shift)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A 1x1 convolution with no bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


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
    """Options B and C: a strided 1x1 convolution followed by BN, matching the block's output shape."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = conv1x1(in_channels, out_channels, stride)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def make_shortcut(option: Shortcut, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The shortcut of one block: A pads where the shape changes, B projects there, C projects everywhere."""
    reshapes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and reshapes):
        return ProjectionShortcut(in_channels, out_channels, stride)
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
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN whose output meets the shortcut; zeroing its gamma makes the block start as the identity."""
        return self.bn2


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
    ) -> None:
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in == "1x1" else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN whose output meets the shortcut; zeroing its gamma makes the block start as the identity."""
        return self.bn3
