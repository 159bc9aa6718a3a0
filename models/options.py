"""The option values that name a network in this family, and the checks that reject everything else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast, get_args

Arch = Literal["plain", "resnet", "preact"]
Family = Literal["cifar10", "imagenet"]
Shortcut = Literal["A", "B", "C"]
StrideIn = Literal["1x1", "3x3"]
Stem = Literal["7x7", "3x3"]
Norm = Literal["bn", "none"]
Init = Literal["he", "orthogonal", "delta-orthogonal", "fixup", "skipinit"]
Activation = Literal["relu", "tat", "dks"]

ARCHS: tuple[Arch, ...] = get_args(Arch)
FAMILIES: tuple[Family, ...] = get_args(Family)
SHORTCUTS: tuple[Shortcut, ...] = get_args(Shortcut)
STRIDE_INS: tuple[StrideIn, ...] = get_args(StrideIn)
STEMS: tuple[Stem, ...] = get_args(Stem)
NORMS: tuple[Norm, ...] = get_args(Norm)
INITS: tuple[Init, ...] = get_args(Init)
ACTIVATIONS: tuple[Activation, ...] = get_args(Activation)
RESIDUAL_ARCHS: tuple[Arch, ...] = ("resnet", "preact")
"""The archs with shortcuts: what a shortcut weight scales."""

IMAGENET_DEPTHS: tuple[int, ...] = (18, 34, 50, 101, 152)
CIFAR_PAPER_DEPTHS: tuple[int, ...] = (20, 32, 44, 56, 110, 1202)
CIFAR_BOTTLENECK_DEPTHS: tuple[int, ...] = (164, 1001)
"""The CIFAR bottleneck nets of He et al. 2016b ("Identity Mappings in Deep Residual Networks"): 9n+2 layers.
164 is also 6n+2; as those papers use it, it names the bottleneck net (basic blocks: any other 6n+2 depth)."""


def allowed(values: Sequence[object]) -> str:
    """Allowed values as an error message lists them: strings quoted, numbers bare ("'A', 'B', 'C'", "18, 34")."""
    return ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{field} must be one of {allowed(choices)}, got {value!r}")


def validate_arch(arch: object) -> Arch:
    """Return `arch` if it is 'plain', 'resnet' or 'preact' (He et al. 2016b's pre-activation ResNet).

    The CVPR paper compares plain with resnet. A pre-activation net without its shortcuts is the plain net itself
    (each conv is still followed by BN-ReLU, now counted as the next unit's pre-activation), so 'plain' is the
    counterpart of both.
    """
    check_choice("arch", arch, ARCHS)
    return cast(Arch, arch)


def validate_family(family: object) -> Family:
    """Return `family` if it is 'cifar10' or 'imagenet'; the family fixes stem, stages and depths."""
    check_choice("family", family, FAMILIES)
    return cast(Family, family)


def validate_stem(stem: object, family: Family | None = None) -> Stem | None:
    """Return `stem` if it names a stem ('7x7': the ImageNet paper's 7x7/2 conv + 3x3/2 max-pool; '3x3': a 3x3/1
    conv without pooling, the CIFAR stem), or None for the family's own. The CIFAR-family nets have the 3x3 only.
    """
    if stem is not None:
        check_choice("stem", stem, STEMS)
    if stem == "7x7" and family == "cifar10":
        raise ValueError("stem '7x7' applies to the imagenet family; the cifar10-family nets have the 3x3 stem only")
    return cast(Stem | None, stem)


def default_stem(family: Family) -> Stem:
    """The family's stem in the paper: 3x3/1 conv on CIFAR-10 (32 px kept), 7x7/2 conv + max-pool on ImageNet (/4)."""
    return "3x3" if validate_family(family) == "cifar10" else "7x7"


def validate_stride_in(stride_in: object, family: Family | None = None, depth: int | None = None) -> StrideIn:
    """Return `stride_in` if it names the 1x1 (paper) or 3x3 (torchvision) conv of a downsampling bottleneck.

    Given the net's `family` and `depth`, '3x3' is refused where the net has basic blocks, which have no 1x1 conv
    to choose between: a user asking for it must not think it changed anything.
    """
    check_choice("stride_in", stride_in, STRIDE_INS)
    if stride_in != "1x1" and family is not None and depth is not None and not uses_bottleneck(family, depth):
        bottlenecks = allowed(tuple(d for d in IMAGENET_DEPTHS if uses_bottleneck("imagenet", d)))
        raise ValueError(
            f"stride_in {stride_in!r} applies only to bottleneck nets (imagenet depth {bottlenecks}, cifar10 9n+2 "
            f"such as {allowed(CIFAR_BOTTLENECK_DEPTHS)}); "
            f"{family} depth {depth} has basic blocks, so leave stride_in at '1x1'"
        )
    return cast(StrideIn, stride_in)


def validate_shortcut(shortcut: object) -> Shortcut | None:
    """Return `shortcut` if it is one of the paper's options A, B, C, or None (meaning the paper's default)."""
    if shortcut is not None and (not isinstance(shortcut, str) or shortcut not in SHORTCUTS):
        raise ValueError(
            f"shortcut must be one of {allowed(SHORTCUTS)} (or None for the paper's default), got {shortcut!r}"
        )
    return cast(Shortcut | None, shortcut)


def has_depth(family: Family, depth: object) -> bool:
    """Whether the family has a net of this depth (``validate_depth`` accepts it)."""
    try:
        validate_depth(family, depth)
    except ValueError:
        return False
    return True


def validate_depth(family: Family, depth: object) -> int:
    """Return `depth` if the family has it: 6n+2 (basic blocks) or 9n+2 (bottlenecks) on CIFAR-10, one of the five
    ImageNet depths on ImageNet."""
    validate_family(family)
    shown = depth if _is_int(depth) else repr(depth)
    if family == "cifar10":
        if not _is_int(depth) or depth < 8 or ((depth - 2) % 6 != 0 and (depth - 2) % 9 != 0):
            raise ValueError(
                f"depth must be 6n+2 for cifar10 (n >= 1; the paper's depths are {allowed(CIFAR_PAPER_DEPTHS)}), "
                f"or 9n+2 for its bottleneck nets (such as {allowed(CIFAR_BOTTLENECK_DEPTHS)}), got {shown}"
            )
    elif not _is_int(depth) or depth not in IMAGENET_DEPTHS:
        raise ValueError(f"depth must be one of {allowed(IMAGENET_DEPTHS)} for imagenet, got {shown}")
    return cast(int, depth)


def validate_positive(field: str, value: object) -> int:
    """Return `value` if it is an int >= 1; used for width and num_classes."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{field} must be an integer >= 1, got {value!r}")
    return cast(int, value)


def uses_bottleneck(family: Family, depth: int) -> bool:
    """Whether the net is built from bottleneck blocks: ImageNet 50, 101 and 152; on CIFAR-10 He et al. 2016b's
    164 and 1001, and any other 9n+2 depth that is not 6n+2 (the rest of 6n+2 are basic-block nets)."""
    if family == "imagenet":
        return depth >= 50
    return depth in CIFAR_BOTTLENECK_DEPTHS or ((depth - 2) % 6 != 0 and (depth - 2) % 9 == 0)


def cifar_blocks_per_stage(depth: int) -> int:
    """n of a CIFAR-family net: (depth - 2) / 6 basic blocks, or (depth - 2) / 9 bottlenecks, in each of 3 stages."""
    return (depth - 2) // (9 if uses_bottleneck("cifar10", depth) else 6)


def resolve_shortcut(arch: Arch, depth: int, family: Family, shortcut: Shortcut | None) -> Shortcut | None:
    """The shortcut option actually built: None for a plain net, else the given one or the paper's default.

    The paper uses A on CIFAR-10 and for ImageNet 18/34 (Table 2), and B for ImageNet 50/101/152 (Table 3); B too
    for the CIFAR bottleneck nets (164, 1001), as He et al. 2016b's code. The same defaults hold for 'preact'.
    A plain net has no shortcut, so whatever was passed (once validated) resolves to None.
    """
    validate_arch(arch)
    validate_depth(family, depth)
    validate_shortcut(shortcut)
    if arch == "plain":
        return None
    if shortcut is not None:
        return shortcut
    return paper_shortcut(family, depth)


def paper_shortcut(family: str, depth: int) -> Shortcut:
    """The paper's shortcut option for a ResNet: B where blocks are bottlenecks (ImageNet 50+, CIFAR 9n+2), else A."""
    return "B" if uses_bottleneck(family, depth) else "A"


def input_shape(family: Family) -> tuple[int, int, int]:
    """The (channels, height, width) of one image as the paper feeds it: 32x32 CIFAR, 224x224 ImageNet crops."""
    return (3, 32, 32) if validate_family(family) == "cifar10" else (3, 224, 224)


def default_num_classes(family: Family) -> int:
    """The number of classes of the family's dataset: 10 or 1000."""
    return 10 if validate_family(family) == "cifar10" else 1000


def default_width(family: Family) -> int:
    """The first stage's filter count in the paper: 16 on CIFAR-10, 64 on ImageNet."""
    return 16 if validate_family(family) == "cifar10" else 64
