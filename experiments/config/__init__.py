"""The run config: schema, presets, validation, parsing, identity and hardware policy, one module each.

Everything a caller needs is importable from here (``from experiments.config import RunConfig, config_from_dict``);
the package loads no torch, so the analysis can read a store's configs without it.
"""

from experiments.config.checks import ConfigError
from experiments.config.identity import IDENTITY_EXCLUDED, run_dirs, run_name
from experiments.config.parse import FIELD_NAMES, config_from_dict, describe_fields, load_config_json, parse_cli
from experiments.config.policy import fuses, fusion_blocker, training_precision, uses_channels_last
from experiments.config.presets import CIFAR10_PAPER, DEFAULT_PRESET, PRESETS
from experiments.config.schema import (
    PAIR_MEMBERS,
    CompileMode,
    Dataset,
    DecodeDevice,
    Precision,
    ResponseBN,
    ResponseStat,
    RunArch,
    RunConfig,
    Schedule,
    Toggle,
    WandbMode,
    family_of,
)

__all__ = [
    "CIFAR10_PAPER",
    "DEFAULT_PRESET",
    "FIELD_NAMES",
    "IDENTITY_EXCLUDED",
    "PAIR_MEMBERS",
    "PRESETS",
    "CompileMode",
    "ConfigError",
    "Dataset",
    "DecodeDevice",
    "Precision",
    "ResponseBN",
    "ResponseStat",
    "RunArch",
    "RunConfig",
    "Schedule",
    "Toggle",
    "WandbMode",
    "config_from_dict",
    "describe_fields",
    "family_of",
    "fuses",
    "fusion_blocker",
    "load_config_json",
    "parse_cli",
    "run_dirs",
    "run_name",
    "training_precision",
    "uses_channels_last",
]
