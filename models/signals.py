"""Forward and backward signal statistics of a network on a fixed batch: why plain nets degrade, measured.

The paper argues (He et al., CVPR 2016, Sec. 4.1) that the degradation of deep plain nets is not vanishing
gradients: with BN "the forward propagated signals [...] have non-zero variances" and "the backward propagated
gradients exhibit healthy norms". ``signal_statistics`` measures both on one batch:

- backward: the norm of the gradient of the loss with respect to each block's output (the residual stream in a
  ResNet; the signal Sec. 4.1 speaks of), and with respect to each conv's weight, also divided by the weight's norm;
- forward: per block, the average squared channel mean and the average channel variance of the block's output,
  and for a residual block the same of its residual branch alone (before the addition): the signal-propagation
  plots of Brock, De and Smith, "Characterizing signal propagation to close the performance gap in unnormalized
  ResNets" (ICLR 2021), Sec. 3.

Layer 0 of the stream is the input of the first block (the stem's output), layer ``k`` the output of block ``k``;
conv weights are numbered 1.. in network order (projection shortcuts included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .modes import temporary_mode
from .probe import batch_norm_buffers

ACT_GRAD_NORM = "act_grad_norm"
ACT_MEAN_SQ = "act_mean_sq"
ACT_VAR = "act_var"
BRANCH_MEAN_SQ = "branch_mean_sq"
BRANCH_VAR = "branch_var"
WEIGHT_GRAD_NORM = "weight_grad_norm"
WEIGHT_NORM = "weight_norm"
WEIGHT_GRAD_RATIO = "weight_grad_ratio"
STREAM_STATS = (ACT_GRAD_NORM, ACT_MEAN_SQ, ACT_VAR)
BRANCH_STATS = (BRANCH_MEAN_SQ, BRANCH_VAR)
WEIGHT_STATS = (WEIGHT_GRAD_NORM, WEIGHT_NORM, WEIGHT_GRAD_RATIO)
STATS = (*STREAM_STATS, *BRANCH_STATS, *WEIGHT_STATS)
"""Every statistic's name, as stored in the run store's ``signals.csv`` (``experiments.store.contract``)."""
STEM = "stem"
"""The name of stream layer 0: the input of the first block."""


class Signal(NamedTuple):
    """One statistic of one layer: its index (0 = the stem's output for stream statistics), name, statistic, value."""

    layer: int
    name: str
    stat: str
    value: float


class SignalLayers(NamedTuple):
    """Where ``signal_statistics`` looks: blocks in order, residual-branch ends by block name, weighted modules."""

    blocks: Sequence[tuple[str, nn.Module]]
    branches: Mapping[str, nn.Module]
    weights: Sequence[tuple[str, nn.Module]]


def signal_layers(model: nn.Module) -> SignalLayers:
    """The layers of one of ``models``' networks: every block (``model.blocks()``), the end of each residual block's
    branch (a plain block has none), every conv in network order."""
    names = {id(module): name for name, module in model.named_modules()}
    blocks = [(names[id(block)], block) for block in model.blocks()]
    branches = {name: branch_end(block) for name, block in blocks if getattr(block, "shortcut", None) is not None}
    weights = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    return SignalLayers(blocks, branches, weights)


def branch_end(block: nn.Module) -> nn.Module:
    """The module whose output is a residual block's branch, just before the addition: the BN that meets the
    shortcut (``last_bn()``) in the original blocks, the last conv of the branch in a pre-activation unit."""
    if hasattr(block, "last_bn"):
        return block.last_bn()
    return [module for module in block.children() if isinstance(module, nn.Conv2d)][-1]


class _Moments:
    """Per-channel count, mean and sum of squared deviations, merged over chunks (Chan et al.'s parallel update)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        values = x.detach() if x.dtype == torch.float64 else x.detach().float()
        dims = [d for d in range(values.ndim) if d != 1]
        var, mean = torch.var_mean(values, dim=dims, correction=0)
        n = values.numel() // values.shape[1]
        mean, m2 = mean.double(), var.double() * n
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * n / total)
        self.count = total

    def mean_sq(self) -> torch.Tensor:
        """The average over channels of the squared channel mean."""
        return self.mean.square().mean()

    def var(self) -> torch.Tensor:
        """The average over channels of the channel variance (over batch and positions, not bias-corrected)."""
        return (self.m2 / self.count).mean()


def signal_statistics(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: SignalLayers | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    chunk_size: int | None = None,
    batch_stats: bool = False,
) -> list[Signal]:
    """Forward and backward signal statistics of ``model`` on one fixed batch (see the module's docstring).

    The loss is ``loss_fn(logits, labels)``, a mean over the batch (cross-entropy by default); gradient norms are
    Frobenius norms of the gradient of that mean over the whole batch. By default the model runs in eval mode, so BN
    normalises with its running statistics (as at test time; before any training step they are the initial mean 0
    and variance 1, so BN is then the identity) and every image is independent of the others: the batch is
    processed in chunks of ``chunk_size`` images (None: at once) and the statistics are exact for the whole batch
    (gradients and channel moments are summed over chunks). ``batch_stats=True`` runs BN in training mode instead,
    normalising each chunk with its own statistics as training does with each mini-batch (the running buffers are
    put back afterwards). Autocast is off, so the probe runs in the parameters' dtype.

    The probe leaves the model as it found it: gradients are taken with ``torch.autograd.grad`` through
    ``torch.func.functional_call`` on detached copies of the parameters, so no ``.grad`` is written and no
    parameter hook fires (nor DDP's); BN buffers are not updated in eval mode; each module's train/eval flag is
    restored (and with ``batch_stats`` the BN buffers put back); nothing random runs. It works inside
    ``torch.no_grad`` and ``torch.inference_mode`` (a Lightning evaluation). The values are read to the host once,
    at the end.
    """
    layers = layers if layers is not None else signal_layers(model)
    if not layers.blocks:
        raise ValueError("signal_statistics needs at least one block")
    block_names = [name for name, _ in layers.blocks]
    param_names = {id(p): name for name, p in model.named_parameters()}
    weight_keys = [param_names[id(module.weight)] for _, module in layers.weights]
    reference = next(model.parameters())
    buffers = batch_norm_buffers(model) if batch_stats else []
    saved = [buffer.clone() for buffer in buffers]
    with torch.inference_mode(False), torch.enable_grad(), temporary_mode(model, training=batch_stats):
        params = {name: p.detach().requires_grad_(True) for name, p in model.named_parameters()}
        state = {**params, **dict(model.named_buffers())}
        weights = [params[key] for key in weight_keys]
        streams: list[torch.Tensor] = []
        stream_moments = [_Moments() for _ in range(len(block_names) + 1)]
        branch_moments = {name: _Moments() for name in layers.branches}

        def first_input(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            streams.append(inputs[0])
            stream_moments[0].add(inputs[0])

        def block_output(index: int):
            def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
                streams.append(output)
                stream_moments[index].add(output)

            return hook

        def branch_output(name: str):
            def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
                branch_moments[name].add(output)

            return hook

        handles = [layers.blocks[0][1].register_forward_pre_hook(first_input)]
        handles += [block.register_forward_hook(block_output(i)) for i, (_, block) in enumerate(layers.blocks, 1)]
        handles += [module.register_forward_hook(branch_output(name)) for name, module in layers.branches.items()]
        try:
            images = images.to(device=reference.device, dtype=reference.dtype)
            images = images.clone() if images.is_inference() else images
            labels = labels.to(reference.device)
            labels = labels.clone() if labels.is_inference() else labels
            total = len(images)
            size = chunk_size or total
            grad_sq = torch.zeros(len(block_names) + 1, device=reference.device, dtype=torch.float64)
            weight_grads = [torch.zeros_like(w) for w in weights]
            with torch.autocast(reference.device.type, enabled=False):
                for start in range(0, total, size):
                    streams.clear()
                    x, y = images[start : start + size], labels[start : start + size]
                    loss = loss_fn(functional_call(model, state, (x,)), y) * (len(x) / total)
                    if len(streams) != len(block_names) + 1:
                        raise RuntimeError(f"{len(streams)} stream tensors for {len(block_names)} blocks")
                    grads = torch.autograd.grad(loss, [*streams, *weights])
                    grad_sq += torch.stack([g.double().square().sum() for g in grads[: len(streams)]])
                    for acc, g in zip(weight_grads, grads[len(streams) :], strict=True):
                        acc += g
        finally:
            for handle in handles:
                handle.remove()
            streams.clear()
            with torch.no_grad():
                for buffer, value in zip(buffers, saved, strict=True):
                    buffer.copy_(value)
    return _rows(layers, block_names, grad_sq, stream_moments, branch_moments, weights, weight_grads)


def _rows(
    layers: SignalLayers,
    block_names: list[str],
    grad_sq: torch.Tensor,
    stream_moments: list[_Moments],
    branch_moments: dict[str, _Moments],
    weights: list[torch.Tensor],
    weight_grads: list[torch.Tensor],
) -> list[Signal]:
    """Every statistic as a Signal, with one transfer to the host."""
    keys: list[tuple[int, str, str]] = []
    values: list[torch.Tensor] = []
    grad_norms = grad_sq.sqrt()
    for index, name in enumerate([STEM, *block_names]):
        moments = stream_moments[index]
        keys += [(index, name, stat) for stat in STREAM_STATS]
        values += [grad_norms[index], moments.mean_sq(), moments.var()]
    for index, name in enumerate(block_names, start=1):
        if name in branch_moments:
            keys += [(index, name, stat) for stat in BRANCH_STATS]
            values += [branch_moments[name].mean_sq(), branch_moments[name].var()]
    for index, ((name, _), weight, grad) in enumerate(zip(layers.weights, weights, weight_grads, strict=True), 1):
        grad_norm, weight_norm = grad.double().norm(), weight.detach().double().norm()
        keys += [(index, name, stat) for stat in WEIGHT_STATS]
        values += [grad_norm, weight_norm, grad_norm / weight_norm]
    host = torch.stack([v.double() for v in values]).tolist() if values else []
    return [Signal(layer, name, stat, value) for (layer, name, stat), value in zip(keys, host, strict=True)]


def signal_summary(signals: Sequence[Signal]) -> dict[str, float]:
    """A few scalars of one probe, for dashboards (W&B): the spread of the block-gradient norms and more.

    - ``grad_min_over_max``: the smallest block-output gradient norm over the largest (1: even; near 0: some
      block's gradient vanishes relative to another's);
    - ``grad_in_over_out``: the gradient norm at the stem's output over that at the last block's output (below 1:
      gradients shrink towards the input; above 1: they grow);
    - ``weight_grad_ratio_median``: the median over convs of ||dL/dW|| / ||W||;
    - ``out_var``: the average channel variance of the last block's output.
    """
    by_stat: dict[str, dict[int, float]] = {}
    for s in signals:
        by_stat.setdefault(s.stat, {})[s.layer] = s.value
    grads = by_stat.get(ACT_GRAD_NORM, {})
    summary: dict[str, float] = {}
    if grads:
        largest = max(grads.values())
        last = grads[max(grads)]
        summary["grad_min_over_max"] = min(grads.values()) / largest if largest > 0 else float("nan")
        summary["grad_in_over_out"] = grads[min(grads)] / last if last > 0 else float("nan")
    ratios = sorted(by_stat.get(WEIGHT_GRAD_RATIO, {}).values())
    if ratios:
        middle = len(ratios) // 2
        summary["weight_grad_ratio_median"] = (
            ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
        )
    variances = by_stat.get(ACT_VAR, {})
    if variances:
        summary["out_var"] = variances[max(variances)]
    return summary
