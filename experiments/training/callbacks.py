"""The training run's Lightning callbacks: closing each logging window before a checkpoint is taken (TrainingWindow),
checkpoint-then-stop on SIGTERM, SIGUSR1 or Ctrl-C (Preemption), a progress bar counted in steps for terminals
(StepProgressBar) and one progress line per evaluation for logs and CI (LineProgress)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar

from experiments.errors import EXIT_STOPPED, Preempted


class TrainingWindow(pl.Callback):
    """Ends each logging window after the optimizer step and before ModelCheckpoint runs.

    Lightning calls callbacks before the module's own ``on_train_batch_end`` but always puts checkpoint callbacks
    last, so closing the window here means a checkpoint taken at step N holds the state after step N's row.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        pl_module.end_of_step(trainer.global_step)


class Preemption(pl.Callback):
    """On SIGTERM, SIGUSR1 (SLURM pre-emption) or SIGINT (Ctrl-C), checkpoint at the end of the current step, then stop.

    The three are caught here while training (from ``on_train_start``), in place of Lightning's handlers: its Ctrl-C
    handling exits 1 without a checkpoint, and its SIGTERM flag stops a run that is evaluating at once, also without
    one (``SIGTERMException``). A signal during an evaluation is acted on at the end of the next step. The checkpoint
    is an ordinary ``step=<N>.ckpt``, so re-running the same command resumes from it. A SIGINT while already stopping
    (a second Ctrl-C) stops at once: ``hard_stop(reason, step)`` records the run as resumable from its newest
    checkpoint and the process exits with EXIT_STOPPED. Before training starts, Lightning's handlers apply (a Ctrl-C
    there is recorded as an interruption: nothing of this session was trained yet).
    """

    SIGNALS = (signal.SIGUSR1, signal.SIGINT, signal.SIGTERM)

    def __init__(self, dirpath: Path, hard_stop: Callable[[str, int], None] | None = None):
        self.dirpath = Path(dirpath)
        self.received: int | None = None
        self.hard_stop = hard_stop
        self._trainer: pl.Trainer | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        stopping = self.received is not None or (self._trainer is not None and self._trainer.received_sigterm)
        if signum == signal.SIGINT and stopping:
            self._stop_now()
        self.received = self.received or signum

    def _stop_now(self) -> None:
        step = self._trainer.global_step if self._trainer is not None else 0
        reason = (
            f"stopped at once by a second SIGINT at step {step}; re-run the same command to resume from the newest "
            "checkpoint"
        )
        try:
            if self.hard_stop is not None:
                self.hard_stop(reason, step)
            print(f"interrupted: {reason}", file=sys.stderr, flush=True)
            sys.stdout.flush()
        finally:
            os._exit(EXIT_STOPPED)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trainer = trainer
        if threading.current_thread() is threading.main_thread():  # Lightning registered its handlers just before
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _restore(self) -> None:
        """Put back the handlers found at ``on_train_start`` where ours is still set (whichever of this and Lightning's
        own teardown, which puts back the ones from before ``fit``, runs first, ``fit`` ends with the latter)."""
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                if signal.getsignal(signum) == self._handle:
                    signal.signal(signum, previous)
        self._previous = {}

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        signum = self.received or (signal.SIGTERM if trainer.received_sigterm else None)
        if signum is None:
            return
        path = self.dirpath / f"step={trainer.global_step}.ckpt"
        if not path.exists():
            trainer.save_checkpoint(path, weights_only=False)  # the full state a resume needs
        raise Preempted(
            f"stopped by {signal.Signals(signum).name} at step {trainer.global_step} after saving "
            f"{path.name}; re-run the same command to resume"
        )


class StepProgressBar(TQDMProgressBar):
    """One live line on a terminal: the step out of ``max_steps`` (a resumed run starts where it stopped, and its rate
    and ETA count only this session's steps), with the latest errors; evaluation draws no second bar."""

    def init_train_tqdm(self):
        from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

        trainer = self.trainer
        return Tqdm(
            desc="step",
            total=trainer.max_steps,
            initial=trainer.global_step,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )

    def init_validation_tqdm(self):
        from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

        return Tqdm(disable=True)

    def _count_steps(self, trainer: pl.Trainer) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps)
        bar.initial = bar.n = bar.last_print_n = trainer.global_step
        bar.set_description("step", refresh=False)
        bar.refresh()

    def on_train_start(self, trainer: pl.Trainer, *_) -> None:  # also on a resume, which starts mid-epoch
        super().on_train_start(trainer)
        self._count_steps(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, *_) -> None:
        super().on_train_epoch_start(trainer)
        self._count_steps(trainer)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger's version: the run's folder name, which says nothing here
        return metrics

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        bar = self.train_progress_bar
        if bar is not None and not bar.disable and self._should_update(step, trainer.max_steps):
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()


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
