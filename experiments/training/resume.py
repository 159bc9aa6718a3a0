"""Finding the checkpoint to resume from: the newest one that loads, falling back past corrupt ones."""

from __future__ import annotations

from pathlib import Path

import torch

from experiments.store import RunDir


def checkpoint_step(path: Path) -> int:
    """The global step a ``step=<N>.ckpt`` file was saved at."""
    return int(path.stem.split("=", 1)[1])


def is_loadable(path: Path) -> bool:
    """True if the checkpoint loads with ``weights_only=True`` and holds the state a resume needs."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, corrupt or tampered: all mean "do not use"
        return False
    return all(k in state for k in ("state_dict", "optimizer_states", "loops", "lr_policies", "global_step"))


def find_resume_checkpoint(run: RunDir, warn=print) -> Path | None:
    """The newest loadable checkpoint of ``run``; a corrupt newer one is reported and skipped."""
    for path in reversed(run.checkpoints()):
        if is_loadable(path):
            return path
        warn(f"warning: checkpoint {path} is truncated or corrupt; falling back to an earlier one")
    return None
