"""Progress of a long stage: a tqdm bar on a terminal, otherwise one line per ``every`` items (per grid row)."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


class Progress:
    """A ``(done, total)`` callback: a bar when ``stream`` is a terminal, else a line every ``every`` items."""

    def __init__(self, label: str, unit: str, every: int | None = None, stream: TextIO | None = None):
        self.label, self.unit, self.every = label, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._bar = None
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        if self.tty:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=self.label, unit=self.unit, file=self.stream, leave=False)
            self._bar.update(done - self._bar.n)
            return
        every = self.every or max(1, math.ceil(total / 4))
        if done != self._last and (done % every == 0 or done == total):
            elapsed = time.perf_counter() - self.start
            print(f"{self.label}: {done}/{total} {self.unit} ({elapsed:.0f} s)", file=self.stream, flush=True)
        self._last = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
