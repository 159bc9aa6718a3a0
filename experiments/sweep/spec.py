"""W&B sweep files: reading, validating against the run config, and expanding them locally.

Validation and expansion follow W&B's engine (the ``sweeps`` package; ``tests/test_engine_parity.py`` compares the
two): a parameter's distribution is inferred and checked as the engine does; ``grid`` is the Cartesian product over
the parameters in name order (``int_uniform`` and ``q_uniform`` become lists), each distinct point once (``20``,
``20.0`` and ``"20"`` are three values), capped by ``run_cap``; ``random`` draws ``run_cap`` configs from each
parameter's distribution with a seeded generator (the engine's types: an integer ``q`` gives integers).
``bayes`` and early termination need W&B's server, so they are refused locally with a message that says so.
Parameters reach a run as a W&B agent passes them, ``--name=value``, and a point is checked by parsing those
arguments as the run will.
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

from experiments.config import FIELD_NAMES, ConfigError, RunConfig, config_from_dict, parse_cli, run_dirs

SWEEP_KEYS = {"name", "description", "program", "method", "metric", "parameters", "command", "early_terminate",
              "run_cap", "project", "entity", "controller"}  # fmt: skip
LOCAL_METHODS = ("grid", "random")
WANDB_METHODS = ("grid", "random", "bayes")
GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")
"""What W&B's grid search takes: constants and lists, and integer and quantised ranges (made into lists)."""

_RANGE = ("min", "max")
_Q = {"q": 1.0}
_NORMAL = {"mu": 0.0, "sigma": 1.0}
_BETA = {"a": 1.0, "b": 1.0}
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (_RANGE, {}),
    "uniform": (_RANGE, {}),
    "q_uniform": (_RANGE, _Q),
    "log_uniform": (_RANGE, {}),
    "log_uniform_values": (_RANGE, {}),
    "q_log_uniform": (_RANGE, _Q),
    "q_log_uniform_values": (_RANGE, _Q),
    "inv_log_uniform": (_RANGE, {}),
    "inv_log_uniform_values": (_RANGE, {}),
    "normal": ((), _NORMAL),
    "q_normal": ((), {**_NORMAL, **_Q}),
    "log_normal": ((), _NORMAL),
    "q_log_normal": ((), {**_NORMAL, **_Q}),
    "beta": ((), _BETA),
    "q_beta": ((), {**_BETA, **_Q}),
}
"""W&B's distributions (its engine's schema, the ``sweeps`` package): each one's required keys, and its optional
numeric keys with their defaults. No other key is allowed beside ``distribution``."""
NUMERIC_KEYS = ("min", "max", "q", "mu", "sigma", "a", "b")


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
        return agent_args({**self.params, **self.extras})

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
        runs.append(SweepRun(params=params, extras=run.extras, config=resolve_point(params, run.extras)))
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
    """Check the keys, method, parameter names and distributions of a sweep config as W&B's engine does; every
    problem is one SweepError line naming the parameter and the fix."""
    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise SweepError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; a W&B sweep has {', '.join(sorted(SWEEP_KEYS))}"
        )
    method = spec.get("method")
    if method not in WANDB_METHODS:
        raise SweepError(f"{where}: method must be one of {', '.join(WANDB_METHODS)}, got {method!r}")
    cap = spec.get("run_cap")
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise SweepError(f"{where}: run_cap must be a positive integer, got {cap!r}")
    metric = spec.get("metric")
    if method == "bayes" and not (isinstance(metric, dict) and metric.get("name")):
        raise SweepError(f"{where}: bayes search needs a metric, as in metric: {{name: plain/train_error}}")
    params = spec.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{where}: parameters must be a non-empty mapping of run-config fields")
    for name, p in params.items():
        if name not in FIELD_NAMES:
            raise SweepError(
                f"{where}: parameter {name!r} is not a run-config field (python -m experiments.train --help)"
            )
        check_parameter(name, p, where)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _yaml_number(text: str) -> str:
    """``text`` written so that PyYAML reads a number (YAML 1.1 wants a dot and a signed exponent: 1.0e-3)."""
    mantissa, e, exponent = repr(float(text)).partition("e")
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}{e}{exponent}"


def _number(name: str, key: str, value: Any, where: str, integer: bool = False) -> None:
    kind = "an integer" if integer else "a number"
    if isinstance(value, str):
        try:
            hint = f"; write {_yaml_number(value)} (YAML reads {value} as a string)"
        except ValueError:
            hint = ""
        raise SweepError(f"{where}: parameter {name!r}: {key} must be {kind}, got the string {value!r}{hint}")
    if not _is_number(value) or (integer and not isinstance(value, int)):
        raise SweepError(f"{where}: parameter {name!r}: {key} must be {kind}, got {value!r}")


def check_parameter(name: str, p: Any, where: str = "sweep") -> tuple[str, dict[str, Any]]:
    """A parameter's W&B distribution (inferred as W&B's engine infers it when not given) and its settings with the
    engine's defaults filled in; SweepError (one line) for anything the engine would refuse."""
    if not isinstance(p, dict):
        raise SweepError(f"{where}: parameter {name!r} must be a mapping such as {{values: [...]}} or {{value: x}}")
    keys = set(p) - {"distribution"}
    if "distribution" in p:
        dist = p["distribution"]
        if dist not in DISTRIBUTIONS:
            raise SweepError(
                f"{where}: parameter {name!r} has unknown distribution {dist!r}; W&B defines {', '.join(DISTRIBUTIONS)}"
            )
    elif keys == {"value"}:
        dist = "constant"
    elif keys == {"values"}:
        dist = "categorical"
    elif keys == {"values", "probabilities"}:
        dist = "categorical_w_probabilities"
    elif keys == {"min", "max"}:
        for key in _RANGE:
            _number(name, key, p[key], where)
        ints = all(isinstance(p[k], int) for k in _RANGE)
        dist = "int_uniform" if ints else "uniform"
    else:
        raise SweepError(
            f"{where}: parameter {name!r} needs 'value', 'values' (and 'probabilities'), min and max, or a "
            f"distribution; got {', '.join(sorted(map(str, p))) or 'nothing'}"
        )
    required, optional = DISTRIBUTIONS[dist]
    missing = [k for k in required if k not in p]
    if missing:
        raise SweepError(f"{where}: parameter {name!r} with distribution {dist} needs {' and '.join(missing)}")
    extra = sorted(map(str, keys - set(required) - set(optional)))
    if extra:
        allowed = ", ".join([*required, *optional]) or "nothing else"
        raise SweepError(f"{where}: parameter {name!r}: {extra[0]!r} is not a setting of {dist} (it takes {allowed})")
    filled = {**optional, **p, "distribution": dist}
    for key in NUMERIC_KEYS:
        if key in filled:
            _number(name, key, filled[key], where, integer=dist == "int_uniform" and key in _RANGE)
    if "min" in filled and filled["min"] >= filled["max"]:
        raise SweepError(f"{where}: parameter {name!r}: min {filled['min']} is not less than max {filled['max']}")
    if "q" in filled and filled["q"] <= 0:
        raise SweepError(f"{where}: parameter {name!r}: q must be above 0, got {filled['q']}")
    if dist.endswith("_values") and filled["min"] <= 0:
        raise SweepError(
            f"{where}: parameter {name!r}: {dist} needs min above 0 (a log scale of values), got {filled['min']}; "
            f"{dist.removesuffix('_values')} takes exponents"
        )
    for key in ("sigma", "a", "b"):
        if key in filled and filled[key] < 0:
            raise SweepError(f"{where}: parameter {name!r}: {key} must be zero or above, got {filled[key]}")
    if "values" in filled and (not isinstance(filled["values"], list) or not filled["values"]):
        raise SweepError(f"{where}: parameter {name!r} needs a non-empty list under 'values'")
    if dist == "categorical_w_probabilities":
        probs = filled["probabilities"]
        if not isinstance(probs, list) or len(probs) != len(filled["values"]):
            raise SweepError(f"{where}: parameter {name!r}: probabilities must be a list, one per value")
        for prob in probs:
            _number(name, "each probability", prob, where)
            if prob < 0:
                raise SweepError(f"{where}: parameter {name!r}: probabilities must be zero or above, got {prob}")
        if not math.isclose(sum(probs), 1.0, rel_tol=1e-5, abs_tol=1e-8):
            raise SweepError(f"{where}: parameter {name!r}: probabilities {probs} sum to {sum(probs):g}, not 1")
    return dist, filled


def _quantize(x: float, q: int | float) -> int | float:
    """Round to a multiple of q as W&B does: an integer q gives integers."""
    value = round(x / q) * q
    return int(value) if isinstance(q, int) else float(value)


def _sample(dist: str, p: Mapping[str, Any], rng: random.Random) -> Any:
    """Draw one value from a W&B distribution (``p`` filled by ``check_parameter``), with W&B's types."""
    lo, hi, q = p.get("min"), p.get("max"), p.get("q", 1.0)
    if dist == "constant":
        return p["value"]
    if dist == "categorical":
        return rng.choice(p["values"])
    if dist == "categorical_w_probabilities":
        return rng.choices(p["values"], weights=p["probabilities"])[0]
    if dist == "int_uniform":
        return rng.randint(lo, hi)
    if dist in ("uniform", "q_uniform"):
        x = rng.uniform(lo, hi)
    elif dist in ("log_uniform", "q_log_uniform"):
        x = math.exp(rng.uniform(lo, hi))
    elif dist in ("log_uniform_values", "q_log_uniform_values"):
        x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    elif dist == "inv_log_uniform":
        x = math.exp(-rng.uniform(lo, hi))
    elif dist == "inv_log_uniform_values":
        x = math.exp(-rng.uniform(-math.log(hi), -math.log(lo)))
    elif dist in ("normal", "q_normal"):
        x = rng.gauss(p["mu"], p["sigma"])
    elif dist in ("log_normal", "q_log_normal"):
        x = math.exp(rng.gauss(p["mu"], p["sigma"]))
    else:  # beta, q_beta
        x = rng.betavariate(p["a"], p["b"])
    return _quantize(x, q) if dist.startswith("q_") else x


def _grid_values(name: str, dist: str, p: Mapping[str, Any], where: str) -> list[Any]:
    """A parameter's grid axis as W&B's engine builds it: int_uniform is min..max, q_uniform numpy's
    ``arange(min, max, q)`` (max excluded; its float steps reproduced exactly)."""
    if dist not in GRID_DISTRIBUTIONS:
        raise SweepError(
            f"{where}: grid search takes {', '.join(GRID_DISTRIBUTIONS)} (no probabilities); parameter {name!r} has "
            f"distribution {dist}"
        )
    if dist == "constant":
        return [p["value"]]
    if dist == "categorical":
        return list(p["values"])
    lo, hi = p["min"], p["max"]
    if dist == "int_uniform":
        return list(range(lo, hi + 1))
    q = p["q"]
    if all(isinstance(v, int) for v in (lo, hi, q)):
        return list(range(lo, hi, q))
    n = math.ceil((hi - lo) / q)
    step = (lo + q) - lo  # numpy fills arange with start + i * (second - first)
    return [float(lo)] + [float(lo + i * step) for i in range(1, n)] if n > 0 else []


def value_key(value: Any) -> str:
    """A value's identity as W&B's grid has it (its flow-style YAML): 20, 20.0 and "20" are three values."""
    return yaml.dump(value, default_flow_style=True, sort_keys=True)


def expand(
    spec: Mapping[str, Any], seed: int = 0, count: int | None = None, where: str = "sweep"
) -> list[dict[str, Any]]:
    """The parameter sets a sweep runs, as W&B's engine makes them: parameters in name order; for grid, the
    Cartesian product with the first name varying slowest, each distinct point once, the first ``run_cap`` (or
    ``count``) of them; for random, ``run_cap`` (or ``count``) seeded draws."""
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
    params = {name: check_parameter(name, spec["parameters"][name], where) for name in sorted(spec["parameters"])}
    cap = count or spec.get("run_cap")
    if method == "grid":
        axes = [[(name, v) for v in _grid_values(name, dist, p, where)] for name, (dist, p) in params.items()]
        points, seen = [], set()
        for combo in itertools.product(*axes):
            key = tuple(value_key(v) for _, v in combo)
            if key not in seen:
                seen.add(key)
                points.append(dict(combo))
        return points[:cap] if cap else points
    if not cap:
        raise SweepError(f"{where}: a random sweep needs run_cap in the file or --count, or it never ends")
    rng = random.Random(seed)
    return [{name: _sample(dist, p, rng) for name, (dist, p) in params.items()} for _ in range(int(cap))]


def local_defaults(spec: Mapping[str, Any], runs_dir: str | None, wandb: str | None = None) -> dict[str, Any]:
    """What a local run gets beyond the sweep's parameters: its sweep folder, the store's root, and a W&B mode if
    one is asked for (otherwise the run's default: offline, as for one run)."""
    extras: dict[str, Any] = {"sweep": spec["name"]}
    if runs_dir is not None:
        extras["runs_dir"] = runs_dir
    if wandb is not None:
        extras["wandb"] = wandb
    return extras


def agent_args(params: Mapping[str, Any]) -> list[str]:
    """Command-line arguments as a W&B agent builds them from a point: ``--name=value``, the value as Python prints
    it (W&B's ``create_sweep_command_args``)."""
    return [f"--{k}={v}" for k, v in params.items()]


def resolve_point(params: Mapping[str, Any], extras: Mapping[str, Any]) -> RunConfig:
    """The config a run of this point trains: parsed from the arguments it receives, as the run parses them, so a
    point passes or fails here exactly as it will in the run (``20.0`` arrives as the text ``20.0``)."""
    return config_from_dict(parse_cli(agent_args({**params, **extras})))


def resolve_runs(
    spec: Mapping[str, Any],
    runs_dir: str | None = None,
    seed: int = 0,
    count: int | None = None,
    where: str = "sweep",
    wandb: str | None = None,
) -> list[SweepRun]:
    """Expand a sweep and resolve every point into a validated RunConfig; identical runs appear once."""
    points = expand(spec, seed=seed, count=count, where=where)
    runs: dict[tuple[str, ...], SweepRun] = {}
    for params in points:
        extras = {k: v for k, v in local_defaults(spec, runs_dir, wandb).items() if k not in params}
        try:
            cfg = resolve_point(params, extras)
        except ConfigError as e:
            raise SweepError(f"{where}: the point {params} is not a valid run: {e}") from None
        run = SweepRun(params=params, extras=extras, config=cfg)
        runs.setdefault(tuple(str(d) for d in run.dirs), run)
    if not runs:
        raise SweepError(f"{where}: the sweep expands to no runs")
    return list(runs.values())
