"""W&B mode: create the sweep on the user's W&B server and start agents, each trial its own process.

Agents are the ``wandb agent`` command of this environment (``python -m wandb agent``), which runs every trial as a
separate process from the sweep's ``command`` (so pre-emption signals and DDP behave as in a plain run). A sweep's
``command`` starts with ``${env} ${interpreter}``, which the agent turns into ``/usr/bin/env python``: the agents
get a PATH whose first ``python`` is this environment's Python, so trials run here, also from a virtualenv that is
not activated. On any other machine, ``python run_sweep.py --agent ENTITY/PROJECT/SWEEP_ID`` joins the same sweep.

Without W&B credentials (no ``wandb login``, no ``WANDB_API_KEY``), or with ``WANDB_MODE`` offline or disabled,
W&B mode stops before it creates or starts anything, with one line (``WandbUnavailable``, exit code 2).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.errors import EXIT_FAILED
from experiments.sweep.runner import Slot
from experiments.sweep.spec import SweepError

OFFLINE_MODES = ("offline", "disabled", "dryrun")


class WandbUnavailable(SweepError):
    """W&B mode cannot reach W&B's server: not logged in, offline by WANDB_MODE, or the server refused (one line)."""


def require_login() -> None:
    """Raise WandbUnavailable unless W&B has credentials; looks for them (WANDB_API_KEY, settings, .netrc) without
    prompting and without the network."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in OFFLINE_MODES:
        raise WandbUnavailable(
            f"W&B mode needs W&B's server, but WANDB_MODE is {mode!r}; unset it, or run the sweep without --wandb "
            "(a local sweep logs to W&B offline)"
        )
    import wandb

    try:
        logged_in = wandb.login(prompt=False, verify=False)
    except wandb.errors.Error as e:
        raise WandbUnavailable(f"W&B login failed: {_one_line(e)}") from None
    if not logged_in:
        raise WandbUnavailable(
            "W&B is not logged in: run `wandb login` (or set WANDB_API_KEY), or run the sweep without --wandb "
            "(a local sweep logs to W&B offline; `wandb sync` uploads it later)"
        )


def _one_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def create_sweep(spec: Mapping[str, Any], project: str, entity: str | None) -> str:
    """Register the sweep with W&B and return its full path ``entity/project/id``; WandbUnavailable (one line) if
    W&B is not logged in or its server refuses."""
    require_login()
    import wandb

    config = {k: v for k, v in spec.items() if k not in ("project", "entity")}
    try:
        sweep_id = wandb.sweep(sweep=config, project=project, entity=entity)
        entity = entity or wandb.Api().default_entity
    except wandb.errors.Error as e:
        raise WandbUnavailable(f"W&B did not create the sweep: {_one_line(e)}") from None
    return f"{entity}/{project}/{sweep_id}" if entity else f"{project}/{sweep_id}"


def agent_command(sweep_path: str, count: int | None = None) -> list[str]:
    """The ``wandb agent`` command line for one agent: this environment's wandb, run by this Python."""
    cmd = [sys.executable, "-m", "wandb", "agent"]
    if count:
        cmd += ["--count", str(count)]
    return [*cmd, sweep_path]


_shim_dir: str | None = None


def interpreter_dir() -> str:
    """A folder whose ``python`` is this Python: its own folder (a virtualenv's ``bin``) when ``python`` there is
    this interpreter, else a folder with a ``python`` script that runs it (kept until this process exits)."""
    global _shim_dir
    here = Path(sys.executable).parent
    python = here / "python"
    try:
        if python.is_file() and os.access(python, os.X_OK) and python.samefile(sys.executable):
            return str(here)
    except OSError:
        pass
    if _shim_dir is None:
        _shim_dir = tempfile.mkdtemp(prefix="degradation-python-")
        atexit.register(shutil.rmtree, _shim_dir, True)
        shim = Path(_shim_dir) / "python"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)
    return _shim_dir


def agent_env(slot: Slot, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An agent's environment: the slot's device and threads, and a PATH that makes ``${interpreter}`` this Python."""
    env = {**(os.environ if base is None else base), **slot.env()}
    env["PATH"] = os.pathsep.join([interpreter_dir(), *[p for p in env.get("PATH", "").split(os.pathsep) if p]])
    return env


def describe_exit(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def start_agents(
    sweep_path: str,
    slots: Sequence[Slot],
    count: int | None = None,
    popen: Callable[..., subprocess.Popen] | None = None,
    echo=print,
) -> int:
    """Start one agent per slot, wait for all of them, and return 0 if every agent exited 0, else the worst code
    (an agent killed by a signal counts as failed: EXIT_FAILED). WandbUnavailable if W&B is not logged in."""
    require_login()
    popen = popen or subprocess.Popen
    procs = []
    for slot in slots:
        procs.append(popen(agent_command(sweep_path, count), env=agent_env(slot)))
        echo(f"agent started on {'GPU ' + slot.gpu if slot.gpu is not None else 'CPU'} for {sweep_path}")
    codes = [p.wait() for p in procs]
    for code in codes:
        if code != 0:
            echo(f"an agent of {sweep_path} ended with {describe_exit(code)}")
    return max((EXIT_FAILED if c < 0 else c for c in codes), default=0)
