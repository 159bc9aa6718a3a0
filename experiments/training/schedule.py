"""The paper's learning-rate policies, counted in iterations, with state that survives a checkpoint.

- multistep (CIFAR): ``lr`` divided by ``gamma`` at fixed fractions of ``max_steps`` (32k and 48k of 64k).
- plateau (ImageNet): divided when the validation error stops improving for ``patience`` evaluations; the
  counter restarts after each division, so one plateau gives one division.
- warm-up (ResNet-110/1202 on CIFAR): ``warmup_lr`` until the training error first drops below
  ``warmup_until_error``, then back to the normal schedule at the step it has reached. A single policy object
  holds all of it, which avoids the chained-scheduler trap that never returns to 0.1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from experiments.config import RunConfig


@dataclass
class LRPolicy:
    """Learning rate as a function of the step and of the errors observed so far."""

    base_lr: float
    max_steps: int
    kind: str = "multistep"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    patience: int = 3
    threshold: float = 0.1
    warmup: bool = False
    warmup_lr: float = 0.01
    warmup_until_error: float = 80.0
    # state
    warmup_done: bool = False
    divisions: int = 0
    best_error: float = math.inf
    bad_evals: int = 0
    warmup_ended_at: int | None = None

    @classmethod
    def from_config(cls, cfg: RunConfig) -> LRPolicy:
        return cls(
            base_lr=cfg.lr,
            max_steps=cfg.max_steps,
            kind=cfg.lr_schedule,
            milestones=tuple(cfg.lr_milestones),
            gamma=cfg.lr_gamma,
            patience=cfg.plateau_patience,
            threshold=cfg.plateau_threshold,
            warmup=cfg.warmup_enabled,
            warmup_lr=cfg.warmup_lr,
            warmup_until_error=cfg.warmup_until_error,
        )

    @property
    def milestone_steps(self) -> tuple[int, ...]:
        """Milestones in iterations (32000 and 48000 for the CIFAR recipe)."""
        return tuple(round(m * self.max_steps) for m in self.milestones)

    def lr(self, step: int) -> float:
        """Learning rate for the optimizer step taken at iteration ``step`` (0-based)."""
        if self.warmup and not self.warmup_done:
            return self.warmup_lr
        if self.kind == "multistep":
            k = sum(step >= m for m in self.milestone_steps)
        else:
            k = self.divisions
        return self.base_lr * self.gamma**k

    def observe_train_error(self, step: int, error: float) -> None:
        """Feed the training error (%) of a logging window; ends the warm-up once it drops below the bar."""
        if self.warmup and not self.warmup_done and error < self.warmup_until_error:
            self.warmup_done = True
            self.warmup_ended_at = step

    def observe_val_error(self, error: float) -> None:
        """Feed a validation error (%); for the plateau policy, divide the lr once per plateau."""
        if self.kind != "plateau" or not math.isfinite(error):
            return
        if error < self.best_error - self.threshold:
            self.best_error = error
            self.bad_evals = 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.patience:
            self.divisions += 1
            self.bad_evals = 0
            self.best_error = error

    _STATE = ("warmup_done", "divisions", "best_error", "bad_evals", "warmup_ended_at")

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in asdict(self).items() if k in self._STATE}
        state["best_error"] = None if math.isinf(self.best_error) else self.best_error
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self._STATE:
            setattr(self, k, state[k])
        if self.best_error is None:
            self.best_error = math.inf
