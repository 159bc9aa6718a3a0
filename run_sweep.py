"""Run a sweep of the paper's experiments: locally (default, no account) or as a W&B sweep.

    python run_sweep.py sweeps/demo.yaml                      # local: every run of the sweep, --jobs at once
    python run_sweep.py sweeps/fig6.yaml --gpus 0,1 --runs-per-gpu 2
    python run_sweep.py sweeps/fig6.yaml --gpus 0 --runs-per-gpu 4 --split-pairs    # one process per network
    python run_sweep.py sweeps/fig6.yaml --dry-run            # what would run, and what is already done
    python run_sweep.py sweeps/fig6.yaml --wandb --project degradation   # create a W&B sweep, start agents here
    python run_sweep.py --agent ENTITY/PROJECT/SWEEP_ID       # join that sweep from any machine

Bad input (unreadable or malformed sweep file, parameters that are not valid runs, data or GPUs a run needs and
this machine lacks) exits with code 2 and one line, before anything starts; --dry-run lists the runs and the same
line. The exit code is 0 when every run finished, 1 otherwise, and 3 when the sweep was stopped (Ctrl-C, SIGTERM,
SIGHUP, its output closing): running runs checkpoint first, and re-running the command resumes them. A second
Ctrl-C stops them at once, still resumable from their newest checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.errors import EXIT_BAD_INPUT


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        print(f"error: {message} (see python run_sweep.py --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from experiments.sweep.slurm import DEFAULT_CPUS_PER_RUN

    p = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", nargs="?", help="a sweep YAML (sweeps/*.yaml)")
    p.add_argument("--runs-dir", default="runs", help="root of the run store (default: runs)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs at once on CPU, sharing the cores (default: one per core, each on one thread; README, Speed)",
    )
    p.add_argument("--gpus", default=None, help="comma-separated GPU ids, e.g. 0,1 (default: every visible GPU)")
    p.add_argument(
        "--runs-per-gpu",
        type=int,
        default=None,
        help="runs sharing each GPU (default: the measured best; README)",
    )
    p.add_argument(
        "--split-pairs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run each pair's networks as two runs (same batches and folders); default: on with the GPU default",
    )
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state; start nothing")
    p.add_argument("--seed", type=int, default=0, help="seed for random search draws (default 0)")
    p.add_argument("--count", type=int, default=None, help="runs to draw for random search (default: run_cap)")
    p.add_argument("--no-report", action="store_true", help="skip rendering figures and tables at the end")
    p.add_argument("--wandb", action="store_true", help="create the sweep on W&B and start agents here")
    p.add_argument("--no-wandb", action="store_true", help="local runs log nothing to W&B (default: offline files)")
    p.add_argument("--agent", metavar="SWEEP_PATH", help="join an existing W&B sweep (entity/project/id)")
    p.add_argument("--project", default="degradation", help="W&B project (default: degradation)")
    p.add_argument("--entity", default=None, help="W&B entity (default: your default entity)")
    cluster = p.add_argument_group("SLURM (submit from a login node; each run one array task, requeued on preemption)")
    cluster.add_argument("--slurm", action="store_true", help="submit the pending runs as one SLURM job array")
    cluster.add_argument("--status", action="store_true", help="each run's state: done, failed, queued, running...")
    cluster.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    cluster.add_argument("--account", default=None, help="SLURM account to charge")
    cluster.add_argument("--time", type=int, default=24 * 60, help="time limit per task, minutes (default 1440)")
    cluster.add_argument(
        "--cpus-per-run",
        type=int,
        default=DEFAULT_CPUS_PER_RUN,
        help=f"CPUs per task (default {DEFAULT_CPUS_PER_RUN}); more than the partition's nodes have is refused",
    )
    cluster.add_argument("--gpus-per-run", type=int, default=0, help="GPUs per task (default 0)")
    cluster.add_argument("--array-parallelism", type=int, default=None, help="tasks running at once (the %%N)")
    cluster.add_argument(
        "--sbatch", action="append", default=[], metavar="KEY=VALUE", help="extra sbatch option, e.g. qos=high"
    )
    cluster.add_argument("--tasks", type=int, default=None, help="--agent --slurm: agents to submit (one trial each)")
    args = p.parse_args(argv)
    if args.agent is None and args.sweep is None:
        p.error("a sweep file is required (or --agent SWEEP_PATH)")
    if (args.jobs is not None and args.jobs < 1) or (args.runs_per_gpu is not None and args.runs_per_gpu < 1):
        p.error("--jobs and --runs-per-gpu must be at least 1")
    if args.cpus_per_run < 1 or args.gpus_per_run < 0:
        p.error("--cpus-per-run must be at least 1 and --gpus-per-run at least 0")
    if args.slurm and (args.split_pairs or args.jobs not in (None, 1) or args.gpus):
        p.error("--slurm gives each run its own task; --split-pairs, --jobs and --gpus are for the local runner")
    if args.agent and args.slurm and not args.tasks:
        p.error("--agent --slurm needs --tasks N: how many agents (one trial each) to submit")
    if args.split_pairs and (args.wandb or args.agent):
        p.error("--split-pairs is for the local runner; W&B agents run the sweep's points as the server sends them")
    return args


def _gpus(spec: str | None) -> list[str] | None:
    return [g.strip() for g in spec.split(",") if g.strip()] if spec else None


def _cluster(args: argparse.Namespace) -> int:
    """``--slurm`` and ``--status``: submit the sweep's pending runs as a job array, or list every run's state.

    A request no node of the partition can meet (CPUs, GPUs, memory: ``experiments.sweep.partition``) is refused with
    one line before anything is created or submitted; ``--dry-run`` lists the array and then says so too.
    """
    from experiments.sweep import slurm
    from experiments.sweep.partition import refusal
    from experiments.sweep.plan import plan_sweep
    from experiments.sweep.spec import SweepError, load_sweep
    from experiments.sweep.wandb_agents import create_sweep

    try:
        options = slurm.SlurmOptions(
            args.partition, args.account, args.time, args.cpus_per_run, args.gpus_per_run,
            args.array_parallelism, extra=slurm.parse_sbatch(args.sbatch),
        )  # fmt: skip
        problem = None if args.status else refusal(options)
        if problem and (not args.dry_run or args.agent or args.wandb):
            raise SweepError(problem)
        if args.agent or args.wandb:
            path = args.agent or create_sweep(load_sweep(args.sweep), project=args.project, entity=args.entity)
            tasks = args.tasks or len(plan_sweep(args.sweep, args.runs_dir, args.seed, args.count).runs)
            folder = Path(args.runs_dir) / slurm.SLURM_DIR / "wandb-agents"
            ids = slurm.submit_agents(path, tasks, options, folder, Path.cwd())
            print(f"submitted {len(ids)} W&B agent(s) for {path} as job array {ids[0].split('_')[0]}")
            return 0
        plan = plan_sweep(args.sweep, args.runs_dir, args.seed, args.count)
        queue = slurm.plan_slurm(plan.runs, plan.sweep_dir, args.retry_failed)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"sweep {plan.name}: {len(plan.runs)} runs in {plan.sweep_dir}")
    if args.status:
        print("\n".join(slurm.status_lines(plan.runs, queue)))
        return 0
    if args.dry_run:
        print("\n".join(slurm.describe_submission(queue.to_submit, options, plan.sweep_dir)))
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return 0
    if not queue.to_submit:
        print("nothing to submit: every run is done, queued or running (--retry-failed submits failed ones)")
        return 0
    ids = slurm.submit(queue.to_submit, options, plan.sweep_dir, Path.cwd())
    print(f"submitted {len(ids)} run(s) as job array {ids[0].split('_')[0]}; follow with --status")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and dispatch: W&B agents, a W&B sweep, a dry run, or a local run."""
    from experiments.sweep.devices import choose_devices, visible_gpus
    from experiments.sweep.plan import dry_run, plan_sweep, run_local
    from experiments.sweep.preflight import first_problem
    from experiments.sweep.runner import cpu_jobs, make_slots
    from experiments.sweep.spec import SweepError, load_sweep
    from experiments.sweep.wandb_agents import create_sweep, start_agents

    args = parse_args(argv)
    if args.slurm or args.status:
        return _cluster(args)
    try:
        devices = choose_devices(_gpus(args.gpus), args.runs_per_gpu, args.split_pairs, visible_gpus())
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    slots = make_slots(devices.gpus, devices.runs_per_gpu, args.jobs or 1)
    try:
        if args.agent:
            return start_agents(args.agent, slots)  # WandbUnavailable (a SweepError) without a W&B login
        if args.wandb:
            spec = load_sweep(args.sweep)
            if args.dry_run:
                what = f"W&B sweep {spec['name']!r} ({spec['method']}) in project {args.project}"
                print(f"would create {what}; nothing created")
                return 0
            path = create_sweep(spec, project=args.project, entity=args.entity)
            print(f"created W&B sweep {path}; join from another machine with: python run_sweep.py --agent {path}")
            return start_agents(path, slots)
        wandb_mode = "disabled" if args.no_wandb else None
        plan = plan_sweep(
            args.sweep, args.runs_dir, args.seed, args.count, devices.split_pairs, args.retry_failed, wandb_mode
        )
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = first_problem(plan.processes, devices.gpus)  # data and devices, before anything starts
    if problem and not args.dry_run:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"sweep {plan.name}: {len(plan.runs)} runs in {plan.sweep_dir}, on {devices.describe()}")
    if args.dry_run:
        print("\n".join(dry_run(plan)))
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return 0
    if not devices.gpus and args.jobs is None:  # CPU default: one run per core, each on one thread
        slots = make_slots(None, 1, cpu_jobs(len(plan.processes)))
    return run_local(plan, slots, report=not args.no_report)


def _main_quietly() -> int:
    """``main``, exiting quietly if stdout closes before the runner's console takes over (``| head -1``), or on a
    Ctrl-C outside the local run (which handles its own: ``experiments.sweep.plan.run_local``)."""
    from experiments.errors import EXIT_STOPPED

    try:
        return main()
    except BrokenPipeError:
        from experiments.sweep.runner import _discard

        _discard(sys.stdout)
        return EXIT_STOPPED
    except KeyboardInterrupt:  # before any run started, or after every run was stopped
        print("interrupted: re-run the same command to go on", file=sys.stderr)
        return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(_main_quietly())
