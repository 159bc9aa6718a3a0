"""The run config: one typed, validated dataclass whose field names are the CLI flags, sweep keys and W&B keys.

Resolution order: dataclass defaults, then the preset's recipe, then the user's overrides. A preset is named by
``preset`` (or inferred from ``dataset``). Every field can be overridden. Validation happens on construction and
raises ``ConfigError`` with one sentence that names the field and the allowed values.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from experiments.sources import CIFAR_TRAIN_SIZE
from models.options import resolve_shortcut, validate_depth, validate_shortcut, validate_stride_in

RunArch = Literal["plain", "resnet", "pair"]
Dataset = Literal["cifar10", "imagenet", "synthetic"]
Schedule = Literal["multistep", "plateau"]
Toggle = Literal["auto", "on", "off"]
ResponseStat = Literal["all", "channel"]
ResponseBN = Literal["eval", "batch"]
WandbMode = Literal["offline", "online", "disabled"]
Precision = Literal["auto", "32-true", "bf16-mixed", "16-mixed"]
CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
DecodeDevice = Literal["cpu", "gpu"]

PAIR_MEMBERS = ("plain", "resnet")


class ConfigError(ValueError):
    """A bad run config: the message is one sentence naming the field and what is allowed."""


def family_of(dataset: str | None) -> str:
    """The network family a dataset trains: ImageNet's, or the CIFAR 6n+2 one (cifar10 and synthetic)."""
    return "imagenet" if dataset == "imagenet" else "cifar10"


CIFAR10_PAPER: dict[str, Any] = dict(
    dataset="cifar10",
    max_steps=64_000,  # Sec. 4.2: lr / 10 at 32k and 48k, stop at 64k (~164 epochs of 50k images)
    batch_size=128,
    lr=0.1,
    lr_schedule="multistep",
    lr_milestones=(0.5, 0.75),  # fractions of max_steps: 32k and 48k of 64k, scaled with a longer run
    val_size=0,  # the reported test errors are of nets trained on all 50k; --val_size 5000 is the 45k/5k split
    eval_every=2_000,
    log_every=100,
    checkpoint_every=2_000,
    precision="32-true",  # the paper trained in fp32; bf16 is --precision bf16-mixed
)
"""The paper's CIFAR-10 recipe: the ``cifar10-paper`` preset, and the dataclass default of each field it sets."""


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; ``dataclasses.asdict`` of it is the run's config.json."""

    # -- the network (models.build_model) --
    arch: RunArch = "resnet"  # "pair" trains plain and resnet side by side on identical mini-batches
    depth: int = 20  # CIFAR-style families take 6n+2; imagenet takes 18/34/50/101/152
    dataset: Dataset = CIFAR10_PAPER["dataset"]  # synthetic uses the CIFAR family of networks
    shortcut: str | None = None  # A/B/C; None = paper default (A for CIFAR and ImageNet 18/34, B for 50+)
    stride_in: str = "1x1"  # where a downsampling bottleneck puts its stride: paper "1x1", torchvision "3x3"
    width: int | None = None  # first-stage width; None = 16 (CIFAR) or 64 (ImageNet)
    zero_init_residual: bool = False  # zero the last BN of each residual branch (not in the paper)
    preset: str | None = None  # recipe to start from; None = the dataset's paper recipe (demo for synthetic)
    seed: int = 0  # model init, data split, shuffling and augmentation all derive from it

    # -- optimisation: SGD with momentum, counted in iterations as in the paper (defaults: CIFAR10_PAPER) --
    max_steps: int = CIFAR10_PAPER["max_steps"]
    batch_size: int = CIFAR10_PAPER["batch_size"]  # global batch (split across devices under DDP)
    lr: float = CIFAR10_PAPER["lr"]
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: Schedule = CIFAR10_PAPER["lr_schedule"]  # multistep (CIFAR) or divide-on-plateau (ImageNet)
    lr_milestones: tuple[float, ...] = CIFAR10_PAPER["lr_milestones"]  # fractions of max_steps
    lr_gamma: float = 0.1
    plateau_patience: int = 3  # evaluations without improvement before the lr is divided
    plateau_threshold: float = 0.1  # improvement (error points) that counts as progress
    warmup: Toggle = "auto"  # auto = on for CIFAR ResNets of depth >= 110, as in the paper
    warmup_lr: float = 0.01
    warmup_until_error: float = 80.0  # training error (%) under which warm-up ends

    # -- evaluation, logging, checkpoints (iterations) --
    eval_every: int = CIFAR10_PAPER["eval_every"]
    log_every: int = CIFAR10_PAPER["log_every"]
    checkpoint_every: int = CIFAR10_PAPER["checkpoint_every"]
    response_images: int = 500  # fixed test images used for the layer-response probe (0 = off)
    response_stat: ResponseStat = "all"  # std over all elements, or mean of per-channel stds
    response_bn: ResponseBN = "eval"  # BN running statistics (eval) or the probe batch's statistics

    # -- data --
    data_dir: str = "data"
    download: bool = False  # allow torchvision to download CIFAR-10 into data_dir
    data_verify: bool = True  # check CIFAR-10 files against their published MD5 sums
    val_size: int = CIFAR10_PAPER["val_size"]  # training images held out for validation (0 = train on all)
    image_size: int | None = None  # synthetic only; None = 32
    num_classes: int | None = None  # None = 10 (CIFAR, synthetic) or 1000 (ImageNet)
    train_size: int | None = None  # synthetic only; None = 10,000
    test_size: int | None = None  # synthetic only; None = 2,000
    num_workers: int = 8  # ImageNet DataLoader workers (CIFAR and synthetic live in device memory)
    test_crops: int = 10  # ImageNet final test: 1 (centre crop) or 10 (10-crop, Tables 2-3)

    # -- hardware --
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: Precision = CIFAR10_PAPER["precision"]  # auto = bf16-mixed on GPU, 32-true on CPU (the demo's)
    channels_last: Toggle = "auto"  # auto = on with 16-bit precision on GPU only (see uses_channels_last)
    compile: CompileMode = "off"  # torch.compile mode; reduce-overhead adds CUDA graphs (see README, Speed)
    fuse: Toggle = "off"  # compute a pair's two networks as one grouped network; auto = where the recipe allows
    decode: DecodeDevice = "cpu"  # ImageNet JPEG decoding: PIL in DataLoader workers, or nvjpeg on the GPU

    # -- output --
    out: str | None = None  # run directory (for arch=pair: the folder holding both runs)
    runs_dir: str = "runs"
    sweep: str = "adhoc"  # runs go to <runs_dir>/<sweep>/<run name> unless out is given
    wandb: WandbMode = "offline"
    wandb_project: str = "degradation"
    wandb_entity: str | None = None
    progress: Toggle = "auto"  # progress bar: auto = when attached to a terminal

    def __post_init__(self) -> None:
        _check(self)

    # -- derived ---------------------------------------------------------------------------------------------------

    @property
    def family(self) -> str:
        """The network family: CIFAR 6n+2 for cifar10 and synthetic data, the ImageNet family otherwise."""
        return family_of(self.dataset)

    @property
    def resolved_num_classes(self) -> int:
        return self.num_classes or (1000 if self.dataset == "imagenet" else 10)

    @property
    def warmup_enabled(self) -> bool:
        if self.warmup == "auto":
            return self.arch != "plain" and self.family == "cifar10" and self.depth >= 110
        return self.warmup == "on"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def members(self) -> list[RunConfig]:
        """The single-network runs this config trains (shortcut resolved): itself, or plain and resnet for a pair."""
        archs = PAIR_MEMBERS if self.arch == "pair" else (self.arch,)
        return [
            self.replace(arch=a, shortcut=resolve_shortcut(a, self.depth, self.family, self.shortcut)) for a in archs
        ]


def training_precision(cfg: RunConfig, on_gpu: bool) -> str:
    """The Lightning precision a run trains in: as set, and for ``auto`` bf16-mixed on GPU, 32-true on CPU.

    The paper presets set 32-true: the paper trained in fp32, and on an H100 the fp32 reference pipeline also
    outran the bf16 + channels_last default at CIFAR ResNet-20 and -110 (benchmarks/results/h100.json).
    ``auto`` is the demo preset's.
    """
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16-mixed" if on_gpu else "32-true"


def uses_channels_last(cfg: RunConfig, on_gpu: bool) -> bool:
    """Whether a run's tensors use the channels_last memory format: as set, and for ``auto`` only on GPU in 16 bits.

    channels_last serves 16-bit tensor-core convolutions; fp32 runs (the paper presets) keep the default layout,
    since small CIFAR nets are bound by kernel launches, not layout (README, Speed). ``on`` still forces it.
    """
    if cfg.channels_last != "auto":
        return cfg.channels_last == "on"
    return on_gpu and training_precision(cfg, on_gpu) != "32-true"


def fusion_blocker(cfg: RunConfig) -> str | None:
    """Why this run's networks cannot be trained as one fused network (one clause), or None when they can.

    Fused members share every optimizer step, so they must follow the same learning rate at every step:
    the lr may not depend on a member's own errors (plateau, warm-up), and the plain member must have no
    counterpart for projection-shortcut weights.
    """
    if cfg.arch != "pair":
        return "fusion computes a pair's two networks as one, so it needs arch 'pair'"
    if cfg.lr_schedule == "plateau":
        return "each member divides its lr on its own validation plateaus, which one fused lr cannot follow"
    members = cfg.members()
    if any(m.warmup_enabled for m in members):
        return "the ResNet's warm-up ends on its own training error, so the members' lr would differ"
    resnet = members[PAIR_MEMBERS.index("resnet")]
    if resnet.shortcut != "A":
        return f"option {resnet.shortcut} has projection weights the plain member lacks (option A fuses)"
    return None


def fuses(cfg: RunConfig) -> bool:
    """Whether the run trains its members as one fused network; ``fuse`` on where it cannot is a ConfigError.

    Checked when a run starts rather than on construction, because a pair's member configs inherit ``fuse``.
    """
    if cfg.fuse == "off":
        return False
    blocker = fusion_blocker(cfg)
    if blocker and cfg.fuse == "on":
        raise ConfigError(f"fuse 'on' is not possible for this run: {blocker}; use --fuse auto or off")
    return blocker is None


# -- presets: the paper's recipes -----------------------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    "cifar10-paper": CIFAR10_PAPER,
    "imagenet-paper": dict(
        dataset="imagenet",
        max_steps=600_000,
        batch_size=256,
        lr=0.1,
        lr_schedule="plateau",
        plateau_patience=3,
        eval_every=5_000,
        log_every=100,
        checkpoint_every=5_000,
        val_size=0,
        precision="32-true",  # the paper trained in fp32
    ),
    "demo": dict(
        dataset="synthetic",
        width=8,
        image_size=16,
        train_size=10_000,
        test_size=2_000,
        max_steps=1_000,
        batch_size=128,
        lr=0.1,
        lr_schedule="multistep",
        lr_milestones=(0.5, 0.75),
        val_size=0,
        eval_every=250,
        log_every=25,
        checkpoint_every=250,
        response_images=256,
        precision="auto",  # bf16 on GPU: the demo shows degradation, it reproduces no number
    ),
}
DEFAULT_IMAGENET_DEPTH = 34  # the paper's headline comparison; the dataclass default (20) is a CIFAR depth
DEFAULT_PRESET = {"cifar10": "cifar10-paper", "imagenet": "imagenet-paper", "synthetic": "demo"}


def _choices(values: Sequence[Any]) -> str:
    return ", ".join(repr(v) for v in values)


@functools.cache
def _literal_fields() -> dict[str, tuple[Any, ...]]:
    """Fields typed as Literal, with their allowed values."""
    hints = typing.get_type_hints(RunConfig)
    return {n: typing.get_args(h) for n, h in hints.items() if typing.get_origin(h) is Literal}


def _check(cfg: RunConfig) -> None:
    """Validate a config; each failure is one sentence naming the field and the allowed values."""
    for name, allowed in _literal_fields().items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(f"{name} must be one of {_choices(allowed)}, got {getattr(cfg, name)!r}")
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise ConfigError(f"preset must be one of {_choices(list(PRESETS))}, got {cfg.preset!r}")
    try:
        validate_depth(cfg.family, cfg.depth)
        validate_shortcut(cfg.shortcut)
        validate_stride_in(cfg.stride_in, cfg.family, cfg.depth)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    positive = ["max_steps", "batch_size", "eval_every", "log_every", "checkpoint_every", "devices", "num_nodes"]
    positive += [
        n for n in ("width", "image_size", "num_classes", "train_size", "test_size") if getattr(cfg, n) is not None
    ]
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    for name in ("lr", "warmup_lr"):
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"{name} must be a positive number, got {getattr(cfg, name)!r}")
    for name in ("momentum", "weight_decay", "val_size", "response_images", "num_workers", "seed", "plateau_patience"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be zero or positive, got {getattr(cfg, name)!r}")
    if not 0 < cfg.lr_gamma <= 1:
        raise ConfigError(f"lr_gamma must be in (0, 1], got {cfg.lr_gamma!r}")
    if any(not 0 < m < 1 for m in cfg.lr_milestones) or list(cfg.lr_milestones) != sorted(cfg.lr_milestones):
        raise ConfigError(
            "lr_milestones must be increasing fractions of max_steps in (0, 1) such as 0.5,0.75, "
            f"got {cfg.lr_milestones!r}"
        )
    if cfg.test_crops not in (1, 10):
        raise ConfigError(f"test_crops must be one of 1, 10, got {cfg.test_crops!r}")
    if cfg.image_size is not None and cfg.dataset != "synthetic":
        raise ConfigError(f"image_size applies only to dataset 'synthetic' ({cfg.dataset} has a fixed size)")
    if cfg.image_size is not None and cfg.image_size < 8:
        raise ConfigError(f"image_size must be at least 8 (three stages halve it twice), got {cfg.image_size}")
    if cfg.dataset == "synthetic" and cfg.num_classes is not None and cfg.num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {cfg.num_classes}")
    if cfg.dataset == "cifar10" and cfg.num_classes not in (None, 10):
        raise ConfigError(f"num_classes must be 10 for cifar10, got {cfg.num_classes}")
    if cfg.dataset == "cifar10" and cfg.val_size >= CIFAR_TRAIN_SIZE:
        raise ConfigError(f"val_size must be below CIFAR-10's {CIFAR_TRAIN_SIZE} training images, got {cfg.val_size}")
    if cfg.lr_schedule == "plateau" and cfg.dataset != "imagenet" and cfg.val_size == 0:
        raise ConfigError(
            "lr_schedule 'plateau' divides the lr on validation error, and with val_size 0 there is no validation "
            "split (it would choose the schedule on the test set): set --val_size, e.g. 5000"
        )
    if cfg.batch_size % (cfg.devices * cfg.num_nodes):
        raise ConfigError(
            f"batch_size ({cfg.batch_size}) must divide evenly over devices x num_nodes ({cfg.devices * cfg.num_nodes})"
        )
    if cfg.decode != "cpu" and cfg.dataset != "imagenet":
        raise ConfigError(
            f"decode applies only to dataset 'imagenet' ({cfg.dataset} images live in device memory already)"
        )
    if cfg.wandb_project.strip() == "":
        raise ConfigError("wandb_project must not be empty")
    if cfg.sweep.strip() == "" or "/" in cfg.sweep:
        raise ConfigError(f"sweep must be a non-empty folder name without '/', got {cfg.sweep!r}")


# -- construction from untyped input (CLI, sweeps, JSON) --------------------------------------------------------------

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
        try:
            return int(str(raw).strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
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
        raise ConfigError(f"preset must be one of {_choices(list(PRESETS))}, got {preset!r}")
    merged = {**PRESETS[preset], **overrides, "preset": preset}
    if "wandb" not in merged and os.environ.get("WANDB_SWEEP_ID"):
        merged["wandb"] = "online"  # a trial started by a W&B agent reports to its sweep
    if "depth" not in merged and merged.get("dataset") == "imagenet":
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


def load_config_json(path: str | Path) -> RunConfig:
    """Read a config.json written by a run back into a RunConfig."""
    return config_from_dict(json.loads(Path(path).read_text()))


# -- naming and placement ------------------------------------------------------------------------------------------

IDENTITY_EXCLUDED = frozenset(
    {"out", "runs_dir", "sweep", "wandb", "wandb_project", "wandb_entity", "progress", "accelerator", "devices",
     "num_nodes", "num_workers", "data_dir", "download", "data_verify", "compile", "fuse", "decode", "arch"}
)  # fmt: skip


def run_name(cfg: RunConfig) -> str:
    """A readable, unique name from the resolved config: ``<arch>-<depth>[-<shortcut>]-s<seed>-<hash>``.

    The hash covers every field that changes what is trained, so two different configs never share a run
    directory and the same config always maps to the same one (this is how sweeps skip finished runs).
    The plain net's shortcut resolves to None, so a sweep over arch x shortcut names one plain run, not three.
    """
    resolved = cfg.to_dict()
    resolved["shortcut"] = (
        None if cfg.arch == "pair" else resolve_shortcut(cfg.arch, cfg.depth, cfg.family, cfg.shortcut)
    )
    identity = {k: v for k, v in sorted(resolved.items()) if k not in IDENTITY_EXCLUDED}
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    parts = [cfg.arch, str(cfg.depth)]
    if resolved["shortcut"]:
        parts.append(resolved["shortcut"])
    parts.append(f"s{cfg.seed}")
    parts.append(digest)
    return "-".join(parts)


def run_dirs(cfg: RunConfig) -> list[Path]:
    """The run directory of each member: ``out`` itself, ``out/<member>`` for a pair, or the sweep folder."""
    members = cfg.members()
    if cfg.out is not None:
        if cfg.arch != "pair":
            return [Path(cfg.out)]
        return [Path(cfg.out) / run_name(m) for m in members]
    return [Path(cfg.runs_dir) / cfg.sweep / run_name(m) for m in members]


def describe_fields() -> str:
    """Help text for ``--help``: every field with its default, the presets that set it otherwise, and its choices."""
    lines = []
    choices = _literal_fields()
    for f in fields(RunConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        other = [f"{p} {r[f.name]!r}" for p, r in PRESETS.items() if r.get(f.name, default) != default]
        other_text = f" ({', '.join(other)})" if other else ""
        allowed = f"  one of {_choices(choices[f.name])}" if f.name in choices else ""
        lines.append(f"  --{f.name:<20} default {default!r}{other_text}{allowed}")
    lines.append(
        f"  presets: {_choices(list(PRESETS))}; a default is the cifar10-paper recipe's, other presets' values in"
        " brackets (README, experiments/config.py)"
    )
    return "\n".join(lines)
