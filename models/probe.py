"""Layer responses for the paper's Figure 7: the std of each 3x3 conv's output after BN, before ReLU or addition."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .modes import temporary_mode


class LayerResponse(NamedTuple):
    """One layer's response: its 1-based position in network order (Figure 7's x axis), its name and its std."""

    index: int
    name: str
    std: float


def _response_std(output: torch.Tensor, per_channel: bool) -> float:
    values = output.detach().float()
    if per_channel:
        return values.transpose(0, 1).flatten(1).std(dim=1).mean().item()
    return values.std().item()


def batch_norm_buffers(model: nn.Module) -> list[torch.Tensor]:
    """Every BN running buffer of ``model`` (mean, variance, count): what a probe in training mode must put back."""
    return [
        buffer
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        for buffer in (module.running_mean, module.running_var, module.num_batches_tracked)
        if buffer is not None
    ]


def layer_responses(
    model: nn.Module,
    images: torch.Tensor,
    per_channel: bool = False,
    batch_stats: bool = False,
) -> list[LayerResponse]:
    """The response std of every layer in `model.response_layers()` for one batch of `images`, in network order.

    By default the std is taken over all elements of the BN output (batch, channels and pixels together); with
    `per_channel=True` it is the mean over channels of each channel's std over batch and pixels, which ignores
    differences of scale between channels. The paper says neither, so both are offered.
    `batch_stats=False` runs the model in eval mode, normalising with the running statistics as at test time;
    `batch_stats=True` normalises with this batch's statistics as in training, and the BN running buffers are
    put back afterwards so the probe leaves the model unchanged. Each module's train/eval mode is restored,
    and no gradients are recorded. The std is computed inside the hook, before the in-place ReLU runs.
    """
    layers = model.response_layers()
    stds: dict[str, float] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            stds[name] = _response_std(output, per_channel)

        return hook

    handles = [bn.register_forward_hook(hook_for(name)) for name, bn in layers]
    buffers = batch_norm_buffers(model) if batch_stats else []
    saved = [buffer.clone() for buffer in buffers]
    reference = next(model.parameters())
    try:
        with temporary_mode(model, training=batch_stats), torch.no_grad():
            model(images.to(device=reference.device, dtype=reference.dtype))
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for buffer, value in zip(buffers, saved, strict=True):
                buffer.copy_(value)
    return [LayerResponse(index, name, stds[name]) for index, (name, _) in enumerate(layers, start=1)]
