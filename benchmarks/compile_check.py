"""Does ``--compile`` (CUDA graphs with reduce-overhead) train, evaluate and probe like eager mode? One command.

    python -m benchmarks.compile_check                          # GPU: reduce-overhead vs eager, pair-20, 300 steps
    python -m benchmarks.compile_check --mode default --fuse on # any mode, fused or not

Trains the same demo run twice (eager, then compiled) and compares, for every member: the training loss of the
first logging window (before float-order differences have had time to grow), the steps at which evaluation
ran (compiled, on batches of another shape than training's) and at which the layer-response probe ran (always
on the eager modules, between compiled steps), the final errors (loosely: different kernels round differently
and training amplifies it), and the median images/s of the logging windows after the first (which holds the
compilation). Prints a verdict, saves JSON, and exits 1 when compiled and eager disagree, so a GPU owner can
decide whether ``reduce-overhead`` can become the GPU default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import get_args

import torch

from benchmarks.common import OUT_HELP, save_report
from experiments.config import CompileMode, ConfigError, RunArch, RunConfig, Toggle, config_from_dict, fuses, run_dirs
from experiments.errors import EXIT_BAD_INPUT
from experiments.store import RunDir
from experiments.train import train

FIRST_WINDOW_RTOL = 0.02
FINAL_ERROR_POINTS = 5.0


def _config(mode: str, args: argparse.Namespace, root: Path) -> RunConfig:
    """The demo-preset run compared in ``mode``; raises ConfigError for a combination no run accepts."""
    cfg = config_from_dict(
        {
            "preset": "demo",
            "arch": args.arch,
            "depth": args.depth,
            "max_steps": args.steps,
            "eval_every": max(1, args.steps // 3),
            "checkpoint_every": args.steps,
            "compile": mode,
            "fuse": args.fuse,
            "wandb": "disabled",
            "progress": "off",
            "runs_dir": str(root / mode),
        }
    )
    fuses(cfg)
    return cfg


def _run(mode: str, args: argparse.Namespace, root: Path) -> dict[str, dict]:
    cfg = _config(mode, args, root)
    train(cfg, echo=lambda *a, **k: None)
    results = {}
    for member, path in zip(cfg.members(), run_dirs(cfg), strict=True):
        run = RunDir(path)
        summary = run.read_summary()
        rows = run.read_metrics()
        windows = [r["images_per_s"] for r in rows if r["images_per_s"] is not None]
        results[member.arch] = {
            "first_train_loss": next(r["train_loss"] for r in rows if r["train_loss"] is not None),
            "eval_steps": [r["step"] for r in rows if r["test_error"] is not None],
            "probe_steps": sorted({r["step"] for r in run.read_responses()}),
            "final_train_error": summary["final_train_error"],
            "final_test_error": summary["final_test_error"],
            "images_per_s": statistics.median(windows[1:] or windows),
        }
    return results


def compare(eager: dict[str, dict], compiled: dict[str, dict]) -> list[str]:
    """Every disagreement between the eager and compiled runs, as one sentence each."""
    problems = []
    for arch, e in eager.items():
        c = compiled[arch]
        if abs(c["first_train_loss"] - e["first_train_loss"]) > FIRST_WINDOW_RTOL * abs(e["first_train_loss"]):
            problems.append(
                f"{arch}: first-window loss {c['first_train_loss']:.4f} vs eager {e['first_train_loss']:.4f}"
            )
        for key in ("eval_steps", "probe_steps"):
            if c[key] != e[key]:
                problems.append(f"{arch}: {key} {c[key]} vs eager {e[key]}")
        for key in ("final_train_error", "final_test_error"):
            if abs(c[key] - e[key]) > FINAL_ERROR_POINTS:
                problems.append(f"{arch}: {key} {c[key]:.2f} vs eager {e[key]:.2f}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", default="reduce-overhead", choices=[m for m in get_args(CompileMode) if m != "off"])
    p.add_argument("--arch", default="pair", choices=get_args(RunArch))
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--fuse", default="off", choices=get_args(Toggle))
    p.add_argument("--out", default=None, help=OUT_HELP)
    args = p.parse_args(argv)
    try:
        _config(args.mode, args, Path("."))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not torch.cuda.is_available():
        print(
            "error: compile_check compares CUDA-graph runs with eager ones and needs a CUDA GPU; on a CPU there "
            "are no CUDA graphs to check",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory() as tmp:
        eager = _run("off", args, Path(tmp))
        compiled = _run(args.mode, args, Path(tmp))
    problems = compare(eager, compiled)
    for arch in eager:
        e, c = eager[arch], compiled[arch]
        print(
            f"{arch:<7} first-window loss {e['first_train_loss']:.4f} / {c['first_train_loss']:.4f}  "
            f"test error {e['final_test_error']:.2f} / {c['final_test_error']:.2f}  "
            f"images/s {e['images_per_s']:.0f} / {c['images_per_s']:.0f}  (eager / {args.mode})"
        )
    print("compiled agrees with eager" if not problems else "DISAGREE:\n  " + "\n  ".join(problems))
    report = {"args": vars(args), "eager": eager, "compiled": compiled, "problems": problems}
    save_report(report, args.out, "compile_check_gpu")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
