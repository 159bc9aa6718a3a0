"""Finding the checkpoint to resume from: the newest one that loads, falling back past corrupt ones, and only one
saved by the same networks (a pair's, or one network's alone: the two share the first member's folder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from experiments.config import ConfigError
from experiments.store import RunDir, other_kind_checkpoints

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


def other_kind_message(where: Path, saved_by_pair: bool) -> str:
    """Why a run cannot start where another kind of run (a pair, or a network alone) left checkpoints, and the two
    ways out; nothing has been written when it is said."""
    if saved_by_pair:
        return (
            f"{where} holds checkpoints saved by a pair (plain and resnet trained together), not by this network "
            "alone: resume the pair with --arch pair, or start this run afresh with --restart (the old folder is kept "
            "in the sweep's .restarted/)"
        )
    return (
        f"{where} holds checkpoints saved by a network trained alone, not by this pair: resume each network alone "
        "(--arch plain, --arch resnet), or start the pair afresh with --restart (the old folders are kept in the "
        "sweep's .restarted/)"
    )


def find_resume_checkpoint(
    run: RunDir, members: Sequence[str], warn=print, member_dirs: Sequence[Path] | None = None
) -> Path | None:
    """The newest loadable checkpoint of ``run``; a corrupt newer one is reported and skipped.

    ``members``: the networks (``plain``, ``resnet``) this run trains; a checkpoint saved by others (a pair's, where a
    network now trains alone, or the reverse) raises ConfigError naming both ways out, before anything is written,
    and so does another kind of run's unfinished progress in any of ``member_dirs`` (``other_kind_checkpoints``).
    """
    other = other_kind_checkpoints(member_dirs) if member_dirs is not None else None
    if other is not None:
        raise ConfigError(other_kind_message(other[0].path, saved_by_pair=other[1]))
    for path in reversed(run.checkpoints()):
        state = _load(path)
        if state is None:
            warn(f"warning: checkpoint {path} is truncated or corrupt; falling back to an earlier one")
            continue
        saved_by = sorted(state["lr_policies"])
        if saved_by != sorted(members):
            raise ConfigError(other_kind_message(path, saved_by_pair=len(saved_by) > 1))
        return path
    return None
