"""One network's options in one frozen object: what ``Network`` builds from and what a run config carries.

Every rule about a network's options is written here once (``NetworkSpec.__post_init__``); the run config's checks
delegate to it, so a bad option reads the same from Python, the CLI and a sweep.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .options import (
    ACTIVATIONS,
    ARCHS,
    INITS,
    NORMS,
    RESIDUAL_ARCHS,
    Activation,
    Arch,
    Family,
    Init,
    Norm,
    Shortcut,
    Stem,
    StrideIn,
    check_choice,
    default_num_classes,
    default_stem,
    default_width,
    resolve_shortcut,
    uses_bottleneck,
    validate_positive,
    validate_stem,
    validate_stride_in,
)

BN_FREE_RESIDUAL_INITS: tuple[Init, ...] = ("fixup", "skipinit")
"""Inits that replace BN in a residual net (Fixup; SkipInit): they need a shortcut and no BN."""
TRANSFORMED_ACTIVATIONS: tuple[Activation, ...] = ("tat", "dks")
"""Activations transformed for a vanilla net (plain, no BN) of a given depth (TAT; DKS)."""
ISOMETRIC_INITS: tuple[Init, ...] = ("delta-orthogonal",)
"""Inits whose convs keep a signal's second moment at every position, as TAT's and DKS's kernel maps assume. A plain
orthogonal 3x3 kernel does not: at a map's border its outer taps meet zero padding, so each conv thins the signal
(a BN-free plain-44 with TAT and orthogonal convs loses a factor of about 500 in forward variance at init on the
demo's data, width 8 and 16; with delta-orthogonal convs only the centre tap is non-zero)."""


def _either(values: tuple[str, ...]) -> str:
    return " or ".join(map(repr, values))


@dataclass(frozen=True)
class NetworkSpec:
    """The options of one network of the family; validated on construction (a bad one: a one-line ValueError).

    ``None`` means the paper's value for the family (shortcut, stem, width, num_classes); ``resolved()`` fills them
    in. The last four fields are the interventions of issue 22; their defaults are the paper's net.
    """

    arch: Arch
    depth: int
    family: Family
    shortcut: Shortcut | None = None  # A/B/C; None: the paper's (A on CIFAR-10 and ImageNet 18/34, B above)
    stride_in: StrideIn = "1x1"  # a downsampling bottleneck's strided conv: the paper's 1x1 or torchvision's 3x3
    width: int | None = None  # first-stage filters; None: 16 (CIFAR-10) or 64 (ImageNet)
    num_classes: int | None = None  # None: 10 or 1000
    zero_init_residual: bool = False  # zero the gamma of each residual branch's last BN (Goyal et al. 2017)
    stem: Stem | None = None  # None: the family's (3x3/1 on CIFAR-10, 7x7/2 + max pool on ImageNet)
    shortcut_weight: float = 1.0  # alpha in relu(alpha * shortcut(x) + F(x)): 1 the paper's block, 0 the plain net
    norm: Norm = "bn"  # the paper's BN after every conv, or none
    init: Init = "he"  # the paper's He (fan-out); orthogonal; delta-orthogonal; fixup or skipinit (BN-free ResNets)
    activation: Activation = "relu"  # ReLU, or its TAT / DKS transformation for a vanilla net of this depth

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        resolve_shortcut(self.arch, self.depth, self.family, self.shortcut)  # arch, family, depth and shortcut
        validate_stride_in(self.stride_in, self.family, self.depth)
        validate_stem(self.stem, self.family)
        for name in ("width", "num_classes"):
            if getattr(self, name) is not None:
                validate_positive(name, getattr(self, name))
        check_choice("norm", self.norm, NORMS)
        check_choice("init", self.init, INITS)
        check_choice("activation", self.activation, ACTIVATIONS)
        self._check_zero_init_residual()
        self._check_shortcut_weight()
        self._check_bn_free_inits()
        self._check_activation()

    def _check_zero_init_residual(self) -> None:
        if not isinstance(self.zero_init_residual, bool):
            raise ValueError(f"zero_init_residual must be True or False, got {self.zero_init_residual!r}")
        if self.zero_init_residual and self.arch == "preact":
            raise ValueError(
                "zero_init_residual zeroes the BN whose output meets the shortcut; a pre-activation unit has none "
                "(its last conv meets the addition), so leave it False for arch 'preact'"
            )
        if self.zero_init_residual and self.norm == "none":
            raise ValueError(
                "zero_init_residual zeroes a BN's gamma, and norm 'none' has no BN: "
                f"use init {_either(BN_FREE_RESIDUAL_INITS)} for a BN-free residual branch that starts at zero"
            )

    def _check_shortcut_weight(self) -> None:
        alpha = self.shortcut_weight
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
            raise ValueError(f"shortcut_weight must be a number in [0, 1], got {alpha!r}")
        if alpha != 1 and self.arch not in RESIDUAL_ARCHS:
            raise ValueError(
                f"shortcut_weight applies only to arch {_either(RESIDUAL_ARCHS)} (arch {self.arch!r} has no "
                f"shortcut), got {alpha!r}"
            )

    def _check_bn_free_inits(self) -> None:
        if self.init not in BN_FREE_RESIDUAL_INITS:
            return
        if self.arch != "resnet" or self.norm != "none":
            raise ValueError(
                f"init {self.init!r} replaces BN in a residual net: it needs arch 'resnet' and norm 'none', "
                f"got arch {self.arch!r} and norm {self.norm!r}"
            )
        if self.shortcut_weight == 0:
            raise ValueError(
                f"init {self.init!r} starts every residual branch at zero, so at shortcut_weight 0 (no shortcut) "
                "each block outputs zero and nothing can train: use a shortcut_weight above 0"
            )

    def _check_activation(self) -> None:
        if self.activation not in TRANSFORMED_ACTIVATIONS:
            return
        if self.arch != "plain" or self.norm != "none":
            raise ValueError(
                f"activation {self.activation!r} transforms the activation of a vanilla net: it needs arch 'plain' "
                f"and norm 'none', got arch {self.arch!r} and norm {self.norm!r}"
            )
        if self.init not in ISOMETRIC_INITS:
            raise ValueError(
                f"activation {self.activation!r} assumes convs that keep a signal's second moment at every "
                f"position: it needs init {_either(ISOMETRIC_INITS)}, got {self.init!r}"
            )
        self._check_transformable()

    def nonlinear_layers(self) -> int:
        """The activations on the net's longest path (the stem's, then one per conv but the last of each block): the
        depth of the chain TAT and DKS transform the activation for."""
        from .network import stage_blocks  # torch: only for a transformed activation

        per_block = 3 if uses_bottleneck(self.family, self.depth) else 2
        return 1 + per_block * sum(stage_blocks(self.family, self.depth))

    def _check_transformable(self) -> None:
        from .transforms import transform_params  # imports dks: only for a transformed activation

        try:
            transform_params(self.activation, self.nonlinear_layers())
        except ValueError as e:
            reason = str(e).split(". ")[0]
            raise ValueError(
                f"activation {self.activation!r} has no transformation for a {self.depth}-layer net "
                f"({self.nonlinear_layers()} activations; dks: {reason}): use a deeper net or activation 'relu'"
            ) from None

    def resolved(self) -> NetworkSpec:
        """The net actually built: shortcut, stem, width and num_classes filled in with the paper's; a plain net's
        shortcut None and zero_init_residual False."""
        return dataclasses.replace(
            self,
            shortcut=resolve_shortcut(self.arch, self.depth, self.family, self.shortcut),
            stem=self.stem or default_stem(self.family),
            width=default_width(self.family) if self.width is None else self.width,
            num_classes=default_num_classes(self.family) if self.num_classes is None else self.num_classes,
            zero_init_residual=self.zero_init_residual and self.arch == "resnet",
        )

    def interventions(self) -> dict[str, Any]:
        """The interventions set off the paper's net, by field name (empty for the paper's nets)."""
        return {name: getattr(self, name) for name in INTERVENTIONS if getattr(self, name) != PAPER[name]}


NETWORK_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(NetworkSpec))
"""Every option of a network, by name: a run config's fields of the same names (``family`` is its dataset's)."""
PAPER: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(NetworkSpec) if f.default is not dataclasses.MISSING
}
"""Each option's default: the paper's value (or None where the paper's depends on the family)."""
INTERVENTIONS: tuple[str, ...] = ("shortcut_weight", "norm", "init", "activation")
"""The options of issue 22 that change the paper's net: the shortcut's weight, normalisation, init, activation."""
