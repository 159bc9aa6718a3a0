"""Horizontal fusion: K same-shaped networks run as one, each layer a single grouped kernel instead of K.

Small CIFAR convolutions are bound by kernel launches, not arithmetic, so K networks computed by one
grouped convolution per layer cost little more than one. Member k owns channel block k of every fused
tensor: a fused weight, BN parameter or BN buffer is the members' tensors concatenated along dim 0, so
``fused_state`` and ``split_state`` convert between the layouts exactly, and BN (per channel) keeps each
member's statistics separate. A plain member fused with option-A ResNets gets its (parameter-free)
shortcuts multiplied by zero.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BasicBlock, Bottleneck, ProjectionShortcut, ZeroPadShortcut
from .network import Network
from .spec import NETWORK_FIELDS


class FusedConv2d(nn.Module):
    """K copies of one conv as a grouped conv; a 3-channel input shared by all members needs no copies."""

    def __init__(self, conv: nn.Conv2d, members: int) -> None:
        super().__init__()
        self.members = members
        self.in_channels = conv.in_channels
        self.out_channels = conv.out_channels
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        shape = (members * conv.out_channels, *conv.weight.shape[1:])
        self.weight = nn.Parameter(torch.empty(shape, dtype=conv.weight.dtype, device=conv.weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = x.shape[1] == self.in_channels and self.groups == 1
        groups = self.groups if shared else self.groups * self.members
        return F.conv2d(x, self.weight, None, self.stride, self.padding, 1, groups)

    def extra_repr(self) -> str:
        return f"{self.members} x ({self.in_channels}, {self.out_channels}), stride={self.stride}"


class FusedZeroPad(nn.Module):
    """Option A for K members: subsample, then append zero channels to each member's channel block."""

    def __init__(self, shortcut: ZeroPadShortcut, members: int) -> None:
        super().__init__()
        self.members = members
        self.in_channels, self.out_channels, self.stride = shortcut.in_channels, shortcut.out_channels, shortcut.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        n, _, h, w = x.shape
        x = x.reshape(n, self.members, self.in_channels, h, w)
        x = F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))
        x = x.reshape(n, self.members * self.out_channels, h, w)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class MaskedShortcut(nn.Module):
    """A fused shortcut whose output is zeroed in the channel blocks of plain members."""

    def __init__(self, shortcut: nn.Module, plain: torch.Tensor) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.register_buffer("plain", plain, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x).masked_fill(self.plain, 0.0)


class FusedLinear(nn.Module):
    """K classifiers applied to their own channel blocks in one batched matmul; returns (K, batch, classes)."""

    def __init__(self, fc: nn.Linear, members: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, fc.in_features, fc.out_features
        kwargs = {"dtype": fc.weight.dtype, "device": fc.weight.device}
        self.weight = nn.Parameter(torch.empty(members * fc.out_features, fc.in_features, **kwargs))
        self.bias = nn.Parameter(torch.empty(members * fc.out_features, **kwargs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, c, o = self.members, self.in_features, self.out_features
        x = x.reshape(len(x), k, c).transpose(0, 1)
        weight = self.weight.view(k, o, c).transpose(1, 2)
        return torch.baddbmm(self.bias.view(k, 1, o), x, weight)


def fusion_problem(members: Sequence[nn.Module]) -> str | None:
    """Why ``members`` cannot be fused (one sentence), or None when they can."""
    if len(members) < 2:
        return "fusion needs at least two networks"
    if not all(type(m) is Network for m in members):
        return "only models.Network instances can be fused"
    first = members[0]
    changed = {name: value for m in members for name, value in m.spec.interventions().items()}
    if changed:
        shown = ", ".join(f"{name} {value!r}" for name, value in changed.items())
        return f"fusion computes the paper's nets only, got {shown}"
    for attr in ("family", "depth", "width", "num_classes", "stride_in", "stem"):
        values = {getattr(m, attr) for m in members}
        if len(values) > 1:
            return f"fused networks must share their {attr}, got {sorted(map(str, values))}"
    options = {m.shortcut for m in members if m.shortcut is not None}
    if len(options) > 1:
        return f"fused ResNets must share one shortcut option, got {sorted(options)}"
    has_plain = any(m.shortcut is None for m in members)
    if has_plain and any(isinstance(b.shortcut, ProjectionShortcut) for m in members for b in m.blocks()):
        return "a plain net fuses only with option-A ResNets (a projection shortcut has weights the plain net lacks)"
    keys = list(first.state_dict())
    if any(list(m.state_dict()) != keys for m in members):
        return "fused networks must have the same state-dict keys"
    return None


def fused_state(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Members' state dicts in the fused layout: each tensor concatenated along dim 0 (scalars taken once)."""
    return {
        key: states[0][key].clone() if states[0][key].ndim == 0 else torch.cat([s[key] for s in states])
        for key in states[0]
    }


def split_state(state: Mapping[str, torch.Tensor], members: int) -> list[dict[str, torch.Tensor]]:
    """The fused layout back into one state dict per member (the inverse of ``fused_state``)."""
    split = [{} for _ in range(members)]
    for key, value in state.items():
        parts = [value] * members if value.ndim == 0 else value.chunk(members)
        for member, part in zip(split, parts, strict=True):
            member[key] = part.clone()
    return split


class FusedNetwork(Network):
    """K same-shaped ``Network``s (plain and option-A ResNets may mix) computed as one; logits (K, batch, classes).

    The structure and state-dict keys are those of the members (``Network.forward`` runs unchanged), with each
    tensor K times longer along dim 0. A (batch, 3, H, W) input is shared by all members, as a pair's is.
    """

    def __init__(self, members: Sequence[Network]) -> None:
        problem = fusion_problem(members)
        if problem:
            raise ValueError(problem)
        nn.Module.__init__(self)
        k = len(members)
        residual = [m.shortcut is not None for m in members]
        template = copy.deepcopy(members[residual.index(True)] if any(residual) else members[0])
        for name in ("spec", "layers", *NETWORK_FIELDS):
            setattr(self, name, getattr(template, name))
        self.zero_init_residual = False
        self.member_archs = tuple(m.arch for m in members)
        self.members = k
        _fuse_modules(template, k)
        for block in template.blocks():
            if block.shortcut is not None and not all(residual):
                _mask_shortcut(block, residual)
        for name, child in template.named_children():
            self.add_module(name, child)
        for name in ("maxpool", "final_bn"):  # optional parts a net without them holds as None, not as a child
            if getattr(template, name) is None:
                setattr(self, name, None)
        self.load_members(members)

    def load_members(self, members: Sequence[Network]) -> None:
        """Copy the members' weights and BN statistics into the fused tensors."""
        self.load_state_dict(fused_state([m.state_dict() for m in members]))

    def split_into(self, members: Sequence[Network]) -> None:
        """Copy the fused weights and BN statistics back into the members."""
        with torch.no_grad():
            for member, state in zip(members, split_state(self.state_dict(), self.members), strict=True):
                member.load_state_dict(state)

    def response_layers(self) -> list[tuple[str, nn.BatchNorm2d]]:
        """Refused: a fused BN mixes the members' channels; probe the members after ``split_into``."""
        raise TypeError("layer responses are per network: split_into() the members and probe each of them")

    def describe(self) -> str:
        return f"fused [{', '.join(f'{a}-{self.depth}' for a in self.member_archs)}] ({self.family})"


def _fuse_modules(module: nn.Module, k: int) -> None:
    """Replace every conv, BN, zero-pad shortcut and classifier below ``module`` by its K-member version."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, FusedConv2d(child, k))
        elif isinstance(child, nn.BatchNorm2d):
            kwargs = {"device": child.weight.device, "dtype": child.weight.dtype}
            setattr(module, name, nn.BatchNorm2d(k * child.num_features, child.eps, child.momentum, **kwargs))
        elif isinstance(child, ZeroPadShortcut):
            setattr(module, name, FusedZeroPad(child, k))
        elif isinstance(child, nn.Linear):
            setattr(module, name, FusedLinear(child, k))
        else:
            _fuse_modules(child, k)


def _mask_shortcut(block: BasicBlock | Bottleneck, residual: Sequence[bool]) -> None:
    channels = block.last_bn().num_features // len(residual)
    plain = torch.tensor([not r for r in residual]).repeat_interleave(channels)
    block.shortcut = MaskedShortcut(block.shortcut, plain.view(1, -1, 1, 1))
