"""A local sweep from its file to its finished runs: expand, plan what to start, list it (dry run), run, report.

``run_sweep.py`` parses the command line and calls ``plan_sweep`` and then ``dry_run`` or ``run_local``.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import EXIT_BAD_INPUT, EXIT_STOPPED
from experiments.sweep.runner import (
    DONE,
    FAILED,
    Slot,
    SweepStopped,
    execute,
    plan_runs,
    run_state,
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
) -> Plan:
    """Expand the sweep file and plan its pending runs; raises SweepError (one line) for a bad file or run."""
    spec = load_sweep(path)
    runs = resolve_runs(spec, runs_dir=runs_dir, seed=seed, count=count, where=path)
    states = {r.name: run_state(r) for r in runs}
    planned = plan_runs([r for r in runs if states[r.name] != DONE], split_pairs)
    processes = [p for p in planned if retry_failed or run_state(p) != FAILED]
    sweep_dir = Path(runs_dir) / runs[0].config.sweep  # the file's `sweep` folder, which files may share
    return Plan(spec["name"], runs, states, sweep_dir, processes, len(planned) - len(processes))


def dry_run(plan: Plan) -> list[str]:
    """The dry-run listing: each run's state, name and arguments, then what would start."""
    lines = [f"  {plan.states[r.name]:<8} {r.name}  {' '.join(r.args)}" for r in plan.runs]
    names = ", ".join(r.name for r in plan.processes)
    lines.append(
        f"would start {len(plan.processes)} process(es), longest first: {names}"
        if plan.processes
        else "nothing to start"
    )
    return lines


def _raise_stopped(signum, frame) -> None:
    raise SweepStopped(signal.Signals(signum).name)


def run_local(plan: Plan, slots: list[Slot], report: bool = True) -> int:
    """Run the plan's processes on ``slots``, print the final table and render the report; returns the exit code."""
    if plan.skipped_failed:
        print(f"skipping {plan.skipped_failed} failed run(s); pass --retry-failed to run them again")
    split = sum(p not in plan.runs for p in plan.processes)
    print(
        f"{plan.done} already finished, {len(plan.processes)} to run on {len(slots)} slot(s)"
        + (f" ({split} of them a pair's network run alone)" if split else "")
    )
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        execute(plan.processes, slots, log_dir=plan.sweep_dir / "_logs")
    except (KeyboardInterrupt, SweepStopped):
        print("stopped: running runs saved a checkpoint; re-run the same command to resume them", file=sys.stderr)
        return EXIT_STOPPED
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary_table(plan.runs))
    if report:
        render_report(plan.sweep_dir)
    return 0 if all(run_state(r) == DONE for r in plan.runs) else 1


def render_report(sweep_dir: Path) -> None:
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
    print(f"report: {report.path}")
    print(f"verdict: {report.verdict.headline}")


__all__ = ["EXIT_BAD_INPUT", "Plan", "SweepError", "dry_run", "plan_sweep", "render_report", "run_local"]
