"""One network class for the paper's whole family: plain, residual or pre-activation residual, CIFAR-10 or ImageNet,
any shortcut option and either stem."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .blocks import (
    BasicBlock,
    Block,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    conv3x3,
    make_shortcut,
)
from .init import delta_orthogonal_, fixup_
from .layers import PAPER_LAYERS, Layers, ScaledShortcut
from .options import Family, cifar_blocks_per_stage, default_num_classes, default_stem, default_width, uses_bottleneck
from .spec import NETWORK_FIELDS, NetworkSpec
from .transforms import transform_params

IMAGENET_STAGE_BLOCKS: dict[int, tuple[int, ...]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}


def stage_blocks(family: Family, depth: int) -> tuple[int, ...]:
    """Blocks per stage: three stages of n = (depth - 2) / 6 basic blocks (or (depth - 2) / 9 bottlenecks) on
    CIFAR-10, the paper's Table 1 on ImageNet."""
    if family == "cifar10":
        return (cifar_blocks_per_stage(depth),) * 3
    return IMAGENET_STAGE_BLOCKS[depth]


class Network(nn.Module):
    """stem -> stages of blocks (stride 2 entering each stage after the first) -> global average pool -> fc.

    CIFAR-10: conv3x3/w stem, three stages of n basic blocks at w, 2w, 4w filters (32, 16, 8 px); at 9n+2 depths
    (164, 1001) n bottlenecks of widths w, 2w, 4w (outputs 4x), He et al. 2016b's CIFAR nets.
    ImageNet: conv7x7/w stride 2 + 3x3 max pool stem, four stages at w, 2w, 4w, 8w (56, 28, 14, 7 px), basic
    blocks for 18/34 and bottlenecks (output 4x the stage width) for 50/101/152. With ``stem="3x3"`` the ImageNet
    nets start as the CIFAR ones (3x3/1 conv, no pool), so a 64 px input reaches the stages at 64, 32, 16, 8 px
    instead of 16, 8, 4, 2.
    A plain net is the same network with every block's shortcut set to None; its shortcut and
    zero_init_residual resolve to None and False. ``arch="preact"`` builds He et al. 2016b's pre-activation
    units (BN-ReLU-conv) and ends with the final BN-ReLU before the pooling (``final_bn``).

    The interventions (``NetworkSpec``'s last four options; ``models.layers`` makes their modules): with
    ``shortcut_weight`` alpha below 1 a residual block computes relu(alpha * shortcut(x) + F(x)) (a pre-activation
    unit alpha * shortcut(x) + F(x)). This form joins the paper's two nets: the ResNet's block at alpha 1 and, at
    alpha 0, the plain net's bit for bit (F(x) + 0 is F(x)). Zhang, Botev and Martens (2022) weight both paths,
    alpha x + sqrt(1 - alpha^2) F(x), to keep the signal's scale in nets without BN; with BN ending each branch the
    branch's scale is learned anyway, and their form is not the paper's block at alpha 1, so only the shortcut is
    weighted here. At alpha 1 no multiply is built. ``norm`` 'none' leaves nothing in BN's places (Fixup's scalar
    biases and multiplier, or SkipInit's multiplier, where ``init`` asks); ``activation`` 'tat' / 'dks' replaces
    every ReLU by its transformation for this depth (``models.transforms``).
    """

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec.resolved()
        for name in NETWORK_FIELDS:
            setattr(self, name, getattr(self.spec, name))
        self.layers = self._layers()

        self._build_stem()
        block = self._block_type()
        stages, in_channels = [], self.width
        for index, count in enumerate(stage_blocks(self.family, self.depth)):
            stage_stride = 1 if index == 0 else 2
            stages.append(self._build_stage(block, in_channels, self.width * 2**index, count, stage_stride, index))
            in_channels = self.width * 2**index * block.expansion
        self.stages = nn.ModuleList(stages)
        self.final_bn = self.layers.norm_layer(in_channels) if self.arch == "preact" else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = self.layers.classifier(in_channels, self.num_classes)
        self._init_weights()

    def _layers(self) -> Layers:
        """The paper's layers, or the BN-free ones the spec asks for (TAT / DKS: parameters for this depth)."""
        if not self.spec.interventions():
            return PAPER_LAYERS
        activation = None
        if self.activation != "relu":
            activation = transform_params(self.activation, self.spec.nonlinear_layers())
        return Layers(self.norm, self.init, activation)

    def _block_type(self) -> type[Block]:
        bottleneck = uses_bottleneck(self.family, self.depth)
        if self.arch == "preact":
            return PreActBottleneck if bottleneck else PreActBasicBlock
        return Bottleneck if bottleneck else BasicBlock

    def _build_stem(self) -> None:
        """conv -> BN -> ReLU (-> max pool): the 3x3/1 conv, or the 7x7/2 conv and the 3x3/2 max pool."""
        if self.stem == "3x3":
            self.conv1 = conv3x3(3, self.width)
        else:
            self.conv1 = nn.Conv2d(3, self.width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self.layers.norm_layer(self.width)
        self.relu = self.layers.act()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if self.stem == "7x7" else None

    def _build_stage(
        self, block: type[Block], in_channels: int, width: int, count: int, stride: int, index: int
    ) -> nn.Sequential:
        """`count` blocks of one width; the first takes the stride and the change of channels.

        A pre-activation net's very first unit takes the stem's BN-ReLU as its pre-activation, and its projection
        shortcuts have no BN (He et al. 2016b).
        """
        out_channels = width * block.expansion
        preact = self.arch == "preact"
        projection_bn = not preact and self.norm == "bn"
        blocks = []
        for position in range(count):
            block_in, block_stride = (in_channels, stride) if position == 0 else (out_channels, 1)
            connection = None
            if self.shortcut is not None:
                connection = make_shortcut(self.shortcut, block_in, out_channels, block_stride, norm=projection_bn)
                if self.shortcut_weight != 1:
                    connection = ScaledShortcut(connection, self.shortcut_weight)
            extra = {"pre_activated": index > 0 or position > 0} if preact else {}
            extra["layers"] = self.layers
            if block in (Bottleneck, PreActBottleneck):
                blocks.append(block(block_in, width, block_stride, connection, self.stride_in, **extra))
            else:
                blocks.append(block(block_in, width, block_stride, connection, **extra))
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        """He (fan-out) init of every conv (the paper's; Fixup and SkipInit start from it too), or an orthogonal or
        delta-orthogonal one with the activation's gain; BN at gamma 1, beta 0."""
        gain = nn.init.calculate_gain("relu") if self.activation == "relu" else 1.0
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if self.init == "orthogonal":
                    nn.init.orthogonal_(module.weight, gain=gain)
                elif self.init == "delta-orthogonal":
                    delta_orthogonal_(module.weight, gain)
                else:
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.zero_init_residual:
            for block in self.blocks():
                nn.init.zeros_(block.last_bn().weight)
        if self.init == "fixup":
            fixup_(self.blocks(), self.fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for stage in self.stages:
            x = stage(x)
        if self.final_bn is not None:
            x = self.relu(self.final_bn(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)

    def blocks(self) -> list[Block]:
        """Every block in network order."""
        return [block for stage in self.stages for block in stage]

    def response_layers(self) -> list[tuple[str, nn.Module]]:
        """The module whose output is each 3x3 conv's response (Figure 7: after BN, before ReLU or addition), in
        network order.

        The 3x3 stem counts (CIFAR-10 ResNet-20 gives 19 layers); the 7x7 ImageNet stem does not. A basic block
        contributes both of its BNs, a bottleneck its middle BN; projection shortcuts are 1x1. In a pre-activation
        unit each 3x3 conv is followed by the next BN where one follows it (``bn2`` in a basic unit, ``bn3`` in a
        bottleneck), and a basic unit's second conv meets the addition with no BN in between, so its response is
        the conv's own output (``conv2``): the same number of layers as the original net of that depth.
        """
        found: list[tuple[str, nn.Module]] = [("bn1", self.bn1)] if self.conv1.kernel_size == (3, 3) else []
        for i, stage in enumerate(self.stages):
            for j, block in enumerate(stage):
                found += [(f"stages.{i}.{j}.{name}", module) for name, module in block.responses()]
        return found

    def describe(self) -> str:
        """A one-line name such as 'resnet-56 (cifar10, shortcut A)' for logs and figure labels."""
        details = [self.family]
        if self.shortcut is not None:
            details.append(f"shortcut {self.shortcut}")
        if uses_bottleneck(self.family, self.depth):
            details.append(f"stride in {self.stride_in}")
        if self.stem != default_stem(self.family):
            details.append(f"stem {self.stem}")
        if self.width != default_width(self.family):
            details.append(f"width {self.width}")
        if self.num_classes != default_num_classes(self.family):
            details.append(f"{self.num_classes} classes")
        if self.zero_init_residual:
            details.append("zero-init residual")
        details += [f"{name} {value}" for name, value in self.spec.interventions().items()]
        return f"{self.arch}-{self.depth} ({', '.join(details)})"


def build_model(*args: Any, **options: Any) -> Network:
    """Build one of the paper's networks (or an intervention on one) from ``NetworkSpec``'s arguments, in its order
    (arch, depth, family, shortcut, stride_in, ...); a bad option raises a one-line ValueError.

    `family` ('cifar10' or 'imagenet'; generated data trains the CIFAR one) fixes the stem, the stages and the
    allowed depths.
    `shortcut=None` means the paper's default (A on CIFAR-10 and ImageNet 18/34, B on 50/101/152). A plain net
    ignores `shortcut` (it is validated, then resolved to None), so a sweep over arch x shortcut yields one
    plain net, not three; likewise `zero_init_residual` is resolved to False for a plain net, whose blocks a
    zero gamma would silence. `stride_in` places a downsampling bottleneck's stride, so '3x3' is refused for the
    nets built of basic blocks (CIFAR-10 6n+2, ImageNet 18/34); `width` and `num_classes` default to the family's
    (16 / 64 filters, 10 / 1000 classes). `arch="preact"` builds He et al. 2016b's pre-activation ResNet of the
    same shape (its plain counterpart is `arch="plain"`: see `options.validate_arch`). `stem` None is the family's
    (ImageNet: 7x7/2 conv + max pool; CIFAR-10: 3x3/1 conv); `stem="3x3"` gives the ImageNet nets the CIFAR stem,
    for 32-64 px inputs. `shortcut_weight`, `norm`, `init` and `activation` are the interventions of
    ``NetworkSpec``.
    """
    return Network(NetworkSpec(*args, **options))
