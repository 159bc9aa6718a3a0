"""The report of a sweep: figures, tables and the verdict, written next to the runs.

    python -m analysis.report runs/demo                 # writes runs/demo/report/
    python -m analysis.report runs/demo --out /tmp/r --format png --latex

Bad input (a missing folder, a folder without runs, an unknown format) exits with code 2 and one line, and
writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

import pandas as pd
from matplotlib.figure import Figure

from analysis.figures import fig1, fig4, fig6, fig7
from analysis.intervention_report import intervention_section, reference_frames
from analysis.landscape.section import landscape_section
from analysis.load import RunFrames, StoreError, load_runs
from analysis.overview import degradation_at_a_glance, shortcut_comparison
from analysis.signals import gradient_norms, gradient_norms_over_training, signal_propagation
from analysis.style import FORMATS, NothingToDraw, savefig
from analysis.tables import TABLES, has_ours, to_markdown, write_table
from analysis.verdict import Verdict, verdict
from experiments.errors import EXIT_BAD_INPUT
from experiments.store import STATUS_FAILED, STATUS_FINISHED

REPORT_FILE = "report.md"
ALLOWED_FORMATS = ("png", "pdf", "svg")
FIGURES: dict[str, tuple[str, Callable[[pd.DataFrame], Figure], str]] = {
    "fig6": ("Figure 6: CIFAR-family training and test error", fig6, "curves"),
    "fig1": ("Figure 1: plain nets, shallow vs deep", fig1, "curves"),
    "fig4": ("Figure 4: ImageNet-family nets, training and validation (or test) error", fig4, "curves"),
    "fig7": ("Figure 7: layer responses", fig7, "responses"),
    "degradation": ("Degradation at a glance: final error against depth", degradation_at_a_glance, "runs"),
    "shortcuts": ("Shortcut options A/B/C", shortcut_comparison, "runs"),
    "gradients": (
        "Gradient norm at each block, plain vs ResNet, at initialisation and at the end",
        gradient_norms,
        "signals",
    ),
    "gradients_over_training": ("Gradient norm at each block over training", gradient_norms_over_training, "signals"),
    "signal_propagation": ("Signal propagation: forward statistics of each block", signal_propagation, "signals"),
}


class BadInput(ValueError):
    """Input the report cannot use; reported in one line with exit code 2."""


class Report(NamedTuple):
    """What ``write_report`` wrote: the path of report.md, and the verdict it holds."""

    path: Path
    verdict: Verdict


def _drawable(frames: RunFrames) -> dict[str, pd.DataFrame]:
    """Curves, responses and signals of finished and running runs (failed ones are not drawn); all runs otherwise."""
    return {
        "runs": frames.runs,
        "curves": frames.curves[frames.curves["status"] != STATUS_FAILED],
        "responses": frames.responses[frames.responses["status"] != STATUS_FAILED],
        "signals": frames.signals[frames.signals["status"] != STATUS_FAILED],
    }


def _remove_stale(out: Path, name: str, suffixes: Sequence[str]) -> None:
    """Delete what an earlier report wrote for an artefact this one cannot produce, so no stale file is left."""
    for suffix in suffixes:
        (out / f"{name}.{suffix}").unlink(missing_ok=True)


def write_report(
    runs_dir: str | Path,
    out: str | Path | None = None,
    formats: Sequence[str] = FORMATS,
    latex: bool = False,
    frames: RunFrames | None = None,
) -> Report:
    """Write figures, tables, verdict.md and report.md (which shows them all) into ``out``.

    ``out`` defaults to ``<runs_dir>/report``; ``frames`` (already loaded from ``runs_dir``) saves reading twice.
    """
    frames = frames if frames is not None else load_runs(runs_dir)
    out = Path(out) if out is not None else Path(runs_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    judged = verdict(frames)
    (out / "verdict.md").write_text(judged.text(), encoding="utf-8")
    sections = [f"# Report: {Path(runs_dir).name}", "", judged.text(), "## Figures", ""]
    paper = reference_frames(frames)  # the paper's figures and tables show the paper's nets
    data = _drawable(paper)
    if (frames.runs["status"] != STATUS_FINISHED).any():
        sections += ["Running runs are drawn as far as they got; failed runs are not drawn.", ""]
    for name, (title, draw, source) in FIGURES.items():
        try:
            figure = draw(data[source])
        except NothingToDraw as e:
            sections += [f"- {title}: not drawn ({e}).", ""]
            _remove_stale(out, name, ALLOWED_FORMATS)
            continue
        savefig(figure, out / name, formats)
        image = f"{name}.png" if "png" in formats else f"{name}.{formats[0]}"
        sections += [f"### {title}", "", f"![{title}]({image})", ""]
    sections += ["## Tables", ""]
    for name, build in TABLES.items():
        table = build(paper.runs)
        if not has_ours(table):
            sections += [f"- {table.attrs['title']}: no finished runs of ours for this table.", ""]
            _remove_stale(out, name, ("md", "csv", "tex"))
            continue
        write_table(table, out / name, latex=latex)
        sections += [to_markdown(table), ""]
    sections += intervention_section(frames, out, formats)
    sections += landscape_section(runs_dir, out)
    report = out / REPORT_FILE
    report.write_text("\n".join(sections), encoding="utf-8")
    return Report(report, judged)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BadInput(message)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m analysis.report", description="Figures, tables and verdict of a run store.")
    parser.add_argument("runs_dir", help="a sweep folder (runs/<sweep>), a store or one run")
    parser.add_argument("--out", help="output folder (default: RUNS_DIR/report)")
    parser.add_argument("--format", default=",".join(FORMATS), help="figure formats, comma-separated (png,pdf,svg)")
    parser.add_argument("--latex", action="store_true", help="also write the tables as LaTeX")
    args = parser.parse_args(argv)
    args.formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    unknown = [f for f in args.formats if f not in ALLOWED_FORMATS]
    if unknown or not args.formats:
        raise BadInput(f"--format must be a comma-separated list of {', '.join(ALLOWED_FORMATS)}, got {args.format!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: bad input exits 2 with one line "error: ..." and writes nothing."""
    try:
        args = _parse(sys.argv[1:] if argv is None else list(argv))
        frames = load_runs(args.runs_dir)
    except (BadInput, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = write_report(args.runs_dir, args.out, args.formats, args.latex, frames=frames)
    print(f"report: {report.path}")
    print(f"verdict: {report.verdict.headline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
