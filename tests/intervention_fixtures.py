"""Fake run stores with interventions (issue 22) for the analysis tests, written through the real RunDir writer.

Each run's config.json is the resolved RunConfig of ``analysis_fixtures.write_nets`` with the four intervention keys
added (the paper's values, overridden by the intervention), as a run trained with them stores it;
``intervention=None`` writes a config.json without them, as every run stored before issue 22.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from analysis.interventions import INTERVENTION_FIELDS, PAPER_VALUES
from experiments.store import list_runs
from tests.analysis_fixtures import write_nets

NO_BN_TAT = {"norm": "none", "activation": "tat"}
NO_BN_FIXUP = {"norm": "none", "init": "fixup"}


def _slug(intervention: Mapping[str, Any]) -> str:
    """A run-name suffix for the intervention's non-paper values ("" for the paper's nets)."""
    changed = [(f, v) for f, v in intervention.items() if v != PAPER_VALUES[f]]
    return "".join(f"-{f}-{v:g}" if isinstance(v, float) else f"-{f}-{v}" for f, v in changed)


def _with_intervention(
    config: dict[str, Any], name: str, intervention: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str]:
    config = {k: v for k, v in config.items() if k not in INTERVENTION_FIELDS}
    if intervention is None:
        return config, name
    values = {**PAPER_VALUES, **intervention}
    name += _slug(values)
    return {**config, **values, "run_name": name}, name


def write_intervention_nets(
    root: Path, finals: Mapping[tuple[str, int, int], float], intervention: Mapping[str, Any] | None = None, **kwargs
) -> Path:
    """Finished runs of ``(arch, depth, seed): final training error`` (``analysis_fixtures.write_nets``, which takes
    ``kwargs``) with ``intervention`` (field: value) in config.json."""
    return write_nets(root, dict(finals), configure=partial(_with_intervention, intervention=intervention), **kwargs)


def write_probe_signals(root: Path) -> Path:
    """A probe's block-gradient norms and block-output variances at step 0 and at the end, for every run in
    ``root``."""
    for run in list_runs(root):
        config = run.read_config()
        blocks = (config["depth"] - 2) // 2
        for step in (0, config["max_steps"]):
            rows = [(b, f"block{b}", "act_grad_norm", 1.0 / (1 + b)) for b in range(blocks + 1)]
            rows += [(b, f"block{b}", "act_var", 0.5 + 0.01 * b) for b in range(blocks + 1)]
            run.log_signals(step, rows)
    return Path(root)
