"""The training run's Lightning callbacks: closing each logging window before a checkpoint is taken (TrainingWindow),
checkpoint-then-stop on SIGTERM or SIGUSR1 (Preemption), and one progress line per evaluation for logs and CI
(LineProgress)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytorch_lightning as pl

from experiments.errors import Preempted


class TrainingWindow(pl.Callback):
    """Ends each logging window after the optimizer step and before ModelCheckpoint runs.

    Lightning calls callbacks before the module's own ``on_train_batch_end`` but always puts checkpoint callbacks
    last, so closing the window here means a checkpoint taken at step N holds the state after step N's row.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        pl_module.end_of_step(trainer.global_step)


class Preemption(pl.Callback):
    """On SIGTERM or SIGUSR1 (SLURM pre-emption), checkpoint at the end of the current step, then stop.

    Lightning notices SIGTERM itself; SIGUSR1 is caught here. The checkpoint is an ordinary ``step=<N>.ckpt``,
    so re-running the same command resumes from it.
    """

    def __init__(self, dirpath: Path):
        self.dirpath = Path(dirpath)
        self.received: int | None = None
        self._previous = None

    def _handle(self, signum: int, frame) -> None:
        self.received = signum

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGUSR1, self._handle)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGUSR1, self._previous)
            self._previous = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        signum = self.received or (signal.SIGTERM if trainer.received_sigterm else None)
        if signum is None:
            return
        path = self.dirpath / f"step={trainer.global_step}.ckpt"
        if not path.exists():
            trainer.save_checkpoint(path)
        raise Preempted(
            f"stopped by {signal.Signals(signum).name} at step {trainer.global_step} after saving "
            f"{path.name}; re-run the same command to resume"
        )


class LineProgress(pl.Callback):
    """One line per evaluation (step, errors, images/s, ETA) where a progress bar would garble a log file."""

    def __init__(self, echo=print):
        self.echo = echo
        self._start: float | None = None
        self._start_step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()
        self._start_step = trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking or self._start is None:
            return
        step, total = trainer.global_step, trainer.max_steps
        done = step - self._start_step
        elapsed = time.perf_counter() - self._start
        eta = elapsed / done * (total - step) if done > 0 else float("nan")
        parts = [f"step {step}/{total}"]
        for name, last in pl_module.last.items():
            errs = " ".join(
                f"{k.replace('_error', '')} {v:.2f}%"
                for k, v in last.items()
                if k.endswith("_error") and "top5" not in k
            )
            parts.append(f"{name}: {errs}")
        ips = next((v.get("images_per_s") for v in pl_module.last.values()), None)
        if ips:
            parts.append(f"{ips:.0f} img/s")
        parts.append(f"ETA {eta:.0f}s")
        self.echo(" | ".join(parts), flush=True) if self.echo is print else self.echo(" | ".join(parts))
