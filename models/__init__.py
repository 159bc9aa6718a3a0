"""Plain and residual networks of He et al. (CVPR 2016) for CIFAR-10 and ImageNet, with counts and the probe."""

from .counting import count_macs, count_params
from .fused import FusedNetwork, fusion_problem
from .network import Network, build_model
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
from .probe import LayerResponse, layer_responses

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
    "Shortcut",
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
    "validate_depth",
]
