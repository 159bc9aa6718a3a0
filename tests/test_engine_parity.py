"""W&B engine parity: our sweep validation and expansion against W&B's own engine, the ``sweeps`` package.

Every case below carries the outcome ``sweeps`` 0.2.0 gives it (recorded with ``tests/sweeps_engine.py``); our code
is checked against it always. Where a Python with ``sweeps`` is found, the engine itself is run on the same cases and
on every file of ``sweeps/``, and must agree. ``sweeps`` pins old dependencies, so it lives in its own environment:

    python -m venv /tmp/sweeps-env && /tmp/sweeps-env/bin/pip install sweeps==0.2.0

``DEGRADATION_SWEEPS_PYTHON`` names that environment's Python (default ``/tmp/sweeps-env/bin/python``); without
it the engine tests skip and say why.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

import run_sweep
from experiments.config import ConfigError, config_from_dict, parse_cli
from experiments.sweep.spec import SweepError, expand, load_sweep, resolve_runs, value_key
from tests.helpers import REPO

ENGINE_PYTHON = os.environ.get("DEGRADATION_SWEEPS_PYTHON", "/tmp/sweeps-env/bin/python")
SWEEP_FILES = sorted((REPO / "sweeps").glob("*.yaml"))


@functools.cache
def _engine_problem() -> str | None:
    if not Path(ENGINE_PYTHON).is_file():
        return f"no Python with W&B's `sweeps` engine at {ENGINE_PYTHON} (set DEGRADATION_SWEEPS_PYTHON; module doc)"
    probe = subprocess.run([ENGINE_PYTHON, "-c", "import sweeps"], capture_output=True, text=True, timeout=120)
    return None if probe.returncode == 0 else f"{ENGINE_PYTHON} cannot import sweeps: {probe.stderr.strip()[-200:]}"


def run_engine(cases: dict[str, dict], n: int = 1) -> dict[str, dict]:
    """The engine's verdict and points for each case (``tests/sweeps_engine.py`` in the engine's environment)."""
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    payload = json.dumps([{"id": k, "config": v, "n": n} for k, v in cases.items()])
    out = subprocess.run(
        [ENGINE_PYTHON, str(REPO / "tests" / "sweeps_engine.py")], input=payload, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return {r["id"]: r for r in json.loads(out.stdout)}


def keyed(points: list) -> list[list[tuple[str, str]]]:
    """Points as (name, value identity) pairs in order: 20 and 20.0 stay apart, as in the engine."""
    return [[(k, value_key(v)) for k, v in (p.items() if isinstance(p, dict) else p)] for p in points]


# -- grid: order, run_cap, value identity, ranges made lists ---------------------------------------------------------

GRID = {
    "names_sorted_first_slowest": (
        {"method": "grid", "parameters": {"seed": {"values": [1, 0]}, "depth": {"values": [20, 8]},
                                          "arch": {"values": ["resnet", "plain"]}, "preset": {"value": "demo"}}},
        [[("arch", a), ("depth", d), ("preset", "demo"), ("seed", s)]
         for a in ("resnet", "plain") for d in (20, 8) for s in (1, 0)],
    ),
    "20_20.0_and_'20'_are_three_values": (
        {"method": "grid", "parameters": {"depth": {"values": [20, 20.0, "20", 20]}, "preset": {"value": "demo"}}},
        [[("depth", 20), ("preset", "demo")], [("depth", 20.0), ("preset", "demo")],
         [("depth", "20"), ("preset", "demo")]],
    ),
    "run_cap_takes_the_first_points": (
        {"method": "grid", "run_cap": 3, "parameters": {"depth": {"values": [8, 14, 20]}, "seed": {"values": [0, 1]}}},
        [[("depth", 8), ("seed", 0)], [("depth", 8), ("seed", 1)], [("depth", 14), ("seed", 0)]],
    ),
    "int_uniform_is_min_to_max": (
        {"method": "grid", "parameters": {"seed": {"min": 0, "max": 3}, "arch": {"value": "plain"}}},
        [[("arch", "plain"), ("seed", s)] for s in range(4)],
    ),
    "q_uniform_float_steps_as_numpy": (
        {"method": "grid", "parameters": {"lr": {"distribution": "q_uniform", "min": 0.1, "max": 1.0, "q": 0.2}}},
        [[("lr", v)] for v in (0.1, 0.30000000000000004, 0.5000000000000001, 0.7000000000000001, 0.9000000000000001)],
    ),
    "q_uniform_integers_max_excluded": (
        {"method": "grid", "parameters": {"max_steps": {"distribution": "q_uniform", "min": 100, "max": 400,
                                                        "q": 100}}},
        [[("max_steps", v)] for v in (100, 200, 300)],
    ),
    "q_uniform_default_q_is_1.0": (
        {"method": "grid", "parameters": {"momentum": {"distribution": "q_uniform", "min": 0, "max": 3}}},
        [[("momentum", v)] for v in (0.0, 1.0, 2.0)],
    ),
    "q_uniform_small_steps": (
        {"method": "grid", "parameters": {"weight_decay": {"distribution": "q_uniform", "min": 0.0001,
                                                           "max": 0.0005, "q": 0.0001}}},
        [[("weight_decay", v)] for v in (0.0001, 0.0002, 0.00030000000000000003, 0.0004)],
    ),
    "explicit_distributions": (
        {"method": "grid", "parameters": {"depth": {"distribution": "categorical", "values": [8, 14]},
                                          "seed": {"distribution": "constant", "value": 3},
                                          "width": {"distribution": "int_uniform", "min": 1, "max": 2}}},
        [[("depth", d), ("seed", 3), ("width", w)] for d in (8, 14) for w in (1, 2)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", GRID, ids=list(GRID))
def test_grid_points_are_the_engines(case):
    spec, expected = GRID[case]
    assert keyed(expand({"name": "g", **spec})) == keyed(expected)


@pytest.mark.integration
def test_the_engine_makes_the_recorded_grid_points():
    found = run_engine({k: spec for k, (spec, _) in GRID.items()})
    for case, (_, expected) in GRID.items():
        assert found[case]["valid"], found[case]
        assert keyed(found[case]["points"]) == keyed(expected), case


# -- random: the engine's value types ---------------------------------------------------------------------------------

RANDOM = {
    "method": "random",
    "run_cap": 40,
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 0.5},
        "max_steps": {"distribution": "q_log_uniform_values", "min": 100, "max": 1000, "q": 100},
        "batch_size": {"distribution": "q_log_uniform_values", "min": 16, "max": 256},
        "seed": {"min": 0, "max": 9},
        "momentum": {"min": 0.8, "max": 0.95},
        "weight_decay": {"min": 0, "max": 0.001},
        "warmup_lr": {"distribution": "inv_log_uniform_values", "min": 0.001, "max": 0.1},
        "lr_gamma": {"distribution": "beta", "a": 2, "b": 2},
        "eval_every": {"distribution": "q_normal", "mu": 100, "sigma": 10, "q": 10},
        "log_every": {"distribution": "q_uniform", "min": 10, "max": 50, "q": 10},
        "depth": {"values": [8, 14, 20], "probabilities": [0.2, 0.3, 0.5]},
        "width": {"distribution": "q_log_normal", "mu": 2, "sigma": 0.5, "q": 1},
        "train_size": {"distribution": "q_uniform", "min": 100, "max": 200},
    },
}
RANDOM_TYPES = {"batch_size": "float", "depth": "int", "eval_every": "int", "log_every": "int", "lr": "float",
                "lr_gamma": "float", "max_steps": "int", "momentum": "float", "seed": "int", "train_size": "float",
                "warmup_lr": "float", "weight_decay": "float", "width": "int"}  # fmt: skip
"""The engine's type per parameter: an integer q gives integers, the default q (1.0) floats."""


def types_of(points) -> dict[str, str]:
    seen = defaultdict(set)
    for p in points:
        for k, v in p.items() if isinstance(p, dict) else p:
            seen[k].add(type(v).__name__)
    return {k: "/".join(sorted(v)) for k, v in seen.items()}


def test_random_draws_have_the_engines_types_and_ranges():
    points = expand({"name": "r", **RANDOM}, seed=0)
    assert len(points) == 40 and types_of(points) == RANDOM_TYPES
    assert [list(p) for p in points] == [sorted(RANDOM["parameters"])] * 40, "parameters in the engine's order"
    assert all(0.01 <= p["lr"] <= 0.5 and 0.001 <= p["warmup_lr"] <= 0.1 and 0 <= p["seed"] <= 9 for p in points)
    assert all(p["max_steps"] % 100 == 0 and p["log_every"] % 10 == 0 for p in points)


@pytest.mark.integration
def test_the_engine_draws_the_recorded_types():
    (found,) = run_engine({"random": RANDOM}).values()
    assert found["valid"] and len(found["points"]) == 40, found
    assert types_of(found["points"]) == RANDOM_TYPES


# -- malformed distributions: one line and exit 2 here, refused by the engine -----------------------------------------

MALFORMED = {
    "min_ge_max": ("lr: {distribution: uniform, min: 0.1, max: 0.1}", "min 0.1 is not less than max 0.1"),
    "int_min_ge_max": ("seed: {min: 5, max: 2}", "min 5 is not less than max 2"),
    "log_min_ge_max": ("lr: {distribution: log_uniform_values, min: 0.5, max: 0.01}", "is not less than max"),
    "q_zero": ("lr: {distribution: q_uniform, min: 0.1, max: 1.0, q: 0}", "q must be above 0, got 0"),
    "q_negative": ("max_steps: {distribution: q_log_uniform_values, min: 100, max: 1000, q: -10}", "q must be above"),
    "log_min_zero": ("lr: {distribution: log_uniform_values, min: 0, max: 0.1}", "needs min above 0"),
    "inv_log_min_negative": ("lr: {distribution: inv_log_uniform_values, min: -1, max: 0.1}", "needs min above 0"),
    "q_log_min_zero": ("max_steps: {distribution: q_log_uniform_values, min: 0, max: 1000}", "needs min above 0"),
    "probabilities_sum": ("depth: {values: [8, 14], probabilities: [0.5, 0.4]}", "sum to 0.9, not 1"),
    "probabilities_length": ("depth: {values: [8, 14], probabilities: [1.0]}", "probabilities must be a list, one per"),
    "probabilities_negative": ("depth: {values: [8, 14], probabilities: [1.5, -0.5]}", "must be zero or above"),
    "yaml_string_min": ("lr: {distribution: log_uniform_values, min: 1e-3, max: 0.1}",
                        "min must be a number, got the string '1e-3'; write 0.001"),
    "yaml_string_max": ("lr: {min: 0.001, max: 1e-1}", "max must be a number, got the string '1e-1'; write 0.1"),
    "yaml_string_q": ("lr: {distribution: q_uniform, min: 0.001, max: 0.1, q: 1e-5}", "write 1.0e-05"),
    "yaml_string_mu": ("lr: {distribution: log_normal, mu: 1e-1, sigma: 1.0}", "mu must be a number, got the string"),
    "unknown_distribution": ("lr: {distribution: zipf, min: 0.1, max: 1}", "unknown distribution 'zipf'"),
    "misspelt_distribution": ("lr: {distribution: loguniform, min: 0.001, max: 0.1}", "unknown distribution"),
    "normal_needs_its_name": ("lr: {mu: 0.1, sigma: 0.01}", "needs 'value', 'values' (and 'probabilities'), min and"),
    "int_uniform_float": ("seed: {distribution: int_uniform, min: 0.5, max: 3}", "min must be an integer, got 0.5"),
    "extra_key": ("depth: {values: [8, 14], min: 8}", "needs 'value', 'values'"),
    "categorical_with_probabilities": (
        "depth: {distribution: categorical, values: [8, 14], probabilities: [0.5, 0.5]}",
        "'probabilities' is not a setting of categorical",
    ),
    "sigma_negative": ("lr: {distribution: normal, mu: 0.1, sigma: -1}", "sigma must be zero or above"),
    "beta_negative": ("lr: {distribution: beta, a: -1, b: 1}", "a must be zero or above"),
    "empty_values": ("depth: {values: []}", "needs a non-empty list under 'values'"),
    "bool_bound": ("seed: {min: true, max: 3}", "min must be a number, got True"),
    "grid_uniform": ("lr: {min: 0.01, max: 0.1}", "grid search takes constant, categorical, int_uniform, q_uniform"),
    "grid_probabilities": ("depth: {values: [8, 14], probabilities: [0.5, 0.5]}", "has distribution categorical_w_"),
    "grid_log_uniform": ("lr: {distribution: log_uniform_values, min: 0.01, max: 0.1}", "grid search takes"),
}  # fmt: skip


def malformed_text(case: str) -> str:
    method = "grid" if case.startswith("grid_") else "random\nrun_cap: 2"
    return f"method: {method}\nparameters:\n  {MALFORMED[case][0]}\n"


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_distribution_is_one_line_and_exit_2(tmp_path, capsys, case):
    path = tmp_path / "s.yaml"
    path.write_text(malformed_text(case))
    code = run_sweep.main([str(path), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and MALFORMED[case][1] in err, err
    assert "parameter" in err and not (tmp_path / "runs").exists()


@pytest.mark.integration
def test_the_engine_refuses_every_malformed_distribution():
    found = run_engine({case: yaml.safe_load(malformed_text(case)) for case in MALFORMED})
    accepted = [case for case, r in found.items() if r["valid"]]
    assert accepted == []


def test_a_malformed_distribution_stops_wandb_mode_before_the_server(tmp_path, capsys, monkeypatch):
    import wandb

    created = []
    monkeypatch.setattr(wandb, "sweep", lambda **kw: created.append(kw) or "abc")
    path = tmp_path / "s.yaml"
    path.write_text("method: bayes\nmetric: {name: plain/train_error}\nparameters:\n  lr: {min: 1e-3, max: 0.1}\n")
    assert run_sweep.main([str(path), "--wandb"]) == 2 and created == []
    assert "got the string '1e-3'" in capsys.readouterr().err


# -- values as the run receives them --------------------------------------------------------------------------------


def test_a_whole_number_float_for_an_integer_field_passes_here_and_in_the_run():
    spec = {"name": "f", "method": "grid", "parameters": {"preset": {"value": "demo"}, "depth": {"values": [20.0]}}}
    (run,) = resolve_runs(spec)
    assert "--depth=20.0" in run.args, "what a W&B agent passes"
    assert run.config.depth == 20 and config_from_dict(parse_cli(run.args)) == run.config


def test_a_fractional_float_for_an_integer_field_fails_here_as_in_the_run():
    spec = {"name": "f", "method": "grid", "parameters": {"preset": {"value": "demo"}, "depth": {"values": [20.5]}}}
    with pytest.raises(SweepError, match=r"depth must be an integer, got '20.5'"):
        resolve_runs(spec)
    with pytest.raises(ConfigError, match=r"depth must be an integer, got '20.5'"):
        config_from_dict(parse_cli(["--preset=demo", "--depth=20.5"]))


def test_three_engine_trials_of_one_value_are_one_run_here():
    spec, _ = GRID["20_20.0_and_'20'_are_three_values"]
    assert len(expand({"name": "i", **spec})) == 3, "the engine runs three trials"
    (run,) = resolve_runs({"name": "i", **spec})
    assert run.config.depth == 20, "...of one run: its claim keeps two agents from training it at once"


# -- every sweep file -----------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_the_engine_accepts_every_sweep_file_and_makes_our_points():
    specs = {p.stem: load_sweep(p) for p in SWEEP_FILES}
    found = run_engine(specs, n=3)
    for name, spec in specs.items():
        assert found[name]["valid"], (name, found[name])
        if spec["method"] == "grid":
            assert keyed(found[name]["points"]) == keyed(expand(spec)), name
