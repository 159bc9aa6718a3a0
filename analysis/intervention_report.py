"""The report's interventions section (issue 22), and the paper's nets alone for the paper's figures and tables.

A store without interventions gets no section and its report is unchanged; with them, the paper's figures and
tables keep to the paper's nets, and this section draws the interventions against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.intervention_figures import alpha_dial, interventions_by_depth
from analysis.interventions import INTERVENTION_COLUMN, has_interventions, reference_mask
from analysis.load import RunFrames
from analysis.style import NothingToDraw, savefig
from analysis.verdict import RULE, NoiseRule

FIGURES: dict[str, tuple[str, Callable[[pd.DataFrame], Figure]]] = {
    "interventions_depth": ("Interventions: final training error against depth", interventions_by_depth),
    "alpha_dial": ("The alpha dial: final training error against the shortcut weight, per depth", alpha_dial),
}
FIGURE_SUFFIXES = ("png", "pdf", "svg")


def _remove(out: Path, name: str) -> None:
    for suffix in FIGURE_SUFFIXES:
        (out / f"{name}.{suffix}").unlink(missing_ok=True)


def reference_frames(frames: RunFrames) -> RunFrames:
    """The four tables restricted to the paper's nets (all of them where the store holds no intervention)."""
    runs = frames.runs
    if not has_interventions(runs):
        return frames
    keep = set(runs.loc[reference_mask(runs), "run"])
    return RunFrames(*(frame[frame["run"].isin(keep)].reset_index(drop=True) for frame in frames))


def rule_text(rule: NoiseRule = RULE) -> str:
    """How an intervention is judged, in words."""
    return (
        "Each intervention is judged within its dataset and recipe by the noise rule of the paper's claim (the "
        "verdict's last paragraph), on final training error averaged over seeds. It still degrades with depth "
        "where part 1's rule holds for its nets (the deepest ends really above the shallowest, stays above it at "
        f"{rule.late_agreement:.0%} or more of the logged points of the last {rule.late_fraction:.0%} of training, "
        "and no deeper net ends really below its neighbour); it does not degrade where part 2's rule holds (no "
        "deeper net ends really above the shallowest or its neighbour); otherwise it is undecided. Its deepest net "
        "is compared, by the same rule, with the paper's ResNet of that depth."
    )


def _bn_free(runs: pd.DataFrame) -> list[str]:
    """Say which nets have no BN, so no running statistics for the landscape to re-estimate."""
    free = runs[runs["norm"] == "none"]
    if free.empty:
        return []
    names = "; ".join(dict.fromkeys(free[INTERVENTION_COLUMN]))
    return [
        f"No BN, so no running statistics, in the nets of: {names}. The loss landscape "
        "(``python -m analysis.landscape``) evaluates them with their weights alone; its BN re-estimation skips them.",
        "",
    ]


def _listing(runs: pd.DataFrame) -> list[str]:
    counts = runs.loc[~reference_mask(runs), INTERVENTION_COLUMN].value_counts(sort=False)
    listed = "; ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in counts.items())
    return [
        f"Interventions in this store: {listed}. The paper's figures and tables above show the paper's nets only; "
        "the verdict judges each intervention beside them.",
        "",
        f"*How interventions are judged:* {rule_text()}",
        "",
    ]


def intervention_section(frames: RunFrames, out: str | Path, formats: Sequence[str]) -> list[str]:
    """The report's lines on the interventions, their figures written into ``out``; none (and no figure files left
    from an earlier report) where the store holds only the paper's nets."""
    out = Path(out)
    runs = frames.runs
    if not has_interventions(runs):
        for name in FIGURES:
            _remove(out, name)
        return []
    lines = ["## Interventions", "", *_listing(runs), *_bn_free(runs)]
    for name, (title, draw) in FIGURES.items():
        try:
            figure = draw(runs)
        except NothingToDraw as e:
            lines += [f"- {title}: not drawn ({e}).", ""]
            _remove(out, name)
            continue
        savefig(figure, out / name, formats)
        image = f"{name}.png" if "png" in formats else f"{name}.{formats[0]}"
        lines += [f"### {title}", "", f"![{title}]({image})", ""]
    return lines
