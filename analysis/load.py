"""Loaders: a run store, or a W&B sweep, into four tidy DataFrames (runs, curves, layer responses, signals).

The store is read only through ``experiments.store``; the W&B loader maps a sweep onto the same columns (the W&B
keys are the store's column names, prefixed ``plain/`` and ``resnet/`` in a paired run), so every figure and table
works on either source.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from analysis.interventions import RUN_FIELDS, intervention_row, net_label
from analysis.recipes import RECIPE_COLUMN, describe_recipes, with_recipe
from experiments.config import FIELD_NAMES, PAIR_MEMBERS, family_of
from experiments.store import (
    METRIC_COLUMNS,
    RESPONSE_COLUMNS,
    SIGNAL_COLUMNS,
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_RUNNING,
    TEST10CROP_COLUMNS,
    RunDir,
    list_runs,
)
from models.options import paper_shortcut

ERROR_COLUMNS = tuple(c for c in METRIC_COLUMNS if c.endswith("_error"))
FINAL_COLUMNS = tuple(f"final_{c}" for c in (*ERROR_COLUMNS, *TEST10CROP_COLUMNS, "train_loss"))
DATA_NAME = "data_name"
"""The column naming a run's dataset as the user knows it (``data_name``): a folder's own name, else the dataset."""
IDENTITY_COLUMNS = (
    "run", "label", "arch", "depth", "shortcut", "seed", "dataset", DATA_NAME, "family", RECIPE_COLUMN, "status"
)  # fmt: skip
RUN_COLUMNS = (
    "run",
    "path",
    "status",
    "reason",
    *dict.fromkeys((*FIELD_NAMES, *RUN_FIELDS)),
    DATA_NAME,
    "family",
    "label",
    RECIPE_COLUMN,
    "step",
    *FINAL_COLUMNS,
    "params",
    "macs",
    "images_per_s",
    "wall_time_s",
)
CURVE_COLUMNS = (*IDENTITY_COLUMNS, *METRIC_COLUMNS, "iterations_1e4")
RESPONSE_FRAME_COLUMNS = (*IDENTITY_COLUMNS, *RESPONSE_COLUMNS)
SIGNAL_FRAME_COLUMNS = (*IDENTITY_COLUMNS, *SIGNAL_COLUMNS)
ARCH_ORDER = {"plain": 0, "resnet": 1, "preact": 2}
WANDB_STATUS = {
    "finished": STATUS_FINISHED,
    "running": STATUS_RUNNING,
    "crashed": STATUS_FAILED,
    "failed": STATUS_FAILED,
    "killed": STATUS_FAILED,
}
WANDB_STEP_KEYS = ("trainer/global_step", "step", "_step")


class StoreError(ValueError):
    """A run store that cannot be analysed: missing folder or no runs in it."""


class RunFrames(NamedTuple):
    """The four tidy tables: one row per run; per run and logged step; per run, evaluation and layer (responses);
    per run, probe step, statistic and layer (signals: the long format of signals.csv)."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    responses: pd.DataFrame
    signals: pd.DataFrame


@dataclass
class _Record:
    run: str
    path: str
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    status: str = STATUS_RUNNING
    reason: str | None = None
    signals: list[dict[str, Any]] = field(default_factory=list)


def run_label(arch: str, depth: int, shortcut: str | None = None, family: str = "cifar10") -> str:
    """The paper's legend name: "plain-56", "ResNet-56", and "ResNet-34 B" where the shortcut is not the default;
    a pre-activation net (He et al. 2016b) is "pre-act ResNet-164"."""
    if arch == "plain":
        return f"plain-{depth}"
    if arch == "preact":
        return f"pre-act {run_label('resnet', depth, shortcut, family)}"
    if shortcut and shortcut != paper_shortcut(family, depth):
        return f"ResNet-{depth} {shortcut}"
    return f"ResNet-{depth}"


def table_name(arch: str, depth: int, shortcut: str | None = None) -> str:
    """A name that always states the shortcut of a ResNet, as Table 3 does: "plain-34", "ResNet-34 A"."""
    if arch == "preact":
        return f"pre-act {table_name('resnet', depth, shortcut)}"
    return f"plain-{depth}" if arch == "plain" else f"ResNet-{depth} {shortcut or 'A'}"


def data_name(dataset: str | None, data_dir: str | None = None) -> str | None:
    """A dataset as the user knows it: ``dataset folder`` by its folder's name ("flowers", as its runs are named),
    any other dataset by its own name ("cifar10")."""
    if dataset == "folder" and data_dir:
        return Path(str(data_dir)).name or dataset
    return dataset


REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: where a relative runs folder is looked for last (``runs/demo`` is the README's store)."""


def runs_folder(path: str | Path) -> Path:
    """A runs folder as the user meant it: absolute as given; relative from the directory the user started the
    process in (the shell's ``PWD``, which a Jupyter kernel inherits although it runs in the notebook's folder), then
    from the current directory, then from the repository's root. The first that exists wins; else the first.
    """
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    starts = [Path(os.environ["PWD"])] if os.environ.get("PWD") else []
    candidates = [start / path for start in [*starts, Path.cwd(), REPO_ROOT]]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def store_runs(root: str | Path, error: type[Exception] = StoreError) -> list[RunDir]:
    """The run folders under ``root`` (a store, a sweep folder or one run); ``error`` for a missing folder or one
    that holds no run."""
    root = Path(root)
    if not root.is_dir():
        raise error(f"runs folder {str(root)!r} does not exist")
    dirs = list_runs(root)
    if not dirs:
        raise error(f"no runs in {str(root)!r} (a run folder holds config.json or summary.json)")
    return dirs


def load_runs(root: str | Path) -> RunFrames:
    """Read every run under ``root`` (a store, a sweep folder or one run), running and failed ones included."""
    dirs = store_runs(root)
    records = []
    for run in dirs:
        config = run.read_config() or {}
        try:
            summary = run.read_summary()
        except ValueError as e:
            summary, status, reason = {}, STATUS_FAILED, f"unreadable summary.json: {e}"
        else:
            status = summary.get("status", STATUS_RUNNING) if summary else STATUS_RUNNING
            reason = summary.get("reason") if summary else "no summary.json yet"
        metrics, responses, signals = run.read_metrics(), run.read_responses(), run.read_signals()
        records.append(
            _Record(run.name, str(run.path), config, summary or {}, metrics, responses, status, reason, signals)
        )
    return _frames(records)


def load_wandb_sweep(sweep_path: str, api: Any = None) -> RunFrames:
    """Read a W&B sweep ("entity/project/sweep_id") through the public API into the store's tables.

    Needs the user's W&B credentials unless ``api`` is given (tests pass a fake). W&B receives no layer responses
    and only a few scalars of each signal probe, so the responses and signals tables are empty.
    """
    if api is None:
        import wandb

        api = wandb.Api()
    records = [record for run in api.sweep(sweep_path).runs for record in _wandb_records(run)]
    if not records:
        raise StoreError(f"no runs in W&B sweep {sweep_path!r}")
    return _frames(records)


def _wandb_records(run: Any) -> list[_Record]:
    config = {k: _unwrap(v) for k, v in dict(run.config).items() if not k.startswith("_")}
    summary = dict(run.summary.items())
    scan = getattr(run, "scan_history", None)
    history = list(scan()) if scan is not None else run.history(samples=1_000_000, pandas=False)
    state = str(getattr(run, "state", "finished"))
    status = WANDB_STATUS.get(state, STATUS_RUNNING)
    reason = None if status != STATUS_FAILED else f"W&B state {state}"
    name = getattr(run, "name", None) or run.id
    path = getattr(run, "url", None) or "/".join(getattr(run, "path", [name]))
    paired = config.get("arch") == "pair"
    records = []
    for member in PAIR_MEMBERS if paired else ("",):
        prefix = f"{member}/" if paired else ""
        member_config = {**config, "arch": member} if paired else dict(config)
        member_summary = {f"final_{c}": summary.get(prefix + c) for c in (*ERROR_COLUMNS, "train_loss")}
        member_summary.update(status=status, reason=reason, wall_time_s=summary.get("_runtime"))
        metrics = _merge_by_step(_history_row(row, prefix) for row in history)
        run_name = f"{name}/{member}" if paired else name
        records.append(_Record(run_name, path, member_config, member_summary, metrics, [], status, reason))
    return records


def _unwrap(value: Any) -> Any:
    return value["value"] if isinstance(value, Mapping) and "value" in value else value


def _history_row(row: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    step = next((row[k] for k in WANDB_STEP_KEYS if _present(row.get(k))), None)
    values = {c: row.get(prefix + c) for c in METRIC_COLUMNS if c != "step" and _present(row.get(prefix + c))}
    if step is None or not values:
        return None
    return {"step": int(step), **values}


def _merge_by_step(rows: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row is not None:
            merged.setdefault(row["step"], {}).update(row)
    return [merged[s] for s in sorted(merged)]


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _last(rows: list[dict[str, Any]], column: str) -> Any:
    return next((r[column] for r in reversed(rows) if _present(r.get(column))), None)


def _identity(record: _Record) -> dict[str, Any]:
    cfg, summary = record.config, record.summary
    arch, depth = cfg.get("arch", summary.get("arch")), cfg.get("depth", summary.get("depth"))
    dataset = cfg.get("dataset", summary.get("dataset"))
    family = cfg.get("family") or summary.get("family") or family_of(dataset, depth)
    shortcut = cfg.get("shortcut", summary.get("shortcut")) if arch != "plain" else None
    if arch in ("resnet", "preact") and not shortcut and depth is not None:
        shortcut = paper_shortcut(family, int(depth))
    label = run_label(arch, int(depth), shortcut, family) if arch in ARCH_ORDER and depth is not None else record.run
    data_dir = cfg.get("data_dir", summary.get("data_dir"))
    label = net_label(label, cfg)
    return {
        "run": record.run,
        "label": label,
        "arch": arch,
        "depth": depth,
        "shortcut": shortcut,
        "seed": cfg.get("seed", summary.get("seed")),
        "dataset": dataset,
        DATA_NAME: data_name(dataset, data_dir),
        "family": family,
        "status": record.status,
    }


def _run_row(record: _Record, identity: dict[str, Any]) -> dict[str, Any]:
    cfg, summary, metrics = record.config, record.summary, record.metrics
    row = {"run": record.run, "path": record.path, "status": record.status, "reason": record.reason}
    row.update({name: cfg.get(name, summary.get(name)) for name in FIELD_NAMES})
    row.update(intervention_row({**cfg, "arch": identity["arch"]}))
    row.update({k: identity[k] for k in ("arch", "depth", "shortcut", "seed", "dataset", DATA_NAME, "family", "label")})
    row["step"] = summary.get("step", _last(metrics, "step"))
    for column in FINAL_COLUMNS:
        value = summary.get(column)
        row[column] = value if _present(value) else _last(metrics, column.removeprefix("final_"))
    speeds = [r["images_per_s"] for r in metrics if _present(r.get("images_per_s"))]
    row["images_per_s"] = summary.get("images_per_s", sum(speeds) / len(speeds) if speeds else None)
    for name in ("params", "macs", "wall_time_s"):
        row[name] = summary.get(name)
    return row


def _frames(records: Iterable[_Record]) -> RunFrames:
    """Build the four tables from run records (shared by the store and the W&B loaders).

    Labels carry the run's recipe group where a dataset holds several (``analysis.recipes``), so no figure, table
    or verdict averages runs of different recipes as if they were seeds.
    """
    records = list(records)
    identities = [_identity(record) for record in records]
    run_rows = [_run_row(record, identity) for record, identity in zip(records, identities, strict=True)]
    recipes = describe_recipes(pd.DataFrame(run_rows, columns=list(RUN_COLUMNS)))
    for identity, row, recipe in zip(identities, run_rows, recipes, strict=True):
        identity[RECIPE_COLUMN] = row[RECIPE_COLUMN] = recipe
        identity["label"] = row["label"] = with_recipe(identity["label"], recipe)
    curve_rows = [
        {**identity, **m} for record, identity in zip(records, identities, strict=True) for m in record.metrics
    ]
    response_rows = [
        {**identity, **r} for record, identity in zip(records, identities, strict=True) for r in record.responses
    ]
    signal_rows = [
        {**identity, **r} for record, identity in zip(records, identities, strict=True) for r in record.signals
    ]
    runs = _sorted(pd.DataFrame(run_rows, columns=list(RUN_COLUMNS)), ["step"])
    curves = pd.DataFrame(curve_rows, columns=list(CURVE_COLUMNS))
    curves["iterations_1e4"] = curves["step"] / 1e4
    curves = _sorted(curves, ["step"])
    responses = _sorted(pd.DataFrame(response_rows, columns=list(RESPONSE_FRAME_COLUMNS)), ["step", "layer"])
    signals = _sorted(pd.DataFrame(signal_rows, columns=list(SIGNAL_FRAME_COLUMNS)), ["step", "stat", "layer"])
    return RunFrames(runs, curves, responses, signals)


def _sorted(frame: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    order = frame["arch"].map(ARCH_ORDER).fillna(len(ARCH_ORDER))
    keyed = frame.assign(_arch_order=order)
    keys = ["dataset", "_arch_order", "depth", "shortcut", "seed", "run", *then]
    return (
        keyed.sort_values(keys, na_position="first", kind="stable").drop(columns="_arch_order").reset_index(drop=True)
    )


def last_responses(responses: pd.DataFrame) -> pd.DataFrame:
    """Each run's layer responses at its last evaluation (what Figure 7 shows by default)."""
    if responses.empty:
        return responses
    last = responses.groupby("run")["step"].transform("max")
    return responses[responses["step"] == last].reset_index(drop=True)


def pick_dataset(frame: pd.DataFrame, family: str) -> str | None:
    """The dataset a figure of ``family`` draws: real data (cifar10 / imagenet) if present, else synthetic."""
    present = set(frame.loc[frame["family"] == family, "dataset"].dropna())
    for dataset in ("cifar10", "imagenet", "synthetic"):
        if dataset in present:
            return dataset
    return next(iter(sorted(present)), None)


def select(frame: pd.DataFrame, family: str, dataset: str | None = None) -> pd.DataFrame:
    """Rows of one dataset of the family (``dataset`` None: the one ``pick_dataset`` chooses)."""
    dataset = dataset or pick_dataset(frame, family)
    return frame[(frame["family"] == family) & (frame["dataset"] == dataset)]
