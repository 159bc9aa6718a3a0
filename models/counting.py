"""Parameter and multiply-add counts, the units of the paper's Table 1 "FLOPs" and Table 6 "#params"."""

from __future__ import annotations

import torch
from torch import nn

from .modes import temporary_mode


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or not; BN's gamma and beta count, its running statistics (buffers) do not."""
    return sum(parameter.numel() for parameter in model.parameters())


def _conv_macs(module: nn.Conv2d, output: torch.Tensor) -> int:
    kernel_h, kernel_w = module.kernel_size
    per_output = kernel_h * kernel_w * module.in_channels // module.groups
    return output[0].numel() * per_output


def _linear_macs(module: nn.Linear, output: torch.Tensor) -> int:
    return output[0].numel() * module.in_features


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on one image of `input_shape` (C, H, W), as the paper counts FLOPs.

    Convolutions (shortcut projections included) and the fc layer count; BN, ReLU, additions, pooling and biases
    do not. The model runs once in eval mode under no_grad on its own device, and its mode is restored.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += _conv_macs(module, output)
        else:
            total += _linear_macs(module, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    try:
        with temporary_mode(model, training=False), torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
    return total
