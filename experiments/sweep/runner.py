"""Local sweep execution: each run its own process, several at once, with progress and a final table.

A run's state comes from the run store alone (summary.json), so re-running a sweep skips finished runs,
resumes unfinished ones from their checkpoints and, with ``retry_failed``, retries failed ones.
"""

from __future__ import annotations

import ctypes
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from experiments.errors import AGENT_TRIAL_ENV, EXIT_BAD_INPUT, EXIT_CLAIMED, EXIT_STOPPED
from experiments.store import STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING, RunDir, error_name
from experiments.sweep.spec import SweepRun, member_runs

DONE, PENDING, FAILED, PARTIAL = "done", "pending", "failed", "partial"
CLAIMED = "claimed"
"""A process's outcome, not a run's state: another runner holds the run's claim (EXIT_CLAIMED); this one moved on."""


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


RUN_MEMORY = 2 << 30
"""Memory one CPU run may take (torch and Lightning alone hold about 1 GB): bounds the default number of CPU jobs."""


def cpu_jobs(processes: int) -> int:
    """The default number of CPU runs at once: one per core (each then trains on one thread), at most one per
    process to start and per ``RUN_MEMORY`` of free memory.

    Small nets gain little from a second OpenMP thread, and on a shared CPU lose much: on the project's 2-core
    machine a step of the demo's 44-layer pair was 1.2x faster on two threads than on one while the machine was idle,
    and 10x slower while other jobs ran (``benchmarks/results/demo_profile.json``, ``demo_walls.json``); one-thread
    runs side by side use every core either way.
    """
    cores = os.cpu_count() or 1  # make_slots shares these between the jobs
    return max(1, min(cores, processes, _available_memory(cores * RUN_MEMORY) // RUN_MEMORY))


def _available_memory(default: int) -> int:
    """Bytes of memory available to new processes (Linux: MemAvailable), else ``default``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return default


@dataclass
class Active:
    run: SweepRun
    slot: Slot
    proc: subprocess.Popen
    log: Path
    started: float = field(default_factory=time.perf_counter)
    first_move: tuple[int, float] | None = None  # (step, time) the first time its step moved in this process
    last_move: tuple[int, float] | None = None  # (step, time) of its step's latest move
    step: int | None = None  # its step at the latest poll


def _progress_of(run: SweepRun) -> tuple[int, int]:
    """(step reached, max_steps) of a run: its slowest member's last logged step, read from the files' tails only.

    The status line polls every active run several times a second, so this must not parse whole metrics files.
    """
    steps = [RunDir(d).last_step() or 0 for d in run.dirs]
    return min(steps) if steps else 0, run.config.max_steps


INPUT_FAILURE = "failed_on_input"
"""summary.json key of a run whose process stopped on bad input before training (exit code 2, e.g. missing data)."""


def _mark_failed(run: SweepRun, reason: str, on_input: bool = False) -> None:
    """Record a failure the run could not record itself (killed, out of memory, crashed on start).

    ``on_input``: the process exited with EXIT_BAD_INPUT (missing or unreadable data, a bad config), which it reports
    before training; such a run is retried without --retry-failed once the sweep's checks pass (``plan``).
    """
    for d in run.dirs:
        store = RunDir(d)
        if store.status() != STATUS_FINISHED and (
            store.status() != STATUS_FAILED or not store.read_summary().get("reason")
        ):
            store.update_summary(status=STATUS_FAILED, reason=reason)
        if on_input and store.status() == STATUS_FAILED:
            store.update_summary(**{INPUT_FAILURE: True})


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
    if code == EXIT_CLAIMED:  # trained by another runner (experiments.store.claims): not a failure
        return CLAIMED
    state = run_state(a.run)
    if code == 0 and state == DONE:
        return DONE
    if code == EXIT_STOPPED and state in (PARTIAL, PENDING):  # stopped by a signal: resumable, or not yet started
        return state
    reason = _last_error_line(a.log) or f"exit code {code}"
    _mark_failed(a.run, f"{reason} (exit code {code}; log {a.log})", on_input=code == EXIT_BAD_INPUT)
    return FAILED


def stopped_state(run: SweepRun, state: str) -> str:
    """What a stopped run's line says: 'resumable from step N', 'not started', or its state (finished or failed)."""
    if state == PARTIAL:
        step = (RunDir(run.dirs[0]).read_summary() or {}).get("step")
        return f"resumable from step {step}" if step else "resumable"
    return "not started" if state == PENDING else state


def _stop_all(
    active: list[Active],
    outcome: dict[str, str],
    echo: Callable[[str], None],
    grace: float = 300,
    stop: StopRequest | None = None,
) -> None:
    """Ask every running run to checkpoint and stop (SIGTERM), wait for them, and record their states.

    A run stopped this way is never marked failed: it checkpointed (partial), had not started (pending), or finished
    or failed on its own just then. A second Ctrl-C while waiting (``stop.at_once``) passes SIGINT on, which stops a
    run at once, resumable from its newest checkpoint; whatever is still running ``grace`` seconds on is killed.
    """
    for a in active:
        if a.proc.poll() is None:
            a.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    hurried = False
    waiting = list(active)
    while waiting:
        if stop is not None and stop.at_once and not hurried:
            hurried = True
            for a in waiting:
                if a.proc.poll() is None:
                    a.proc.send_signal(signal.SIGINT)
            deadline = min(deadline, time.monotonic() + 10)
        for a in list(waiting):
            code = a.proc.poll()
            if code is None and time.monotonic() > deadline:
                a.proc.kill()
                code = a.proc.wait()
            if code is None:
                continue
            waiting.remove(a)
            state = run_state(a.run) if code != EXIT_CLAIMED else CLAIMED
            outcome[a.run.name] = state
            echo(f"stopped  {a.run.name}: {stopped_state(a.run, state)}")
        time.sleep(0.05)


class StopRequest:
    """Why a local sweep stops before its end: a signal (Ctrl-C, SIGTERM, SIGHUP) or its output closing.

    Used as a context manager, it catches those signals; a handler only records the request, and ``execute`` then
    asks every running run to checkpoint and stop. A second Ctrl-C while stopping sets ``at_once``: runs stop at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.reason: str | None = None
        self.at_once = False
        self._previous: dict[int, object] = {}

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.reason is not None:
            self.at_once = True
        self.request(signal.Signals(signum).name)

    def __enter__(self) -> StopRequest:
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


class Console:
    """The runner's output: events (a run started, finished, failed, stopped) as lines, and a status line.

    On a terminal the status is one live line, rewritten in place below the events; elsewhere (a log, a pipe) it is
    a line at most every ``every`` seconds. If the output closes (``run_sweep.py ... | head``), ``on_closed`` is
    called once and everything after is discarded, so the runner can stop its runs instead of dying on the pipe.
    """

    def __init__(self, stream=None, live: bool | None = None, every: float = 60.0, on_closed=None):
        self.stream = stream if stream is not None else sys.stdout
        self.live = _isatty(self.stream) if live is None else live
        self.every, self.on_closed = every, on_closed
        self.closed = False
        self._status = ""
        self._printed_at = -math.inf

    def _write(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ConnectionResetError, OSError, ValueError):
            self.closed = True
            _discard(self.stream)
            if self.on_closed is not None:
                self.on_closed()

    def _fit(self, line: str) -> str:
        width = shutil.get_terminal_size((120, 24)).columns - 1
        return line if len(line) <= width else line[: width - 3] + "..."

    def event(self, line: str) -> None:
        if self.live:
            self._write("\r\033[K" + line + "\n" + (self._fit(self._status) if self._status else ""))
        else:
            self._write(line + "\n")

    def reader_gone(self) -> bool:
        """Whether the output is a pipe whose reader has gone (checked without writing, so a log that prints a
        status line a minute still notices ``| head`` closing at once); says so to ``on_closed`` once."""
        if self.closed:
            return True
        try:
            poller = select.poll()
            poller.register(self.stream.fileno(), select.POLLOUT)
            gone = any(event & select.POLLERR for _, event in poller.poll(0))
        except (AttributeError, OSError, ValueError):  # no fileno (a test's StringIO), or no poll on this platform
            return False
        if gone:
            self.closed = True
            _discard(self.stream)
            if self.on_closed is not None:
                self.on_closed()
        return gone

    def status(self, line: str, final: bool = False) -> None:
        if self.reader_gone():
            return
        if self.live:
            if line != self._status or final:
                self._write("\r\033[K" + self._fit(line) + ("\n" if final else ""))
            self._status = "" if final else line
        elif final or time.monotonic() - self._printed_at >= self.every:
            self._write(line + "\n")
            self._printed_at = time.monotonic()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _discard(stream) -> None:
    """Point a closed stream's file descriptor at /dev/null, so flushing it at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


try:
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:
    _LIBC = None
_PR_SET_PDEATHSIG = 1


def _stop_with_runner() -> None:
    """In a run's process, before it starts: the kernel sends it SIGTERM if the runner dies (Linux), so a runner that
    is killed outright leaves no run training on unwatched: the run checkpoints and stops as if pre-empted."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def execute(
    runs: Sequence[SweepRun],
    slots: Sequence[Slot],
    log_dir: Path,
    echo: Callable[[str], None] = print,
    interval: float = 5.0,
    command: Sequence[str] = (sys.executable, "-m", "experiments.train"),
    status: Callable[[str, bool], None] | None = None,
    stop: StopRequest | None = None,
) -> dict[str, str]:
    """Run ``runs`` across ``slots``, longest first; returns each run's final state. A failing run stops no other.

    ``echo`` gets a line when a run starts, finishes, fails or stops; ``status(line, final)`` gets the sweep's status
    line at every poll (by default ``echo`` gets it when it changed, at most every ``interval`` seconds, and at the
    end). Once ``stop`` is requested (``StopRequest``: a signal, a closed output), no run starts, every running run
    is asked to checkpoint and stop, and the states are returned; without one, Ctrl-C does the same and re-raises.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    queue = start_order(runs)
    free = list(slots)
    active: list[Active] = []
    outcome: dict[str, str] = {}
    status = status or _throttled(echo, interval)

    def stopping() -> bool:
        return stop is not None and stop.reason is not None

    try:
        while (queue or active) and not stopping():
            while queue and free and not stopping():
                run, slot = queue.pop(0), free.pop(0)
                active.append(_launch(run, slot, log_dir, command))
                echo(f"started  {run.name}")
            time.sleep(min(interval, 0.2))
            for a in list(active):
                code = a.proc.poll()
                if code is None:
                    continue
                active.remove(a)
                free.append(a.slot)
                outcome[a.run.name] = state = _settle(a, code)
                verb = {DONE: "finished", PARTIAL: "stopped ", CLAIMED: "claimed "}.get(state, "FAILED  ")
                echo(f"{verb} {a.run.name} ({time.perf_counter() - a.started:.0f}s)")
            status(_status_line(outcome, active, len(queue)), False)
    except (KeyboardInterrupt, SweepStopped):
        _stop_all(active, outcome, echo, stop=stop)
        raise
    if stopping():
        _stop_all(active, outcome, echo, stop=stop)
        active.clear()
    status(_status_line(outcome, active, len(queue)), True)
    return outcome


def _launch(run: SweepRun, slot: Slot, log_dir: Path, command: Sequence[str]) -> Active:
    """Start one run's process on ``slot``, its output appended to ``log_dir/<run>.log``."""
    log = log_dir / f"{run.name}.log"
    with log.open("a") as handle:
        proc = subprocess.Popen(
            [*command, *run.args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if k != AGENT_TRIAL_ENV}, "CI": "1", **slot.env()},
            preexec_fn=_stop_with_runner if _LIBC is not None else None,  # the runner has one thread
        )
    return Active(run, slot, proc, log)


def _throttled(echo: Callable[[str], None], interval: float) -> Callable[[str, bool], None]:
    """A status sink for ``echo``: a line when it changed and ``interval`` seconds passed, and the final one."""
    last = {"line": "", "at": -math.inf}

    def status(line: str, final: bool) -> None:
        now = time.perf_counter()
        if final or (line != last["line"] and now - last["at"] >= interval):
            echo(line)
            last.update(line=line, at=now)

    return status


def _eta(a: Active, now: float) -> tuple[int, int, float | None]:
    """(step, max_steps, seconds left) of an active run, the rate measured in this process only.

    The rate runs from the first move of the run's step seen in this process to its latest move, so neither the
    start-up nor a resumed run's earlier steps count; the time since the latest move is taken off, so the ETA
    counts down and never rises while the step stands still.
    """
    step, total = _progress_of(a.run)
    if a.step is not None and step != a.step:
        a.last_move = (step, now)
        a.first_move = a.first_move or a.last_move
    a.step = step
    if a.first_move is None or a.last_move is None or a.last_move[0] == a.first_move[0]:
        return step, total, None
    (s0, t0), (s1, t1) = a.first_move, a.last_move
    rate = (s1 - s0) / (t1 - t0) if t1 > t0 else math.inf
    return step, total, max(0.0, (total - s1) / rate - (now - t1))


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _status_line(outcome: dict[str, str], active: list[Active], to_go: int) -> str:
    """The sweep's counts, then each active run's step and ETA. A run that ended stopped (resumable, or stopped before
    it started) or claimed by another runner is counted too, where there is one, so that the counts add up."""
    ended = list(outcome.values())
    stopped, claimed = sum(s in (PARTIAL, PENDING) for s in ended), ended.count(CLAIMED)
    counts = [f"done {ended.count(DONE)}", f"running {len(active)}", f"failed {ended.count(FAILED)}"]
    counts += [f"stopped {stopped}"] * bool(stopped) + [f"claimed {claimed}"] * bool(claimed) + [f"to go {to_go}"]
    parts = [" | ".join(counts)]
    now = time.perf_counter()
    for a in active:
        step, total, eta = _eta(a, now)
        parts.append(f"{a.run.name}: step {step}/{total}" + (f" ETA {_duration(eta)}" if eta is not None else ""))
    return "  ".join(parts)


SUMMARY_ERRORS = ("train_error", "test_error", "test10crop_error", "val_error")
"""The final errors the runner's table can show: training error always, each other where some run has it."""


def summary_table(runs: Sequence[SweepRun]) -> str:
    """A final table: each run's status, its final errors (named as the report names them, ``error_name``) and wall
    time, from the store."""
    rows = [(d.name, RunDir(d).read_summary() or {}) for run in runs for d in run.dirs]

    def pct(s: dict, column: str) -> str:
        v = s.get(f"final_{column}")
        return f"{v:.2f}" if isinstance(v, int | float) else "-"

    shown = [c for c in SUMMARY_ERRORS if c == "train_error" or any(pct(s, c) != "-" for _, s in rows)]
    families = {run.config.family for run in runs}
    family = families.pop() if len(families) == 1 else "cifar10"
    names = [error_name(c, family) for c in shown]
    header = f"{'run':<44} {'status':<9} " + " ".join(names) + f" {'time':>7}"
    lines = [header, "-" * len(header)]
    for name, s in rows:
        wall = s.get("wall_time_s")
        errors = " ".join(f"{pct(s, c):>{len(n)}}" for c, n in zip(shown, names, strict=True))
        lines.append(f"{name:<44} {s.get('status', 'pending'):<9} {errors} {(f'{wall:.0f}s' if wall else '-'):>7}")
        if s.get("status") == STATUS_FAILED and s.get("reason"):
            lines.append(f"    reason: {s['reason'][:200]}")
    return "\n".join(lines)
