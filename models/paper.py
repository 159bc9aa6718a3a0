"""The numbers of He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), defined once.

Two kinds of number live here, and every name says which:

- printed by the paper: Tables 2, 3, 4 and 6 (errors), Table 1's "FLOPs" (``table1_flops``), Table 6's parameter
  column (``table6_params``), ResNet-110's 5-run mean +- std (Sec. 4.2), and the figures' axis ranges;
- expected, not printed: exact parameter and multiply-add counts derived from the paper's architecture (Sec. 3.3,
  4.2, Table 1): 3x3/1x1 convs without bias, BN gamma and beta counted, fc with bias. ``python -m models`` checks
  our networks against both.

Results are keyed by (arch, depth, shortcut) with shortcut None for plain nets, e.g. TABLE3["plain", 34, None].
MACs are multiply-adds (the paper's "FLOPs").

The pre-activation ResNets come from the follow-up paper, He et al., "Identity Mappings in Deep Residual Networks"
(ECCV 2016, here "2016b"): its CIFAR errors (``PREACT_TABLE``) and printed parameter counts, beside our exact
counts of its nets (``PREACT_CIFAR_COUNTS``, ``CIFAR_BOTTLENECK_COUNTS``). The ImageNet-family nets with the small
3x3 stem at 64 px (``SMALL_STEM_COUNTS``) are this project's shapes, not a paper's: their counts are derived the same
way, for Tiny-ImageNet's 200 classes.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from .options import Arch, Family, Shortcut, Stem, StrideIn, resolve_shortcut, validate_stride_in


class ImageNetCounts(NamedTuple):
    """Option-B parameters and GMACs for each stride placement (expected), and Table 1's FLOPs (printed)."""

    params: int
    gmacs_stride_1x1: float
    gmacs_stride_3x3: float
    table1_flops: float


class Counts(NamedTuple):
    """Parameters and GMACs of one net (expected)."""

    params: int
    gmacs: float


class CifarCounts(NamedTuple):
    """Option-A (= plain) params and MMACs, option-B params (expected), and Table 6's params and error (printed)."""

    params_a: int
    mmacs_a: float
    params_b: int
    table6_params: str
    table6_error: float


class Error(NamedTuple):
    """Top-1 (and where reported top-5) error in percent; for CIFAR-10, top1 is the test error."""

    top1: float
    top5: float | None = None

    def of(self, metric: str) -> float | None:
        """The reported error for ``metric`` ("top1" or "top5")."""
        return self.top5 if metric == "top5" else self.top1


class MeanStd(NamedTuple):
    """An error reported as mean +- std over several runs."""

    mean: float
    std: float
    runs: int


MACS_RTOL = 0.005
"""Relative tolerance for comparing MACs with these rounded figures; ResNet-34 A and B differ by 0.53%."""

Key = tuple[Arch, int, Shortcut | None]
Table = Literal["table2", "table3", "table4", "table6"]

IMAGENET_COUNTS: dict[int, ImageNetCounts] = {
    18: ImageNetCounts(11_689_512, 1.814, 1.814, 1.8e9),
    34: ImageNetCounts(21_797_672, 3.664, 3.664, 3.6e9),
    50: ImageNetCounts(25_557_032, 3.858, 4.089, 3.8e9),
    101: ImageNetCounts(44_549_160, 7.570, 7.801, 7.6e9),
    152: ImageNetCounts(60_192_808, 11.282, 11.514, 11.3e9),
}

RESNET34_COUNTS: dict[Shortcut, Counts] = {
    "A": Counts(21_623_848, 3.644),
    "B": Counts(21_797_672, 3.664),
    "C": Counts(22_716_840, 3.831),
}
RESNET34_C_EXTRA_PROJECTIONS = 13
PLAIN18_PARAMS = 11_515_688

CIFAR_COUNTS: dict[int, CifarCounts] = {
    20: CifarCounts(269_722, 40.55, 272_474, "0.27M", 8.75),
    32: CifarCounts(464_154, 68.86, 466_906, "0.46M", 7.51),
    44: CifarCounts(658_586, 97.17, 661_338, "0.66M", 7.17),
    56: CifarCounts(853_018, 125.49, 855_770, "0.85M", 6.97),
    110: CifarCounts(1_727_962, 252.89, 1_730_714, "1.7M", 6.43),
    1202: CifarCounts(19_421_274, 2829.2, 19_424_026, "19.4M", 7.93),
}
RESNET110_CIFAR_RUNS = MeanStd(6.61, 0.16, 5)


class PreactCounts(NamedTuple):
    """A CIFAR-10 pre-activation net (default shortcut: A for basic units, B for bottlenecks): exact parameters and
    MMACs, the parameters without BN's gamma and beta (expected), and 2016b's printed parameters (None: not printed).
    """

    params: int
    params_without_bn: int
    mmacs: float
    printed_params: str | None


PREACT_CIFAR_COUNTS: dict[int, PreactCounts] = {
    110: PreactCounts(1_727_962, 1_719_866, 252.89, None),
    164: PreactCounts(1_703_258, 1_679_034, 244.50, "1.7M"),
    1001: PreactCounts(10_327_706, 10_178_490, 1487.85, "10.2M"),
}
"""2016b prints 1.7M for ResNet-164 and 10.2M for ResNet-1001 (its Table 5). The latter is our count without BN's
gamma and beta (10,178,490); with them, as the CVPR paper's Table 6 counts ("19.4M" for ResNet-1202), it is
10,327,706, which would print as 10.3M. ResNet-164 is 1.7M either way. Our first unit has no BN of its own (the stem's
BN-ReLU is its pre-activation, as 2016b describes), and projections have no BN."""

CIFAR_BOTTLENECK_COUNTS: dict[int, Counts] = {
    164: Counts(1_704_154, 0.2445),
    1001: Counts(10_328_602, 1.4878),
}
"""The original (post-activation) ResNet-164 and -1001 of 2016b's Table 4, option B: params and GMACs (expected)."""

PreactKey = tuple[str, Arch, int]
PREACT_TABLE: dict[PreactKey, Error] = {
    ("cifar10", "resnet", 110): Error(6.61),
    ("cifar10", "preact", 110): Error(6.37),
    ("cifar10", "resnet", 164): Error(5.93),
    ("cifar10", "preact", 164): Error(5.46),
    ("cifar10", "resnet", 1001): Error(7.61),
    ("cifar10", "preact", 1001): Error(4.92),
    ("cifar100", "resnet", 164): Error(25.16),
    ("cifar100", "preact", 164): Error(24.33),
    ("cifar100", "resnet", 1001): Error(27.82),
    ("cifar100", "preact", 1001): Error(22.71),
}
"""Test error (%) of original and pre-activation ResNets in 2016b's Table 4 (110 and 164 also in its Table 3), keyed
by (dataset, arch, depth); ResNet-110's 6.61 is the CVPR paper's 5-run mean. CIFAR-100 has no other paper number:
the CVPR paper reports none."""

SMALL_STEM_SIDE = 64
SMALL_STEM_CLASSES = 200
SMALL_STEM: Stem = "3x3"
SMALL_STEM_COUNTS: dict[int, Counts] = {
    18: Counts(11_097_608, 2.197),
    34: Counts(21_205_768, 4.613),
}
"""ImageNet-family 18/34 (plain = option A) with the 3x3/1 stem on 64x64 inputs and 200 classes (Tiny-ImageNet):
params and GMACs (expected, derived as the other counts). The stages run at 64, 32, 16 and 8 px, so these nets
cost more than at 224 px with the 7x7/2 stem and max pool (stages at 56 ... 7 px): 2.197 vs 1.814 GMACs at 18."""

TABLE2: dict[Key, Error] = {
    ("plain", 18, None): Error(27.94),
    ("resnet", 18, "A"): Error(27.88),
    ("plain", 34, None): Error(28.54),
    ("resnet", 34, "A"): Error(25.03),
}

TABLE3: dict[Key, Error] = {
    ("plain", 34, None): Error(28.54, 10.02),
    ("resnet", 34, "A"): Error(25.03, 7.76),
    ("resnet", 34, "B"): Error(24.52, 7.46),
    ("resnet", 34, "C"): Error(24.19, 7.40),
    ("resnet", 50, "B"): Error(22.85, 6.71),
    ("resnet", 101, "B"): Error(21.75, 6.05),
    ("resnet", 152, "B"): Error(21.43, 5.71),
}

TABLE4: dict[Key, Error] = {
    ("resnet", 34, "B"): Error(21.84, 5.71),
    ("resnet", 34, "C"): Error(21.53, 5.60),
    ("resnet", 50, "B"): Error(20.74, 5.25),
    ("resnet", 101, "B"): Error(19.87, 4.60),
    ("resnet", 152, "B"): Error(19.38, 4.49),
}

TABLE6: dict[Key, Error] = {
    ("resnet", depth, "A"): Error(counts.table6_error) for depth, counts in CIFAR_COUNTS.items()
}

TABLES: dict[Table, dict[Key, Error]] = {"table2": TABLE2, "table3": TABLE3, "table4": TABLE4, "table6": TABLE6}

FIGURE1_PLAIN_DEPTHS: tuple[int, ...] = (20, 56)
"""Figure 1 (paper): CIFAR-10 plain nets of 20 and 56 layers (training error left, test error right)."""
FIGURE6_DEPTHS: dict[str, tuple[int, ...]] = {
    "plain": (20, 32, 44, 56),
    "resnet": (20, 32, 44, 56, 110),
    "resnet_deep": (110, 1202),
}
"""Figure 6's three panels (paper): plain nets (plain-110 is above 60% error and not drawn), ResNets, ResNet-110 vs
1202."""
FIGURE7_NETS: tuple[tuple[Arch, int], ...] = (
    ("plain", 20),
    ("plain", 56),
    ("resnet", 20),
    ("resnet", 56),
    ("resnet", 110),
)
"""Figure 7 (paper): the nets whose layer responses are drawn."""
CIFAR_FIGURE_ERROR_RANGE: tuple[float, float] = (0.0, 20.0)
"""The error (%) axis of Figures 1 and 6 (paper: all their panels run from 0 to 20). Used where every net ends
inside it; otherwise the axis is our choice, 0 to above the highest value drawn (``analysis.figures.error_range``)."""
IMAGENET_FIGURE_ERROR_RANGE: tuple[float, float] = (20.0, 60.0)
"""The error (%) axis of Figure 4 (paper: 20 to 60), used under the same rule as the CIFAR range."""
# Our choices, not the paper's: the iteration axis in units of 1e4 only for runs of 1e4 iterations or more (the
# paper's runs all are), and Figure 7's std axis from 0 to the largest response (the paper prints no std scale we
# reproduce, and its responses depend on the BN mode and split, which are parameters here).


def lookup(table: Table, arch: Arch, depth: int, shortcut: Shortcut | None = None) -> Error | None:
    """The paper's error for one net in one table, or None where the table has no such row (see ``paper_error``)."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {', '.join(repr(t) for t in TABLES)}, got {table!r}")
    family: Family = "cifar10" if table == "table6" else "imagenet"
    return TABLES[table].get((arch, depth, resolve_shortcut(arch, depth, family, shortcut)))


def paper_error(table: Table, arch: Arch, depth: int, shortcut: Shortcut | None = None) -> Error:
    """The paper's error for one net in one table; shortcut None means the paper's default (A, or B for 50+).

    For example paper_error("table3", "plain", 34).top1 == 28.54 and paper_error("table6", "resnet", 110).top1
    == 6.43 (CIFAR-10 test error; the 5-run mean +- std is RESNET110_CIFAR_RUNS).
    """
    error = lookup(table, arch, depth, shortcut)
    if error is None:
        family: Family = "cifar10" if table == "table6" else "imagenet"
        resolved = resolve_shortcut(arch, depth, family, shortcut)
        listed = ", ".join(f"{a}-{d}" + (f" {s}" if s else "") for a, d, s in TABLES[table])
        raise KeyError(f"{table} has no {arch}-{depth} with shortcut {resolved}; it lists {listed}")
    return error


def preact_error(dataset: str, arch: Arch, depth: int) -> Error | None:
    """2016b's test error of an original ('resnet') or pre-activation ('preact') CIFAR net; None where it has none."""
    return PREACT_TABLE.get((dataset, arch, depth))


def paper_params(arch: Arch, depth: int, family: Family, shortcut: Shortcut | None = None) -> int | None:
    """The expected exact parameter count for a net, or None where none is tabulated here; plain = option A.

    Nets of the paper's stems and 10 / 1000 classes; pre-activation nets with their default shortcut only.
    """
    resolved = resolve_shortcut(arch, depth, family, shortcut) or "A"
    default = resolve_shortcut("resnet", depth, family, None)
    if family == "cifar10" and depth in CIFAR_BOTTLENECK_COUNTS:
        if arch == "preact":
            return PREACT_CIFAR_COUNTS[depth].params if resolved == default else None
        return CIFAR_BOTTLENECK_COUNTS[depth].params if resolved == default else None
    if arch == "preact":
        counts = PREACT_CIFAR_COUNTS.get(depth) if family == "cifar10" else None
        return counts.params if counts is not None and resolved == default else None
    if family == "cifar10":
        counts = CIFAR_COUNTS.get(depth)
        if counts is None or resolved == "C":
            return None
        return counts.params_a if resolved == "A" else counts.params_b
    if depth == 34:
        return RESNET34_COUNTS[resolved].params
    if resolved == "B":
        return IMAGENET_COUNTS[depth].params
    if depth == 18 and resolved == "A":
        return PLAIN18_PARAMS
    return None


def paper_macs(
    arch: Arch, depth: int, family: Family, shortcut: Shortcut | None = None, stride_in: StrideIn = "1x1"
) -> float | None:
    """The expected multiply-adds for a net at its native input size, or None where none is tabulated here.

    The figures are rounded (to 0.01 MMACs on CIFAR-10, 0.001 GMACs on ImageNet), so compare with a tolerance.
    """
    resolved = resolve_shortcut(arch, depth, family, shortcut) or "A"
    validate_stride_in(stride_in)
    default = resolve_shortcut("resnet", depth, family, None)
    if family == "cifar10" and (arch == "preact" or depth in CIFAR_BOTTLENECK_COUNTS):
        if resolved != default or stride_in != "1x1":
            return None
        if arch == "preact":
            counts = PREACT_CIFAR_COUNTS.get(depth)
            return None if counts is None else counts.mmacs * 1e6
        return CIFAR_BOTTLENECK_COUNTS[depth].gmacs * 1e9
    if arch == "preact":
        return None
    if family == "cifar10":
        counts = CIFAR_COUNTS.get(depth)
        return counts.mmacs_a * 1e6 if counts is not None and resolved == "A" else None
    if depth == 34:
        return RESNET34_COUNTS[resolved].gmacs * 1e9
    if resolved == "B":
        counts = IMAGENET_COUNTS[depth]
        return (counts.gmacs_stride_1x1 if stride_in == "1x1" else counts.gmacs_stride_3x3) * 1e9
    return None
