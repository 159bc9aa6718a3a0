"""RunDir: one run's folder in the store, its atomic writers and its readers (the layout: ``contract``)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from experiments.store.contract import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    METRIC_COLUMNS,
    METRICS_FILE,
    RESPONSE_COLUMNS,
    RESPONSES_FILE,
    RESTARTED_DIR,
    SIGNAL_COLUMNS,
    SIGNALS_FILE,
    STATUS_FINISHED,
    SUMMARY_FILE,
    WANDB_ID_FILE,
)


def _umask() -> int:
    """The process's umask (read by setting it, then restoring it), so store files get the mode that a plain
    ``open`` would give them: lab mates in the group can read a shared store where the umask lets them."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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


# -- CSV rows --------------------------------------------------------------------------------------------------


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _csv_lines(columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]], header: bool = False) -> str:
    """CSV text of ``rows``, one cell per column in every line; a key that is not a column is an error."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        unknown = set(row) - set(columns)
        if unknown:
            raise KeyError(f"unknown column(s) {sorted(unknown)}; the store's columns are {columns}")
        writer.writerow([_format_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _parse_cell(text: str | None) -> Any:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _parse_rows(text: str) -> list[dict[str, Any]]:
    return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def _tail(f: BinaryIO, newlines: int, block: int = 4096) -> tuple[int, bytes]:
    """The shortest tail of ``f`` (whole blocks, doubling) that holds ``newlines`` newlines or is the whole file.

    Returns the tail's offset and bytes; polling a long file's last rows costs one small read, not a parse.
    """
    end = f.seek(0, os.SEEK_END)
    while True:
        start = max(0, end - block)
        f.seek(start)
        data = f.read(end - start)
        if start == 0 or data.count(b"\n") >= newlines:
            return start, data
        block *= 2


def read_csv_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete row of one of the store's CSV files, as dicts (empty cells are None), in file order.

    Only the text up to the last newline is read as data: a row still being appended, or torn by a crash, is not.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return _parse_rows(data[: data.rfind(b"\n") + 1].decode("utf-8"))


def read_last_row(path: str | os.PathLike) -> dict[str, Any] | None:
    """The last complete row of one of the store's CSV files, reading only its tail; None if it has no rows."""
    try:
        with Path(path).open("rb") as f:
            start, data = _tail(f, 2)
            f.seek(0)
            header = f.readline()
    except FileNotFoundError:
        return None
    end = data.rfind(b"\n")
    if end < 0:
        return None
    begin = data.rfind(b"\n", 0, end) + 1
    if start + begin == 0:
        return None  # the only complete line is the header
    rows = _parse_rows((header + data[begin : end + 1]).decode("utf-8"))
    return rows[0] if rows else None


def _merge_steps(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per step, in step order: a step's later rows fill in or replace its earlier cells (empty ones never)."""
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        into = merged.setdefault(row["step"], dict(row))
        into.update({k: v for k, v in row.items() if v is not None})
    return [merged[step] for step in sorted(merged)]


def _merge_responses(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (step, layer), in that order; a layer's later row at a step replaces its earlier one."""
    merged = {(row["step"], row["layer"]): dict(row) for row in rows}
    return [merged[key] for key in sorted(merged)]


def _merge_signals(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (step, stat, layer), in that order; a later row of one key replaces its earlier one."""
    merged = {(row["step"], row["stat"], row["layer"]): dict(row) for row in rows}
    return [merged[key] for key in sorted(merged)]


def _append(path: Path, text: str) -> None:
    """Append ``text`` with one write (more only if the kernel takes less), so a reader meets whole rows."""
    data = memoryview(text.encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _prepare_append(path: Path, columns: tuple[str, ...]) -> None:
    """Make ``path`` ready for appending rows of ``columns``: write it with its header if it is new, cut off a
    torn last row (a crash mid-append), and refuse a file whose header names other columns."""
    header = _csv_lines(columns, [], header=True).encode("utf-8")
    if not path.exists():
        atomic_write_text(path, header.decode("utf-8"))
        return
    with path.open("r+b") as f:
        start, data = _tail(f, 1)
        complete = start + data.rfind(b"\n") + 1
        if complete < start + len(data):
            f.truncate(complete)
        f.seek(0)
        first = f.readline()
        if not first:
            f.write(header)
        elif first != header:
            raise ValueError(
                f"{path} has columns {first.decode('utf-8', 'replace').strip()!r}, not the store's "
                f"{','.join(columns)!r}; it was written by another version of this code"
            )


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object written by this module."""
    with Path(path).open(encoding="utf-8") as f:
        return json.load(f)


class RunDir:
    """One run's directory: paths, and the writers and readers of its files."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._appendable: set[Path] = set()
        self._last_metrics: dict[str, Any] | None = None

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
    def signals_path(self) -> Path:
        return self.path / SIGNALS_FILE

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

    def log_metrics(self, step: int, values: Mapping[str, Any]) -> None:
        """Append the row of ``step``; at the step of the last row, the appended row merges ``values`` into it.

        Appending keeps logging O(1) in the run's length. A None or NaN value leaves its cell empty.
        """
        unknown = set(values) - set(METRIC_COLUMNS)
        if unknown:
            raise KeyError(f"unknown metric column(s) {sorted(unknown)}; the store's columns are {METRIC_COLUMNS}")
        if self.metrics_path not in self._appendable:
            self._make_appendable(self.metrics_path, METRIC_COLUMNS)
            self._last_metrics = read_last_row(self.metrics_path)
        row = {k: v for k, v in values.items() if v is not None}
        last = self._last_metrics
        if last is not None and last["step"] == step:
            row = {**last, **row}
        row["step"] = step
        _append(self.metrics_path, _csv_lines(METRIC_COLUMNS, [row]))
        self._last_metrics = row

    def log_responses(self, step: int, responses: Iterable[tuple[int, str, float]]) -> None:
        """Append the ``(layer, name, std)`` rows of ``step`` in one write; they replace earlier rows of ``step``."""
        if self.responses_path not in self._appendable:
            self._make_appendable(self.responses_path, RESPONSE_COLUMNS)
        rows = [{"step": step, "layer": i, "name": n, "std": s} for i, n, s in responses]
        _append(self.responses_path, _csv_lines(RESPONSE_COLUMNS, rows))

    def log_signals(self, step: int, signals: Iterable[tuple[int, str, str, float]]) -> None:
        """Append the ``(layer, name, stat, value)`` rows of ``step`` in one write; they replace earlier rows of
        ``step`` (a probe repeated after a resume)."""
        if self.signals_path not in self._appendable:
            self._make_appendable(self.signals_path, SIGNAL_COLUMNS)
        rows = [{"step": step, "layer": i, "name": n, "stat": k, "value": v} for i, n, k, v in signals]
        _append(self.signals_path, _csv_lines(SIGNAL_COLUMNS, rows))

    def truncate_after(self, step: int) -> None:
        """Keep only the rows of steps up to ``step``, one per step (on resuming from a checkpoint at ``step``)."""
        self._rewrite(lambda s: s <= step)

    def compact(self) -> None:
        """Rewrite the CSV files with one row per step (per step and layer): the same data, as the readers give it."""
        self._rewrite(lambda s: True)

    def _rewrite(self, keep: Callable[[int], bool]) -> None:
        metrics = [r for r in self.read_metrics() if keep(r["step"])]
        responses = [r for r in self.read_responses() if keep(r["step"])]
        signals = [r for r in self.read_signals() if keep(r["step"])]
        atomic_write_text(self.metrics_path, _csv_lines(METRIC_COLUMNS, metrics, header=True))
        atomic_write_text(self.responses_path, _csv_lines(RESPONSE_COLUMNS, responses, header=True))
        atomic_write_text(self.signals_path, _csv_lines(SIGNAL_COLUMNS, signals, header=True))
        self._appendable = {self.metrics_path, self.responses_path, self.signals_path}
        self._last_metrics = metrics[-1] if metrics else None

    def _make_appendable(self, path: Path, columns: tuple[str, ...]) -> None:
        _prepare_append(path, columns)
        self._appendable.add(path)

    # -- reading -------------------------------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any] | None:
        return read_json(self.config_path) if self.config_path.exists() else None

    def read_summary(self) -> dict[str, Any] | None:
        return read_json(self.summary_path) if self.summary_path.exists() else None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every logged step once, in step order, each with every column (None where nothing was logged)."""
        return _merge_steps(read_csv_rows(self.metrics_path))

    def read_responses(self) -> list[dict[str, Any]]:
        """Every probed layer once per step, in (step, layer) order."""
        return _merge_responses(read_csv_rows(self.responses_path))

    def read_signals(self) -> list[dict[str, Any]]:
        """Every signal statistic once per step and layer, in (step, stat, layer) order."""
        return _merge_signals(read_csv_rows(self.signals_path))

    def last_step(self) -> int | None:
        """The step of metrics.csv's last row, from the file's tail only: cheap enough to poll while a run writes."""
        row = read_last_row(self.metrics_path)
        return None if row is None else row["step"]

    def move_aside(self) -> Path:
        """Move the run's folder to ``<parent>/.restarted/<name>-<UTC time>`` (kept, never deleted; readers of the
        store skip hidden folders) and return where it went."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.path.parent / RESTARTED_DIR / f"{self.name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, target)
        return target

    def status(self) -> str | None:
        """The run's status from summary.json, or None if the run never started."""
        summary = self.read_summary()
        return summary.get("status") if summary else None

    def checkpoints(self) -> list[Path]:
        """Step checkpoints (``step=<N>.ckpt``), oldest first."""
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
    """Every run directory under ``root`` (a store, a sweep folder or a single run), sorted by path; W&B's folders
    and hidden ones (``.restarted``: runs moved aside by ``--restart``) are not runs of the store."""
    root = Path(root)
    if (root / SUMMARY_FILE).exists() or (root / CONFIG_FILE).exists():
        return [RunDir(root)]
    found = {p.parent for pattern in (SUMMARY_FILE, CONFIG_FILE) for p in root.glob(f"**/{pattern}")}
    inside = [
        p
        for p in sorted(found)
        if not any(part == "wandb" or part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return [RunDir(p) for p in inside]


def other_kind_checkpoints(dirs: Iterable[str | os.PathLike]) -> tuple[RunDir, bool] | None:
    """Where training these member folders (two: a pair; one: a network alone) would lose another kind of run's
    progress: the folder holding the checkpoints of an unfinished run of the other kind, and whether a pair saved
    them; None when there is none. A pair and its networks alone share folders, and a pair keeps its checkpoints in
    its plain member's folder, so a ResNet alone must look at its pair's plain folder too. Read from summaries."""
    dirs = [Path(d) for d in dirs]
    for path in dirs:
        summary = RunDir(path).read_summary() or {}
        if "paired_with" not in summary or summary.get("status") == STATUS_FINISHED:
            continue
        partner = summary["paired_with"]
        if (partner is not None) == (len(dirs) > 1):
            continue
        holder = RunDir(path.parent / partner if partner and summary.get("arch") != "plain" else path)
        if holder.checkpoints():
            return holder, partner is not None
    return None
