"""`python -m models`: build each of the paper's networks and set our parameter and MAC counts beside PAPER.md's."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import NamedTuple

import torch

from .counting import count_macs, count_params
from .network import build_model
from .options import CIFAR_PAPER_DEPTHS, FAMILIES, IMAGENET_DEPTHS, Arch, Family, Shortcut, StrideIn, input_shape
from .paper import MACS_RTOL, paper_macs, paper_params


class Row(NamedTuple):
    """One network of the listing, by its build arguments."""

    arch: Arch
    depth: int
    family: Family
    shortcut: Shortcut | None
    stride_in: StrideIn = "1x1"


def paper_nets(family: Family) -> Iterator[Row]:
    """The nets PAPER.md gives counts for: CIFAR-10 plain/A/B; ImageNet plain-18/34, 34 A/B/C, B in both strides."""
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


def format_count(value: float | None, scale: float, digits: int) -> str:
    """A count in the table's unit, or a dash where the paper gives none."""
    return "-" if value is None else f"{value / scale:,.{digits}f}"


COLUMNS = "{:<50}{:>13}{:>13}{:>11}{:>11}  {}"


def check_family(family: Family) -> bool:
    """Print the family's table and return whether every count matches the paper."""
    scale, unit, digits = (1e6, "MMACs", 2) if family == "cifar10" else (1e9, "GMACs", 3)
    header = COLUMNS.format("network", "params", "paper", unit, "paper", "match")
    print(f"\n{family} at {'x'.join(map(str, input_shape(family)[1:]))}\n{header}\n{'-' * len(header)}")
    all_match = True
    for row in paper_nets(family):
        model = build_model(*row)
        params, macs = count_params(model), count_macs(model, input_shape(family))
        want_params, want_macs = paper_params(*row[:4]), paper_macs(*row)
        match = (want_params is None or params == want_params) and (
            want_macs is None or abs(macs - want_macs) <= MACS_RTOL * want_macs
        )
        all_match &= match
        cells = (
            format_count(params, 1, 0),
            format_count(want_params, 1, 0),
            format_count(macs, scale, digits),
            format_count(want_macs, scale, digits),
        )
        print(COLUMNS.format(model.describe(), *cells, "✓" if match else "✗"))
    return all_match


def main(argv: list[str] | None = None) -> int:
    """Print the tables; exit status 1 if any count differs from the paper.

    One thread: these batch-1 passes are dominated by per-op overhead, and on a CPU shared with a training run
    multi-threaded OpenMP ops become an order of magnitude slower.
    """
    parser = argparse.ArgumentParser(prog="python -m models", description=__doc__)
    parser.add_argument("--family", choices=(*FAMILIES, "all"), default="all", help="which family to list")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    families = FAMILIES if args.family == "all" else (args.family,)
    with torch.no_grad():
        results = [check_family(family) for family in families]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
