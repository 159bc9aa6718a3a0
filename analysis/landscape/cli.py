"""``python -m analysis.landscape PATH [options]``: one finished run, or every finished run of a store.

    python -m analysis.landscape runs/demo/plain-44-s0-aac0b655       # writes <run>/landscape/
    python -m analysis.landscape runs/demo                            # every finished run, then runs/demo/landscape/
    python -m analysis.landscape runs/landscape --paper               # GPU: 51 x 51 grid on the whole training set

Bad input (a missing folder, a run without checkpoints/model.pt, an unfinished run, a store with nothing to do, a
bad option, missing data) exits with code 2 and one line "error: ...", before anything is written. Re-running the
same command continues a killed analysis: finished stages and finished grid points are kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import NoReturn

from analysis.landscape import compare, layout
from analysis.landscape.harness import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    BadInput,
    Run,
    find_runs,
    is_run_folder,
    open_run,
    training_images,
)
from analysis.landscape.runner import LINE_BN, PAPER, STAGES, Options, analyse_run

ALLOWED_FORMATS = ("png", "pdf", "svg")
DEFAULTS = Options()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="python -m analysis.landscape",
        description="Loss landscape, Hessian curvature and shattered gradients of finished runs.",
    )
    p.add_argument("path", help="a finished run's folder, or a store (runs/<sweep>) to analyse every finished run")
    d = DEFAULTS
    p.add_argument("--points", type=int, help=f"2-D grid points per axis (default {d.points}; --paper 51)")
    p.add_argument("--span", type=float, help=f"2-D grid from -span to span (default {d.span})")
    p.add_argument("--line-points", type=int, help=f"1-D interpolation points (default {d.line_points})")
    p.add_argument(
        "--line-bn",
        choices=LINE_BN,
        help=f"BN statistics on the 1-D line: re-estimated at each point, or interpolated (default {d.line_bn})",
    )
    p.add_argument("--images", type=int, help=f"training images evaluated, 0 = all (default {d.images}; --paper 0)")
    p.add_argument("--eigenvalues", type=int, help=f"top Hessian eigenvalues reported (default {d.eigenvalues})")
    p.add_argument("--lanczos-steps", type=int, help=f"Lanczos iterations (default {d.lanczos_steps})")
    p.add_argument("--hutchinson-samples", type=int, help=f"trace samples (default {d.hutchinson_samples})")
    p.add_argument("--gradient-lines", type=int, help=f"input lines (default {d.gradient_lines})")
    p.add_argument("--gradient-points", type=int, help=f"inputs per line (default {d.gradient_points})")
    p.add_argument("--batch-size", type=int, help=f"images per forward pass (default {d.batch_size})")
    p.add_argument("--seed", type=int, help=f"subset, directions and random vectors (default {d.seed})")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--data-dir", help="where CIFAR-10 is, if not at the run's data_dir")
    p.add_argument("--only", help=f"stages to compute, comma-separated: {','.join(STAGES)} (default all)")
    p.add_argument("--format", default="png,pdf", help="figure formats, comma-separated (png,pdf,svg)")
    p.add_argument("--paper", action="store_true", help="paper-quality sizes for a GPU (options given still win)")
    return p


def parse_options(argv: Sequence[str]) -> tuple[Path, Options]:
    """The path and options of a command line; ``BadInput`` for anything out of range."""
    args = _parser().parse_args(list(argv))
    values = dict(PAPER) if args.paper else {}
    for f in fields(Options):
        given = getattr(args, f.name, None)
        if given is not None and f.name not in ("stages", "formats"):
            values[f.name] = given
    if args.only is not None:
        stages = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise BadInput(f"--only must be a comma-separated list of {', '.join(STAGES)}, got {args.only!r}")
        values["stages"] = stages
    formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
    if not formats or any(f not in ALLOWED_FORMATS for f in formats):
        raise BadInput(f"--format must be a comma-separated list of {', '.join(ALLOWED_FORMATS)}, got {args.format!r}")
    values["formats"] = formats
    options = Options(**values)
    _check(options)
    return Path(args.path), options


def _check(o: Options) -> None:
    minimum = {
        "points": 3,
        "line_points": 2,
        "eigenvalues": 1,
        "lanczos_steps": 1,
        "hutchinson_samples": 2,
        "gradient_lines": 1,
        "gradient_points": 4,
        "batch_size": 1,
        "images": 0,
        "seed": 0,
    }
    for name, low in minimum.items():
        if getattr(o, name) < low:
            raise BadInput(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(o, name)}")
    if o.images == 1:
        raise BadInput("--images must be 0 (all) or at least 2 (shattered gradients need a pair of images)")
    if not o.span > 0:
        raise BadInput(f"--span must be positive, got {o.span}")
    if o.lanczos_steps < o.eigenvalues:
        raise BadInput(f"--lanczos-steps ({o.lanczos_steps}) must be at least --eigenvalues ({o.eigenvalues})")
    import torch

    if o.device != "auto":
        try:
            device = torch.device(o.device)
        except RuntimeError:
            raise BadInput(f"--device must be auto, cpu, cuda or cuda:N, got {o.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BadInput(f"--device {o.device}: CUDA is not available on this machine; use --device cpu")
        if device.type not in ("cpu", "cuda"):
            raise BadInput(f"--device must be auto, cpu, cuda or cuda:N, got {o.device!r}")


def _validate(runs: Sequence[Run], options: Options) -> None:
    """Everything that can fail on input, for every run, before the first file is written."""
    for run in runs:
        training_images(run.config, options.data_dir)
        try:
            state = run.final_state()
        except Exception as e:  # noqa: BLE001 - a checkpoint torch cannot read, for whatever reason
            raise BadInput(f"{run.model_path} cannot be read ({type(e).__name__}: {e})") from None
        try:
            run.build().load_state_dict(state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise BadInput(f"{run.model_path} does not fit the network of its config.json ({first})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: analyse, print each run's numbers; bad input exits 2 with one line and writes nothing."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        path, options = parse_options(argv)
        if not path.is_dir():
            raise BadInput(f"folder {str(path)!r} does not exist")
        single = is_run_folder(path)
        if single:
            runs, skipped = [open_run(path)], []
        else:
            runs, skipped = find_runs(path)
        _validate(runs, options)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for note in skipped:
        print(f"skipped (not finished): {note}", file=sys.stderr)
    try:
        for run in runs:
            summary = analyse_run(run, options)
            print(compare.summary_line(summary), flush=True)
            print(f"  -> {layout.run_folder(run.path)}", flush=True)
        if not single:
            written = compare.write_comparison(path, options.formats)
            print(f"comparison: {layout.store_folder(path)} ({len(written)} files)")
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to continue (finished stages and points are kept)", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user; the files written so far stay valid
        print(f"failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    return 0
