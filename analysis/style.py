"""One look for every figure: plain vs residual colour families, a colour per depth, line styles, sizes, saving.

Figures are built on ``matplotlib.figure.Figure`` directly (never pyplot), so nothing depends on a display or on
global figure state, and saving uses the Agg renderer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.colors import Colormap, to_hex
from matplotlib.figure import Figure

FAMILY_CMAP = {"plain": "flare", "resnet": "crest"}
"""Seaborn's perceptually even maps: plain nets warm (orange to plum), ResNets cool (green to dark blue)."""
DEPTH_POSITION = {
    "cifar10": {8: 0.0, 20: 0.12, 32: 0.3, 44: 0.48, 56: 0.64, 110: 0.8, 1202: 1.0},
    "imagenet": {18: 0.15, 34: 0.6, 50: 0.75, 101: 0.88, 152: 1.0},
}
"""Where each depth sits on its family's map (others interpolate in log depth), fixed so colours match everywhere."""
SHORTCUT_SHADE = {"A": 0.3, "B": 0.6, "C": 0.9}
PAPER_COLOR = "black"

TRAIN_STYLE = {"linestyle": "--", "linewidth": 1.1}
"""Figures 1 and 6: training error dashed."""
TEST_STYLE = {"linestyle": "-", "linewidth": 2.2}
"""Figures 1 and 6: test error bold."""
THIN_TRAIN_STYLE = {"linestyle": "-", "linewidth": 0.8}
"""Figure 4: training error thin."""
BOLD_VAL_STYLE = {"linestyle": "-", "linewidth": 2.4}
"""Figure 4: centre-crop validation error bold."""
BAND_ALPHA = 0.18
"""Opacity of the +-1 std band around a mean over seeds (drawn around the bold evaluation curve only)."""
SPARSE_POINTS = 12
"""Evaluation curves with at most this many points get a marker at each point, so their sparsity shows."""

PANEL_SIZE = (4.6, 3.4)
"""Width and height (inches) of one panel; figures are a grid of these plus room for a shared legend."""
DPI = 150
FORMATS = ("png", "pdf")
ERROR_LABEL = "error (%)"


def depth_position(depth: int, family: str = "cifar10") -> float:
    """Where a depth sits in its family's colour map, 0 (shallowest) to 1 (deepest)."""
    anchors = DEPTH_POSITION["imagenet" if family == "imagenet" else "cifar10"]
    return float(np.interp(math.log(depth), np.log(list(anchors)), list(anchors.values())))


def _cmap(arch: str) -> Colormap:
    return sns.color_palette(FAMILY_CMAP[arch], as_cmap=True)


def depth_color(arch: str, depth: int, family: str = "cifar10") -> str:
    """The colour of one net: its arch's hue family, darker with depth."""
    return to_hex(_cmap(arch)(depth_position(depth, family)))


def arch_color(arch: str) -> str:
    """One representative colour per arch, for figures where the x axis is depth."""
    return to_hex(_cmap(arch)(0.6))


def shortcut_color(arch: str, shortcut: str | None) -> str:
    """Plain in its own colour; ResNet shortcuts A, B, C as lighter to darker shades of the residual family."""
    if arch == "plain" or shortcut is None:
        return arch_color("plain")
    return to_hex(_cmap("resnet")(SHORTCUT_SHADE.get(shortcut, 0.6)))


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn's ticks style with a light grid, applied only to the axes created inside the block."""
    with sns.axes_style("ticks", {"axes.grid": True, "grid.color": "0.9", "grid.linestyle": "-"}):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, legend_rows: int = 0, **subplot_kw) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure sized from the panel grid, and its axes as a 2-D array."""
    width, height = PANEL_SIZE
    fig = Figure(figsize=(width * ncols, height * nrows + 0.3 * legend_rows), layout="constrained", dpi=DPI)
    with figure_style():
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def savefig(fig: Figure, path_stem: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``<path_stem>.png`` and ``.pdf`` (or the given formats); returns the paths written."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, format=fmt, dpi=DPI, bbox_inches="tight")
        written.append(path)
    return written
