"""Figures of the landscape tools: pure functions, data in, ``matplotlib.figure.Figure`` out (never pyplot).

One run: the 1-D interpolation, the 2-D slice (contours and a 3-D surface, as Li et al. draw them), the Hessian's
Ritz values and Hutchinson's trace estimate, and the input gradient along a line with its autocorrelation (as
Balduzzi et al. draw it). A store: the same, plain-N | ResNet-N side by side, and the scalars against depth.
Every title says what the loss is: the training loss on the evaluation images, un-augmented, BN in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from analysis.style import arch_color, depth_colors, new_figure

Rows = Sequence[Mapping[str, float]]
SURFACE_CMAP = "viridis"
LEVELS = 16
BN_NOTE = "BN in eval mode with the run's running statistics"
LINE_BN_NOTES = {
    "recomputed": "BN in eval mode with statistics re-estimated on these images for each point's weights",
    "running": "BN in eval mode with the initial and final running statistics interpolated",
}
"""What BN used along the 1-D line (``--line-bn``): each figure states one of these, or ``BN_NOTE``, never both."""


def line_bn_note(modes: Iterable[str]) -> str:
    """What the BN statistics along the 1-D line(s) were (``--line-bn``), as a figure says it."""
    return "; ".join(LINE_BN_NOTES.get(m, m) for m in sorted(set(modes))) or LINE_BN_NOTES["recomputed"]


def caption(label: str, images: int, bn: str = BN_NOTE) -> str:
    """What every per-run figure shows, in one line (``bn``: what BN normalised with)."""
    return f"{label}: training loss on {images:,} training images, un-augmented; {bn}"


def store_caption(images: Sequence[int], bn: str = BN_NOTE) -> str:
    sizes = sorted(set(images))
    count = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,}-{sizes[-1]:,}"
    return f"training loss on {count} training images, un-augmented; {bn}"


# -- data shaping --------------------------------------------------------------------------------------------------


def surface_grid(rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``alphas``, ``betas`` and the loss grid ``Z[i, j]`` (NaN where a point is missing) of a surface scan."""
    n = int(max(r["i"] for r in rows)) + 1
    m = int(max(r["j"] for r in rows)) + 1
    alphas, betas, z = np.full(n, np.nan), np.full(m, np.nan), np.full((n, m), np.nan)
    for r in rows:
        i, j = int(r["i"]), int(r["j"])
        alphas[i], betas[j], z[i, j] = r["alpha"], r["beta"], r["loss"]
    return alphas, betas, z


def log_levels(grids: Sequence[np.ndarray]) -> np.ndarray:
    """Contour levels spaced evenly in log loss over the finite, positive values of ``grids`` together."""
    values = np.concatenate([g[np.isfinite(g) & (g > 0)].ravel() for g in grids])
    if values.size == 0:
        return np.geomspace(0.1, 10, LEVELS)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo * (1 + 1e-9):
        hi = lo * 1.01 + 1e-12
    return np.geomspace(lo, hi, LEVELS)


# -- one run ---------------------------------------------------------------------------------------------------------


def line_figure(rows: Rows, title: str) -> Figure:
    """Loss and error along ``(1 - alpha) * initial + alpha * final`` (weights and BN statistics); ``title`` says
    what BN used (``caption`` with a ``LINE_BN_NOTES`` entry)."""
    fig, axes = new_figure(1, 2)
    alpha = [r["alpha"] for r in rows]
    axes[0, 0].plot(alpha, [r["loss"] for r in rows], marker="o", markersize=3, color=arch_color("resnet"))
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylabel("loss")
    axes[0, 1].plot(alpha, [r["error"] for r in rows], marker="o", markersize=3, color=arch_color("plain"))
    axes[0, 1].set_ylabel("error (%)")
    for ax in axes[0]:
        ax.set_xlabel("alpha (0 = initial weights, 1 = final weights)")
    fig.suptitle(f"Linear interpolation\n{title}", fontsize=10)
    return fig


def _contour(ax: Axes, rows: Rows, levels: np.ndarray) -> Any:
    alphas, betas, z = surface_grid(rows)
    masked = np.ma.masked_invalid(np.where(z > 0, z, np.nan))
    norm = LogNorm(levels[0], levels[-1])
    filled = ax.contourf(alphas, betas, masked.T, levels=levels, norm=norm, cmap=SURFACE_CMAP, extend="both")
    ax.contour(alphas, betas, masked.T, levels=levels, norm=norm, colors="k", linewidths=0.4, alpha=0.6)
    ax.plot([0], [0], marker="+", color="white", markersize=8)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_aspect("equal")
    ax.grid(False)
    return filled


def _colorbar(fig: Figure, filled: Any, ax: Axes, levels: np.ndarray) -> None:
    bar = fig.colorbar(filled, ax=ax, label="loss (log scale)", ticks=levels[::3], format=FormatStrFormatter("%.3g"))
    bar.minorticks_off()


def _surface_3d(ax: Axes, rows: Rows, zlim: tuple[float, float]) -> None:
    alphas, betas, z = surface_grid(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        logz = np.log10(np.where(z > 0, z, np.nan))
    a, b = np.meshgrid(alphas, betas, indexing="ij")
    ax.plot_surface(
        a,
        b,
        np.clip(logz, *zlim),
        cmap=SURFACE_CMAP,
        vmin=zlim[0],
        vmax=zlim[1],
        linewidth=0,
        antialiased=True,
        rstride=1,
        cstride=1,
    )
    ax.set_zlim(*zlim)
    for values, set_ticks in ((alphas, ax.set_xticks), (betas, ax.set_yticks)):
        set_ticks([float(values[0]), 0.0, float(values[-1])])
    ax.set_xlabel("direction 1", fontsize=7)
    ax.set_ylabel("direction 2", fontsize=7)
    ax.set_zlabel("log10 loss", fontsize=7)
    ax.tick_params(labelsize=6)


def _to_3d(fig: Figure, ax: Axes) -> Axes:
    spec = ax.get_subplotspec()
    ax.remove()
    return fig.add_subplot(spec, projection="3d")


def _zlim(levels: np.ndarray) -> tuple[float, float]:
    return float(np.log10(levels[0])), float(np.log10(levels[-1]))


def surface_figure(rows: Rows, title: str) -> Figure:
    """The 2-D slice around the final weights along two filter-normalised directions: contours and 3-D."""
    fig, axes = new_figure(1, 2)
    levels = log_levels([surface_grid(rows)[2]])
    filled = _contour(axes[0, 0], rows, levels)
    _colorbar(fig, filled, axes[0, 0], levels)
    _surface_3d(_to_3d(fig, axes[0, 1]), rows, _zlim(levels))
    fig.suptitle(f"2-D slice around the final weights, filter-normalised directions\n{title}", fontsize=10)
    return fig


def curvature_figure(result: Mapping[str, Any], title: str, top: int) -> Figure:
    """Lanczos's Ritz values (the top ``top`` marked) and Hutchinson's running trace estimate."""
    fig, axes = new_figure(1, 2)
    values = np.array(result["ritz_values"])
    residuals = np.array(result["ritz_residuals"])
    ax = axes[0, 0]
    index = np.arange(1, len(values) + 1)
    ax.errorbar(index, values, yerr=residuals, fmt="o", markersize=3, color=arch_color("plain"), label="Ritz value")
    ax.plot(index[:top], values[:top], "o", markersize=6, mfc="none", color="black", label=f"top {top}")
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.set_xlabel("rank")
    ax.set_ylabel("Hessian eigenvalue (Lanczos)")
    ax.legend(fontsize=8)
    samples = np.array(result["hutchinson_samples"])
    ax = axes[0, 1]
    n = np.arange(1, len(samples) + 1)
    running = np.cumsum(samples) / n
    ax.plot(n, samples, ".", color="0.6", label="v^T H v")
    ax.plot(n, running, color=arch_color("resnet"), label="running mean")
    if len(samples) > 1:
        se = np.array([np.std(samples[:k], ddof=1) / math.sqrt(k) if k > 1 else np.nan for k in n])
        ax.fill_between(n, running - se, running + se, color=arch_color("resnet"), alpha=0.2, linewidth=0)
    ax.set_xlabel("Rademacher samples")
    for axis in (axes[0, 0], ax):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("trace estimate")
    ax.legend(fontsize=8)
    trace = f"trace {result['trace']:.4g} +- {result['trace_stderr']:.2g}"
    fig.suptitle(f"Hessian: top eigenvalue {result['top_eigenvalue']:.4g}, {trace}\n{title}", fontsize=10)
    return fig


def _line_trace(rows: Rows, line: int = 0) -> tuple[np.ndarray, np.ndarray]:
    picked = [r for r in rows if int(r["line"]) == line]
    t = np.array([r["t"] for r in picked])
    g = np.array([r["directional"] for r in picked])
    scale = np.abs(g).max() if g.size and np.abs(g).max() > 0 else 1.0
    return t, g / scale


def _autocorrelation(ax: Axes, rows: Rows, color: str, label: str | None = None, band: bool = True) -> None:
    lag = np.array([r["lag"] for r in rows])
    mean = np.array([r["autocorrelation"] for r in rows])
    ax.plot(lag, mean, color=color, label=label, linewidth=1.5)
    if band:
        std = np.array([r["std"] for r in rows])
        ax.fill_between(lag, mean - std, mean + std, color=color, alpha=0.18, linewidth=0)


def _finish_autocorrelation(ax: Axes) -> None:
    ax.axhline(1 / math.e, color="0.4", linestyle=":", linewidth=1)
    ax.axhline(0, color="0.6", linewidth=0.6)
    ax.set_xlabel("lag (inputs along the line)")
    ax.set_ylabel("gradient autocorrelation")


def gradients_figure(trace: Rows, autocorr: Rows, result: Mapping[str, Any], title: str) -> Figure:
    """The input gradient along the first line (Balduzzi et al.'s Fig. 1) and its autocorrelation, mean +- std."""
    fig, axes = new_figure(1, 2)
    t, g = _line_trace(trace)
    axes[0, 0].plot(t, g, color=arch_color("plain"), linewidth=0.9)
    axes[0, 0].set_xlabel("t (input = image a + t (image b - image a))")
    axes[0, 0].set_ylabel("d logit / dt (scaled to max 1)")
    _autocorrelation(axes[0, 1], autocorr, arch_color("resnet"))
    _finish_autocorrelation(axes[0, 1])
    length = result["autocorrelation_length"]
    mark = ">" if result["censored"] else ""
    axes[0, 1].axvline(length, color="black", linewidth=0.8, linestyle="--")
    fig.suptitle(
        f"Shattered gradients: autocorrelation length {mark}{length:.2f} lags ({result['lines']} lines of "
        f"{result['points']} inputs)\n{title}",
        fontsize=10,
    )
    return fig


# -- a store: pairs side by side ---------------------------------------------------------------------------------------


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_axis_off()


def _analysed_cells(
    axes: Any, rows: Sequence[tuple[str, Mapping[str, tuple[str, Rows]]]], columns: Sequence[str]
) -> Iterator[tuple[int, int, str, str, Rows]]:
    """Each analysed cell of a grid of pairs: (row, column index, column, net label, its rows); the axes of a net
    that was not analysed get a note instead."""
    for r, (_, cells) in enumerate(rows):
        for c, column in enumerate(columns):
            if column not in cells or not cells[column][1]:
                _empty(axes[r, c], f"{column}: not analysed")
                continue
            label, data = cells[column]
            yield r, c, column, label, data


def surfaces_figure(
    rows: Sequence[tuple[str, Mapping[str, tuple[str, Rows]]]], columns: Sequence[str], title: str, three_d: bool
) -> Figure:
    """One row per pair (``(row label, {column: (net label, surface rows)})``), plain | ResNet side by side; the
    two nets of a row share contour levels (z range), so their smoothness compares at a glance."""
    fig, axes = new_figure(len(rows), len(columns))
    levels = [log_levels([surface_grid(s)[2] for _, s in cells.values() if s]) for _, cells in rows]
    for r, c, _, label, surface in _analysed_cells(axes, rows, columns):
        ax = axes[r, c]
        if three_d:
            ax = _to_3d(fig, ax)
            _surface_3d(ax, surface, _zlim(levels[r]))
        else:
            filled = _contour(ax, surface, levels[r])
            if c == len(columns) - 1:
                _colorbar(fig, filled, ax, levels[r])
        ax.set_title(label, fontsize=10)
    kind = "3-D surface" if three_d else "contours"
    fig.suptitle(f"Loss around the final weights, filter-normalised directions ({kind})\n{title}", fontsize=10)
    return fig


def gradient_pairs_figure(
    rows: Sequence[tuple[str, Mapping[str, tuple[str, Rows]]]], columns: Sequence[str], title: str
) -> Figure:
    """The input gradient along the same first line, pairs side by side (Balduzzi et al.: white vs brown noise)."""
    fig, axes = new_figure(len(rows), len(columns), sharey=True)
    for r, c, column, label, trace in _analysed_cells(axes, rows, columns):
        t, g = _line_trace(trace)
        axes[r, c].plot(t, g, color=arch_color("plain" if column == "plain" else "resnet"), linewidth=0.9)
        axes[r, c].set_title(label, fontsize=10)
        axes[r, c].set_xlabel("t along the line")
    for r in range(len(rows)):
        axes[r, 0].set_ylabel("d logit / dt (scaled)")
    fig.suptitle(f"Input gradient along a line between two training images\n{title}", fontsize=10)
    return fig


def _by_column(entries: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
    return {c: sorted((e for e in entries if e["column"] == c), key=lambda e: e["depth"]) for c in columns}


def lines_figure(entries: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str) -> Figure:
    """1-D interpolations, one panel per column (plain | ResNet), a colour per depth; ``entries`` hold
    ``column, arch, depth, label, rows``; ``title`` says what BN used (``store_caption`` with ``line_bn_note``)."""
    fig, axes = new_figure(1, len(columns), sharey=True)
    depths = sorted({int(e["depth"]) for e in entries})
    for c, (column, items) in enumerate(_by_column(entries, columns).items()):
        ax = axes[0, c]
        for e in items:
            color = depth_colors(depths, e["arch"])[int(e["depth"])]
            ax.plot([r["alpha"] for r in e["rows"]], [r["loss"] for r in e["rows"]], color=color, label=e["label"])
        ax.set_yscale("log")
        ax.set_xlabel("alpha (0 = initial, 1 = final weights)")
        ax.set_title(column, fontsize=10)
        if items:
            ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("loss")
    fig.suptitle(f"Linear interpolation from initial to final weights\n{title}", fontsize=10)
    return fig


def autocorrelation_figure(entries: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str) -> Figure:
    """Gradient autocorrelation against lag, one panel per column, a colour per depth."""
    fig, axes = new_figure(1, len(columns), sharey=True)
    depths = sorted({int(e["depth"]) for e in entries})
    for c, (column, items) in enumerate(_by_column(entries, columns).items()):
        ax = axes[0, c]
        for e in items:
            color = depth_colors(depths, e["arch"])[int(e["depth"])]
            _autocorrelation(ax, e["rows"], color, e["label"], band=False)
        _finish_autocorrelation(ax)
        ax.set_title(column, fontsize=10)
        if items:
            ax.legend(fontsize=7)
    fig.suptitle(f"Shattered gradients: autocorrelation of the input gradient along a line\n{title}", fontsize=10)
    return fig


DEPTH_PANELS = (
    ("top_eigenvalue", "top Hessian eigenvalue", True),
    ("trace", "Hessian trace (Hutchinson)", True),
    ("autocorrelation_length", "autocorrelation length (lags)", False),
)


def depth_figure(table: pd.DataFrame, title: str) -> Figure:
    """Sharpness and autocorrelation length against depth, one line per column (plain, ResNet) and recipe."""
    fig, axes = new_figure(1, len(DEPTH_PANELS))
    for p, (metric, ylabel, log) in enumerate(DEPTH_PANELS):
        ax = axes[0, p]
        for (column, group), frame in table.groupby(["column", "group"], sort=False, dropna=False):
            frame = frame.dropna(subset=[metric]).sort_values("depth")
            if frame.empty:
                continue
            arch = frame["arch"].iloc[0]
            means = frame.groupby("depth")[metric].mean()
            name = column if not group else f"{column} ({group})"
            ax.plot(
                means.index,
                means.values,
                marker="o",
                color=arch_color(arch),
                label=name,
                linestyle="--" if arch == "plain" else "-",
            )
            ax.plot(frame["depth"], frame[metric], ".", color=arch_color(arch), alpha=0.5)
        if log and (table[metric].dropna() > 0).all() and table[metric].notna().any():
            ax.set_yscale("log")
        ax.set_xlabel("depth")
        ax.set_ylabel(ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"Sharpness and gradient correlation against depth\n{title}", fontsize=10)
    return fig
