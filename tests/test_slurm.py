"""``run_sweep.py --slurm``: the request checked against the partition's nodes (canned ``sinfo`` and ``squeue``
output), and against a real one-node SLURM cluster (``.ci/slurm-up``), skipped where none can start."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import run_sweep
from experiments.store import RunDir
from experiments.sweep import partition, slurm
from experiments.sweep.partition import Node, gpu_count, memory_mb, misfit, parse_sinfo
from experiments.sweep.slurm import SlurmOptions
from experiments.sweep.spec import resolve_runs
from tests.helpers import REPO, run_cli, tiny

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


@pytest.mark.integration
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


@pytest.mark.integration
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


def node_cpus() -> int:
    """CPUs of the one node ``.ci/slurm-up`` started (the machine's, unless SLURM_CI_CPUS says otherwise)."""
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, timeout=30).stdout
    return int(out.split()[0].rstrip("+"))


@pytest.mark.integration
def test_more_cpus_per_run_than_the_node_has_is_refused_in_one_line_and_nothing_is_submitted(cluster, tmp_path):
    write_sweep(tmp_path, sweep="tiny", **tiny(max_steps=20))
    cpus = node_cpus()
    asks = [[]] * (cpus < slurm.DEFAULT_CPUS_PER_RUN) + [["--cpus-per-run", str(cpus + 1)]]  # the default, if too many
    for extra in asks:
        wanted = int(extra[1]) if extra else slurm.DEFAULT_CPUS_PER_RUN
        refused = sweep(tmp_path, "--slurm", *extra)
        assert refused.returncode == 2 and refused.stdout == "", refused.stdout + refused.stderr
        assert refused.stderr == (
            f"error: --cpus-per-run {wanted} asks more CPUs than any node of partition debug has ({cpus}, sinfo): "
            f"no task could ever start; pass --cpus-per-run {cpus} or fewer, or another --partition\n"
        )
        assert not (tmp_path / "runs").exists(), "nothing submitted, nothing written"
    dry = sweep(tmp_path, "--slurm", "--dry-run", "--cpus-per-run", str(cpus + 1))
    assert dry.returncode == 2 and f"#SBATCH --cpus-per-task={cpus + 1}" in dry.stdout
    assert dry.stderr.startswith(f"error: --cpus-per-run {cpus + 1} asks more CPUs") and dry.stderr.count("\n") == 1


@pytest.mark.integration
def test_status_shows_why_slurm_keeps_a_queued_task_pending(cluster, tmp_path):
    write_sweep(tmp_path, sweep="tiny", **tiny(max_steps=20))
    later = sweep(tmp_path, "--slurm", "--cpus-per-run", "1", "--sbatch", "begin=now+3600")
    assert later.returncode == 0, later.stderr
    (job,) = json.loads((tmp_path / "runs" / "tiny" / "_slurm" / "submitted.json").read_text()).values()
    try:
        (line,) = sweep(tmp_path, "--status").stdout.splitlines()[1:]
        assert line.split()[0] == "queued" and line.endswith("(SLURM: BeginTime: its start time has not come)"), line
    finally:
        subprocess.run(["scancel", job.split("_")[0]], capture_output=True, timeout=30)
    wait_for(lambda: sweep(tmp_path, "--status").stdout.split()[-2:-1] == ["pending"], 60, "the cancelled task to go")


# -- the request against the partition's nodes, from canned sinfo output -------------------------------------------

SINFO = """debug*|2|(null)|24105
gpu|64|gpu:a100:2(S:0-1)|512000
gpu|16|gpu:v100:4,gpu:t4:4|256000+
bigmem|8|(null)|2048000
this line is not sinfo's
"""


def test_sinfo_lines_become_node_kinds_with_their_cpus_gpus_and_memory():
    assert parse_sinfo(SINFO) == [
        Node("debug", True, 2, 0, 24105),
        Node("gpu", False, 64, 2, 512000),
        Node("gpu", False, 16, 8, 256000),
        Node("bigmem", False, 8, 0, 2048000),
    ]
    assert [gpu_count(g) for g in ("(null)", "gpu:4", "gpu:a100:4(S:0-1)", "gpu:2,shard:8", "mps:100")] == [
        0,
        4,
        4,
        2,
        0,
    ]
    assert [memory_mb(m) for m in ("8000", "500M", "8G", "8GB", "2.5g", "1T", "64K", "lots")] == [
        8000, 500, 8192, 8192, 2560, 1048576, 0.0625, None
    ]  # fmt: skip


def test_a_request_no_node_of_the_partition_meets_is_refused_naming_the_flag_and_the_most_it_may_ask():
    nodes = parse_sinfo(SINFO)
    assert misfit(SlurmOptions(cpus_per_run=4), nodes) == (
        "--cpus-per-run 4 asks more CPUs than any node of partition debug has (2, sinfo): no task could ever start; "
        "pass --cpus-per-run 2 or fewer, or another --partition"
    ), "the default partition (sinfo's *) when none is named"
    assert misfit(SlurmOptions(cpus_per_run=2), nodes) is None
    assert misfit(SlurmOptions(partition="gpu", cpus_per_run=64, gpus_per_run=2), nodes) is None
    assert misfit(SlurmOptions(partition="gpu", cpus_per_run=4, gpus_per_run=9), nodes).startswith(
        "--gpus-per-run 9 asks more GPUs than any node of partition gpu has (8, sinfo)"
    )
    assert "pass --gpus-per-run 0, or a partition with GPUs" in misfit(
        SlurmOptions(cpus_per_run=1, gpus_per_run=1), nodes
    )
    assert misfit(SlurmOptions(partition="gpu", cpus_per_run=32, gpus_per_run=4), nodes).startswith(
        "no node of partition gpu has --cpus-per-run 32, --gpus-per-run 4 at once (sinfo: 64 CPUs, 2 GPUs, 512000 MB; "
    ), "each fits some node, but no node both"
    assert misfit(SlurmOptions(partition="debug,gpu", cpus_per_run=64), nodes) is None, "any partition of a list"
    assert (
        misfit(SlurmOptions(partition="gpus"), nodes)
        == "--partition gpus: SLURM has no such partition (sinfo lists debug, gpu, bigmem)"
    )


def test_memory_asked_through_sbatch_is_counted_per_task():
    nodes = parse_sinfo(SINFO)
    per_cpu = SlurmOptions(cpus_per_run=2, extra=slurm.parse_sbatch(["mem-per-cpu=16G"]))
    assert misfit(per_cpu, nodes) == (
        "--sbatch mem_per_cpu=16G asks 32768 MB per task, more memory than any node of partition debug has "
        "(24105 MB, sinfo): no task could ever start; ask for less, or another --partition"
    )
    assert misfit(SlurmOptions(cpus_per_run=2, extra={"mem": "20G"}), nodes) is None
    assert misfit(SlurmOptions(cpus_per_run=2, extra={"mem": "0"}), nodes) is None, "mem=0: all of a node's memory"
    assert misfit(SlurmOptions(partition="bigmem", cpus_per_run=8, extra={"mem": "1T"}), nodes) is None


def test_without_an_answer_from_sinfo_nothing_is_judged():
    assert misfit(SlurmOptions(cpus_per_run=512), []) is None
    assert misfit(SlurmOptions(cpus_per_run=512), parse_sinfo("gpu|2|(null)|1000\n")) is None, "no default partition"


def _demo(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text((REPO / "sweeps" / "demo.yaml").read_text())
    return path


def test_run_sweep_refuses_before_submitting_and_submits_what_fits(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(partition, "sinfo_text", lambda: SINFO)
    submitted = []
    monkeypatch.setattr(slurm, "submit", lambda runs, options, *a: submitted.append(options) or ["7_0"] * len(runs))
    args = [str(_demo(tmp_path)), "--runs-dir", str(tmp_path / "runs"), "--slurm"]
    assert run_sweep.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: --cpus-per-run 4 asks more CPUs")
    assert not submitted and not (tmp_path / "runs").exists()
    assert run_sweep.main([*args, "--cpus-per-run", "1"]) == 0
    assert [o.cpus_per_run for o in submitted] == [1] and "submitted 6 run(s) as job array 7" in capsys.readouterr().out


def test_status_gives_slurms_reason_for_each_pending_task(tmp_path, monkeypatch):
    spec = yaml.safe_load((REPO / "sweeps" / "demo.yaml").read_text())
    runs = resolve_runs(spec, runs_dir=str(tmp_path))[:3]
    sweep_dir = tmp_path / "demo"
    (sweep_dir / "_slurm").mkdir(parents=True)
    jobs = {run.name: f"5_{i}" for i, run in enumerate(runs)}
    (sweep_dir / "_slurm" / "submitted.json").write_text(json.dumps(jobs))
    squeue = "5_0|PENDING|PartitionConfig\n5_1|PENDING|Resources\n5_2|RUNNING|None\n"
    asked = []

    def fake_run(argv, **kwargs):
        asked.append(argv)
        return subprocess.CompletedProcess(argv, 0, squeue, "")

    monkeypatch.setattr(slurm.subprocess, "run", fake_run)
    plan = slurm.plan_slurm(runs, sweep_dir, retry_failed=False)
    assert asked == [["squeue", "-h", "-t", "all", "-r", "-o", "%i|%T|%r", "-j", "5"]]
    assert slurm.status_lines(runs, plan) == [
        f"  queued   {runs[0].name}  (SLURM: PartitionConfig: the task asks more CPUs, GPUs, memory or time than the "
        "partition's nodes or limits allow: scancel it and submit again asking less)",
        f"  queued   {runs[1].name}  (SLURM: Resources: waiting for free CPUs, GPUs or memory)",
        f"  running  {runs[2].name}",
    ]
    assert plan.to_submit == []
