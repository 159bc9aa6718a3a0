"""Analysis of a run store or W&B sweep: tidy tables, the paper's figures and tables, and a verdict in words.

    from analysis import load_runs, fig6
    runs, curves, responses, signals = load_runs("runs/demo")
    fig6(curves).savefig("fig6.png")

``python -m analysis.report runs/<sweep>`` (``analysis.report.write_report``) writes the figures, tables and
verdict into ``runs/<sweep>/report/``. The report module is not imported here, so ``-m`` runs it cleanly.
"""

from analysis.figures import fig1, fig4, fig6, fig7
from analysis.intervention_figures import alpha_dial, interventions_by_depth
from analysis.interventions import intervention_label
from analysis.load import (
    RunFrames,
    StoreError,
    last_responses,
    load_runs,
    load_wandb_sweep,
    run_label,
    runs_folder,
)
from analysis.overview import degradation_at_a_glance, shortcut_comparison
from analysis.signals import gradient_norms, gradient_norms_over_training, gradient_sentences, signal_propagation
from analysis.style import savefig
from analysis.tables import table2, table3, table6, to_latex, to_markdown, write_table
from analysis.verdict import Verdict, verdict

__all__ = [
    "RunFrames",
    "StoreError",
    "Verdict",
    "alpha_dial",
    "degradation_at_a_glance",
    "fig1",
    "fig4",
    "fig6",
    "fig7",
    "gradient_norms",
    "gradient_norms_over_training",
    "gradient_sentences",
    "intervention_label",
    "interventions_by_depth",
    "last_responses",
    "load_runs",
    "load_wandb_sweep",
    "run_label",
    "runs_folder",
    "savefig",
    "shortcut_comparison",
    "signal_propagation",
    "table2",
    "table3",
    "table6",
    "to_latex",
    "to_markdown",
    "verdict",
    "write_table",
]
