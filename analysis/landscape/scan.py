"""Resumable evaluation of a list of points into a CSV file: a killed scan continues where it stopped.

Finished points are rewritten to the CSV atomically (temporary file, then rename) as they are computed, at most
every ``flush_seconds`` and always when the scan stops, by an error too; a SIGKILL loses at most the points of the
last ``flush_seconds``. A re-run reads the file back and evaluates only the points it lacks. The settings the
points were computed with are kept as a fingerprint in ``state.json`` next to the CSV: points of another
fingerprint (other weights, images, directions or grid) are never reused.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from analysis.landscape.harness import atomic_write_json, atomic_write_text, read_json

STATE_FILE = "state.json"
"""Per output folder: the fingerprint each stage's files were computed with."""


def read_state(folder: Path) -> dict[str, str]:
    try:
        state = read_json(folder / STATE_FILE)
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in state.items()} if isinstance(state, dict) else {}


def write_state(folder: Path, stage: str, fingerprint: str) -> None:
    atomic_write_json(folder / STATE_FILE, {**read_state(folder), stage: fingerprint})


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return buf.getvalue()


def read_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a scan CSV as floats (empty cells NaN); no rows if the file is missing or unreadable."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(f)]
    except (OSError, ValueError, csv.Error):
        return []


class Scan:
    """Evaluate ``points`` (dicts of coordinates, keyed by the integer ``key`` columns) with ``evaluate`` into ``path``.

    ``evaluate(point)`` returns the ``values`` columns of one point. ``run()`` returns every row, in point order.
    """

    def __init__(
        self,
        path: str | Path,
        stage: str,
        fingerprint: str,
        points: Sequence[Mapping[str, float]],
        key: Sequence[str],
        values: Sequence[str],
        evaluate: Callable[[Mapping[str, float]], Mapping[str, float]],
        flush_seconds: float = 2.0,
    ):
        self.path, self.stage, self.fingerprint, self.evaluate = Path(path), stage, fingerprint, evaluate
        self.points, self.key, self.values = list(points), tuple(key), tuple(values)
        self.columns = (*points[0].keys(), *values) if points else (*key, *values)
        self.flush_seconds = flush_seconds
        self.computed = 0  # points evaluated by this object (a resumed scan computes only the missing ones)

    def _key(self, row: Mapping[str, float]) -> tuple:
        return tuple(int(row[k]) for k in self.key)

    def _resumable(self) -> dict[tuple, dict[str, float]]:
        """Rows already computed with this fingerprint whose coordinates match the points asked for."""
        if read_state(self.path.parent).get(self.stage) != self.fingerprint:
            return {}
        wanted = {self._key(p): p for p in self.points}
        done = {}
        for row in read_rows(self.path):
            try:
                k = self._key(row)
            except (KeyError, ValueError):
                return {}
            point = wanted.get(k)
            if point is None or any(not math.isclose(row[c], float(v), abs_tol=1e-12) for c, v in point.items()):
                return {}  # another grid: start again
            if all(v in row for v in self.values):
                done[k] = {**point, **{v: row[v] for v in self.values}}
        return done

    def done(self) -> bool:
        """Whether every point is on disk already, computed with this fingerprint."""
        return len(self._resumable()) == len(self.points)

    def run(self, progress: Callable[[int, int], None] | None = None) -> list[dict[str, float]]:
        done = self._resumable()
        if not done:
            atomic_write_text(self.path, csv_text(self.columns, []))
            write_state(self.path.parent, self.stage, self.fingerprint)
        last_flush = time.monotonic()
        dirty = False

        def flush() -> None:
            ordered = [done[self._key(p)] for p in self.points if self._key(p) in done]
            atomic_write_text(self.path, csv_text(self.columns, ordered))

        try:
            for point in self.points:
                k = self._key(point)
                if k not in done:
                    done[k] = {**point, **self._values(point, self.evaluate(point))}
                    self.computed += 1
                    dirty = True
                    if time.monotonic() - last_flush >= self.flush_seconds:
                        flush()
                        last_flush, dirty = time.monotonic(), False
                if progress is not None:
                    progress(len(done), len(self.points))
        finally:
            if dirty:
                flush()
        return [done[self._key(p)] for p in self.points]

    def _values(self, point: Mapping[str, float], result: Mapping[str, float]) -> dict[str, float]:
        missing = [v for v in self.values if v not in result]
        if missing:
            raise KeyError(f"evaluate returned no {missing} for point {dict(point)}")
        return {v: float(result[v]) for v in self.values}
