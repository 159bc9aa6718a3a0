"""A stand-in for experiments.train in runner tests: resolves the config like the real CLI, writes the store.

depth 14 fails with an exception message; depth 26 dies without a word (as a SIGKILL would). Every call is
appended to calls.txt beside the runs, so tests can see which runs were started.
"""

import sys
from pathlib import Path

from experiments.config import config_from_dict, parse_cli, run_dirs
from experiments.store import RunDir


def main() -> int:
    cfg = config_from_dict(parse_cli(sys.argv[1:]))
    with (Path(cfg.runs_dir) / "calls.txt").open("a") as f:
        f.write(" ".join(sys.argv[1:]) + "\n")
    for d in run_dirs(cfg):
        RunDir(d).write_summary({"status": "running", "step": 0})
    if cfg.depth == 14:
        for d in run_dirs(cfg):
            RunDir(d).update_summary(status="failed", reason="RuntimeError: boom")
        print("run failed: RuntimeError: boom", file=sys.stderr)
        return 1
    if cfg.depth == 26:
        return -9 % 256
    for d in run_dirs(cfg):
        RunDir(d).log_metrics(cfg.max_steps, {"train_error": 10.0})
        RunDir(d).update_summary(status="finished", step=cfg.max_steps, final_train_error=10.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
