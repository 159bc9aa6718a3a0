"""The run store: one directory per run, the contract between training, sweeps and analysis.

Layout of ``runs/<sweep>/<run>/``:

- ``config.json``: the full resolved run config.
- ``metrics.csv``: one row per logged step (``METRIC_COLUMNS``); eval columns are empty between evaluations.
- ``responses.csv``: layer-response std per evaluation point (``RESPONSE_COLUMNS``).
- ``summary.json``: status (running / finished / failed), reason, final numbers, timing, counts, versions.
- ``checkpoints/``: Lightning checkpoints (``step=<N>.ckpt``), ``last.ckpt``, ``model.pt`` and the W&B run id.

Every file is replaced atomically (written to a temporary name, then renamed), so a reader never sees half a
file, even with several writers in one store.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
RESPONSES_FILE = "responses.csv"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"
WANDB_ID_FILE = "wandb_run_id.txt"
MODEL_FILE = "model.pt"

TRAIN_COLUMNS = ("train_error", "train_loss", "lr", "images_per_s")
EVAL_COLUMNS = (
    "val_error",
    "val_top5_error",
    "val_loss",
    "test_error",
    "test_top5_error",
    "test_loss",
)
METRIC_COLUMNS = ("step", "epoch", *TRAIN_COLUMNS, *EVAL_COLUMNS)
RESPONSE_COLUMNS = ("step", "layer", "name", "std")

STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_FAILED = "failed"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> None:
    """Atomically write a JSON object (NaN and inf become null, so the file stays valid JSON)."""
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2, sort_keys=True) + "\n")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _csv_text(columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = list(columns)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read one of the store's CSV files into a list of dicts (empty cells are None)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object written by this module."""
    with Path(path).open(encoding="utf-8") as f:
        return json.load(f)


class RunDir:
    """One run's directory: paths, and the writers and readers of its files."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._metrics: list[dict[str, Any]] | None = None
        self._responses: list[dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def responses_path(self) -> Path:
        return self.path / RESPONSES_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def wandb_id_path(self) -> Path:
        return self.checkpoint_dir / WANDB_ID_FILE

    def exists(self) -> bool:
        return self.summary_path.exists() or self.config_path.exists()

    # -- writing -------------------------------------------------------------------------------------------------

    def write_config(self, config: Mapping[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        atomic_write_json(self.summary_path, summary)

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into summary.json and return the new summary."""
        summary = self.read_summary() or {}
        summary.update(fields)
        self.write_summary(summary)
        return summary

    def truncate_after(self, step: int) -> None:
        """Drop metric and response rows logged after ``step`` (used when resuming from a checkpoint at ``step``)."""
        self._metrics = [r for r in self._load_metrics() if r["step"] <= step]
        self._responses = [r for r in self._load_responses() if r["step"] <= step]
        atomic_write_text(self.metrics_path, _csv_text(METRIC_COLUMNS, self._metrics))
        atomic_write_text(self.responses_path, _csv_text(RESPONSE_COLUMNS, self._responses))

    def log_metrics(self, step: int, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into the row of ``step`` (creating it) and rewrite metrics.csv atomically."""
        unknown = set(values) - set(METRIC_COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric column(s) {sorted(unknown)}; the store's columns are {METRIC_COLUMNS}")
        rows = self._load_metrics()
        row = next((r for r in reversed(rows) if r["step"] == step), None)
        if row is None:
            row = {"step": step}
            rows.append(row)
            rows.sort(key=lambda r: r["step"])
        row.update({k: v for k, v in values.items() if v is not None})
        atomic_write_text(self.metrics_path, _csv_text(METRIC_COLUMNS, rows))

    def log_responses(self, step: int, responses: Iterable[tuple[int, str, float]]) -> None:
        """Replace the responses of ``step`` with ``(layer, name, std)`` rows and rewrite responses.csv."""
        rows = [r for r in self._load_responses() if r["step"] != step]
        rows.extend({"step": step, "layer": i, "name": n, "std": s} for i, n, s in responses)
        rows.sort(key=lambda r: (r["step"], r["layer"]))
        self._responses = rows
        atomic_write_text(self.responses_path, _csv_text(RESPONSE_COLUMNS, rows))

    def _load_metrics(self) -> list[dict[str, Any]]:
        if self._metrics is None:
            self._metrics = read_csv_rows(self.metrics_path)
        return self._metrics

    def _load_responses(self) -> list[dict[str, Any]]:
        if self._responses is None:
            self._responses = read_csv_rows(self.responses_path)
        return self._responses

    # -- reading -------------------------------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any] | None:
        return read_json(self.config_path) if self.config_path.exists() else None

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary_path) if self.summary_path.exists() else None

    def read_metrics(self) -> list[dict[str, Any]]:
        return read_csv_rows(self.metrics_path)

    def read_responses(self) -> list[dict[str, Any]]:
        return read_csv_rows(self.responses_path)

    def status(self) -> str | None:
        """The run's status from summary.json, or None if the run never started."""
        summary = self.read_summary()
        return summary.get("status") if summary else None

    def checkpoints(self) -> list[Path]:
        """Step checkpoints, oldest first (``last.ckpt`` excluded; it is a copy of the newest)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = []
        for p in self.checkpoint_dir.glob("step=*.ckpt"):
            try:
                found.append((int(p.stem.split("=", 1)[1]), p))
            except ValueError:
                continue
        return [p for _, p in sorted(found)]


def list_runs(root: str | os.PathLike) -> list[RunDir]:
    """Every run directory under ``root`` (a store, a sweep folder or a single run), sorted by path."""
    root = Path(root)
    if (root / SUMMARY_FILE).exists() or (root / CONFIG_FILE).exists():
        return [RunDir(root)]
    found = {p.parent for pattern in (SUMMARY_FILE, CONFIG_FILE) for p in root.glob(f"**/{pattern}")}
    return [RunDir(p) for p in sorted(found) if "wandb" not in p.parts]
