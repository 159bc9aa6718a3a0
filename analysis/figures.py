"""The paper's figures from the tidy tables: Figure 1 and 6 (CIFAR curves), Figure 4 (ImageNet), Figure 7 (responses).

Each function is pure (a DataFrame in, a ``Figure`` out) and draws whatever subset of nets the data holds. Where
several seeds of a net exist, each line is their mean, and a light band spans +-1 std around the bold curve.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.load import ARCH_ORDER, DATA_NAME, last_responses, run_label, select
from analysis.recipes import RECIPE_COLUMN
from analysis.style import (
    BAND_ALPHA,
    BOLD_VAL_STYLE,
    ERROR_LABEL,
    RECIPE_MARKERS,
    RESPONSE_STYLE,
    SPARSE_POINTS,
    TEST_STYLE,
    THIN_TRAIN_STYLE,
    TRAIN_STYLE,
    NothingToDraw,
    depth_colors,
    new_figure,
)
from analysis.summary import paper_shortcuts
from experiments.store import error_name
from models.paper import (
    CIFAR_FIGURE_ERROR_RANGE,
    FIGURE1_PLAIN_DEPTHS,
    FIGURE6_DEPTHS,
    FIGURE7_NETS,
    IMAGENET_FIGURE_ERROR_RANGE,
)

ITERATIONS_1E4 = 1e4
ZOOM_BELOW = 0.15
"""A panel whose curves stay in the bottom 15% of the shared error range over the last ``ZOOM_LAST`` of training gets
an inset zoomed on them: the range stays shared, as the paper's, and a ResNet band below 10% stays readable (a band
higher up is readable as it is, and an inset there would cover the curves)."""
ZOOM_LAST = 0.5
INSET_BOUNDS = (0.4, 0.3, 0.56, 0.4)
"""Where the inset sits in its panel (axes fractions: left, bottom, width, height): right, below the legend."""


class Look(NamedTuple):
    """How a figure tells its nets apart: a colour per (arch, depth) and a marker per recipe group."""

    colors: dict[tuple[str, int], str]
    markers: dict[str, str | None]


def _nets(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per label (arch, depth, family, recipe, seeds), in the paper's order: plain then ResNet, by depth."""
    nets = frame.groupby("label", sort=False).agg(
        arch=("arch", "first"),
        depth=("depth", "first"),
        family=("family", "first"),
        recipe=(RECIPE_COLUMN, "first"),
        seeds=("run", "nunique"),
    )
    nets["order"] = nets["arch"].map(ARCH_ORDER)
    return nets.sort_values(["order", "depth", "recipe"]).reset_index()


def _palette(frame: pd.DataFrame) -> dict[tuple[str, int], str]:
    """The colour of every (arch, depth) a figure draws, spread over the depths of the whole figure."""
    depths = frame["depth"].dropna().unique()
    return {(arch, d): c for arch in ARCH_ORDER for d, c in depth_colors(depths, arch).items()}


def _markers(frame: pd.DataFrame) -> dict[str, str | None]:
    """A marker per recipe group where the figure holds several (same colour, different recipe), else none."""
    recipes = sorted(frame[RECIPE_COLUMN].fillna("").unique())
    if len(recipes) < 2:
        return {r: None for r in recipes}
    return {r: RECIPE_MARKERS[i % len(RECIPE_MARKERS)] for i, r in enumerate(recipes)}


def _x_axis(curves: pd.DataFrame) -> tuple[str, str]:
    """Iterations in units of 1e4 as in the paper, or plain iterations for runs shorter than 1e4."""
    if not curves.empty and curves["step"].max() >= ITERATIONS_1E4:
        return "iterations_1e4", "iterations (1e4)"
    return "step", "iterations"


def _eval_column(curves: pd.DataFrame, preferred: str, fallback: str) -> str:
    return preferred if curves[preferred].notna().any() or not curves[fallback].notna().any() else fallback


def _stats(group: pd.DataFrame, x: str, column: str) -> pd.DataFrame:
    """Mean and std over seeds of ``column`` at each logged step."""
    data = group[list(dict.fromkeys(["step", x, column]))].dropna(subset=[column])
    return data.groupby("step").agg(x=(x, "first"), mean=(column, "mean"), std=(column, "std")).reset_index()


def _draw_curves(
    ax: Axes,
    curves: pd.DataFrame,
    x: str,
    columns: list[tuple[str, dict]],
    look: Look,
    fig1: bool = False,
    legend: bool = True,
) -> list[float]:
    """Draw each net's mean curve for each (column, style), a seed band around the last (bold) one, and a legend.

    Returns every value drawn (means and band edges), from which the figure's y range is chosen.
    """
    handles, drawn = [], []
    for net in _nets(curves).itertuples():
        group = curves[curves["label"] == net.label]
        color = look.colors[(net.arch, int(net.depth))]
        recipe_marker = look.markers.get(net.recipe or "")
        for i, (column, style) in enumerate(columns):
            stats = _stats(group, x, column)
            if stats.empty:
                continue
            bold = i == len(columns) - 1
            marker = recipe_marker or ("o" if len(stats) <= SPARSE_POINTS and bold else None)
            ax.plot(stats["x"], stats["mean"], color=color, marker=marker, markersize=3, **style)
            drawn += stats["mean"].tolist()
            if net.seeds > 1 and bold:
                spread = stats["std"].fillna(0)
                low, high = stats["mean"] - spread, stats["mean"] + spread
                ax.fill_between(stats["x"], low, high, color=color, alpha=BAND_ALPHA, linewidth=0)
                drawn += high.tolist()
        name = f"{int(net.depth)}-layer" if fig1 else net.label
        handles.append(Line2D([], [], color=color, linewidth=2.2, marker=recipe_marker, label=name))
    if legend:
        ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    return drawn


def error_range(drawn: list[float], finals: list[float], paper: tuple[float, float] | None) -> tuple[float, float]:
    """The y range (error %) of side-by-side panels: the paper's where every final value lies inside it (early
    points above it are cut, as in the paper), else from 0 to a round number above every value drawn (nothing cut).
    """
    if paper is not None and finals and all(paper[0] <= v <= paper[1] for v in finals):
        return paper
    top = max([*drawn, *finals], default=paper[1] if paper else 100.0)
    return 0.0, float(min(100.0, max(10.0, 10 * math.ceil(top / 10))))


def _finish_axes(ax: Axes, curves: pd.DataFrame, x: str, xlabel: str, ylim: tuple[float, float]) -> None:
    """Axis labels, x from 0 to the last iteration, and the figure's shared error range."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ERROR_LABEL)
    ax.set_xlim(0, curves[x].max())
    ax.set_ylim(*ylim)
    ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))


def _final_values(curves: pd.DataFrame, columns: list[str]) -> list[float]:
    """Each net's last mean value of each column: the points a paper range must contain to be used."""
    values = []
    for _, group in curves.groupby("label"):
        for column in columns:
            stats = group.dropna(subset=[column]).groupby("step")[column].mean()
            if not stats.empty:
                values.append(float(stats.iloc[-1]))
    return values


def _style_key(fig: Figure, curves: pd.DataFrame, train: tuple[str, dict], evaluation: tuple[str, dict]) -> None:
    handles = [Line2D([], [], color="0.3", label=label, **style) for label, style in (train, evaluation)]
    if (curves.groupby("label")["run"].nunique() > 1).any():
        handles.append(Patch(color="0.3", alpha=BAND_ALPHA * 2, label="±1 std over seeds (line: mean)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="small")


def _require(frame: pd.DataFrame, what: str) -> None:
    if frame.empty:
        raise NothingToDraw(f"no {what} to draw")


def _left_out_note(left_out: pd.DataFrame, test: str) -> str:
    """Where each net the paper does not draw ended: 'plain-110 not drawn (as in the paper): ends at ...'."""
    notes = []
    for net in _nets(left_out).itertuples():
        group = left_out[left_out["label"] == net.label]
        ends = [
            f"{error_name(column)} {stats['mean'].iloc[-1]:.1f}%"
            for column in ("train_error", test)
            if not (stats := _stats(group, "step", column)).empty
        ]
        notes.append(f"{net.label} not drawn (as in the paper): ends at {', '.join(ends)}")
    return "\n".join(notes)


def fig6(curves: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Figure 6: CIFAR-10 training (dashed) and test (bold) error; panels plain | ResNet | ResNet-110 vs 1202.

    As in the paper, plain nets deeper than its plain panel's deepest (plain-110, above 60% error) are not drawn; a
    note in the panel says where they ended. The third panel appears when a ResNet deeper than 110 exists.
    """
    data = paper_shortcuts(select(curves, "cifar10", dataset))
    _require(data, "CIFAR-family curves")
    test = _eval_column(data, "test_error", "val_error")
    plain, resnet = data[data["arch"] == "plain"], data[data["arch"] == "resnet"]
    left_out = plain[plain["depth"] > max(FIGURE6_DEPTHS["plain"])]
    middle_max, deep_min = max(FIGURE6_DEPTHS["resnet"]), min(FIGURE6_DEPTHS["resnet_deep"])
    panels = [("plain networks", plain.drop(left_out.index)), ("ResNets", resnet[resnet["depth"] <= middle_max])]
    if (resnet["depth"] > middle_max).any():
        deep = resnet[resnet["depth"] >= deep_min]
        panels.append((" vs ".join(_nets(deep)["label"]), deep))
    key = [(error_name("train_error"), TRAIN_STYLE), (error_name(test), TEST_STYLE)]
    fig = _panel_figure(
        data.drop(left_out.index),
        panels,
        [("train_error", TRAIN_STYLE), (test, TEST_STYLE)],
        CIFAR_FIGURE_ERROR_RANGE,
        key,
    )
    if not left_out.empty:
        ax = fig.axes[0]
        ax.text(0.02, 0.02, _left_out_note(left_out, test), transform=ax.transAxes, fontsize="x-small", va="bottom")
    return fig


def _panel_figure(
    data: pd.DataFrame,
    panels: list[tuple[str, pd.DataFrame]],
    columns: list[tuple[str, dict]],
    error_range_of_paper: tuple[float, float],
    key: list[tuple[str, dict]],
) -> Figure:
    """One axes per non-empty (title, frame) panel with the curves of ``columns``, shared x and y ranges, one key."""
    panels = [(title, frame) for title, frame in panels if not frame.empty]
    x, xlabel = _x_axis(data)
    look = Look(_palette(data), _markers(data))
    fig, axes = new_figure(1, len(panels), legend_rows=1)
    drawn = [_draw_curves(ax, frame, x, columns, look) for ax, (_, frame) in zip(axes[0], panels, strict=True)]
    finals = [v for _, frame in panels for v in _final_values(frame, [c for c, _ in columns])]
    ylim = error_range([v for values in drawn for v in values], finals, error_range_of_paper)
    for ax, (title, frame) in zip(axes[0], panels, strict=True):
        _finish_axes(ax, data, x, xlabel, ylim)
        ax.set_title(title)
        _zoom_inset(ax, frame, x, columns, look, ylim)
    _style_key(fig, data, *key)
    return fig


def _zoom_inset(
    ax: Axes, frame: pd.DataFrame, x: str, columns: list[tuple[str, dict]], look: Look, ylim: tuple[float, float]
) -> Axes | None:
    """An inset on the last half of training with its own error range, where the panel's curves spend it in the
    bottom ``ZOOM_BELOW`` of the shared range (a ResNet panel in a thin band under a plain net's range)."""
    late = frame[frame[x] >= frame[x].max() * (1 - ZOOM_LAST)]
    values = late[[c for c, _ in columns]].stack().astype(float)
    if values.empty or values.max() > ylim[0] + ZOOM_BELOW * (ylim[1] - ylim[0]):
        return None
    inset = ax.inset_axes(INSET_BOUNDS)
    _draw_curves(inset, late, x, columns, look, legend=False)
    pad = max(0.5, 0.1 * (values.max() - values.min()))
    inset.set_xlim(late[x].min(), late[x].max())
    inset.set_ylim(max(ylim[0], values.min() - pad), values.max() + pad)
    inset.set_title(f"last {ZOOM_LAST:.0%} of training, zoomed", fontsize="x-small")
    inset.tick_params(labelsize="x-small")
    inset.grid(True, color="0.9")
    ax.indicate_inset_zoom(inset, edgecolor="0.4")
    return inset


def fig1(curves: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Figure 1: training error (left) and test error (right) of plain-20 and plain-56 on CIFAR-10.

    Without both of those depths, the shallowest and the deepest plain net present are drawn.
    """
    plain = select(curves, "cifar10", dataset)
    plain = plain[plain["arch"] == "plain"]
    _require(plain, "plain CIFAR-family curves")
    present = sorted(plain["depth"].unique())
    chosen = FIGURE1_PLAIN_DEPTHS if set(FIGURE1_PLAIN_DEPTHS) <= set(present) else (present[0], present[-1])
    data = plain[plain["depth"].isin(chosen)]
    test = _eval_column(data, "test_error", "val_error")
    x, xlabel = _x_axis(data)
    look = Look(_palette(data), _markers(data))
    fig, axes = new_figure(1, 2)
    columns = ["train_error", test]
    drawn = [
        _draw_curves(ax, data, x, [(column, {"linestyle": "-", "linewidth": 1.8})], look, fig1=True)
        for ax, column in zip(axes[0], columns, strict=True)
    ]
    ylim = error_range([v for d in drawn for v in d], _final_values(data, columns), CIFAR_FIGURE_ERROR_RANGE)
    for ax, column in zip(axes[0], columns, strict=True):
        _finish_axes(ax, data, x, xlabel, ylim)
        ax.set_ylabel(f"{error_name(column)} (%)")
    return fig


def fig4(curves: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Figure 4: ImageNet thin training error and bold centre-crop validation error; panels plain | ResNet.

    Any dataset of the ImageNet-family nets draws (``dataset`` None: ImageNet if present, else the one
    ``analysis.load.pick_dataset`` chooses, such as a folder or generated data, where the bold line is test error).
    """
    data = paper_shortcuts(select(curves, "imagenet", dataset))
    _require(data, "ImageNet-family curves")
    val = _eval_column(data, "val_error", "test_error")
    panels = [(t, data[data["arch"] == a]) for t, a in (("plain networks", "plain"), ("ResNets", "resnet"))]
    key = [(error_name("train_error"), THIN_TRAIN_STYLE), (error_name(val, "imagenet"), BOLD_VAL_STYLE)]
    columns = [("train_error", THIN_TRAIN_STYLE), (val, BOLD_VAL_STYLE)]
    return _panel_figure(data, panels, columns, IMAGENET_FIGURE_ERROR_RANGE, key)


def fig7(
    responses: pd.DataFrame, step: int | str = "last", dataset: str | None = None, labels: list[str] | None = None
) -> Figure:
    """Figure 7: std of each 3x3 conv's BN output, in network order (top) and sorted descending (bottom).

    One column per dataset that has layer responses (CIFAR and ImageNet families alike; ``dataset`` draws one), titled
    with its name as the user knows it. ``labels`` None draws the paper's nets (plain-20/56, ResNet-20/56/110) where
    a dataset holds all of them, else every net it has (the demo's store shows all its nets).
    ``step`` "last" takes each run's last evaluation; several seeds are averaged per layer.
    """
    data = responses if dataset is None else responses[responses["dataset"] == dataset]
    data = last_responses(data) if step == "last" else data[data["step"] == step]
    _require(data, "layer responses")
    by_dataset = data.groupby(["family", "dataset", DATA_NAME], sort=True)  # "cifar10" before "imagenet"
    columns = [_fig7_nets(frame, labels) for _, frame in by_dataset]
    columns = [frame for frame in columns if not frame.empty]
    _require(pd.concat(columns) if columns else data.iloc[0:0], f"layer responses of {', '.join(labels or [])}")
    fig, axes = new_figure(2, len(columns))
    fig.set_size_inches(8.0 * len(columns), 6.4)
    for (top, bottom), frame in zip(axes.T, columns, strict=True):
        _draw_responses(top, bottom, frame)
        top.set_title(str(frame[DATA_NAME].iloc[0]))
    return fig


def _fig7_nets(data: pd.DataFrame, labels: list[str] | None) -> pd.DataFrame:
    """The nets one dataset's column draws: ``labels``, else the paper's five where all are present, else all."""
    if labels is None:
        paper = [run_label(arch, depth) for arch, depth in FIGURE7_NETS]
        if data.loc[data["label"].isin(paper), "label"].nunique() == len(paper):
            labels = paper
    return data if labels is None else data[data["label"].isin(labels)]


def _draw_responses(top: Axes, bottom: Axes, data: pd.DataFrame) -> None:
    """One dataset's nets: responses in network order (``top``) and sorted by magnitude (``bottom``)."""
    look = Look(_palette(data), _markers(data))
    for net in _nets(data).itertuples():
        per_layer = data[data["label"] == net.label].groupby("layer")["std"].mean()
        style = {"color": look.colors[(net.arch, int(net.depth))], "label": net.label, **RESPONSE_STYLE[net.arch]}
        if look.markers.get(net.recipe or ""):
            style["marker"] = look.markers[net.recipe or ""]
        top.plot(per_layer.index, per_layer.to_numpy(), **style)
        ordered = np.sort(per_layer.to_numpy())[::-1]
        bottom.plot(np.arange(1, len(ordered) + 1), ordered, **style)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
