"""Figures of the interventions (issue 22): final training error against depth per intervention, and the alpha dial.

Both read the runs table (finished runs, final training error averaged over seeds, +-1 std bars) and draw one
panel per dataset and recipe; ``depth_table`` and ``alpha_table`` are the frames they draw, so a test or a notebook
can read the numbers behind each line.
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from analysis.interventions import INTERVENTION_COLUMN, intervention_label, reference_mask
from analysis.load import ARCH_ORDER
from analysis.recipes import RECIPE_COLUMN
from analysis.style import RECIPE_MARKERS, NothingToDraw, arch_color, depth_colors, new_figure
from analysis.summary import finished, paper_shortcuts, per_net, with_final_errors

PANEL_KEYS = ["dataset", RECIPE_COLUMN]
TRAIN_LABEL = "final training error (%)"
ALPHA_LABEL = "shortcut weight alpha"
REFERENCE_STYLE = {"linestyle": "-", "linewidth": 2.4, "marker": "o"}
"""The paper's pair: bold solid lines in the plain and ResNet colours."""
REMEDY_STYLE = {"linestyle": "--", "linewidth": 1.4}
"""Every remedy: dashed, a colour and marker of its own."""
REMEDY_PALETTE = "colorblind"


def _final(runs: pd.DataFrame) -> pd.DataFrame:
    data = paper_shortcuts(with_final_errors(finished(runs))).dropna(subset=["train"])
    return data.assign(**{RECIPE_COLUMN: data[RECIPE_COLUMN].fillna("")})


def _panel_title(dataset: str, recipe: str) -> str:
    return f"{dataset} ({recipe})" if recipe else dataset


def depth_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, recipe, intervention and depth: mean, std and count of the final training error over seeds,
    and whether the line is the paper's (``reference``); only panels that hold an intervention."""
    data = _final(runs)
    data = data.assign(reference=reference_mask(data))
    frames = []
    for keys, panel in data.groupby(PANEL_KEYS, sort=True):
        if panel["reference"].all():
            continue
        for name, rows in panel.groupby(INTERVENTION_COLUMN, sort=False):
            stats = per_net(rows, "train")
            stats = stats.assign(intervention=name, reference=bool(rows["reference"].iloc[0]), recipe=keys[1])
            frames.append(stats[[*PANEL_KEYS, INTERVENTION_COLUMN, "arch", "reference", "depth", "mean", "std", "n"]])
    if not frames:
        raise NothingToDraw("no finished intervention runs")
    table = pd.concat(frames, ignore_index=True)
    order = table["arch"].map(ARCH_ORDER).fillna(len(ARCH_ORDER))
    keys = [*PANEL_KEYS, "_remedy", "_arch", INTERVENTION_COLUMN, "depth"]
    table = table.assign(_arch=order, _remedy=~table["reference"]).sort_values(keys)
    return table.drop(columns=["_arch", "_remedy"]).reset_index(drop=True)


def _depth_axis(ax: Axes, depths: list[int]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(depths, [str(int(d)) for d in depths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel(TRAIN_LABEL)
    ax.set_ylim(bottom=0)


def _legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend for every panel: each label once, in the order first drawn."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=3, frameon=False, fontsize="small")


def interventions_by_depth(runs: pd.DataFrame) -> Figure:
    """Final training error against depth, one line per intervention: the paper's plain net and ResNet bold (the
    reference), each remedy dashed; one panel per dataset and recipe that holds an intervention."""
    table = depth_table(runs)
    panels = list(table.groupby(PANEL_KEYS, sort=False))
    remedies = list(dict.fromkeys(table.loc[~table["reference"], INTERVENTION_COLUMN]))
    colors = dict(zip(remedies, sns.color_palette(REMEDY_PALETTE, len(remedies)).as_hex(), strict=True))
    fig, axes = new_figure(1, len(panels), legend_rows=1 + len(colors) // 3)
    for ax, ((dataset, recipe), panel) in zip(axes[0], panels, strict=True):
        for name, line in panel.groupby(INTERVENTION_COLUMN, sort=False):
            if line["reference"].iloc[0]:
                style = {**REFERENCE_STYLE, "color": arch_color(line["arch"].iloc[0])}
            else:
                marker = RECIPE_MARKERS[remedies.index(name) % len(RECIPE_MARKERS)]
                style = {**REMEDY_STYLE, "color": colors[name], "marker": marker}
            yerr = line["std"].fillna(0)
            ax.errorbar(line["depth"], line["mean"], yerr=yerr, capsize=3, label=name, **style)
        _depth_axis(ax, sorted(panel["depth"].unique()))
        ax.set_title(_panel_title(dataset, recipe))
    _legend(fig, list(axes[0]))
    fig.suptitle("Interventions: final training error against depth (the paper's plain net and ResNet bold)")
    return fig


def _dial(row: pd.Series) -> str:
    """The intervention a run's alpha dials: its name with alpha set back to the paper's 1."""
    return intervention_label({**row.to_dict(), "shortcut_weight": 1.0})


def alpha_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, recipe, dial (the intervention but alpha) and depth: the final training error (mean, std and
    count over seeds) at each shortcut weight alpha; only dials where some ResNet has an alpha other than 1."""
    data = _final(runs)
    data = data[data["arch"].isin(["resnet", "preact"])]
    if data.empty:
        raise NothingToDraw("no finished ResNets")
    data = data.assign(dial=data.apply(_dial, axis=1))
    keys = [*PANEL_KEYS, "dial"]
    dialled = data.groupby(keys)["shortcut_weight"].transform(lambda alphas: (alphas != 1.0).any())
    data = data[dialled.astype(bool)]
    if data.empty:
        raise NothingToDraw("no finished ResNet with a shortcut weight alpha other than 1")
    grouped = data.groupby([*keys, "depth", "shortcut_weight"], sort=True)["train"]
    return grouped.agg(mean="mean", std="std", n="size").reset_index()


def alpha_dial(runs: pd.DataFrame) -> Figure:
    """Final training error against the shortcut weight alpha, one line per depth: how much shortcut each depth
    needs (alpha 1 is the paper's ResNet); one panel per dataset, recipe and dial."""
    table = alpha_table(runs)
    panels = list(table.groupby([*PANEL_KEYS, "dial"], sort=False))
    colors = depth_colors(table["depth"].unique(), "resnet")
    fig, axes = new_figure(1, len(panels), legend_rows=1)
    for ax, ((dataset, recipe, dial), panel) in zip(axes[0], panels, strict=True):
        for depth, line in panel.groupby("depth", sort=True):
            ax.errorbar(
                line["shortcut_weight"],
                line["mean"],
                yerr=line["std"].fillna(0),
                color=colors[int(depth)],
                marker="o",
                capsize=3,
                label=f"{int(depth)} layers",
            )
        ax.set_xlabel(ALPHA_LABEL)
        ax.set_ylabel(TRAIN_LABEL)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(bottom=0)
        ax.set_title(f"{dial}, {_panel_title(dataset, recipe)}")
    _legend(fig, list(axes[0]))
    fig.suptitle("The alpha dial: how much shortcut does each depth need?")
    return fig
