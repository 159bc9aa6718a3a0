"""Local sweep execution: each run its own process, several at once, with progress and a final table.

A run's state comes from the run store alone (summary.json), so re-running a sweep skips finished runs,
resumes unfinished ones from their checkpoints and, with ``retry_failed``, retries failed ones.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from experiments.errors import EXIT_STOPPED
from experiments.store import STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING, RunDir
from experiments.sweep.spec import SweepRun, member_runs

DONE, PENDING, FAILED, PARTIAL = "done", "pending", "failed", "partial"


def run_state(run: SweepRun) -> str:
    """done (every member finished), failed (a member failed), partial (started, resumable) or pending."""
    statuses = [RunDir(d).status() for d in run.dirs]
    if all(s == STATUS_FINISHED for s in statuses):
        return DONE
    if any(s == STATUS_FAILED for s in statuses):
        return FAILED
    if any(s == STATUS_RUNNING for s in statuses):
        return PARTIAL
    return PENDING


def run_work(run: SweepRun) -> int:
    """A run's work estimate: layers x training images, summed over its networks; orders one sweep's runs by length."""
    return sum(m.depth for m in run.config.members()) * run.config.max_steps * run.config.batch_size


def start_order(runs: Sequence[SweepRun]) -> list[SweepRun]:
    """Longest runs first (stable among equals): a sweep ends with its last run, so its longest run starts at once."""
    return sorted(runs, key=run_work, reverse=True)


def ran_split(run: SweepRun) -> bool:
    """Whether a pair's networks started as separate runs: a member's summary names no partner.

    A pair keeps its one checkpoint in its first member's folder, so the way a pair started is the way it resumes.
    """
    summaries = [RunDir(d).read_summary() or {} for d in run.dirs]
    return any("paired_with" in s and s["paired_with"] is None for s in summaries)


def plan_runs(runs: Sequence[SweepRun], split_pairs: bool) -> list[SweepRun]:
    """The processes to start: each pair as one, or as its two networks' runs where ``split_pairs`` allows.

    A pair splits when it has no checkpoint to resume as a pair (its one checkpoint lives in its first member's
    folder), and a pair that started split is split again, since that is where its checkpoints are. Splitting
    gives twice the processes at half the work each: with enough slots the longest process takes half as long.
    """
    planned = []
    for run in runs:
        if len(run.dirs) > 1 and (ran_split(run) or (split_pairs and not RunDir(run.dirs[0]).checkpoints())):
            planned += [m for m in member_runs(run) if run_state(m) != DONE]
        else:
            planned.append(run)
    return planned


@dataclass
class Slot:
    """Where one run executes: an optional GPU and the CPU threads it may use."""

    gpu: str | None
    threads: int

    def env(self) -> dict[str, str]:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        return env


def make_slots(gpus: Sequence[str] | None, runs_per_gpu: int, jobs: int) -> list[Slot]:
    """``runs_per_gpu`` slots per listed GPU, else ``jobs`` CPU slots sharing the cores without oversubscription."""
    cores = os.cpu_count() or 1
    if gpus:
        per = max(1, cores // (len(gpus) * runs_per_gpu))
        return [Slot(g, per) for g in gpus for _ in range(runs_per_gpu)]
    return [Slot(None, max(1, cores // jobs)) for _ in range(jobs)]


@dataclass
class Active:
    run: SweepRun
    slot: Slot
    proc: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.perf_counter)


def _progress_of(run: SweepRun) -> tuple[int, int]:
    """(step reached, max_steps) of a run: its slowest member's last logged step, read from the files' tails only.

    The status line polls every active run several times a second, so this must not parse whole metrics files.
    """
    steps = [RunDir(d).last_step() or 0 for d in run.dirs]
    return min(steps) if steps else 0, run.config.max_steps


def _mark_failed(run: SweepRun, reason: str) -> None:
    """Record a failure the run could not record itself (killed, out of memory, crashed on start)."""
    for d in run.dirs:
        store = RunDir(d)
        if store.status() != STATUS_FINISHED and (
            store.status() != STATUS_FAILED or not store.read_summary().get("reason")
        ):
            store.update_summary(status=STATUS_FAILED, reason=reason)


def _last_error_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for ln in reversed(lines):
        if ln.startswith(("error:", "run failed:")) or "Error" in ln:
            return ln
    return lines[-1] if lines else ""


class SweepStopped(Exception):
    """The runner was asked to stop (SIGTERM); its runs were told to checkpoint and can be resumed."""


def _settle(a: Active, code: int) -> str:
    """The state of a run whose process ended: done, partial (pre-empted after a checkpoint) or failed."""
    state = run_state(a.run)
    if code == 0 and state == DONE:
        return DONE
    if code == EXIT_STOPPED and state == PARTIAL:
        return PARTIAL
    reason = _last_error_line(a.log) or f"exit code {code}"
    _mark_failed(a.run, f"{reason} (exit code {code}; log {a.log})")
    return FAILED


def _stop_all(active: list[Active], outcome: dict[str, str], echo: Callable[[str], None], grace: float = 300) -> None:
    """Ask every running run to checkpoint and stop (SIGTERM), wait for them, and record their states."""
    for a in active:
        if a.proc.poll() is None:
            a.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for a in active:
        try:
            code = a.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            a.proc.kill()
            code = a.proc.wait()
        outcome[a.run.name] = _settle(a, code) if code not in (EXIT_STOPPED, -signal.SIGINT, 130) else PARTIAL
        echo(f"stopped  {a.run.name}: {outcome[a.run.name]}")


def execute(
    runs: Sequence[SweepRun],
    slots: Sequence[Slot],
    log_dir: Path,
    echo: Callable[[str], None] = print,
    interval: float = 5.0,
    command: Sequence[str] = (sys.executable, "-m", "experiments.train"),
) -> dict[str, str]:
    """Run ``runs`` across ``slots``, longest first; returns each run's final state. A failing run stops no other."""
    log_dir.mkdir(parents=True, exist_ok=True)
    queue = start_order(runs)
    free = list(slots)
    active: list[Active] = []
    outcome: dict[str, str] = {}
    last_line = ""
    last_print = 0.0
    try:
        while queue or active:
            while queue and free:
                run, slot = queue.pop(0), free.pop(0)
                log = log_dir / f"{run.name}.log"
                handle = log.open("a")
                proc = subprocess.Popen(
                    [*command, *run.args],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "CI": "1", **slot.env()},
                )
                handle.close()
                active.append(Active(run, slot, proc, log))
            time.sleep(min(interval, 0.2))
            for a in list(active):
                code = a.proc.poll()
                if code is None:
                    continue
                active.remove(a)
                free.append(a.slot)
                outcome[a.run.name] = state = _settle(a, code)
                verb = {DONE: "finished", PARTIAL: "stopped "}.get(state, "FAILED  ")
                echo(f"{verb} {a.run.name} ({time.perf_counter() - a.started:.0f}s)")
            now = time.perf_counter()
            line = _status_line(outcome, active, len(queue))
            if line != last_line and now - last_print >= interval or (not queue and not active):
                echo(line)
                last_line, last_print = line, now
    except (KeyboardInterrupt, SweepStopped):
        _stop_all(active, outcome, echo)
        raise
    return outcome


def _status_line(outcome: dict[str, str], active: list[Active], to_go: int) -> str:
    done = sum(s == DONE for s in outcome.values())
    failed = sum(s == FAILED for s in outcome.values())
    parts = [f"done {done} | running {len(active)} | failed {failed} | to go {to_go}"]
    for a in active:
        step, total = _progress_of(a.run)
        elapsed = time.perf_counter() - a.started
        eta = elapsed / step * (total - step) if step else math.nan
        parts.append(f"{a.run.name}: step {step}/{total}" + (f" ETA {eta:.0f}s" if step else ""))
    return "  ".join(parts)


def summary_table(runs: Sequence[SweepRun]) -> str:
    """A final table: each run's status, final training and test error, and wall time, from the store."""
    header = f"{'run':<44} {'status':<9} {'train err':>9} {'test err':>9} {'val err':>8} {'time':>7}"
    lines = [header, "-" * len(header)]
    for run in runs:
        for d in run.dirs:
            s = RunDir(d).read_summary() or {}

            def pct(key: str, s: dict = s) -> str:
                v = s.get(key)
                return f"{v:.2f}" if isinstance(v, int | float) else "-"

            wall = s.get("wall_time_s")
            lines.append(
                f"{d.name:<44} {s.get('status', 'pending'):<9} {pct('final_train_error'):>9} "
                f"{pct('final_test_error'):>9} {pct('final_val_error'):>8} "
                f"{(f'{wall:.0f}s' if wall else '-'):>7}"
            )
            if s.get("status") == STATUS_FAILED and s.get("reason"):
                lines.append(f"    reason: {s['reason'][:200]}")
    return "\n".join(lines)
