"""A store's comparison: the analysed runs' pairs side by side (plain-N | ResNet-N), the scalars against depth, and a
table of sharpness (top Hessian eigenvalue, trace) and gradient autocorrelation length, into ``<store>/landscape/``.

Everything here is read back from the runs' ``landscape/`` files, so the comparison can be redrawn without
recomputing anything; ``analysis.landscape.section`` links what exists from the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.landscape import figures, layout
from analysis.landscape.harness import atomic_write_text
from analysis.landscape.runner import read_summary
from analysis.landscape.scan import read_rows
from analysis.load import StoreError, load_runs
from analysis.style import FORMATS, savefig

TABLE_COLUMNS = (
    "run",
    "label",
    "arch",
    "depth",
    "shortcut",
    "seed",
    "dataset",
    "recipe",
    "column",
    "group",
    "images",
    "line_bn",
    "initial_loss",
    "final_loss",
    "final_error",
    "line_barrier",
    "top_eigenvalue",
    "top_eigenvalue_residual",
    "min_eigenvalue",
    "eigenvalue_ratio",
    "trace",
    "trace_stderr",
    "autocorrelation_length",
    "autocorrelation_censored",
    "lag1_autocorrelation",
    "surface_nonconvex_fraction",
    "surface_centre_loss",
    "surface_max_loss",
)


def collect(root: str | Path) -> pd.DataFrame:
    """One row per analysed run under ``root`` (it has ``landscape/landscape.json``): identity and scalars."""
    frames = load_runs(root)
    runs = frames.runs
    rows = []
    for _, run in runs.iterrows():
        summary = read_summary(run["path"])
        if summary is None:
            continue
        row = {c: summary.get(c) for c in TABLE_COLUMNS}
        row.update({k: run[k] for k in ("run", "label", "arch", "depth", "shortcut", "seed", "dataset", "recipe")})
        row["path"] = run["path"]
        rows.append(row)
    table = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "path"])
    if table.empty:
        return table
    analysed_before = table["line_bn"].isna() & table["initial_loss"].notna()  # lines from before --line-bn
    table["line_bn"] = table["line_bn"].where(~analysed_before, "running")
    resnet_shortcuts = table.loc[table["arch"] == "resnet", "shortcut"].dropna().unique()
    several = len(resnet_shortcuts) > 1
    table["column"] = [
        "plain" if a == "plain" else ("ResNet " + str(s) if several else "ResNet")
        for a, s in zip(table["arch"], table["shortcut"], strict=True)
    ]
    datasets = table["dataset"].nunique() > 1
    table["group"] = [
        ", ".join(x for x in ((d if datasets else ""), r or "") if x)
        for d, r in zip(table["dataset"], table["recipe"].fillna(""), strict=True)
    ]
    order = table["column"].map(lambda c: (c != "plain", c))
    return (
        table.assign(_order=order)
        .sort_values(["group", "depth", "_order", "seed", "run"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def columns_of(table: pd.DataFrame) -> list[str]:
    return sorted(table["column"].unique(), key=lambda c: (c != "plain", c))


def _pairs(table: pd.DataFrame, file: str) -> list[tuple[str, dict[str, tuple[str, list]]]]:
    """Rows of side-by-side panels: one per (group, depth, seed), a cell per column with that run's rows of
    ``file``."""
    seeds = table["seed"].nunique() > 1
    out = []
    for (group, depth, seed), frame in table.groupby(["group", "depth", "seed"], sort=False, dropna=False):
        label = f"depth {depth}" + (f", seed {seed}" if seeds else "") + (f" ({group})" if group else "")
        cells = {r["column"]: (r["label"], read_rows(layout.run_folder(r["path"]) / file)) for _, r in frame.iterrows()}
        out.append((label, cells))
    return out


def _entries(table: pd.DataFrame, file: str) -> list[dict[str, Any]]:
    return [
        {
            "column": r["column"],
            "arch": r["arch"],
            "depth": r["depth"],
            "label": r["label"],
            "rows": read_rows(layout.run_folder(r["path"]) / file),
        }
        for _, r in table.iterrows()
    ]


def markdown_table(table: pd.DataFrame) -> str:
    """The comparison table as Markdown: one row per run, by depth, plain before ResNet."""

    def num(value: Any, digits: int = 4) -> str:
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "-"
        return f"{value:.{digits}g}"

    lines = []
    for _, r in table.iterrows():
        censored = ">" if r["autocorrelation_censored"] is True else ""
        length = num(r["autocorrelation_length"], 3)
        trace = "-" if pd.isna(r["trace"]) else f"{num(r['trace'])} +- {num(r['trace_stderr'], 2)}"
        lines.append(
            {
                "net": r["label"],
                "depth": r["depth"],
                "images": r["images"],
                "loss": num(r["final_loss"]),
                "error (%)": num(r["final_error"], 3),
                "barrier": num(r["line_barrier"], 3),
                "top eigenvalue": num(r["top_eigenvalue"]),
                "min eigenvalue": num(r["min_eigenvalue"]),
                "trace": trace,
                "autocorr. length": censored + length if length != "-" else "-",
                "lag-1 autocorr.": num(r["lag1_autocorrelation"], 3),
                "non-convex share": num(r["surface_nonconvex_fraction"], 2),
            }
        )
    frame = pd.DataFrame(lines)
    notes = [
        "Training loss (cross-entropy, no weight decay) of the final weights on a fixed subset of the training images, "
        f"un-augmented, {figures.BN_NOTE}. Barrier: how far the loss rises above both ends on the straight line from "
        "the initial to the final weights (0: monotone); along the line, "
        f"{figures.line_bn_note(table['line_bn'].dropna())} (--line-bn).",
        "Top and min eigenvalue: Lanczos on Hessian-vector products; trace: Hutchinson's estimate +- its standard "
        "error. Autocorrelation length: the lag (inputs along a line of the input gradient) where its "
        "autocorrelation first drops below 1/e; '>' if it never does. Non-convex share: negative second "
        "differences of the 2-D slice along its grid lines (0 convex, about 0.5 chaotic).",
    ]
    body = frame.to_markdown(index=False, disable_numparse=True)
    notes_text = "\n".join(f"- {n}" for n in notes)
    judged = "".join(f"- {line}\n" for line in judgements(table))
    judged = f"\n**In words.**\n\n{judged}" if judged else ""
    return f"### Sharpness, barrier and gradient autocorrelation per net\n\n{body}\n\n{notes_text}\n{judged}"


BARRIER_TOLERANCE = 0.01
"""A line whose loss rises less than this above both ends counts as monotone."""
TREND_MARGIN = 1.25
"""The plain nets' change with depth (deepest over shallowest) must differ from every ResNet's by this factor to be
called a difference: one analysis per net gives no measure of noise, so only a clear contrast is named."""


def _trend(means: pd.DataFrame, column: str, value: str) -> tuple[int, int, float, float] | None:
    """Shallowest and deepest depth of one column (plain or a ResNet) and its mean ``value`` at each; None with fewer
    than two depths or a value that is not positive."""
    rows = means[(means["column"] == column) & means[value].notna()].sort_values("depth")
    if len(rows) < 2:
        return None
    first, last = rows.iloc[0], rows.iloc[-1]
    if not (first[value] > 0 and last[value] > 0):  # a ratio of changes needs positive values
        return None
    return int(first["depth"]), int(last["depth"]), float(first[value]), float(last[value])


def _changes(
    of_group: pd.DataFrame, columns: list[str], value: str
) -> tuple[dict[str, tuple[int, int, float, float]], float | None, list[float]]:
    """Each column's trend in ``value`` (``_trend``), the plain nets' change with depth (deepest over shallowest;
    None without a plain trend) and every ResNet column's."""
    trends = {c: t for c in columns if (t := _trend(of_group, c, value))}
    plain = trends["plain"][3] / trends["plain"][2] if "plain" in trends else None
    return trends, plain, [t[3] / t[2] for c, t in trends.items() if c != "plain"]


def judgements(table: pd.DataFrame) -> list[str]:
    """The comparison in words, per group (dataset, recipe): how sharpness and the input gradient's autocorrelation
    change from the shallowest to the deepest net, plain against ResNet (seeds averaged), and which lines from the
    initial to the final weights are not monotone. Numbers only, read the same way for any store."""
    if table.empty:
        return []
    values = ["top_eigenvalue", "autocorrelation_length", "line_barrier"]
    measured = table.assign(  # a censored length is only a lower bound: no ratio is taken from it
        autocorrelation_length=table["autocorrelation_length"].where(~table["autocorrelation_censored"].eq(True))
    )
    means = measured.groupby(["group", "column", "depth"], dropna=False)[values].mean().reset_index()
    sentences = []
    for group, of_group in means.groupby("group", dropna=False, sort=False):
        where = f" ({group})" if isinstance(group, str) and group else ""
        columns = sorted(of_group["column"].unique(), key=lambda c: (c != "plain", c))
        trends, plain, others = _changes(of_group, columns, "top_eigenvalue")
        if plain is not None and others:
            shown = "; ".join(
                f"{c} {t[2]:.3g} at {t[0]} -> {t[3]:.3g} at {t[1]} ({t[3] / t[2]:.2g}x)" for c, t in trends.items()
            )
            sentences.append(
                f"Sharpness{where} (top Hessian eigenvalue, shallowest -> deepest): {shown}: "
                + (
                    (
                        "with depth the plain nets end where the loss curves more sharply than the ResNets' "
                        "(not necessarily at a minimum)"
                    )
                    if plain > TREND_MARGIN * max(others)
                    else f"the plain nets do not sharpen {TREND_MARGIN:g}x more with depth than the ResNets"
                )
                + "."
            )
        trends, plain, others = _changes(of_group, columns, "autocorrelation_length")
        if plain is not None and others:
            shown = "; ".join(f"{c} {t[2]:.3g} -> {t[3]:.3g} lags" for c, t in trends.items())
            sentences.append(
                f"Input-gradient autocorrelation length{where} (shallowest -> deepest): {shown}: "
                + (
                    (
                        "the plain nets' gradients decorrelate faster with depth (the direction of Balduzzi et al. "
                        "2017's shattering; white noise would be a length under 1)"
                    )
                    if plain * TREND_MARGIN < min(others)
                    else f"the plain nets' gradients do not decorrelate {TREND_MARGIN:g}x faster with depth"
                )
                + "."
            )
    rising = table[table["line_barrier"] > BARRIER_TOLERANCE]
    if table["line_barrier"].notna().any():
        if rising.empty:
            sentences.append(
                "Every line from the initial to the final weights falls monotonically (no barrier above "
                f"{BARRIER_TOLERANCE:g})."
            )
        else:
            several_seeds = table.groupby(["group", "label"], dropna=False)["seed"].nunique().max() > 1
            listed = ", ".join(
                f"{r['label']}"
                + (f" seed {r['seed']}" if several_seeds else "")
                + (f" ({r['group']})" if isinstance(r["group"], str) and r["group"] else "")
                + f" {r['line_barrier']:.2g}"
                for _, r in rising.iterrows()
            )
            sentences.append(f"Lines that rise before they fall (barrier): {listed}.")
    return sentences


def write_comparison(root: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``<root>/landscape/``: table.csv, table.md and the side-by-side figures; returns the paths written."""
    table = collect(root)
    if table.empty:
        raise StoreError(f"no analysed runs in {str(root)!r}: run python -m analysis.landscape on it first")
    out = layout.store_folder(root)
    written = []
    csv_path, md_path = out / f"{layout.TABLE}.csv", out / f"{layout.TABLE}.md"
    atomic_write_text(csv_path, table.drop(columns="path").to_csv(index=False))
    atomic_write_text(md_path, markdown_table(table))
    written += [csv_path, md_path]
    columns = columns_of(table)
    images = [int(i) for i in table["images"].dropna()]
    title = figures.store_caption(images)
    drawn = {
        "surfaces": lambda: figures.surfaces_figure(_pairs(table, layout.SURFACE_CSV), columns, title, False),
        "surfaces_3d": lambda: figures.surfaces_figure(_pairs(table, layout.SURFACE_CSV), columns, title, True),
        "lines": lambda: figures.lines_figure(
            _entries(table, layout.LINE_CSV),
            columns,
            figures.store_caption(images, figures.line_bn_note(table["line_bn"].dropna())),
        ),
        "gradients": lambda: figures.gradient_pairs_figure(_pairs(table, layout.GRADIENTS_CSV), columns, title),
        "autocorrelation": lambda: figures.autocorrelation_figure(
            _entries(table, layout.AUTOCORRELATION_CSV), columns, title
        ),
        "depth": lambda: figures.depth_figure(table, title),
    }
    needs = {
        "surfaces": "surface_centre_loss",
        "surfaces_3d": "surface_centre_loss",
        "lines": "final_loss",
        "gradients": "autocorrelation_length",
        "autocorrelation": "autocorrelation_length",
        "depth": "top_eigenvalue",
    }
    for name, draw in drawn.items():
        if table[needs[name]].notna().any():
            written += savefig(draw(), out / name, formats)
        else:
            for fmt in ("png", "pdf", "svg"):
                (out / f"{name}.{fmt}").unlink(missing_ok=True)
    return written


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line of a run's numbers for the terminal."""

    def num(key: str, digits: int = 4) -> str:
        value = summary.get(key)
        return "-" if value is None else f"{value:.{digits}g}"

    censored = ">" if summary.get("autocorrelation_censored") else ""
    return (
        f"{summary['label']:<12} loss {num('final_loss')}  top eigenvalue {num('top_eigenvalue')}  "
        f"trace {num('trace')} +- {num('trace_stderr', 2)}  "
        f"autocorrelation length {censored}{num('autocorrelation_length', 3)}"
    )
