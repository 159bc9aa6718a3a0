"""The landscape section of a store's report: Markdown that links what ``python -m analysis.landscape`` wrote.

Imports neither torch nor ``experiments``, so ``analysis.report`` stays light:

    from analysis.landscape.section import landscape_section
    sections += landscape_section(runs_dir, out)   # [] when the store has not been analysed
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.landscape import layout

SECTION_TITLE = "Why plain nets degrade: loss landscape, curvature, shattered gradients"
FIGURE_TITLES = {
    "surfaces": "Loss around the final weights (contours), plain | ResNet",
    "surfaces_3d": "Loss around the final weights (3-D), plain | ResNet",
    "lines": "Loss from initial to final weights",
    "gradients": "Input gradient along a line between two training images",
    "autocorrelation": "Autocorrelation of the input gradient",
    "depth": "Sharpness and autocorrelation length against depth",
}


def landscape_section(runs_dir: str | Path, report_dir: str | Path | None = None) -> list[str]:
    """Markdown lines for ``analysis.report``: the comparison table and links to the figures that exist in
    ``<runs_dir>/landscape/``, relative to ``report_dir`` (default ``<runs_dir>/report``). Empty when the store has
    not been analysed, so a report can always call it."""
    folder = layout.store_folder(runs_dir)
    table = folder / f"{layout.TABLE}.md"
    if not table.is_file():
        return []
    report_dir = Path(report_dir) if report_dir is not None else Path(runs_dir) / "report"
    lines = [f"## {SECTION_TITLE}", ""]
    lines += table.read_text(encoding="utf-8").splitlines() + [""]
    for name in layout.STORE_FIGURES:
        image = folder / f"{name}.png"
        if image.is_file():
            link = Path(os.path.relpath(image, report_dir)).as_posix()
            lines += [f"![{FIGURE_TITLES[name]}]({link})", ""]
    lines += ["Per-run files: `<run>/landscape/` (`python -m analysis.landscape RUN_DIR`).", ""]
    return lines
