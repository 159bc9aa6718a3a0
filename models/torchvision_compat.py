"""Load torchvision ResNet weights into our networks, for checking equivalence and for reusing trained weights."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from .network import Network
from .options import uses_bottleneck

_STAGE = re.compile(r"layer(\d+)\.")
_RENAMES = ((".downsample.0.", ".shortcut.conv."), (".downsample.1.", ".shortcut.bn."))


def _is_torchvisions(model: Network) -> bool:
    """Whether `model` computes what torchvision's `resnet{depth}` does: an ImageNet ResNet with option B and, where
    blocks are bottlenecks, the stride in the 3x3 conv (torchvision's "v1.5")."""
    bottleneck = uses_bottleneck(model.family, model.depth)
    return model.family == "imagenet" and model.shortcut == "B" and (model.stride_in == "3x3" or not bottleneck)


def from_torchvision_state_dict(state_dict: Mapping[str, torch.Tensor], model: Network) -> dict[str, torch.Tensor]:
    """Rename a torchvision `resnetXX` state dict to this package's keys, for `model.load_state_dict`.

    The mapping is: a leading `layerK.` becomes `stages.{K-1}.`, `downsample.0.` becomes `shortcut.conv.`,
    `downsample.1.` becomes `shortcut.bn.`, and every other key (conv1, bn1, convN/bnN inside blocks, fc) is
    unchanged; the tensors themselves are shared. `model` is the network the weights are for, and it is checked:
    a `stride_in="1x1"` ResNet-50 has tensors of the same shapes but computes another function, so it is refused
    (one-line ValueError) instead of loading silently. Build it as
    build_model("resnet", depth, "imagenet", shortcut="B", stride_in="3x3") (stride_in only for 50/101/152).
    """
    if not _is_torchvisions(model):
        stride = ', stride_in="3x3"' if uses_bottleneck(model.family, model.depth) else ""
        raise ValueError(
            f'torchvision\'s weights fit only the net torchvision builds, build_model("resnet", {model.depth}, '
            f'"imagenet", shortcut="B"{stride}); got {model.describe()}'
        )
    renamed = {}
    for key, value in state_dict.items():
        match = _STAGE.match(key)
        if match is not None:
            key = f"stages.{int(match.group(1)) - 1}.{key[match.end() :]}"
        for old, new in _RENAMES:
            key = key.replace(old, new)
        renamed[key] = value
    return renamed
