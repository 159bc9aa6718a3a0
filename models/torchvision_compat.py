"""Load torchvision ResNet weights into our networks, for checking equivalence and for reusing trained weights."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

_STAGE = re.compile(r"layer(\d+)\.")
_RENAMES = ((".downsample.0.", ".shortcut.conv."), (".downsample.1.", ".shortcut.bn."))


def from_torchvision_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a torchvision `resnetXX` state dict to this package's keys; the tensors themselves are shared.

    The mapping is: a leading `layerK.` becomes `stages.{K-1}.`, `downsample.0.` becomes `shortcut.conv.`,
    `downsample.1.` becomes `shortcut.bn.`, and every other key (conv1, bn1, convN/bnN inside blocks, fc) is
    unchanged. torchvision strides the 3x3 conv of a bottleneck and projects only where the shape changes, so
    load into build_model("resnet", depth, "imagenet", shortcut="B", stride_in="3x3").
    """
    renamed = {}
    for key, value in state_dict.items():
        match = _STAGE.match(key)
        if match is not None:
            key = f"stages.{int(match.group(1)) - 1}.{key[match.end() :]}"
        for old, new in _RENAMES:
            key = key.replace(old, new)
        renamed[key] = value
    return renamed
