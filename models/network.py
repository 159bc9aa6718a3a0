"""One network class for the paper's whole family: plain or residual, CIFAR-10 or ImageNet, any shortcut option."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck, conv3x3, make_shortcut
from .options import (
    Arch,
    Family,
    Shortcut,
    StrideIn,
    default_num_classes,
    default_width,
    resolve_shortcut,
    uses_bottleneck,
    validate_positive,
    validate_stride_in,
)

IMAGENET_STAGE_BLOCKS: dict[int, tuple[int, ...]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


def stage_blocks(family: Family, depth: int) -> tuple[int, ...]:
    """Blocks per stage: three stages of n = (depth - 2) / 6 on CIFAR-10, the paper's Table 1 on ImageNet."""
    if family == "cifar10":
        return ((depth - 2) // 6,) * 3
    return IMAGENET_STAGE_BLOCKS[depth]


class Network(nn.Module):
    """stem -> stages of blocks (stride 2 entering each stage after the first) -> global average pool -> fc.

    CIFAR-10: conv3x3/w stem, three stages of n basic blocks at w, 2w, 4w filters (32, 16, 8 px).
    ImageNet: conv7x7/w stride 2 + 3x3 max pool stem, four stages at w, 2w, 4w, 8w (56, 28, 14, 7 px), basic
    blocks for 18/34 and bottlenecks (output 4x the stage width) for 50/101/152.
    A plain net is the same network with every block's shortcut set to None; its shortcut and
    zero_init_residual resolve to None and False.
    """

    def __init__(
        self,
        arch: Arch,
        depth: int,
        family: Family,
        shortcut: Shortcut | None = None,
        stride_in: StrideIn = "1x1",
        width: int | None = None,
        num_classes: int | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.shortcut = resolve_shortcut(arch, depth, family, shortcut)
        self.arch = arch
        self.depth = depth
        self.family = family
        self.stride_in = validate_stride_in(stride_in, family, depth)
        self.width = validate_positive("width", default_width(family) if width is None else width)
        self.num_classes = validate_positive(
            "num_classes", default_num_classes(family) if num_classes is None else num_classes
        )
        if not isinstance(zero_init_residual, bool):
            raise ValueError(f"zero_init_residual must be True or False, got {zero_init_residual!r}")
        self.zero_init_residual = zero_init_residual and arch == "resnet"

        self._build_stem()
        block = Bottleneck if uses_bottleneck(family, depth) else BasicBlock
        stages, in_channels = [], self.width
        for index, count in enumerate(stage_blocks(family, depth)):
            stage_stride = 1 if index == 0 else 2
            stages.append(self._build_stage(block, in_channels, self.width * 2**index, count, stage_stride))
            in_channels = self.width * 2**index * block.expansion
        self.stages = nn.ModuleList(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, self.num_classes)
        self._init_weights()

    def _build_stem(self) -> None:
        if self.family == "cifar10":
            self.conv1 = conv3x3(3, self.width)
        else:
            self.conv1 = nn.Conv2d(3, self.width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if self.family == "imagenet" else None

    def _build_stage(
        self, block: type[BasicBlock | Bottleneck], in_channels: int, width: int, count: int, stride: int
    ) -> nn.Sequential:
        """`count` blocks of one width; the first takes the stride and the change of channels."""
        out_channels = width * block.expansion
        blocks = []
        for position in range(count):
            block_in, block_stride = (in_channels, stride) if position == 0 else (out_channels, 1)
            connection = None
            if self.shortcut is not None:
                connection = make_shortcut(self.shortcut, block_in, out_channels, block_stride)
            if block is Bottleneck:
                blocks.append(Bottleneck(block_in, width, block_stride, connection, self.stride_in))
            else:
                blocks.append(BasicBlock(block_in, width, block_stride, connection))
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.zero_init_residual:
            for block in self.blocks():
                nn.init.zeros_(block.last_bn().weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for stage in self.stages:
            x = stage(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)

    def blocks(self) -> list[BasicBlock | Bottleneck]:
        """Every block in network order."""
        return [block for stage in self.stages for block in stage]

    def response_layers(self) -> list[tuple[str, nn.BatchNorm2d]]:
        """Every BN that directly follows a 3x3 conv, in network order: the layers of the paper's Figure 7.

        The CIFAR-10 stem conv is 3x3 and counts (ResNet-20 gives 19); the ImageNet stem is 7x7 and does not.
        A bottleneck contributes its middle BN, a basic block both of its BNs; projection shortcuts are 1x1.
        """
        found = []
        for name, module in self.named_modules():
            for index in (1, 2, 3):
                conv = getattr(module, f"conv{index}", None)
                bn = getattr(module, f"bn{index}", None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and conv.kernel_size == (3, 3):
                    found.append((f"{name}.bn{index}" if name else f"bn{index}", bn))
        return found

    def describe(self) -> str:
        """A one-line name such as 'resnet-56 (cifar10, shortcut A)' for logs and figure labels."""
        details = [self.family]
        if self.shortcut is not None:
            details.append(f"shortcut {self.shortcut}")
        if uses_bottleneck(self.family, self.depth):
            details.append(f"stride in {self.stride_in}")
        if self.width != default_width(self.family):
            details.append(f"width {self.width}")
        if self.num_classes != default_num_classes(self.family):
            details.append(f"{self.num_classes} classes")
        if self.zero_init_residual:
            details.append("zero-init residual")
        return f"{self.arch}-{self.depth} ({', '.join(details)})"


def build_model(
    arch: Arch,
    depth: int,
    family: Family,
    shortcut: Shortcut | None = None,
    stride_in: StrideIn = "1x1",
    width: int | None = None,
    num_classes: int | None = None,
    zero_init_residual: bool = False,
) -> Network:
    """Build one of the paper's networks, validating every option once (a bad one raises a one-line ValueError).

    `family` ('cifar10' or 'imagenet'; generated data trains the CIFAR one) fixes the stem, the stages and the
    allowed depths.
    `shortcut=None` means the paper's default (A on CIFAR-10 and ImageNet 18/34, B on 50/101/152). A plain net
    ignores `shortcut` (it is validated, then resolved to None), so a sweep over arch x shortcut yields one
    plain net, not three; likewise `zero_init_residual` is resolved to False for a plain net, whose blocks a
    zero gamma would silence. `stride_in` places a downsampling bottleneck's stride, so '3x3' is refused for the
    nets built of basic blocks (CIFAR-10, ImageNet 18/34); `width` and `num_classes` default to the family's
    (16 / 64 filters, 10 / 1000 classes).
    """
    return Network(arch, depth, family, shortcut, stride_in, width, num_classes, zero_init_residual)
