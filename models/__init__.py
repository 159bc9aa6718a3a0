"""Plain and residual networks of He et al. (CVPR 2016) for CIFAR-10 and ImageNet, with counts and the probes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .options import (
    ARCHS,
    CIFAR_PAPER_DEPTHS,
    FAMILIES,
    IMAGENET_DEPTHS,
    SHORTCUTS,
    STRIDE_INS,
    Arch,
    Family,
    Shortcut,
    StrideIn,
    default_num_classes,
    default_width,
    input_shape,
    resolve_shortcut,
    validate_depth,
)
from .spec import NetworkSpec

_LAZY = {
    "count_macs": ".counting",
    "count_params": ".counting",
    "FusedNetwork": ".fused",
    "fusion_problem": ".fused",
    "Network": ".network",
    "build_model": ".network",
    "LayerResponse": ".probe",
    "layer_responses": ".probe",
    "Signal": ".signals",
    "signal_statistics": ".signals",
    "signal_summary": ".signals",
}
"""Names that need torch, imported on first use: ``models.options`` and ``models.paper`` stay torch-free, so the
analysis can read a run store on a machine (or in a process) without torch loaded."""

if TYPE_CHECKING:
    from .counting import count_macs, count_params
    from .fused import FusedNetwork, fusion_problem
    from .network import Network, build_model
    from .probe import LayerResponse, layer_responses
    from .signals import Signal, signal_statistics, signal_summary


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ARCHS",
    "CIFAR_PAPER_DEPTHS",
    "FAMILIES",
    "IMAGENET_DEPTHS",
    "SHORTCUTS",
    "STRIDE_INS",
    "Arch",
    "Family",
    "FusedNetwork",
    "LayerResponse",
    "Network",
    "NetworkSpec",
    "Shortcut",
    "Signal",
    "StrideIn",
    "build_model",
    "count_macs",
    "count_params",
    "default_num_classes",
    "default_width",
    "fusion_problem",
    "input_shape",
    "layer_responses",
    "resolve_shortcut",
    "signal_statistics",
    "signal_summary",
    "validate_depth",
]
