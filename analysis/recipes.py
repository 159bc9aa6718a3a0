"""Recipe groups: runs that differ in anything but seed, depth, arch and shortcut are never averaged together.

A run's *recipe* is every config field that changes what is trained (the fields of its run name's hash) except the
ones a sweep varies on purpose: the four of a degradation sweep, and the intervention fields (an intervention run
sits in its recipe beside the paper's nets, told apart by its label). Within one dataset, runs with equal recipes
form one group; where a dataset holds several groups, each is described by the fields that differ ("lr 0.01",
"max_steps 3000") and that description is appended to every label, so tables, figures and the verdict keep the
groups apart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.interventions import INTERVENTION_FIELDS
from experiments.config import FIELD_NAMES, IDENTITY_EXCLUDED

VARIED = frozenset({"seed", "depth", "arch", "shortcut", *INTERVENTION_FIELDS})
"""The fields a degradation sweep varies on purpose: runs differing only in these belong to one recipe (an
intervention is judged against the paper's nets of its recipe: ``analysis.interventions``)."""
RECIPE_FIELDS = tuple(f for f in FIELD_NAMES if f not in IDENTITY_EXCLUDED and f not in VARIED and f != "dataset")
"""Config fields that define a recipe within a dataset (every field of the run's identity hash but the varied ones)."""
RECIPE_COLUMN = "recipe"
"""The runs table's column that names a run's recipe group within its dataset ("" where the dataset has one)."""


def _normal(value: Any) -> Any:
    """A hashable, comparable form of a config value (NaN and None are the same missing value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, list | tuple):
        return tuple(_normal(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_text(v) for v in value)
    return "default" if value is None else str(value)


def recipe_key(row: Mapping[str, Any]) -> str:
    """A stable key of a run's recipe fields (those present in ``row``)."""
    return json.dumps({f: _normal(row.get(f)) for f in RECIPE_FIELDS}, sort_keys=True, default=str)


def describe_recipes(runs: pd.DataFrame) -> pd.Series:
    """Each run's recipe description: "" where its dataset has one recipe, else the values of the differing fields."""
    if runs.empty:
        return pd.Series([], index=runs.index, dtype=object)
    records = runs.to_dict("records")
    keys = pd.Series([recipe_key(r) for r in records], index=runs.index)
    descriptions = pd.Series("", index=runs.index, dtype=object)
    for _, index in runs.groupby(runs["dataset"].fillna(""), sort=False).groups.items():
        if keys[index].nunique() < 2:
            continue
        values = {f: {_normal(runs.at[i, f]) for i in index} for f in RECIPE_FIELDS if f in runs.columns}
        differing = [f for f, seen in values.items() if len(seen) > 1]
        for i in index:
            descriptions[i] = ", ".join(f"{f} {_text(_normal(runs.at[i, f]))}" for f in differing)
    return descriptions


def with_recipe(label: str, recipe: str) -> str:
    """A net's label with its recipe group appended where the dataset holds several: "plain-8 (lr 0.01)"."""
    return f"{label} ({recipe})" if recipe else label
