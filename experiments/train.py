"""One run: a config in, a finished run directory out.

    python -m experiments.train --arch plain --depth 56 --preset cifar10-paper --out runs/demo/plain-56

Re-running the same command resumes from the newest good checkpoint; a finished run is left as it is. Ctrl-C,
SIGTERM or SIGUSR1 checkpoint at the current step, record the run as resumable and exit with code 3 (a second Ctrl-C
stops at once, still resumable from the newest checkpoint). Bad input exits with code 2 and one line, before any
directory is created. A run that another live process is training (its claim, ``experiments.store.claims``) exits
at once with code 75 and one line, writing nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from experiments.config import ConfigError, RunConfig, config_from_dict, describe_fields, parse_cli, run_dirs
from experiments.data.sources import DataError
from experiments.errors import (
    AGENT_TRIAL_ENV,
    EXIT_BAD_INPUT,
    EXIT_CLAIMED,
    EXIT_FAILED,
    EXIT_STOPPED,
    Preempted,
    RunClaimed,
)
from experiments.store.claims import claim_runs
from experiments.training.phases import build, build_networks, build_trainer, fit_and_record, prepare, quiet_lightning
from experiments.training.phases import resolve_precision as resolve_precision

USAGE = "usage: python -m experiments.train --name=value ... [--no-wandb] [--restart]\n\nfields (see README):\n"

__all__ = ["build_networks", "build_trainer", "main", "quiet_lightning", "resolve_precision", "train"]


def train(cfg: RunConfig, resume: bool = True, echo=print) -> dict[str, dict[str, Any]]:
    """Train ``cfg`` to completion and return each member's summary, keyed by run directory name.

    Three phases (``experiments.training.phases``): prepare the run's folders and find its checkpoint, build the
    data, networks, module and Trainer, then fit and record. A finished run is returned as it is.
    The run's folders are claimed first (``experiments.store.claims``): RunClaimed if another process trains it.
    """
    with claim_runs(run_dirs(cfg)):
        prep = prepare(cfg, resume, echo)
        if resume and prep.finished():
            echo(f"already finished: {', '.join(str(r.path) for r in prep.runs.values())}")
            return {r.name: r.read_summary() for r in prep.runs.values()}
        return fit_and_record(prep, build(prep, echo))


def _preset_named(argv: list[str]) -> str | None:
    """The ``--preset`` among raw CLI arguments (``--preset demo`` or ``--preset=demo``), for ``--help``."""
    for i, arg in enumerate(argv):
        if arg.startswith("--preset="):
            return arg.partition("=")[2]
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: parse, validate, train; bad input exits 2 with one line.

    ``--restart`` moves the run's old folder aside (never deletes it: ``<sweep>/.restarted/<run>-<time>``) and
    trains from step 0; ``--help`` lists the fields with the values of the ``--preset`` given, if any.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_lightning()
    restart = "--restart" in argv
    argv = [a for a in argv if a != "--restart"]
    if "--no-wandb" in argv:
        argv.remove("--no-wandb")
        argv.append("--wandb=disabled")
    try:
        if "-h" in argv or "--help" in argv:
            print(USAGE + describe_fields(_preset_named(argv)))
            return 0
        cfg = config_from_dict(parse_cli(argv))
        with claim_runs(run_dirs(cfg)) as claims:  # held from before --restart moves a folder until training ends
            for path in run_dirs(cfg) if restart else []:
                if moved := claims.move_aside(path):
                    print(f"restarting: moved {path} aside to {moved}", file=sys.stderr)
            summaries = train(cfg)
    except RunClaimed as e:
        if os.environ.get(AGENT_TRIAL_ENV):
            print(f"claimed: {e}; this W&B trial leaves it to that process", file=sys.stderr)
            return 0
        print(f"claimed: {e}; moving on", file=sys.stderr)
        return EXIT_CLAIMED
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C before training started (or inside Lightning): nothing newer to save
        print("interrupted: re-run the same command to resume from the newest checkpoint", file=sys.stderr)
        return EXIT_STOPPED
    except Preempted as e:  # a signal during training: checkpointed at the current step
        print(f"{'interrupted' if 'SIGINT' in str(e) else 'pre-empted'}: {e}", file=sys.stderr)
        return EXIT_STOPPED
    except Exception as e:  # recorded in summary.json; the CLI reports it in one line
        print(f"run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    for name, summary in summaries.items():
        errs = ", ".join(
            f"{k[6:]} {v:.2f}%"
            for k, v in summary.items()
            if k.startswith("final_") and k.endswith("_error") and v is not None
        )
        print(f"{name}: {summary['status']} at step {summary['step']} ({errs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
