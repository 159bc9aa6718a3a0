"""Interventions (issue 22): what a run changes about the paper's nets, read from its config.json, and its name.

An intervention is the values of ``INTERVENTION_FIELDS`` that differ from the paper's, plus the run's arch: the
shortcut's weight alpha in relu(alpha * shortcut(x) + F(x)), the normalisation, the initialisation and the
activation. The paper's pair (plain / ResNet with every field at its paper value) is the reference the others are
judged against. A config.json stored before these fields existed lacks them and reads as the paper's values, which
is what those runs trained with.

This module reads configs only (no frames, no figures), so the loader and the recipe groups can import it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from models.spec import INTERVENTIONS, PAPER

INTERVENTION_FIELDS = INTERVENTIONS
PAPER_VALUES: dict[str, Any] = {f: PAPER[f] for f in INTERVENTION_FIELDS}
"""The paper's value of each intervention field (models.spec): what a run stored before issue 22 trained with (its
config.json lacks the key)."""
INTERVENTION_COLUMN = "intervention"
"""The runs table's column naming a run's intervention without its depth: "plain", "ResNet alpha=0.5"."""
ARCH_NAMES = {"plain": "plain", "resnet": "ResNet", "preact": "pre-act ResNet"}
VALUE_NAMES = {
    ("norm", "none"): "no BN",
    ("init", "orthogonal"): "orthogonal init",
    ("init", "delta-orthogonal"): "delta-orthogonal init",
    ("init", "fixup"): "Fixup",
    ("init", "skipinit"): "SkipInit",
    ("activation", "tat"): "TAT",
    ("activation", "dks"): "DKS",
}
"""How a remedy reads in a label (a value missing here reads "<field> <value>")."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def intervention_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """The four intervention fields of a run's config, a missing key (a run stored before them) read as the paper's
    value; alpha as a float, so 1 and 1.0 are one value."""
    values = {f: PAPER_VALUES[f] if _missing(config.get(f)) else config[f] for f in INTERVENTION_FIELDS}
    values["shortcut_weight"] = float(values["shortcut_weight"])
    return values


def remedies(config: Mapping[str, Any]) -> dict[str, Any]:
    """The intervention fields whose values differ from the paper's (empty for the paper's nets)."""
    return {f: v for f, v in intervention_values(config).items() if v != PAPER_VALUES[f]}


def is_reference(config: Mapping[str, Any]) -> bool:
    """Whether a run is one of the paper's nets (every intervention field at the paper's value)."""
    return not remedies(config)


def remedy_words(config: Mapping[str, Any]) -> list[str]:
    """The run's remedies in words, alpha first: ["alpha=0.5", "no BN", "Fixup"]; none for the paper's nets."""
    changed = remedies(config)
    alpha = [f"alpha={changed.pop('shortcut_weight'):g}"] if "shortcut_weight" in changed else []
    return alpha + [VALUE_NAMES.get((f, v), f"{f} {v}") for f, v in changed.items()]


def intervention_label(config: Mapping[str, Any]) -> str:
    """A run's intervention in words, without its depth: "plain", "ResNet", "ResNet alpha=0.5", "plain, no BN,
    TAT", "ResNet, no BN, Fixup" (alpha beside the arch, the other remedies after commas)."""
    arch = config.get("arch")
    words = remedy_words(config)
    name = ARCH_NAMES.get(arch, str(arch))
    if words and words[0].startswith("alpha="):
        name = f"{name} {words.pop(0)}"
    return ", ".join([name, *words])


def net_label(label: str, config: Mapping[str, Any]) -> str:
    """A net's label (``load.run_label``) with the run's remedies in brackets, so a list of nets stays readable:
    "plain-56 (no BN, TAT)", "ResNet-56 (alpha=0.5)"; the paper's nets keep their label."""
    words = remedy_words(config)
    return f"{label} ({', '.join(words)})" if words else label


def intervention_row(config: Mapping[str, Any]) -> dict[str, Any]:
    """The runs table's intervention columns of one run: the four fields (defaults filled) and its label."""
    return {**intervention_values(config), INTERVENTION_COLUMN: intervention_label(config)}


RUN_FIELDS = (*INTERVENTION_FIELDS, INTERVENTION_COLUMN)
"""The columns ``intervention_row`` gives the runs table."""


def reference_mask(runs: pd.DataFrame) -> pd.Series:
    """Which rows of a runs table are the paper's nets."""
    if runs.empty:
        return pd.Series(True, index=runs.index, dtype=bool)
    return pd.Series([is_reference(r) for r in runs.to_dict("records")], index=runs.index, dtype=bool)


def has_interventions(runs: pd.DataFrame) -> bool:
    """Whether any run of a runs table changes the paper's nets."""
    return not reference_mask(runs).all()
