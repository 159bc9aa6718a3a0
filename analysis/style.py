"""One look for every figure: plain vs residual colour families, a colour per depth, line styles, sizes, saving.

Figures are built on ``matplotlib.figure.Figure`` directly (never pyplot), so nothing depends on a display or on
global figure state, and saving uses the Agg renderer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.colors import Colormap, to_hex, to_rgb
from matplotlib.figure import Figure

FAMILY_CMAP = {"plain": "flare", "resnet": "crest", "preact": "light:#4b2878"}
"""Seaborn's perceptually even maps: plain nets warm (light orange to plum), ResNets cool (light green to dark blue),
pre-activation ResNets light to dark violet; all fall steadily in lightness, so depths stay apart in greyscale too."""
DEPTH_SPAN = (0.08, 1.0)
"""The part of each map that depths spread over, shallowest to deepest (its lightest end is too faint on white)."""
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
RESPONSE_STYLE = {
    "plain": {"linestyle": "--", "linewidth": 1.3, "marker": "x", "markersize": 3},
    "resnet": {"linestyle": "-", "linewidth": 1.5, "marker": "o", "markersize": 2.5},
}
"""Figure 7 draws plain and ResNet nets in one axes: dashed with crosses vs solid with dots, so a plain net and the
ResNet of the same depth (same lightness) stay apart in greyscale."""
RECIPE_MARKERS = ("o", "s", "^", "D", "v", "P")
"""Where a figure holds several recipe groups, each gets a marker (its depth keeps its colour)."""
BAND_ALPHA = 0.18
"""Opacity of the +-1 std band around a mean over seeds (drawn around the bold evaluation curve only)."""
SPARSE_POINTS = 12
"""Evaluation curves with at most this many points get a marker at each point, so their sparsity shows."""


class NothingToDraw(ValueError):
    """The data holds nothing this figure draws; the report says so instead of drawing it (other errors surface)."""


PANEL_SIZE = (4.6, 3.4)
"""Width and height (inches) of one panel; figures are a grid of these plus room for a shared legend."""
DPI = 150
FORMATS = ("png", "pdf")
ERROR_LABEL = "error (%)"


def _cmap(arch: str) -> Colormap:
    return sns.color_palette(FAMILY_CMAP[arch], as_cmap=True)


def depth_colors(depths: Iterable[int], arch: str) -> dict[int, str]:
    """A colour per depth for one arch: the depths present spread evenly over the map by rank, shallow light to deep
    dark, so that neighbouring depths differ as much as the map allows (fixed positions bunched 20/32/44 together).

    Pass every depth a figure draws (both arches' panels), so one depth has one lightness throughout the figure.
    """
    ordered = sorted({int(d) for d in depths})
    positions = np.linspace(*DEPTH_SPAN, len(ordered)) if len(ordered) > 1 else [0.6]
    cmap = _cmap(arch)
    return {depth: to_hex(cmap(float(p))) for depth, p in zip(ordered, positions, strict=True)}


def lightness(color: str) -> float:
    """CIE L* (0 black to 100 white) of a colour: what a greyscale print keeps of it."""
    rgb = np.array(to_rgb(color))
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    luminance = float(linear @ np.array([0.2126, 0.7152, 0.0722]))
    return 116 * luminance ** (1 / 3) - 16 if luminance > 216 / 24389 else 24389 / 27 * luminance


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
