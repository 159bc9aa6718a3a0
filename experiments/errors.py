"""Why a run stops early, and the exit codes the command-line entry points share.

Each exception carries a message that fits the one line the CLI prints.
"""

EXIT_FAILED = 1  # a run (or a sweep's run) failed; the reason is in summary.json
EXIT_BAD_INPUT = 2  # bad input, reported before anything is written
EXIT_STOPPED = 3  # stopped by a signal after checkpointing: re-running resumes
EXIT_CLAIMED = 75  # another live process trains this run (experiments.store.claims); nothing written: not a failure
AGENT_TRIAL_ENV = "WANDB_SWEEP_ID"
"""Set by ``wandb agent`` for its trials. A claimed run exits 0 there, not EXIT_CLAIMED: the agent counts any other
code as a failed trial, and stops after a few failures early on (its WANDB_AGENT_MAX_INITIAL_FAILURES). Runners that
are not agents (the local runner, SLURM array tasks) drop it from their runs' environment, so that a variable left in
a shell cannot make a claimed run look finished to them."""


class Preempted(RuntimeError):
    """The run was asked to stop (SIGTERM, SIGUSR1) and saved a checkpoint first; re-running resumes it."""


class RunClaimed(RuntimeError):
    """Another live process holds the run's claim (``experiments.store.claims``): this one must not train it."""


class RunFailed(RuntimeError):
    """A run that failed for a reason with a known fix (out of memory)."""


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""
