"""Fake run stores with interventions (issue 22) for the analysis tests, written through the real RunDir writer.

Each run's config.json is the resolved RunConfig of ``analysis_fixtures`` with the four intervention keys added
(the paper's values, overridden by the intervention), as a run trained with them stores it; ``intervention=None``
writes a config.json without them, as every run stored before issue 22.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.interventions import INTERVENTION_FIELDS, PAPER_VALUES
from experiments.store import STATUS_FINISHED
from tests.analysis_fixtures import _config, _decay_to, _write_run

NO_BN_TAT = {"norm": "none", "activation": "tat"}
NO_BN_FIXUP = {"norm": "none", "init": "fixup"}


def _slug(intervention: Mapping[str, Any]) -> str:
    """A run-name suffix for the intervention's non-paper values ("" for the paper's nets)."""
    changed = [(f, v) for f, v in intervention.items() if v != PAPER_VALUES[f]]
    return "".join(f"-{f}-{v:g}" if isinstance(v, float) else f"-{f}-{v}" for f, v in changed)


def write_intervention_nets(
    root: Path,
    finals: Mapping[tuple[str, int, int], float],
    intervention: Mapping[str, Any] | None = None,
    dataset: str = "synthetic",
    steps: int = 2_000,
    signals: bool = False,
) -> Path:
    """Finished runs of ``(arch, depth, seed): final training error`` (decaying from 90% to exactly it, test error 2
    points above), with ``intervention`` (field: value) in config.json; ``signals`` also writes a probe's block
    gradient norms and output variances at step 0 and at the end."""
    log_every = steps // 20
    for (arch, depth, seed), final in finals.items():
        config, name = _config(
            arch=arch,
            depth=depth,
            seed=seed,
            dataset=dataset,
            max_steps=steps,
            log_every=log_every,
            eval_every=steps // 4,
            wandb="disabled",
        )
        for key in INTERVENTION_FIELDS:
            config.pop(key, None)
        if intervention is not None:
            values = {**PAPER_VALUES, **intervention}
            config.update(values)
            name += _slug(values)
            config["run_name"] = name
        run = _write_run(Path(root), config, name, {"status": STATUS_FINISHED, "step": steps, "reason": None})
        for step in range(log_every, steps + 1, log_every):
            values_at = {"train_error": _decay_to(step, steps, final)}
            if step % (steps // 4) == 0:
                values_at["test_error"] = _decay_to(step, steps, final) + 2.0
            run.log_metrics(step, values_at)
        if signals:
            blocks = (depth - 2) // 2
            for step in (0, steps):
                rows = [(b, f"block{b}", "act_grad_norm", 1.0 / (1 + b)) for b in range(blocks + 1)]
                rows += [(b, f"block{b}", "act_var", 0.5 + 0.01 * b) for b in range(blocks + 1)]
                run.log_signals(step, rows)
        run.update_summary(final_train_error=final, final_test_error=final + 2.0)
    return Path(root)
