"""A local sweep from its file to its finished runs: expand, plan what to start, list it (dry run), run, report.

``run_sweep.py`` parses the command line and calls ``plan_sweep`` and then ``dry_run`` or ``run_local``.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import EXIT_BAD_INPUT, EXIT_STOPPED
from experiments.store import STATUS_FAILED, RunDir
from experiments.store.claims import holder
from experiments.sweep import runner
from experiments.sweep.runner import (
    DONE,
    FAILED,
    INPUT_FAILURE,
    Console,
    Slot,
    StopRequest,
    plan_runs,
    run_state,
    start_order,
    summary_table,
)
from experiments.sweep.spec import SweepError, SweepRun, load_sweep, resolve_runs


@dataclass
class Plan:
    """A sweep file's runs, their states, and the processes a local run would start (``execute`` orders them)."""

    name: str
    runs: list[SweepRun]
    states: dict[str, str]
    sweep_dir: Path
    processes: list[SweepRun]
    skipped_failed: int
    retried_on_input: int = 0

    @property
    def done(self) -> int:
        return sum(state == DONE for state in self.states.values())


def plan_sweep(
    path: str,
    runs_dir: str,
    seed: int = 0,
    count: int | None = None,
    split_pairs: bool = False,
    retry_failed: bool = False,
    wandb: str | None = None,
) -> Plan:
    """Expand the sweep file and plan its pending runs; raises SweepError (one line) for a bad file or run.
    ``wandb`` is the runs' W&B mode unless the file sets one (default: theirs, offline)."""
    spec = load_sweep(path)
    runs = resolve_runs(spec, runs_dir=runs_dir, seed=seed, count=count, where=path, wandb=wandb)
    states = {r.name: run_state(r) for r in runs}
    planned = plan_runs([r for r in runs if states[r.name] != DONE], split_pairs)
    processes = [p for p in planned if retry_failed or run_state(p) != FAILED or failed_on_input(p)]
    sweep_dir = Path(runs_dir) / runs[0].config.sweep  # the file's `sweep` folder, which files may share
    retried = 0 if retry_failed else sum(run_state(p) == FAILED for p in processes)
    return Plan(spec["name"], runs, states, sweep_dir, processes, len(planned) - len(processes), retried)


def failed_on_input(run: SweepRun) -> bool:
    """Whether every failed member of ``run`` failed on bad input before training (its process exited with code 2:
    missing or unreadable data, a bad config). Such a run is retried without --retry-failed: ``run_sweep.py`` checks
    every run's data before starting any, so a reason that is still there stops the sweep before it starts."""
    failed = [s for s in (RunDir(d).read_summary() or {} for d in run.dirs) if s.get("status") == STATUS_FAILED]
    return bool(failed) and all(s.get(INPUT_FAILURE) or "(exit code 2;" in (s.get("reason") or "") for s in failed)


def dry_run(plan: Plan) -> list[str]:
    """The dry-run listing: each run's state, name and arguments, then what would start."""
    lines = [f"  {plan.states[r.name]:<8} {r.name}  {' '.join(r.args)}" for r in plan.runs]
    names = ", ".join(r.name for r in start_order(plan.processes))
    count = len(plan.processes)
    lines.append(f"would start {count} process(es), longest first: {names}" if count else "nothing to start")
    return lines


def run_local(plan: Plan, slots: list[Slot], report: bool = True) -> int:
    """Run the plan's processes on ``slots``, print the final table and render the report; returns the exit code.

    Ctrl-C, SIGTERM, SIGHUP or a closed output (``| head``) stop the sweep: every running run checkpoints at its
    current step and stays resumable (never failed), and the exit code is EXIT_STOPPED; a second Ctrl-C stops the runs
    at once, each resumable from its newest checkpoint.
    """
    stop = StopRequest()
    console = Console(on_closed=lambda: stop.request("output closed"))
    say = console.event
    if plan.skipped_failed:
        say(f"skipping {plan.skipped_failed} failed run(s); pass --retry-failed to run them again")
    if plan.retried_on_input:
        say(f"retrying {plan.retried_on_input} run(s) that failed on missing or unreadable input, now found")
    split = sum(p not in plan.runs for p in plan.processes)
    resuming = sum(bool(RunDir(p.dirs[0]).checkpoints()) for p in plan.processes)
    notes = [f"{split} of them a pair's network run alone"] * bool(split) + [f"{resuming} resuming"] * bool(resuming)
    say(
        f"{plan.done} already finished, {len(plan.processes)} to run on {len(slots)} slot(s)"
        + (f" ({'; '.join(notes)})" if notes else "")
    )
    with stop:
        runner.execute(
            plan.processes, slots, log_dir=plan.sweep_dir / "_logs", echo=say, status=console.status, stop=stop
        )
        if stop.reason:  # said while the handlers still catch a further Ctrl-C
            how = (
                "stopped at once: running runs resume from their newest checkpoint"
                if stop.at_once
                else "stopped: running runs saved a checkpoint"
            )
            print(f"{how}; re-run the same command to resume them ({stop.reason})", file=sys.stderr)
    if stop.reason:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a late Ctrl-C must not turn the stop into a kill by SIGINT
        return EXIT_STOPPED
    say(summary_table(plan.runs))
    if report:
        try:
            render_report(plan.sweep_dir, say)
        except KeyboardInterrupt:
            print(f"report interrupted; render it with: python -m analysis.report {plan.sweep_dir}", file=sys.stderr)
            return EXIT_STOPPED
    # a run another runner still trains (it holds the run's claim) is that runner's to finish, not a failure here
    return 0 if all(run_state(r) == DONE or any(holder(d) for d in r.dirs) for r in plan.runs) else 1


def render_report(sweep_dir: Path, echo=print) -> None:
    """Render the sweep's report and print its verdict; a problem with the report does not hide finished runs."""
    try:
        from analysis.report import write_report
    except ImportError:
        return
    try:
        report = write_report(sweep_dir)
    except Exception as e:  # the runs are done; a report problem must not hide that
        print(f"report not written: {type(e).__name__}: {e}", file=sys.stderr)
        return
    echo(f"report: {report.path}")
    echo(f"verdict: {report.verdict.headline}")


__all__ = ["EXIT_BAD_INPUT", "Plan", "SweepError", "dry_run", "plan_sweep", "render_report", "run_local"]
