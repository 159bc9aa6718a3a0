"""Checkpoints of a fused pair in the members' layout, so a run resumes with fusion switched on or off.

A fused run holds its weights in ``fused.*`` (``models.FusedNetwork``) and its SGD momentum in one parameter
group. Checkpoints always store ``nets.<member>.*`` and one group per member, as an unfused run does; these
functions convert between the two at save and load time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from models.fused import fused_state, split_state

FUSED = "fused"
NETS = "nets"


def to_member_layout(state: dict[str, torch.Tensor], prefix: str, members: Sequence[str]) -> None:
    """Replace ``<prefix>fused.*`` entries of a module state dict by ``<prefix>nets.<member>.*`` (in place)."""
    head = f"{prefix}{FUSED}."
    fused = {key[len(head) :]: state.pop(key) for key in [k for k in state if k.startswith(head)]}
    if not fused:
        return
    for name, member_state in zip(members, split_state(fused, len(members)), strict=True):
        for key, value in member_state.items():
            state[f"{prefix}{NETS}.{name}.{key}"] = value


def to_fused_layout(state: dict[str, torch.Tensor], prefix: str, members: Sequence[str]) -> None:
    """Add ``<prefix>fused.*`` entries built from the members' ``<prefix>nets.<member>.*`` entries (in place)."""
    heads = [f"{prefix}{NETS}.{name}." for name in members]
    keys = [k[len(heads[0]) :] for k in state if k.startswith(heads[0])]
    if not keys or any(f"{prefix}{FUSED}.{k}" in state for k in keys):
        return
    per_member = [{k: state[head + k] for k in keys} for head in heads]
    for key, value in fused_state(per_member).items():
        state[f"{prefix}{FUSED}.{key}"] = value


def _groups(optimizer_state: dict[str, Any]) -> list[str]:
    return [g.get("name") for g in optimizer_state["param_groups"]]


def optimizer_to_fused(optimizer_state: dict[str, Any], members: Sequence[str]) -> dict[str, Any]:
    """An SGD state with one group per member as the fused run's single group (momentum concatenated)."""
    if _groups(optimizer_state) == [FUSED]:
        return optimizer_state
    groups = optimizer_state["param_groups"]
    count = len(groups[0]["params"])
    state = {}
    for i in range(count):
        entries = [optimizer_state["state"].get(g["params"][i]) for g in groups]
        if all(e is not None and e.get("momentum_buffer") is not None for e in entries):
            state[i] = {"momentum_buffer": torch.cat([e["momentum_buffer"] for e in entries])}
    group = {**copy.copy(groups[0]), "params": list(range(count)), "name": FUSED}
    return {"state": state, "param_groups": [group]}


def optimizer_to_members(optimizer_state: dict[str, Any], members: Sequence[str]) -> dict[str, Any]:
    """The fused run's single SGD group as one group per member, in ``members`` order (momentum split)."""
    if _groups(optimizer_state) != [FUSED]:
        return optimizer_state
    (group,) = optimizer_state["param_groups"]
    count = len(group["params"])
    state: dict[int, dict[str, torch.Tensor]] = {}
    for i, pid in enumerate(group["params"]):
        buffer = optimizer_state["state"].get(pid, {}).get("momentum_buffer")
        if buffer is not None:
            for k, part in enumerate(buffer.chunk(len(members))):
                state[k * count + i] = {"momentum_buffer": part.clone()}
    groups = [
        {**copy.copy(group), "params": list(range(k * count, (k + 1) * count)), "name": name}
        for k, name in enumerate(members)
    ]
    return {"state": state, "param_groups": groups}
