"""W&B sweep files: reading, validating against the run config, and expanding them locally.

Expansion follows W&B's semantics: ``grid`` is the Cartesian product of every parameter's ``values`` (``value``
is a constant); ``random`` draws ``run_cap`` configs from each parameter's distribution with a seeded generator.
``bayes`` and early termination need W&B's server, so they are refused locally with a message that says so.
Parameters reach a run as a W&B agent passes them: ``--name=value``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from experiments.config import FIELD_NAMES, ConfigError, RunConfig, config_from_dict, run_dirs

SWEEP_KEYS = {"name", "description", "program", "method", "metric", "parameters", "command", "early_terminate",
              "run_cap", "project", "entity", "controller"}  # fmt: skip
LOCAL_METHODS = ("grid", "random")
WANDB_METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = (
    "constant", "categorical", "int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values",
    "q_log_uniform", "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "normal", "q_normal",
    "log_normal", "q_log_normal", "beta", "q_beta",
)  # fmt: skip


class SweepError(ValueError):
    """A malformed sweep file: one line naming the file, the key and the fix."""


@dataclass(frozen=True)
class SweepRun:
    """One point of a sweep: the parameters as the agent passes them, and the resolved config."""

    params: dict[str, Any]
    extras: dict[str, Any]
    config: RunConfig

    @property
    def args(self) -> list[str]:
        """Command-line arguments as a W&B agent builds them (``--name=value``), then the local runner's extras."""
        return [f"--{k}={v}" for k, v in {**self.params, **self.extras}.items()]

    @property
    def dirs(self) -> list[Path]:
        return run_dirs(self.config)

    @property
    def name(self) -> str:
        return "+".join(d.name for d in self.dirs)


def member_runs(run: SweepRun) -> list[SweepRun]:
    """A pair's networks as separate runs: same batches (batch k depends on seed and k only) and same run folders."""
    if run.config.fuse == "on":
        raise SweepError(f"{run.name}: fuse 'on' trains the pair as one network, so it cannot also be split")
    runs = []
    for member in run.config.members():
        params = {**run.params, "arch": member.arch}
        runs.append(SweepRun(params=params, extras=run.extras, config=config_from_dict({**params, **run.extras})))
    if [r.dirs[0] for r in runs] != run.dirs:
        raise SweepError(f"{run.name}: its networks run alone would write other folders; keep the pair")
    return runs


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML with the safe loader; every structural problem is a SweepError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {path} not found; the sweeps are in sweeps/*.yaml")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SweepError(f"{path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(spec, dict):
        raise SweepError(f"{path} must hold a mapping with method and parameters, got {type(spec).__name__}")
    spec.setdefault("name", path.stem)
    validate_spec(spec, str(path))
    return spec


def validate_spec(spec: Mapping[str, Any], where: str = "sweep") -> None:
    """Check the keys, method, parameter names and distributions of a sweep config."""
    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise SweepError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; a W&B sweep has {', '.join(sorted(SWEEP_KEYS))}"
        )
    method = spec.get("method")
    if method not in WANDB_METHODS:
        raise SweepError(f"{where}: method must be one of {', '.join(WANDB_METHODS)}, got {method!r}")
    params = spec.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{where}: parameters must be a non-empty mapping of run-config fields")
    for name, p in params.items():
        if name not in FIELD_NAMES:
            raise SweepError(
                f"{where}: parameter {name!r} is not a run-config field (python -m experiments.train --help)"
            )
        if not isinstance(p, dict):
            raise SweepError(f"{where}: parameter {name!r} must be a mapping such as {{values: [...]}} or {{value: x}}")
        dist = _distribution(name, p, where)
        if dist == "categorical" and (not isinstance(p.get("values"), list) or not p["values"]):
            raise SweepError(f"{where}: parameter {name!r} needs a non-empty list under 'values'")


def _distribution(name: str, p: Mapping[str, Any], where: str) -> str:
    """The W&B distribution of a parameter, inferred as W&B does when it is not given."""
    if "distribution" in p:
        dist = p["distribution"]
        if dist not in DISTRIBUTIONS:
            raise SweepError(
                f"{where}: parameter {name!r} has unknown distribution {dist!r}; W&B defines {', '.join(DISTRIBUTIONS)}"
            )
        return dist
    if "value" in p:
        return "constant"
    if "values" in p:
        return "categorical"
    if "min" in p and "max" in p:
        return "int_uniform" if isinstance(p["min"], int) and isinstance(p["max"], int) else "uniform"
    if "mu" in p or "sigma" in p:
        return "normal"
    raise SweepError(f"{where}: parameter {name!r} needs 'value', 'values', min/max or a distribution")


def _sample(name: str, p: Mapping[str, Any], rng: random.Random, where: str) -> Any:
    """Draw one value from a W&B distribution."""
    dist = _distribution(name, p, where)
    lo, hi = p.get("min"), p.get("max")
    mu, sigma = p.get("mu", 0.0), p.get("sigma", 1.0)
    q = p.get("q", 1)

    def quantize(x: float) -> float:
        return round(x / q) * q

    if dist == "constant":
        return p["value"]
    if dist == "categorical":
        weights = p.get("probabilities")
        return rng.choices(p["values"], weights=weights)[0]
    if dist in (
        "uniform",
        "q_uniform",
        "int_uniform",
        "log_uniform",
        "log_uniform_values",
        "q_log_uniform",
        "q_log_uniform_values",
        "inv_log_uniform",
        "inv_log_uniform_values",
    ) and (lo is None or hi is None):
        raise SweepError(f"{where}: parameter {name!r} with distribution {dist} needs min and max")
    if dist == "int_uniform":
        return rng.randint(int(lo), int(hi))
    if dist == "uniform":
        return rng.uniform(lo, hi)
    if dist == "q_uniform":
        return quantize(rng.uniform(lo, hi))
    if dist == "log_uniform":
        return math.exp(rng.uniform(lo, hi))
    if dist == "log_uniform_values":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist == "q_log_uniform":
        return quantize(math.exp(rng.uniform(lo, hi)))
    if dist == "q_log_uniform_values":
        return quantize(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if dist == "inv_log_uniform":
        return 1.0 / math.exp(rng.uniform(lo, hi))
    if dist == "inv_log_uniform_values":
        return 1.0 / math.exp(rng.uniform(math.log(1.0 / hi), math.log(1.0 / lo)))
    if dist == "normal":
        return rng.gauss(mu, sigma)
    if dist == "q_normal":
        return quantize(rng.gauss(mu, sigma))
    if dist == "log_normal":
        return math.exp(rng.gauss(mu, sigma))
    if dist == "q_log_normal":
        return quantize(math.exp(rng.gauss(mu, sigma)))
    if dist == "beta":
        return rng.betavariate(p.get("a", 1.0), p.get("b", 1.0))
    return quantize(rng.betavariate(p.get("a", 1.0), p.get("b", 1.0)))  # q_beta


def expand(
    spec: Mapping[str, Any], seed: int = 0, count: int | None = None, where: str = "sweep"
) -> list[dict[str, Any]]:
    """The parameter sets a sweep runs locally, in W&B's order for grid and seeded draws for random."""
    method = spec["method"]
    if method not in LOCAL_METHODS:
        raise SweepError(
            f"{where}: method {method!r} is run by W&B's server; start it with --wandb "
            f"(local mode runs {' and '.join(LOCAL_METHODS)})"
        )
    if spec.get("early_terminate"):
        raise SweepError(
            f"{where}: early_terminate ({spec['early_terminate'].get('type', '?')}) is applied by W&B's "
            "server; start the sweep with --wandb, or remove early_terminate to run it locally"
        )
    params = spec["parameters"]
    if method == "grid":
        axes = []
        for name, p in params.items():
            dist = _distribution(name, p, where)
            if dist not in ("constant", "categorical"):
                raise SweepError(
                    f"{where}: grid search needs 'values' or 'value' for every parameter; {name!r} has "
                    f"distribution {dist}"
                )
            axes.append([(name, v) for v in ([p["value"]] if dist == "constant" else p["values"])])
        points = [dict(combo) for combo in itertools.product(*axes)]
        return points[:count] if count else points
    cap = count or spec.get("run_cap")
    if not cap:
        raise SweepError(f"{where}: a random sweep needs run_cap in the file or --count, or it never ends")
    rng = random.Random(seed)
    return [{name: _sample(name, p, rng, where) for name, p in params.items()} for _ in range(int(cap))]


def local_defaults(spec: Mapping[str, Any], runs_dir: str | None) -> dict[str, Any]:
    """What a local run gets beyond the sweep's parameters: its sweep folder, and no W&B unless the file asks."""
    extras: dict[str, Any] = {"sweep": spec["name"], "wandb": "disabled"}
    if runs_dir is not None:
        extras["runs_dir"] = runs_dir
    return extras


def resolve_runs(
    spec: Mapping[str, Any], runs_dir: str | None = None, seed: int = 0, count: int | None = None, where: str = "sweep"
) -> list[SweepRun]:
    """Expand a sweep and resolve every point into a validated RunConfig; identical runs appear once."""
    points = expand(spec, seed=seed, count=count, where=where)
    runs: dict[tuple[str, ...], SweepRun] = {}
    for params in points:
        extras = {k: v for k, v in local_defaults(spec, runs_dir).items() if k not in params}
        try:
            cfg = config_from_dict({**params, **extras})
        except ConfigError as e:
            raise SweepError(f"{where}: the point {params} is not a valid run: {e}") from None
        run = SweepRun(params=params, extras=extras, config=cfg)
        runs.setdefault(tuple(str(d) for d in run.dirs), run)
    if not runs:
        raise SweepError(f"{where}: the sweep expands to no runs")
    return list(runs.values())
