"""Tables 2, 3 and 6 with our numbers beside the paper's and the difference, as Markdown, CSV and LaTeX; Table 6's
layout on CIFAR-100; and He et al. 2016b's original vs pre-activation ResNets.

Each table function returns a tidy DataFrame, one row per net of the paper's table (Table 6 adds ResNet depths we
trained that the paper did not list), with ``<metric>`` (our mean +- std text), ``<metric>_mean``, ``_std``,
``_paper`` and ``_diff`` (ours minus paper) columns. ``frame.attrs`` holds the title and notes. Where no paper has
a number for a net (every CIFAR-100 net but 2016b's ResNet-164 and -1001), the paper column is empty.

Only finished runs count. On synthetic data the paper column is kept for reference but marked not comparable and
no difference is computed; ImageNet uses the 10-crop test error where the run has it, else the centre-crop
validation error (noted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import ARCH_ORDER, DATA_NAME, pick_dataset, run_label, select, table_name
from analysis.recipes import RECIPE_COLUMN, with_recipe
from analysis.summary import finished, mean_std_text, with_final_errors
from experiments.store import STATUS_FINISHED, error_name
from models.options import default_width, paper_shortcut
from models.paper import (
    CIFAR_COUNTS,
    PREACT_CIFAR_COUNTS,
    RESNET110_CIFAR_RUNS,
    TABLE2,
    TABLE3,
    TABLE6,
    Error,
    Key,
    preact_error,
)

PAPER_DATASETS = {"cifar10", "imagenet"}
RESNET110_KEY: Key = ("resnet", 110, "A")
MISSING = "—"
TEN_CROP = error_name("test10crop_error")
METRIC_HEADERS = {"error": "error (%)", "top1": "top-1 err. (%)", "top5": "top-5 err. (%)"}


def _build(
    runs: pd.DataFrame,
    name: str,
    rows: list[Key],
    paper: dict[Key, Error],
    metrics: dict[str, str],
    title: str,
    family: str | None = None,
    dataset: str | None = None,
    paper_datasets: set[str] = PAPER_DATASETS,
) -> pd.DataFrame:
    """One row per (arch, depth, shortcut) key and recipe group: our mean +- std of each metric over finished seeds,
    the paper's number and the difference. Recipe groups are never averaged together (``analysis.recipes``).

    ``family`` defaults to the table's (CIFAR for Table 6, else ImageNet), ``dataset`` to the one ``pick_dataset``
    chooses; numbers of a dataset outside ``paper_datasets`` are shown beside the paper's but not compared.
    """
    family = family or ("cifar10" if name == "table6" else "imagenet")
    dataset = dataset or pick_dataset(runs, family)
    chosen = select(runs, family, dataset) if dataset else runs.iloc[0:0]
    data = with_final_errors(finished(chosen))
    widths = _other_widths(data, family)
    comparable = dataset in paper_datasets and not widths
    names = _method_names(rows, family)
    records = []
    for arch, depth, shortcut in rows:
        match = data[(data["arch"] == arch) & (data["depth"] == depth)]
        match = match[match["shortcut"].isna()] if arch == "plain" else match[match["shortcut"] == shortcut]
        for recipe in sorted(match[RECIPE_COLUMN].fillna("").unique()) or [""]:
            of_recipe = match[match[RECIPE_COLUMN].fillna("") == recipe]
            record = {"method": with_recipe(names[(arch, depth, shortcut)], recipe), "arch": arch, "depth": depth}
            record.update(shortcut=shortcut, recipe=recipe, seeds=int(of_recipe["run"].nunique()))
            for metric, column in metrics.items():
                values = of_recipe[column].dropna()
                mean, std = (values.mean(), values.std()) if len(values) else (float("nan"), float("nan"))
                error = paper.get((arch, depth, shortcut))
                reference = None if error is None else error.of(metric)
                record[metric] = mean_std_text(mean, std, len(values))
                record[f"{metric}_mean"], record[f"{metric}_std"] = mean, std
                record[f"{metric}_best"] = values.min() if len(values) else float("nan")
                record[f"{metric}_paper"] = reference
                diff_ok = comparable and reference is not None and len(values)
                record[f"{metric}_diff"] = mean - reference if diff_ok else float("nan")
            records.append(record)
    columns = ["method", "arch", "depth", "shortcut", "recipe", "seeds"]
    columns += [f"{m}{suffix}" for m in metrics for suffix in ("", "_mean", "_std", "_best", "_paper", "_diff")]
    frame = pd.DataFrame(records, columns=columns)
    known_as = ", ".join(sorted(set(chosen[DATA_NAME].dropna()))) or dataset
    notes = [f"ours: finished {known_as} runs; mean ± std over seeds where several exist."]
    if dataset is None:
        notes = [f"ours: no {family} runs in this store."]
    if dataset and dataset not in paper_datasets:
        notes.append(
            f"{known_as} data is not the paper's dataset: the paper's numbers are shown for reference only "
            "and no difference is computed."
        )
    if widths:
        paper_width = default_width(family)
        title = f"{title}; our nets have width {widths} (the paper's: {paper_width})"
        notes.append(
            f"our nets start with {widths} filters where the paper's start with {paper_width} (width): they are not "
            "the paper's nets, so no difference is computed."
        )
    if "top5" in metrics and len(data) and data["top5"].isna().all():
        notes.append("ours: no top-5 error was logged for these runs (training logs it for data with many classes).")
    if frame["recipe"].ne("").any():
        notes.append("the store holds several recipes; each row names the setting in which its runs differ.")
    sources = sorted(set(data["top1_source"].dropna()))
    if family == "imagenet" and sources and sources != [TEN_CROP]:
        notes.append(f"ours: {', '.join(sources)}; the paper's Tables 2-3 are {TEN_CROP}.")
    nets = {(arch, depth) for arch, depth, _ in rows}
    listed = [(a, d) in nets for a, d in zip(chosen["arch"], chosen["depth"], strict=True)]
    unfinished = int((chosen.loc[np.array(listed, dtype=bool), "status"] != STATUS_FINISHED).sum())
    if unfinished:
        notes.append(f"{unfinished} unfinished run(s) (running or failed) excluded.")
    frame.attrs.update(name=name, title=title, notes=notes, dataset=dataset, comparable=comparable)
    return frame


def _other_widths(data: pd.DataFrame, family: str) -> str:
    """The first-stage widths of ``data``'s nets where any differs from the paper's ("8", "8, 32"), else ""."""
    widths = sorted({int(w) if pd.notna(w) else default_width(family) for w in data["width"]})
    return ", ".join(map(str, widths)) if set(widths) - {default_width(family)} else ""


def _method_names(rows: list[Key], family: str) -> dict[Key, str]:
    """The paper's row names: the shortcut letter only where a depth has rows with different shortcuts."""
    depths = pd.Series([depth for arch, depth, _ in rows if arch == "resnet"])
    compared = set(depths[depths.duplicated()])
    return {
        (arch, depth, shortcut): table_name(arch, depth, shortcut)
        if depth in compared
        else run_label(arch, depth, shortcut, family)
        for arch, depth, shortcut in rows
    }


def table6(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 6: test error of ResNet-20 ... 1202 (option A), plus any other ResNet depth we trained.

    The paper reports ResNet-110 as "best (mean ± std)" of 5 runs and one run for the other depths, so our mean is
    compared with its 6.61 ± 0.16 and our best seed with its best, 6.43 (``best`` columns).
    """
    runs = runs[runs["dataset"] != "cifar100"]  # CIFAR-100 has its own table: the paper has no number for it
    dataset = pick_dataset(runs, "cifar10")
    keys = list(TABLE6)
    if dataset:
        ours = select(runs, "cifar10", dataset)
        ours = ours[ours["arch"] == "resnet"]
        extra = {("resnet", int(d), s) for d, s in zip(ours["depth"], ours["shortcut"], strict=True)} - set(keys)
        keys = sorted([*keys, *extra], key=lambda k: (k[1], k[2]))
    means = {**TABLE6, RESNET110_KEY: Error(RESNET110_CIFAR_RUNS.mean)}
    title = "Table 6: CIFAR-10 test error (%)"
    if dataset not in (None, "cifar10"):
        name = ", ".join(sorted(set(select(runs, "cifar10", dataset)[DATA_NAME])))
        title = f"Table 6 on {name} data: test error (%), beside the paper's CIFAR-10 numbers"
    frame = _build(runs, "table6", keys, means, {"error": "top1"}, title)
    params = finished(select(runs, "cifar10", dataset)) if dataset else runs.iloc[0:0]
    ours_params = params.groupby(["depth", "shortcut"])["params"].first() if len(params) else {}
    keys = list(zip(frame["depth"], frame["shortcut"], strict=True))
    frame.insert(4, "params", [ours_params.get(key) for key in keys])
    frame.insert(5, "params_paper", [_table6_params(*key) for key in keys])
    frame["error_paper_text"] = [_table6_error_text(*key) for key in keys]
    best_paper = [TABLE6[RESNET110_KEY].top1 if key == RESNET110_KEY[1:] else None for key in keys]
    frame["error_best_paper"] = best_paper
    comparable = frame.attrs["comparable"]
    frame["error_best_diff"] = [
        best - paper if comparable and paper is not None else float("nan")
        for best, paper in zip(frame["error_best"], best_paper, strict=True)
    ]
    return frame


def _table6_params(depth: int, shortcut: str | None) -> str | None:
    counts = CIFAR_COUNTS.get(depth)
    return counts.table6_params if counts is not None and shortcut == "A" else None


def _table6_error_text(depth: int, shortcut: str | None) -> str:
    if ("resnet", depth, shortcut) == RESNET110_KEY:
        runs = RESNET110_CIFAR_RUNS
        return f"{runs.mean:.2f} ± {runs.std:.2f} ({runs.runs} runs)"
    error = TABLE6.get(("resnet", depth, shortcut))
    return MISSING if error is None else f"{error.top1:.2f}"


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 2: ImageNet top-1 error of plain and ResNet (option A) at 18 and 34 layers."""
    return _build(runs, "table2", list(TABLE2), TABLE2, {"top1": "top1"}, "Table 2: ImageNet top-1 error (%)")


def table3(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 3: ImageNet top-1 / top-5 error of plain-34, ResNet-34 A/B/C and ResNet-50/101/152."""
    metrics = {"top1": "top1", "top5": "top5"}
    return _build(runs, "table3", list(TABLE3), TABLE3, metrics, "Table 3: ImageNet top-1 / top-5 error (%)")


def _with_params(frame: pd.DataFrame, runs: pd.DataFrame, printed: Callable[[str, int, str | None], str | None]):
    """Insert our parameter count (from the finished runs) and the printed one after the method columns."""
    params = finished(runs).groupby(["arch", "depth", "shortcut"])["params"].first() if len(runs) else {}
    keys = list(zip(frame["arch"], frame["depth"], frame["shortcut"], strict=True)) if len(frame) else []
    frame.insert(4, "params", [params.get(key) for key in keys])
    frame.insert(5, "params_paper", [printed(*key) for key in keys])
    return frame


def _printed_preact_params(arch: str, depth: int, shortcut: str | None) -> str | None:
    counts = PREACT_CIFAR_COUNTS.get(depth)
    default = shortcut == paper_shortcut("cifar10", depth)
    return counts.printed_params if arch == "preact" and counts is not None and default else None


def _nets_of(runs: pd.DataFrame, archs: tuple[str, ...]) -> list[Key]:
    """Every (arch, depth, shortcut) of ``archs`` in ``runs``, by depth, then arch (original first), then shortcut."""
    nets = runs[runs["arch"].isin(archs)]
    keys = {(a, int(d), s) for a, d, s in zip(nets["arch"], nets["depth"], nets["shortcut"], strict=True)}
    return sorted(keys, key=lambda k: (k[1], ARCH_ORDER[k[0]], k[2] or ""))


def _paper_2016b(dataset: str | None, keys: list[Key]) -> dict[Key, Error]:
    """He et al. 2016b's errors of the nets it trained (default shortcut only), keyed as the table's rows."""
    paper = {}
    for arch, depth, shortcut in keys:
        error = preact_error(dataset or "", arch, depth)
        if error is not None and shortcut == paper_shortcut("cifar10", depth):
            paper[arch, depth, shortcut] = error
    return paper


def table6_cifar100(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 6's layout on CIFAR-100: test error of every ResNet (original and pre-activation) trained on it.

    The CVPR paper reports no CIFAR-100 result, so the paper column holds He et al. 2016b's number where that paper
    trained the net (original and pre-activation ResNet-164 and -1001, its Table 4) and is empty elsewhere.
    """
    ours = select(runs, "cifar10", "cifar100")
    keys = _nets_of(ours, ("resnet", "preact"))
    title = "Table 6 layout on CIFAR-100: test error (%); paper: He et al. 2016b where it has the net"
    frame = _build(
        runs, "table6_cifar100", keys, _paper_2016b("cifar100", keys), {"error": "top1"}, title, "cifar10",
        "cifar100", {"cifar100"},
    )  # fmt: skip
    frame.attrs["notes"].append(
        "the CVPR paper reports no CIFAR-100 error; the paper column is He et al. 2016b's Table 4 "
        "(ResNet-164 and -1001 only), a dash where no paper has the net."
    )
    return _with_params(frame, ours, _printed_preact_params)


def preact(runs: pd.DataFrame) -> pd.DataFrame:
    """He et al. 2016b, Table 4: original vs pre-activation ResNets at each depth trained with ``arch preact``.

    On CIFAR-10 where it has pre-activation runs, else CIFAR-100, else generated data; the paper's numbers are
    2016b's (and the CVPR paper's 6.61 for the original ResNet-110).
    """
    cifar = runs[(runs["family"] == "cifar10") & (runs["arch"] == "preact")]
    present = set(cifar["dataset"].dropna())
    dataset = next((d for d in ("cifar10", "cifar100", "synthetic") if d in present), min(present, default=None))
    if dataset is None:
        keys, chosen = [], runs.iloc[0:0]
    else:
        chosen = select(runs, "cifar10", dataset)
        depths = set(chosen.loc[chosen["arch"] == "preact", "depth"].astype(int))
        defaults = {("resnet", d, paper_shortcut("cifar10", d)) for d in depths}
        keys = sorted(
            {*defaults, *(k for k in _nets_of(chosen, ("resnet", "preact")) if k[1] in depths)},
            key=lambda k: (k[1], ARCH_ORDER[k[0]], k[2] or ""),
        )
    title = f"He et al. 2016b, Table 4: original vs pre-activation ResNets, {dataset or 'CIFAR'} test error (%)"
    frame = _build(
        chosen, "preact", keys, _paper_2016b(dataset, keys), {"error": "top1"}, title, "cifar10", dataset,
        {"cifar10", "cifar100"},
    )  # fmt: skip
    return _with_params(frame, chosen, _printed_preact_params)


TABLES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "table2": table2,
    "table3": table3,
    "table6": table6,
    "table6_cifar100": table6_cifar100,
    "preact": preact,
}


def has_ours(table: pd.DataFrame) -> bool:
    """Whether any row has a number of ours (a table of only paper numbers is not worth writing)."""
    return bool((table["seeds"] > 0).any())


def _text(value: object) -> str:
    return MISSING if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _number(value: float | None, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return MISSING
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _metric_cells(row: pd.Series, metric: str) -> list[str]:
    return [row[metric] or MISSING, _number(row[f"{metric}_paper"]), _number(row[f"{metric}_diff"], signed=True)]


def layout(table: pd.DataFrame) -> pd.DataFrame:
    """The table as the paper lays it out, with ours / paper / difference columns, as display strings."""
    metrics = [m for m in METRIC_HEADERS if m in table.columns]
    if table.attrs.get("name") == "table2":
        return _layout_table2(table)
    headers = ["method"]
    if "params" in table.columns:
        headers += ["# layers", "# params (ours)", "# params (paper)"]
    for metric in metrics:
        name = METRIC_HEADERS[metric]
        headers += [f"{name} ours", f"{name} paper", f"{name} difference"]
    if "error_best_paper" in table.columns:
        headers += ["best of seeds ours", "best paper", "best difference"]
    rows = []
    for _, row in table.iterrows():
        cells = [row["method"]]
        if "params" in table.columns:
            params = f"{row['params'] / 1e6:.3f}M" if pd.notna(row["params"]) else MISSING
            cells += [str(row["depth"]), params, _text(row["params_paper"])]
        for metric in metrics:
            cells += _metric_cells(row, metric)
        if "error_paper_text" in table.columns:
            cells[-2] = row["error_paper_text"]
        if "error_best_paper" in table.columns:
            best = row["error_best"] if row["seeds"] > 1 else float("nan")
            cells += [_number(best), _number(row["error_best_paper"]), _number(row["error_best_diff"], signed=True)]
        rows.append(cells)
    return pd.DataFrame(rows, columns=headers)


def _layout_table2(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for depth in (18, 34):
        cells = [f"{depth} layers"]
        for arch in ("plain", "resnet"):
            cells += _metric_cells(table[(table["depth"] == depth) & (table["arch"] == arch)].iloc[0], "top1")
        rows.append(cells)
    headers = ["", "plain ours", "plain paper", "plain difference", "ResNet ours", "ResNet paper", "ResNet difference"]
    return pd.DataFrame(rows, columns=headers)


def to_markdown(table: pd.DataFrame) -> str:
    """Title, the paper-shaped table, and the notes, as Markdown."""
    notes = "\n".join(f"- {n}" for n in table.attrs.get("notes", []))
    body = layout(table).to_markdown(index=False, disable_numparse=True)
    return f"### {table.attrs.get('title', 'table')}\n\n{body}\n\n{notes}\n"


def to_latex(table: pd.DataFrame) -> str:
    """The paper-shaped table as a LaTeX tabular (booktabs), notes as a comment."""
    shown = layout(table)

    def tex(cell: object) -> str:
        text = str(cell).replace("±", r"$\pm$").replace("—", "--").replace("%", r"\%")
        return text.replace("#", r"\#").replace("_", r"\_")

    lines = [f"% {table.attrs.get('title', '')}", *(f"% {n}" for n in table.attrs.get("notes", []))]
    lines += [r"\begin{tabular}{l" + "r" * (len(shown.columns) - 1) + "}", r"\toprule"]
    lines.append(" & ".join(tex(c) for c in shown.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(tex(c) for c in row) + r" \\" for row in shown.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write_table(table: pd.DataFrame, path_stem: str | Path, latex: bool = False) -> list[Path]:
    """Write ``<stem>.md`` and ``<stem>.csv`` (the tidy numbers), and ``<stem>.tex`` if asked; returns the paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = [stem.with_suffix(".md"), stem.with_suffix(".csv")]
    written[0].write_text(to_markdown(table), encoding="utf-8")
    table.to_csv(written[1], index=False)
    if latex:
        written.append(stem.with_suffix(".tex"))
        written[-1].write_text(to_latex(table), encoding="utf-8")
    return written
