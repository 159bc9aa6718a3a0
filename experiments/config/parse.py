"""A run config from untyped input: CLI flags, sweep parameters, a run's config.json; and the ``--help`` text."""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import math
import os
import tokenize
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from experiments.config import schema
from experiments.config.checks import ConfigError, literal_fields
from experiments.config.presets import DEFAULT_IMAGENET_DEPTH, DEFAULT_PRESET, PRESETS
from experiments.config.schema import RunConfig, family_of
from models.options import allowed

FIELD_NAMES = tuple(f.name for f in fields(RunConfig))


def _coerce(name: str, raw: Any) -> Any:
    """Turn a CLI / sweep value into the field's type, or raise ConfigError naming the field."""
    hint = typing.get_type_hints(RunConfig)[name]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("none", "null", "")):
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return raw  # checked against the allowed values in _check
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    if hint is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{name} must be an integer, got {raw!r}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        text = str(raw).strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:  # a whole-number float arrives as text from a W&B agent ("--depth=20.0"): the same 20 as in a dict
            number = float(text)
        except ValueError:
            number = math.nan
        if number.is_integer():
            return int(number)
        raise ConfigError(f"{name} must be an integer, got {raw!r}")
    if hint is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{name} must be a number, got {raw!r}")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if origin is tuple:
        items = raw
        if isinstance(raw, str):
            text = raw.strip()
            try:
                items = (
                    ast.literal_eval(text) if text.startswith(("[", "(")) else [x for x in text.split(",") if x.strip()]
                )
            except (ValueError, SyntaxError):
                raise ConfigError(f"{name} must be a comma-separated list of numbers, got {raw!r}") from None
        if isinstance(items, int | float):
            items = [items]
        try:
            return tuple(float(x) for x in items)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a comma-separated list of numbers, got {raw!r}") from None
    if hint is str:
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise ConfigError(f"{name} must be a string, got {raw!r}")
        return str(raw)
    return raw


def config_from_dict(values: Mapping[str, Any]) -> RunConfig:
    """Resolve defaults, preset and overrides into a validated RunConfig; unknown keys are errors."""
    unknown = [k for k in values if k not in FIELD_NAMES]
    if unknown:
        raise ConfigError(f"unknown config field {unknown[0]!r}; run with --help to list the fields")
    overrides = {k: _coerce(k, v) for k, v in values.items()}
    preset = overrides.get("preset")
    if preset is None:
        preset = DEFAULT_PRESET.get(overrides.get("dataset", RunConfig.dataset))
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {allowed(list(PRESETS))}, got {preset!r}")
    merged = {**PRESETS[preset], **overrides, "preset": preset}
    if "wandb" not in merged and os.environ.get("WANDB_SWEEP_ID"):
        merged["wandb"] = "online"  # a trial started by a W&B agent reports to its sweep
    family = merged.get("net_family") or family_of(merged.get("dataset"))
    if "depth" not in merged and family == "imagenet":  # also folder, synthetic-imagenet
        merged["depth"] = DEFAULT_IMAGENET_DEPTH
    try:
        return RunConfig(**merged)
    except TypeError as e:
        raise ConfigError(str(e)) from None


def parse_cli(argv: Sequence[str]) -> dict[str, str]:
    """``--name=value`` / ``--name value`` pairs (the form W&B agents pass) into a dict of raw strings."""
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}; pass fields as --name=value (see --help)")
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigError(f"--{name} needs a value, as in --{name}=VALUE")
            value = argv[i + 1]
            i += 1
        values[name] = value
        i += 1
    return values


RECORDED_EXTRAS = ("run_name", "family")
"""Keys a run writes into its config.json beside the fields (derived, for readers of the store), dropped on reading."""


def load_config_json(path: str | Path) -> RunConfig:
    """Read a run's config.json back into the RunConfig it was trained with (same fields, same run name)."""
    values = json.loads(Path(path).read_text())
    return config_from_dict({k: v for k, v in values.items() if k not in RECORDED_EXTRAS})


@functools.cache
def field_help() -> dict[str, str]:
    """Each field's help: the comment beside it in ``schema.RunConfig``, the one place a field is described."""
    source = inspect.getsource(schema.RunConfig)
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("# ").strip()
    helps = {}
    for number, line in enumerate(source.splitlines(), start=1):
        name = line.strip().split(":", 1)[0]
        if name in FIELD_NAMES and number in comments:
            helps[name] = comments[number]
    return helps


def describe_fields(preset: str | None = None) -> str:
    """Help text for ``--help``: every field with what it means, its value (the preset's, if one is named: else the
    default, i.e. the cifar10-paper recipe's, with other presets' values in brackets), and its choices."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"preset must be one of {allowed(list(PRESETS))}, got {preset!r}")
    choices, helps = literal_fields(RunConfig), field_help()
    lines = []
    for f in fields(RunConfig):
        default = PRESETS[preset].get(f.name, f.default) if preset else f.default
        others = [f"{p} {r[f.name]!r}" for p, r in PRESETS.items() if r.get(f.name, default) != default]
        shown = f"{default!r}" + (f" ({', '.join(others)})" if others and preset is None else "")
        one_of = f"; one of {allowed(choices[f.name])}" if f.name in choices else ""
        lines.append(f"  --{f.name:<20} {shown:<28} {helps.get(f.name, '')}{one_of}")
    source = f"values of preset {preset!r}" if preset else "defaults: cifar10-paper's recipe; other presets in brackets"
    lines.append(f"  ({source}; presets: {allowed(list(PRESETS))}; README, One run)")
    return "\n".join(lines)
