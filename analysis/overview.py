"""Figures beyond the paper: final error against depth (degradation at a glance), and shortcuts A/B/C compared.

Both read the runs table (one row per run) and use finished runs only; each seed is a dot, the line or marker is
the mean over seeds and the bar +-1 std.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from analysis.load import DATA_NAME, select, table_name
from analysis.recipes import RECIPE_COLUMN
from analysis.style import (
    ERROR_LABEL,
    PAPER_COLOR,
    RECIPE_MARKERS,
    NothingToDraw,
    arch_color,
    new_figure,
    shortcut_color,
)
from analysis.summary import finished, paper_shortcuts, per_net, with_final_errors
from experiments.config import family_of
from experiments.store import error_name
from models.paper import lookup

PAPER_TABLE = {"imagenet": "table3", "cifar10": "table6"}
"""Which of the paper's tables holds the numbers beside a dataset's shortcut comparison."""
ARCH_TITLES = {"plain": "plain networks", "resnet": "ResNets"}
TRAIN_MARK = {"linestyle": "--", "marker": "o", "linewidth": 1.2}
TEST_MARK = {"linestyle": "-", "marker": "s", "linewidth": 2.2}


def _names(data: pd.DataFrame) -> str:
    """The one name of the top-1 numbers drawn ("10-crop test error"; several joined where the runs differ)."""
    return " or ".join(sorted(set(data["top1_source"].dropna())))


def degradation_at_a_glance(runs: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Final training (dashed) and test (bold) error against depth: plain nets left, ResNets right, shared y.

    ``dataset`` None picks the CIFAR family's data (real CIFAR-10 before synthetic), else ImageNet.
    """
    family = "cifar10" if dataset is None or family_of(dataset) == "cifar10" else "imagenet"
    data = with_final_errors(finished(select(runs, family, dataset)))
    if data.empty and dataset is None:
        family = "imagenet"
        data = with_final_errors(finished(select(runs, family)))
    if data.empty:
        raise NothingToDraw("no finished runs to draw")
    data = paper_shortcuts(data)
    archs = [a for a in ("plain", "resnet") if (data["arch"] == a).any()]
    fig, axes = new_figure(1, len(archs), legend_rows=1, sharey=True)
    depths = sorted(data["depth"].unique())
    recipes = sorted(data[RECIPE_COLUMN].fillna("").unique())
    for ax, arch in zip(axes[0], archs, strict=True):
        color = arch_color(arch)
        for i, recipe in enumerate(recipes):
            of_recipe = data[(data["arch"] == arch) & (data[RECIPE_COLUMN].fillna("") == recipe)]
            for column, style in (("train", TRAIN_MARK), ("top1", TEST_MARK)):
                stats = per_net(of_recipe, column)
                if stats.empty:
                    continue
                marker = {"marker": RECIPE_MARKERS[i % len(RECIPE_MARKERS)]} if len(recipes) > 1 else {}
                yerr = stats["std"].fillna(0)
                ax.errorbar(stats["depth"], stats["mean"], yerr=yerr, color=color, capsize=3, **{**style, **marker})
                seeds = stats.explode("values")
                ax.scatter(seeds["depth"], seeds["values"].astype(float), color=color, s=12, alpha=0.5, zorder=3)
        ax.set_xscale("log")
        ax.set_xticks(depths, [str(int(d)) for d in depths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel(ERROR_LABEL)
        ax.set_title(ARCH_TITLES[arch])
        ax.set_ylim(bottom=0)
    handles = [
        Line2D([], [], color="0.3", label=f"final {error_name('train_error')}", **TRAIN_MARK),
        Line2D([], [], color="0.3", label=f"final {_names(data)}", **TEST_MARK),
        Line2D([], [], color="0.3", marker="o", linestyle="", alpha=0.5, markersize=4, label="one seed"),
    ]
    if len(recipes) > 1:
        handles += [
            Line2D([], [], color="0.3", marker=RECIPE_MARKERS[i % len(RECIPE_MARKERS)], linestyle="", label=recipe)
            for i, recipe in enumerate(recipes)
        ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize="small")
    fig.suptitle(f"Degradation at a glance ({data[DATA_NAME].iloc[0]})")
    return fig


def _shortcut_data(runs: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
    """Finished runs at depths where ResNets were trained with more than one shortcut option, plus plain nets there."""
    for family in ("imagenet", "cifar10") if dataset is None else (family_of(dataset),):
        data = with_final_errors(finished(select(runs, family, dataset)))
        options = data[data["arch"] == "resnet"].groupby("depth")["shortcut"].nunique()
        depths = options[options > 1].index
        if len(depths):
            return data[data["depth"].isin(depths)]
    raise NothingToDraw("no depth has finished ResNets with more than one shortcut option")


def shortcut_comparison(runs: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Shortcut options A/B/C (and the plain net) at each depth where several were trained; paper values beside.

    Panels: top-1 error, and top-5 where logged. Defaults to ImageNet (Table 3), else the CIFAR family.
    """
    data = _shortcut_data(runs, dataset)
    columns = [c for c in ("top1", "top5") if data[c].notna().any()]
    fig, axes = new_figure(1, len(columns), legend_rows=1)
    shown_paper = False
    for ax, column in zip(axes[0], columns, strict=True):
        stats = per_net(data, column)
        names = [table_name(r.arch, int(r.depth), r.shortcut) for r in stats.itertuples()]
        xs = np.arange(len(stats))
        for x, row in zip(xs, stats.itertuples(), strict=True):
            color = shortcut_color(row.arch, row.shortcut)
            std = 0.0 if pd.isna(row.std) else row.std
            ax.errorbar([x], [row.mean], yerr=[std], color=color, marker="o", markersize=8, capsize=4, linewidth=2)
            ax.scatter([x + 0.12] * len(row.values), row.values, color=color, s=12, alpha=0.5)
            table = PAPER_TABLE.get(row.dataset)
            shortcut = None if pd.isna(row.shortcut) else row.shortcut
            paper = None if table is None else lookup(table, row.arch, int(row.depth), shortcut)
            value = None if paper is None else paper.of(column)
            if value is not None:
                ax.scatter([x - 0.12], [value], color=PAPER_COLOR, marker="D", facecolors="none", s=40, zorder=4)
                shown_paper = True
        ax.set_xticks(xs, names, rotation=20, ha="right")
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylabel(f"{'' if column == 'top1' else 'top-5 '}{_names(data)} (%)")
    handles = [
        Line2D([], [], color="0.3", marker="o", markersize=7, linestyle="", label="ours (mean ± std over seeds)"),
        Line2D([], [], color="0.3", marker="o", linestyle="", alpha=0.5, markersize=4, label="one seed"),
    ]
    if shown_paper:
        handles.append(Line2D([], [], color=PAPER_COLOR, marker="D", fillstyle="none", linestyle="", label="paper"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize="small")
    fig.suptitle(f"Shortcut options ({data[DATA_NAME].iloc[0]})")
    return fig
