"""`python -m models`: build each of the paper's networks and set our counts beside the expected and printed ones.

Two kinds of reference figure, labelled apart (models/paper.py holds both):

- expected: the exact parameter and multiply-add counts of the paper's architecture (derived from Sec. 3.3, 4.2
  and Table 1). Our counts must equal them (MACs within MACS_RTOL of their rounding); any difference makes the
  exit status 1.
- paper: what the paper itself prints, rounded: Table 6's parameters of the CIFAR-10 ResNets (option A) and
  Table 1's FLOPs (multiply-adds) of the ImageNet nets. Shown for reading only: Table 1's 3.8e9 for ResNet-50 is
  below the exact 3.858e9, so a printed figure is no test of a count.

Two more tables: He et al. 2016b's CIFAR nets (original and pre-activation ResNet-110/164/1001, its printed
"1.7M" and "10.2M"), and the ImageNet-family 18/34 with the 3x3 stem at 64x64 (Tiny-ImageNet's shape).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import NamedTuple

import torch

from .counting import count_macs, count_params
from .network import build_model
from .options import (
    CIFAR_PAPER_DEPTHS,
    FAMILIES,
    IMAGENET_DEPTHS,
    Arch,
    Family,
    Shortcut,
    Stem,
    StrideIn,
    input_shape,
)
from .paper import (
    CIFAR_COUNTS,
    IMAGENET_COUNTS,
    MACS_RTOL,
    PREACT_CIFAR_COUNTS,
    SMALL_STEM,
    SMALL_STEM_CLASSES,
    SMALL_STEM_COUNTS,
    SMALL_STEM_SIDE,
    paper_macs,
    paper_params,
)


class Row(NamedTuple):
    """One network of the listing, by its build arguments."""

    arch: Arch
    depth: int
    family: Family
    shortcut: Shortcut | None
    stride_in: StrideIn = "1x1"
    stem: Stem | None = None
    num_classes: int | None = None

    def build(self):
        return build_model(*self[:5], num_classes=self.num_classes, stem=self.stem)


class Section(NamedTuple):
    """One table of the listing: its title, input shape and nets."""

    family: Family
    title: str
    shape: tuple[int, int, int]
    rows: tuple[Row, ...]
    legend: str = ""


def paper_nets(family: Family) -> Iterator[Row]:
    """The nets with expected counts: CIFAR-10 plain/A/B; ImageNet plain-18/34, 34 A/B/C, B in both strides."""
    if family == "cifar10":
        for depth in CIFAR_PAPER_DEPTHS:
            yield Row("plain", depth, family, None)
            yield Row("resnet", depth, family, "A")
            yield Row("resnet", depth, family, "B")
        return
    yield Row("plain", 18, family, None)
    yield Row("resnet", 18, family, "B")
    yield Row("plain", 34, family, None)
    for shortcut in ("A", "B", "C"):
        yield Row("resnet", 34, family, shortcut)
    for depth in IMAGENET_DEPTHS[2:]:
        for stride_in in ("1x1", "3x3"):
            yield Row("resnet", depth, family, "B", stride_in)


def preact_nets() -> Iterator[Row]:
    """He et al. 2016b's CIFAR-10 nets: original and pre-activation ResNet-110 (A), -164 and -1001 (bottlenecks, B)."""
    for depth in PREACT_CIFAR_COUNTS:
        shortcut = "A" if depth == 110 else "B"
        if depth != 110:
            yield Row("resnet", depth, "cifar10", shortcut)
        yield Row("preact", depth, "cifar10", shortcut)


def small_stem_nets() -> Iterator[Row]:
    """Plain and ResNet (option A) 18/34 of the ImageNet family with the 3x3 stem, for 200 classes."""
    for depth in SMALL_STEM_COUNTS:
        for arch in ("plain", "resnet"):
            yield Row(arch, depth, "imagenet", None if arch == "plain" else "A", stem=SMALL_STEM,
                      num_classes=SMALL_STEM_CLASSES)  # fmt: skip


PREACT_NOTE = (
    "2016b's 10.2M for ResNet-1001 is its count without BN's gamma and beta (ours: 10,178,490); the CVPR paper's "
    "Table 6 counts them, as the params column does"
)


def sections() -> tuple[Section, ...]:
    side = SMALL_STEM_SIDE
    return (
        Section("cifar10", "cifar10 at 32x32", input_shape("cifar10"), tuple(paper_nets("cifar10"))),
        Section(
            "cifar10",
            "cifar10 at 32x32, He et al. 2016b (pre-activation; 164 and 1001 are bottleneck nets)",
            input_shape("cifar10"),
            tuple(preact_nets()),
            "expected: exact counts of 2016b's architecture (pre-activation units, final BN-ReLU, bottlenecks at "
            "9n+2); paper: as 2016b prints them (its Table 5)\n" + PREACT_NOTE,
        ),
        Section("imagenet", "imagenet at 224x224", input_shape("imagenet"), tuple(paper_nets("imagenet"))),
        Section(
            "imagenet",
            f"imagenet family at {side}x{side}, stem {SMALL_STEM}, {SMALL_STEM_CLASSES} classes (Tiny-ImageNet)",
            (3, side, side),
            tuple(small_stem_nets()),
            "expected: exact counts derived as for the paper's nets (no paper has these shapes, so no paper column)",
        ),
    )


def expected_counts(row: Row) -> tuple[int | None, float | None]:
    """The expected exact params and MACs of a row (None where none is derived)."""
    if row.stem == SMALL_STEM and row.family == "imagenet":
        counts = SMALL_STEM_COUNTS.get(row.depth)
        return (None, None) if counts is None else (counts.params, counts.gmacs * 1e9)
    return paper_params(*row[:4]), paper_macs(*row[:5])


def printed_params(row: Row) -> str | None:
    """The parameter count as a paper prints it ("0.85M"): Table 6's CIFAR-10 ResNets with option A, and 2016b's
    pre-activation ResNet-164 and -1001."""
    if row.family != "cifar10":
        return None
    if row.arch == "preact":
        counts = PREACT_CIFAR_COUNTS.get(row.depth)
        return None if counts is None else counts.printed_params
    counts = CIFAR_COUNTS.get(row.depth)
    return counts.table6_params if counts is not None and row.arch == "resnet" and row.shortcut == "A" else None


def printed_macs(row: Row) -> float | None:
    """Table 1's FLOPs (multiply-adds) of the row's depth, for the nets Table 1 describes.

    Those are the ImageNet nets with the stride on the 1x1 conv and no projection beyond option B's; ResNet-34 C
    (Table 3 only) and torchvision's 3x3 stride are not Table 1's nets.
    """
    if row.family != "imagenet" or row.stride_in != "1x1" or row.shortcut == "C" or row.stem is not None:
        return None
    return IMAGENET_COUNTS[row.depth].table1_flops


def format_count(value: float | str | None, scale: float, digits: int) -> str:
    """A count in the table's unit; a printed figure as printed; a dash where there is none."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else f"{value / scale:,.{digits}f}"


COLUMNS = "{:<58}{:>12}{:>12}{:>8}{:>10}{:>10}{:>8}  {}"
LEGEND = (
    "expected: exact counts of the paper's architecture (derived from Sec. 3.3, 4.2 and Table 1); "
    "paper: as printed (Table 6 params, Table 1 FLOPs)"
)


def check_section(section: Section) -> bool:
    """Print one table and return whether every count equals its expected count."""
    scale, unit, digits = (1e6, "MMACs", 2) if section.family == "cifar10" else (1e9, "GMACs", 3)
    header = COLUMNS.format("network", "params", "expected", "paper", unit, "expected", "paper", "match")
    print(f"\n{section.title}\n{section.legend or LEGEND}\n{header}\n{'-' * len(header)}")
    all_match = True
    for row in section.rows:
        model = row.build()
        params, macs = count_params(model), count_macs(model, section.shape)
        want_params, want_macs = expected_counts(row)
        match = (want_params is None or params == want_params) and (
            want_macs is None or abs(macs - want_macs) <= MACS_RTOL * want_macs
        )
        all_match &= match
        printed = printed_macs(row)
        cells = (
            format_count(params, 1, 0),
            format_count(want_params, 1, 0),
            format_count(printed_params(row), 1, 0),
            format_count(macs, scale, digits),
            format_count(want_macs, scale, digits),
            "-" if printed is None else f"{printed / scale:g}",
        )
        print(COLUMNS.format(model.describe(), *cells, "✓" if match else "✗"))
    return all_match


def main(argv: list[str] | None = None) -> int:
    """Print the tables; exit status 1 if any count differs from its expected (exact) count.

    One thread: these batch-1 passes are dominated by per-op overhead, and on a CPU shared with a training run
    multi-threaded OpenMP ops become an order of magnitude slower.
    """
    parser = argparse.ArgumentParser(
        prog="python -m models", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--family", choices=(*FAMILIES, "all"), default="all", help="which family to list")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    families = FAMILIES if args.family == "all" else (args.family,)
    with torch.no_grad():
        results = [check_section(section) for section in sections() if section.family in families]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
