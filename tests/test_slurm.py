"""``run_sweep.py --slurm`` against a real one-node SLURM cluster (``.ci/slurm-up``), skipped where none can start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from experiments.store import RunDir
from tests.helpers import REPO, run_cli, tiny

pytestmark = pytest.mark.integration

TINY_SWEEP = """name: tiny
program: experiments/train.py
command:
  - ${{env}}
  - ${{interpreter}}
  - -m
  - experiments.train
  - ${{args}}
method: grid
metric: {{name: train_error, goal: minimize}}
parameters:
{parameters}
"""


@pytest.fixture(scope="module")
def cluster() -> None:
    """A running one-node SLURM: started by ``.ci/slurm-up`` (as root), reused when it is up already."""
    if os.geteuid() != 0 and shutil.which("sbatch") is None:
        pytest.skip("no SLURM here, and starting one (.ci/slurm-up) needs root")
    try:
        started = subprocess.run(["bash", str(REPO / ".ci" / "slurm-up")], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip(".ci/slurm-up did not bring a SLURM node up within 300 s")
    if started.returncode != 0:
        pytest.skip(f".ci/slurm-up could not start SLURM: {(started.stdout + started.stderr).strip()[-500:]}")


def write_sweep(folder: Path, **values) -> Path:
    """A sweep file of tiny runs (``values`` as single values or lists) in W&B's format."""
    lines = []
    for key, value in values.items():
        shown = f"{{values: {value}}}" if isinstance(value, list) else f"{{value: {value}}}"
        lines.append(f"  {key}: {shown}")
    path = folder / "tiny.yaml"
    path.write_text(TINY_SWEEP.format(parameters="\n".join(lines)))
    return path


def sweep(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli([str(REPO / "run_sweep.py"), "tiny.yaml", "--runs-dir", "runs", *args], cwd=folder, timeout=120)


def run_folders(folder: Path) -> list[Path]:
    return sorted(p for p in (folder / "runs" / "tiny").iterdir() if not p.name.startswith(("_", ".")))


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def finished(folder: Path, count: int) -> bool:
    runs = run_folders(folder) if (folder / "runs" / "tiny").exists() else []
    return len(runs) == count and all(RunDir(r).status() == "finished" for r in runs)


def test_a_sweep_runs_as_one_job_array_and_nothing_queued_running_or_done_is_submitted_again(cluster, tmp_path):
    values = {**tiny(max_steps=40, eval_every=20, log_every=10, checkpoint_every=20), "depth": [8, 14]}
    write_sweep(tmp_path, sweep="tiny", **values)
    dry = sweep(tmp_path, "--slurm", "--cpus-per-run", "1", "--dry-run")
    assert dry.returncode == 0 and "would submit one job array of 2 task(s)" in dry.stdout
    assert "#SBATCH --array=0-1%2" in dry.stdout and not (tmp_path / "runs" / "tiny" / "_slurm").exists()

    first = sweep(tmp_path, "--slurm", "--cpus-per-run", "1")
    assert first.returncode == 0 and "submitted 2 run(s) as job array" in first.stdout, first.stderr
    again = sweep(tmp_path, "--slurm", "--cpus-per-run", "1")
    assert "nothing to submit: every run is done, queued or running" in again.stdout
    status = sweep(tmp_path, "--status").stdout.splitlines()[1:]
    assert len(status) == 2 and all(line.split()[0] in ("queued", "running", "done") for line in status), status

    wait_for(lambda: finished(tmp_path, 2), 300, "both array tasks to finish their runs")
    assert "nothing to submit" in sweep(tmp_path, "--slurm", "--cpus-per-run", "1").stdout
    assert [line.split()[0] for line in sweep(tmp_path, "--status").stdout.splitlines()[1:]] == ["done", "done"]


def test_a_task_requeued_mid_run_resumes_from_its_checkpoint_with_no_duplicate_steps(cluster, tmp_path):
    values = tiny(max_steps=400, eval_every=200, log_every=10, checkpoint_every=20)
    write_sweep(tmp_path, sweep="tiny", **values)
    submitted = sweep(tmp_path, "--slurm", "--cpus-per-run", "1")
    assert submitted.returncode == 0, submitted.stderr
    (job,) = json.loads((tmp_path / "runs" / "tiny" / "_slurm" / "submitted.json").read_text()).values()

    def checkpointed() -> bool:
        runs = run_folders(tmp_path) if (tmp_path / "runs" / "tiny").exists() else []
        return bool(runs) and any(int(c.stem.split("=")[1]) >= 40 for c in RunDir(runs[0]).checkpoints())

    wait_for(checkpointed, 300, "a checkpoint at step 40 or later")
    requeue = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=30)
    assert requeue.returncode == 0, requeue.stderr
    wait_for(lambda: finished(tmp_path, 1), 400, "the requeued task to finish its run")
    run = RunDir(run_folders(tmp_path)[0])
    assert [r["step"] for r in run.read_metrics()] == list(range(10, 401, 10))
    assert run.read_summary()["resumed_from"] is not None
