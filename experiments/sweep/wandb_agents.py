"""W&B mode: create the sweep on the user's W&B server and start agents, each trial its own process.

Agents are the ``wandb agent`` command, which runs every trial as a separate process from the sweep's
``command`` (so pre-emption signals and DDP behave as in a plain run). On any other machine,
``python run_sweep.py --agent ENTITY/PROJECT/SWEEP_ID`` joins the same sweep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from experiments.sweep.runner import Slot


def create_sweep(spec: Mapping[str, Any], project: str, entity: str | None) -> str:
    """Register the sweep with W&B and return its full path ``entity/project/id``."""
    import wandb

    config = {k: v for k, v in spec.items() if k not in ("project", "entity")}
    sweep_id = wandb.sweep(sweep=config, project=project, entity=entity)
    entity = entity or wandb.Api().default_entity
    return f"{entity}/{project}/{sweep_id}" if entity else f"{project}/{sweep_id}"


def agent_command(sweep_path: str, count: int | None = None) -> list[str]:
    """The ``wandb agent`` command line for one agent."""
    exe = shutil.which("wandb")
    cmd = [exe] if exe else [sys.executable, "-m", "wandb"]
    cmd += ["agent"]
    if count:
        cmd += ["--count", str(count)]
    return [*cmd, sweep_path]


def start_agents(
    sweep_path: str,
    slots: Sequence[Slot],
    count: int | None = None,
    popen: Callable[..., subprocess.Popen] | None = None,
    echo=print,
) -> int:
    """Start one agent per slot, wait for all of them, and return the worst exit code."""
    popen = popen or subprocess.Popen
    procs = []
    for slot in slots:
        env = {**os.environ, **slot.env()}
        procs.append(popen(agent_command(sweep_path, count), env=env))
        echo(f"agent started on {'GPU ' + slot.gpu if slot.gpu is not None else 'CPU'} for {sweep_path}")
    codes = [p.wait() for p in procs]
    return max(codes, default=0)
