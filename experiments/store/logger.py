"""A Lightning logger that writes the run store, so the store and W&B receive the same numbers.

Metric keys are store column names (``train_error``); in a paired run they carry the member's name as a prefix
(``plain/train_error``, ``resnet/train_error``) and are routed to that member's run directory.
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from experiments.store import RunDir


def split_key(key: str) -> tuple[str, str]:
    """``"plain/train_error"`` -> ``("plain", "train_error")``; an unprefixed key belongs to member ``""``."""
    member, _, column = key.rpartition("/")
    return member, column


def member_key(member: str, column: str, paired: bool) -> str:
    """The logged name of ``column`` for ``member``: prefixed only in a paired run."""
    return f"{member}/{column}" if paired else column


class RunStoreLogger(Logger):
    """Routes logged metrics, layer responses and signal statistics into each member's RunDir (rank zero only)."""

    def __init__(self, routes: Mapping[str, RunDir]):
        super().__init__()
        self.routes = dict(routes)

    @property
    def name(self) -> str:
        return "run_store"

    @property
    def version(self) -> str:
        return ",".join(d.name for d in self.routes.values())

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """The resolved config is written by train() before the Trainer starts; nothing to add here."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        grouped: dict[str, dict[str, float]] = {}
        for key, value in metrics.items():
            member, column = split_key(key)
            grouped.setdefault(member, {})[column] = value
        for member, values in grouped.items():
            run = self.routes.get(member)
            if run is not None:
                run.log_metrics(int(step), values)

    @rank_zero_only
    def log_responses(self, member: str, step: int, rows: list[tuple[int, str, float]]) -> None:
        run = self.routes.get(member)
        if run is not None:
            run.log_responses(step, rows)

    @rank_zero_only
    def log_signals(self, member: str, step: int, rows: list[tuple[int, str, str, float]]) -> None:
        run = self.routes.get(member)
        if run is not None:
            run.log_signals(step, rows)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Leave one row per step in each member's CSV files (a step logged twice was appended twice)."""
        for run in self.routes.values():
            run.compact()
