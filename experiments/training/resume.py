"""Finding the checkpoint to resume from: the newest one that loads, falling back past corrupt ones, and only one
saved by the same networks (a pair's, or one network's alone: the two share the first member's folder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from experiments.config import ConfigError
from experiments.store import RunDir

RESUME_KEYS = ("state_dict", "optimizer_states", "loops", "lr_policies", "global_step")


def checkpoint_step(path: Path) -> int:
    """The global step a ``step=<N>.ckpt`` file was saved at."""
    return int(path.stem.split("=", 1)[1])


def _load(path: Path) -> dict[str, Any] | None:
    """The checkpoint loaded with ``weights_only=True``, or None when it does not load or lacks what a resume needs."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, corrupt or tampered: all mean "do not use"
        return None
    return state if isinstance(state, dict) and all(k in state for k in RESUME_KEYS) else None


def is_loadable(path: Path) -> bool:
    """True if the checkpoint loads with ``weights_only=True`` and holds the state a resume needs."""
    return _load(path) is not None


def mismatch_message(path: Path, saved_by: Sequence[str], members: Sequence[str]) -> str:
    """Why a run cannot resume from a checkpoint its folder holds but other networks saved, and the two ways out."""
    if len(saved_by) > 1:
        return (
            f"{path} was saved by a pair ({' and '.join(saved_by)} trained together), not by {members[0]} alone: "
            f"resume the pair with --arch pair, or start this run afresh with --restart (the old folder is kept in "
            f"the sweep's .restarted/)"
        )
    return (
        f"{path} was saved by {saved_by[0]} trained alone, not by a pair ({' and '.join(members)}): resume each "
        f"network alone (--arch {saved_by[0]}, and the other), or start the pair afresh with --restart (the old "
        f"folders are kept in the sweep's .restarted/)"
    )


def find_resume_checkpoint(run: RunDir, members: Sequence[str], warn=print) -> Path | None:
    """The newest loadable checkpoint of ``run``; a corrupt newer one is reported and skipped.

    ``members``: the networks (``plain``, ``resnet``) this run trains; a checkpoint saved by others (a pair's, where a
    network now trains alone, or the reverse) raises ConfigError naming both ways out, before anything is written.
    """
    for path in reversed(run.checkpoints()):
        state = _load(path)
        if state is None:
            warn(f"warning: checkpoint {path} is truncated or corrupt; falling back to an earlier one")
            continue
        saved_by = sorted(state["lr_policies"])
        if saved_by != sorted(members):
            raise ConfigError(mismatch_message(path, saved_by, list(members)))
        return path
    return None
