"""A sweep on a SLURM cluster: its pending runs as one job array through submitit, one array task per run.

Each task runs ``python -m experiments.train ...`` as a child process (``TrainTask``) and passes preemption on to it:

- submitit's warning signal (the job's ``--signal``, before a time limit or at ``scancel --signal=USR1``) makes it
  call ``TrainTask.checkpoint``: the child gets SIGUSR1, saves a checkpoint and exits 3, and submitit requeues the
  task, whose next start resumes the run from that checkpoint;
- SLURM's own SIGTERM (``scontrol requeue``, preemption, ``scancel``) reaches the child directly, which checkpoints
  and exits 3; a requeued task then leaves without a result and starts again later, a cancelled one reports a stop.

The warning signal is SIGUSR1, which the run handles, rather than submitit's default SIGUSR2, which would reach the
child too and kill it without a checkpoint. Submitted jobs are recorded in ``<sweep>/_slurm/submitted.json``, so a
re-run submits only runs that are neither done nor queued or running, and ``--status`` shows each run's state.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.errors import AGENT_TRIAL_ENV, EXIT_STOPPED
from experiments.store import atomic_write_json, read_json
from experiments.sweep.runner import DONE, FAILED, run_state
from experiments.sweep.spec import SweepError, SweepRun

PREEMPT_SIGNAL = "USR1"
"""The warning signal submitit asks SLURM for and acts on; the run checkpoints on it too (``Preemption``)."""
SLURM_DIR = "_slurm"
"""Under the sweep folder: submitit's job folders (scripts, logs) and ``submitted.json``."""
SUBMITTED_FILE = "submitted.json"
ACTIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
     "SUSPENDED", "STAGE_OUT", "SIGNALING"}
)  # fmt: skip
"""SLURM job states in which a task will still run or is running: its run is not submitted again."""
KEEP_SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")
"""SLURM variables the training child keeps. The others would make Lightning believe srun started it (its own
SIGUSR1 requeue, DDP ranks from SLURM_PROCID) although the task, not srun, launches the run."""


DEFAULT_CPUS_PER_RUN = 4
"""CPUs each array task asks for (``--cpus-per-run``): the run's threads and its data loading."""


class RunStopped(RuntimeError):
    """The run checkpointed and stopped without being requeued (cancelled, out of time); re-running resumes it."""


@dataclass
class SlurmOptions:
    """How each array task is scheduled: ``sbatch`` options that submitit passes on."""

    partition: str | None = None
    account: str | None = None
    time_min: int = 24 * 60
    cpus_per_run: int = DEFAULT_CPUS_PER_RUN
    gpus_per_run: int = 0
    parallelism: int | None = None
    warn_s: int = 120
    extra: dict[str, str] = field(default_factory=dict)

    def parameters(self, tasks: int) -> dict[str, Any]:
        """submitit's ``update_parameters`` for an array of ``tasks``."""
        extra: dict[str, Any] = {"requeue": True, **self.extra}
        params: dict[str, Any] = {
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_run,
            "slurm_array_parallelism": self.parallelism or tasks,
            "slurm_signal_delay_s": self.warn_s,
            "slurm_additional_parameters": extra,
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.account:
            params["slurm_account"] = self.account
        if self.gpus_per_run:
            params["gpus_per_node"] = self.gpus_per_run
        return params

    def sbatch_lines(self, tasks: int) -> list[str]:
        """The ``#SBATCH`` options as a dry run shows them."""
        lines = [f"--array=0-{tasks - 1}%{self.parallelism or tasks}", f"--time={self.time_min}"]
        lines += [f"--cpus-per-task={self.cpus_per_run}", f"--signal={PREEMPT_SIGNAL}@{self.warn_s}", "--requeue"]
        lines += [f"--partition={self.partition}"] if self.partition else []
        lines += [f"--account={self.account}"] if self.account else []
        lines += [f"--gpus-per-node={self.gpus_per_run}"] if self.gpus_per_run else []
        lines += [f"--{k.replace('_', '-')}={v}" for k, v in self.extra.items()]
        return lines


def parse_sbatch(pairs: Sequence[str]) -> dict[str, str]:
    """``--sbatch KEY=VALUE`` flags (e.g. ``qos=high``, ``constraint=a100``) into submitit's additional parameters."""
    extra = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise SweepError(f"--sbatch takes KEY=VALUE (an sbatch option without its dashes), got {pair!r}")
        extra[key.strip().lstrip("-").replace("-", "_")] = value.strip()
    return extra


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The training child's environment: this task's, less the SLURM and submitit variables that mislead it (and a
    W&B agent's trial marker: an array task is not an agent)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith(("SLURM_", "SUBMITIT_")) or k in KEEP_SLURM_VARIABLES) and k != AGENT_TRIAL_ENV
    }
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus:  # task/none binds no cores: keep the run's threads to what the task asked for
        env.setdefault("OMP_NUM_THREADS", cpus)
        env.setdefault("MKL_NUM_THREADS", cpus)
    return {**env, "CI": "1", **(extra or {})}


def being_requeued() -> bool:
    """Whether SLURM is requeueing this job right now: its restart count is already past this start's."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    try:
        out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    match = re.search(r"\bRestarts=(\d+)", out)
    return bool(match) and int(match.group(1)) > int(os.environ.get("SLURM_RESTART_COUNT", "0"))


def _submitit() -> Any:
    """submitit, imported with SIGUSR1 as its warning signal (it reads the variable at import)."""
    os.environ["SUBMITIT_PREEMPT_SIGNAL"] = PREEMPT_SIGNAL
    import submitit
    from submitit.core.job_environment import JobEnvironment

    JobEnvironment.USR_SIG = PREEMPT_SIGNAL
    return submitit


class TrainTask:
    """One run as one array task: starts the training command, passes preemption on, and asks to be requeued.

    A ``submitit.helpers.Checkpointable`` in behaviour (submitit calls ``checkpoint`` on its warning signal); its
    base class is added when submitit is imported (``task_class``), so this module imports without submitit.
    """

    def __init__(self, argv: Sequence[str], cwd: str, stop_timeout_s: float = 300.0):
        self.argv, self.cwd, self.stop_timeout_s = list(argv), cwd, stop_timeout_s
        self._proc: subprocess.Popen | None = None
        self._rc: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_proc": None, "_rc": None}

    def __call__(self) -> int:
        self._proc = subprocess.Popen(self.argv, cwd=self.cwd, env=child_env())
        threading.Thread(target=self._reap, daemon=True).start()
        while self._rc is None:  # not Popen.wait(): checkpoint() runs in a signal handler on this thread
            time.sleep(0.2)
        rc = self._rc
        if rc == 0:
            return 0
        stopped = rc in (EXIT_STOPPED, -signal.SIGTERM, -signal.SIGUSR1)
        deadline = time.monotonic() + (5.0 if stopped else 0.0)  # SIGTERM may precede submitit's own requeue
        while True:
            if being_requeued():
                raise SystemExit(rc)  # no result: SLURM starts the task again and the run resumes
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if stopped:
            raise RunStopped(f"{shlex.join(self.argv)} stopped by a signal (exit {rc}); re-run the sweep to resume it")
        raise RuntimeError(f"{shlex.join(self.argv)} failed with exit {rc}; its run folder's summary.json says why")

    def _reap(self) -> None:
        assert self._proc is not None
        self._rc = self._proc.wait()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Have the run checkpoint and stop, then hand submitit a fresh copy of this task to requeue."""
        if self._proc is not None and self._rc is None:
            self._proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + self.stop_timeout_s
            while self._rc is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._rc is None:  # never let two copies write one run folder
                self._proc.kill()
                while self._rc is None:
                    time.sleep(0.1)
        return _submitit().helpers.DelayedSubmission(task_class()(self.argv, self.cwd, self.stop_timeout_s))


def task_class() -> type:
    """``TrainTask`` as a submitit Checkpointable (submitit requeues only callables that are)."""
    submitit = _submitit()
    return type("CheckpointableTrainTask", (TrainTask, submitit.helpers.Checkpointable), {"__module__": __name__})


def command(run: SweepRun) -> list[str]:
    """The training command of one run, with this environment's Python (an unactivated venv works too)."""
    return [sys.executable, "-m", "experiments.train", *run.args]


def slurm_dir(sweep_dir: Path) -> Path:
    return sweep_dir / SLURM_DIR


def submitted(sweep_dir: Path) -> dict[str, str]:
    """Run name -> SLURM job id (``ARRAY_TASK``) of the last submission of each run of this sweep folder."""
    path = slurm_dir(sweep_dir) / SUBMITTED_FILE
    return {k: str(v) for k, v in read_json(path).items()} if path.exists() else {}


def queue_states(job_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """SLURM's (state, reason) of each job id still known to it (``squeue -t all``); an unknown id is absent. The
    reason says why a pending task waits (``Resources``, ``PartitionConfig``, ...); ``None`` when nothing holds it."""
    if not job_ids:
        return {}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-r", "-o", "%i|%T|%r", "-j", ",".join(arrays)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    rows = [line.split("|", 2) for line in out.splitlines()]
    states = {row[0]: (row[1], row[2] if len(row) > 2 else "None") for row in rows if len(row) > 1}
    return {j: states[j] for j in job_ids if j in states}


@dataclass
class SlurmPlan:
    """What a ``--slurm`` call would submit, and the state of every run of the sweep (store and queue)."""

    to_submit: list[SweepRun]
    states: dict[str, str]
    waiting: dict[str, str] = field(default_factory=dict)
    """Run name -> SLURM's reason a queued run's task is pending (squeue's %r), where SLURM gives one."""


def plan_slurm(runs: Sequence[SweepRun], sweep_dir: Path, retry_failed: bool) -> SlurmPlan:
    """Each run's state: done/failed/partial/pending from the store, queued/running from SLURM; what to submit."""
    jobs = submitted(sweep_dir)
    queued = queue_states([jobs[r.name] for r in runs if r.name in jobs])
    states, waiting, to_submit = {}, {}, []
    for run in runs:
        queue, reason = queued.get(jobs.get(run.name, ""), (None, "None"))
        state = run_state(run)
        if state != DONE and queue in ACTIVE_STATES:
            states[run.name] = "running" if queue == "RUNNING" else "queued"
            if queue == "PENDING" and reason not in ("None", ""):
                waiting[run.name] = reason
            continue
        states[run.name] = state
        if state != DONE and (retry_failed or state != FAILED):
            to_submit.append(run)
    return SlurmPlan(to_submit, states, waiting)


def _submit_array(commands: list[list[str]], options: SlurmOptions, folder: Path, cwd: Path, name: str) -> list[str]:
    """One job array, a task per command; its job ids (``ARRAY_TASK``). A failed ``sbatch`` is one SweepError line."""
    submitit = _submitit()
    # every warning before a time limit requeues the task: a run is never given up for having been requeued often
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm", slurm_max_num_timeout=1000)
    executor.update_parameters(name=name, **options.parameters(len(commands)))
    Task = task_class()
    try:
        with executor.batch():
            jobs = [executor.submit(Task(argv, str(cwd))) for argv in commands]
    except FileNotFoundError as e:
        raise SweepError(f"--slurm needs SLURM's sbatch on this machine ({e.filename or 'sbatch'} not found)") from None
    except subprocess.CalledProcessError as e:
        said = (e.stderr or e.output or b"").decode(errors="replace").strip().splitlines()
        raise SweepError(f"sbatch refused the job array: {said[-1] if said else e}") from None
    return [job.job_id for job in jobs]


def submit(runs: Sequence[SweepRun], options: SlurmOptions, sweep_dir: Path, cwd: Path) -> list[str]:
    """Submit ``runs`` as one job array; record and return each task's job id (``ARRAY_TASK``)."""
    ids = _submit_array(
        [command(run) for run in runs], options, slurm_dir(sweep_dir), cwd, f"degradation-{sweep_dir.name}"
    )
    record = {**submitted(sweep_dir), **{run.name: job_id for run, job_id in zip(runs, ids, strict=True)}}
    atomic_write_json(slurm_dir(sweep_dir) / SUBMITTED_FILE, record)
    return ids


def wandb_agent_command(sweep_path: str) -> list[str]:
    """One W&B agent that runs one trial and exits, as an array task runs it (this environment's ``wandb``)."""
    return [sys.executable, "-m", "wandb", "agent", "--count", "1", sweep_path]


def submit_agents(sweep_path: str, tasks: int, options: SlurmOptions, folder: Path, cwd: Path) -> list[str]:
    """W&B mode on SLURM: ``tasks`` array tasks, each one W&B agent running one trial of ``sweep_path``."""
    return _submit_array([wandb_agent_command(sweep_path)] * tasks, options, folder, cwd, "degradation-wandb-agent")


PENDING_REASONS = {
    "PartitionConfig": "the task asks more CPUs, GPUs, memory or time than the partition's nodes or limits allow: "
    "scancel it and submit again asking less",
    "Resources": "waiting for free CPUs, GPUs or memory",
    "Priority": "other jobs go first",
    "JobArrayTaskLimit": "--array-parallelism tasks already run",
    "BeginTime": "its start time has not come",
}
"""What a pending task's reason (squeue's %r) means for the user, for the common ones."""


def status_lines(runs: Sequence[SweepRun], plan: SlurmPlan) -> list[str]:
    """One line per run: its state (done, failed, partial, pending, queued, running) and name, and for a pending task
    SLURM's reason (squeue's %r) and what it means."""
    lines = []
    for r in runs:
        line = f"  {plan.states[r.name]:<8} {r.name}"
        reason = plan.waiting.get(r.name)
        if reason:
            meaning = PENDING_REASONS.get(reason)
            line += f"  (SLURM: {reason}{f': {meaning}' if meaning else ''})"
        lines.append(line)
    return lines


def describe_submission(runs: Sequence[SweepRun], options: SlurmOptions, sweep_dir: Path) -> list[str]:
    """What ``--slurm --dry-run`` prints: the array's sbatch options and each task's command."""
    if not runs:
        return ["nothing to submit"]
    lines = [f"would submit one job array of {len(runs)} task(s), logs in {slurm_dir(sweep_dir)}:"]
    lines += [f"  #SBATCH {line}" for line in options.sbatch_lines(len(runs))]
    lines += [f"  task {i}: {shlex.join(command(run))}" for i, run in enumerate(runs)]
    return lines


__all__ = [
    "SlurmOptions",
    "TrainTask",
    "describe_submission",
    "parse_sbatch",
    "plan_slurm",
    "status_lines",
    "submit",
    "submit_agents",
]
