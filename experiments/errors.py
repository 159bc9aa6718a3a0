"""Why a run stops early: each carries a message that fits the one line the CLI prints."""


class Preempted(RuntimeError):
    """The run was asked to stop (SIGTERM, SIGUSR1) and saved a checkpoint first; re-running resumes it."""


class RunFailed(RuntimeError):
    """A run that failed for a reason with a known fix (out of memory)."""


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite."""
