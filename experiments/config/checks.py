"""Validation of a run config: each failure is one sentence that names the field and what is allowed."""

from __future__ import annotations

import functools
import typing
from typing import TYPE_CHECKING, Any, Literal

from experiments.config.presets import PRESETS
from experiments.data.catalog import (
    CIFAR100_CLASSES,
    CIFAR_TRAIN_SIZES,
    FOLDER_DATASETS,
    SYNTHETIC_DATASETS,
)
from models.options import (
    CIFAR_BOTTLENECK_DEPTHS,
    CIFAR_PAPER_DEPTHS,
    IMAGENET_DEPTHS,
    allowed,
    has_depth,
    validate_depth,
)

if TYPE_CHECKING:
    from experiments.config.schema import RunConfig


class ConfigError(ValueError):
    """A bad run config: the message is one sentence naming the field and what is allowed."""


@functools.cache
def literal_fields(schema: type) -> dict[str, tuple[Any, ...]]:
    """The schema's fields typed as Literal (or Literal | None), with their allowed values (None last)."""
    choices = {}
    for name, hint in typing.get_type_hints(schema).items():
        args = typing.get_args(hint)
        if typing.get_origin(hint) is Literal:
            choices[name] = args
        elif type(None) in args and any(typing.get_origin(a) is Literal for a in args):
            literal = next(a for a in args if typing.get_origin(a) is Literal)
            choices[name] = (*typing.get_args(literal), None)
    return choices


def check_network(cfg: RunConfig) -> None:
    """The network's options, by ``models.spec.NetworkSpec``'s rules (each member's, for a pair)."""
    try:
        for arch in cfg.member_archs:
            cfg.network_spec(arch, resolved=False)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check(cfg: RunConfig) -> None:
    """Validate a config; each failure is one sentence naming the field and the allowed values."""
    for name, choices in literal_fields(type(cfg)).items():
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"{name} must be one of {allowed(choices)}, got {getattr(cfg, name)!r}")
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise ConfigError(f"preset must be one of {allowed(list(PRESETS))}, got {cfg.preset!r}")
    _check_family(cfg)
    check_network(cfg)
    positive = ["max_steps", "batch_size", "eval_every", "log_every", "checkpoint_every", "devices", "num_nodes"]
    positive += [n for n in ("image_size", "train_size", "test_size") if getattr(cfg, n) is not None]
    for name in positive:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    for name in ("lr", "warmup_lr"):
        if not getattr(cfg, name) > 0:
            raise ConfigError(f"{name} must be a positive number, got {getattr(cfg, name)!r}")
    for name in ("momentum", "weight_decay", "val_size", "response_images", "num_workers", "seed", "plateau_patience"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be zero or positive, got {getattr(cfg, name)!r}")
    if cfg.grad_clip is not None and not (isinstance(cfg.grad_clip, int | float) and cfg.grad_clip > 0):
        raise ConfigError(f"grad_clip must be a positive number (or unset: no clipping), got {cfg.grad_clip!r}")
    if not 0 < cfg.lr_gamma <= 1:
        raise ConfigError(f"lr_gamma must be in (0, 1], got {cfg.lr_gamma!r}")
    if any(not 0 < m < 1 for m in cfg.lr_milestones) or list(cfg.lr_milestones) != sorted(cfg.lr_milestones):
        raise ConfigError(
            "lr_milestones must be increasing fractions of max_steps in (0, 1) such as 0.5,0.75, "
            f"got {cfg.lr_milestones!r}"
        )
    if cfg.test_crops not in (1, 10):
        raise ConfigError(f"test_crops must be one of 1, 10, got {cfg.test_crops!r}")
    if cfg.image_size is not None and cfg.dataset not in (*SYNTHETIC_DATASETS, "folder"):
        raise ConfigError(
            f"image_size applies only to dataset 'synthetic', 'synthetic-imagenet' or 'folder' ({cfg.dataset} has a "
            "fixed size)"
        )
    if cfg.image_size is not None and cfg.image_size < 8:
        raise ConfigError(f"image_size must be at least 8 (three stages halve it twice), got {cfg.image_size}")
    if cfg.dataset in SYNTHETIC_DATASETS and cfg.num_classes is not None and cfg.num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {cfg.num_classes}")
    for dataset, classes in (("cifar10", 10), ("cifar100", CIFAR100_CLASSES)):
        if cfg.dataset == dataset and cfg.num_classes not in (None, classes):
            raise ConfigError(f"num_classes must be {classes} for {dataset}, got {cfg.num_classes}")
    train_size = CIFAR_TRAIN_SIZES.get(cfg.dataset)
    if train_size is not None and cfg.val_size >= train_size:
        raise ConfigError(f"val_size must be below {cfg.dataset}'s {train_size} training images, got {cfg.val_size}")
    if cfg.dataset == "folder" and cfg.val_size:
        raise ConfigError("val_size applies to in-memory datasets; a folder dataset validates on its val/ folder")
    if cfg.lr_schedule == "plateau" and cfg.dataset not in FOLDER_DATASETS and cfg.val_size == 0:
        raise ConfigError(
            "lr_schedule 'plateau' divides the lr on validation error, and with val_size 0 there is no validation "
            "split (it would choose the schedule on the test set): set --val_size, e.g. 5000"
        )
    if cfg.batch_size % (cfg.devices * cfg.num_nodes):
        raise ConfigError(
            f"batch_size ({cfg.batch_size}) must divide evenly over devices x num_nodes ({cfg.devices * cfg.num_nodes})"
        )
    if cfg.decode != "cpu" and cfg.dataset not in FOLDER_DATASETS:
        raise ConfigError(
            f"decode applies only to dataset 'imagenet' or 'folder' ({cfg.dataset} images live in device memory "
            "already)"
        )
    if cfg.decode == "gpu" and cfg.dataset == "folder" and cfg.resolved_augment == "cifar":
        raise ConfigError(
            "decode 'gpu' applies to augment 'imagenet'; a folder augmented as CIFAR is decoded once at the start "
            "(use --decode cpu, or --augment imagenet)"
        )
    if cfg.wandb_project.strip() == "":
        raise ConfigError("wandb_project must not be empty")
    if cfg.sweep.strip() == "" or "/" in cfg.sweep:
        raise ConfigError(f"sweep must be a non-empty folder name without '/', got {cfg.sweep!r}")


OTHER_FAMILY = {"synthetic": "synthetic-imagenet", "synthetic-imagenet": "synthetic"}
"""The generated dataset that trains the other family, named where a depth fits only that one."""


def depth_error(cfg: RunConfig) -> str:
    """The depth error for ``cfg``, naming the dataset chosen (and ``net_family`` where set), and on a folder with
    no family chosen the depths of both families."""
    got = cfg.depth if isinstance(cfg.depth, int) else repr(cfg.depth)
    cifar, imagenet = allowed(CIFAR_PAPER_DEPTHS), allowed(IMAGENET_DEPTHS)
    if cfg.dataset == "folder" and cfg.net_family is None:
        return (
            f"depth must be 6n+2 or 9n+2 (CIFAR-family nets, such as {cifar}) or one of {imagenet} (ImageNet-family "
            f"nets) for folder, got {got}"
        )
    where = f"{cfg.dataset} with net_family {cfg.net_family!r}" if cfg.net_family else cfg.dataset
    other = "cifar10" if cfg.family == "imagenet" else "imagenet"
    hint = ""
    if cfg.dataset in OTHER_FAMILY and has_depth(other, cfg.depth):
        hint = f"; dataset {OTHER_FAMILY[cfg.dataset]!r} trains the other family, which has it"
    if cfg.family == "imagenet":
        return f"depth must be one of {imagenet} for {where}, got {got}{hint}"
    return (
        f"depth must be 6n+2 for {where} (n >= 1; the paper's depths are {cifar}), or 9n+2 for its bottleneck nets "
        f"(such as {allowed(CIFAR_BOTTLENECK_DEPTHS)}), got {got}{hint}"
    )


def _check_family(cfg: RunConfig) -> None:
    """``net_family`` only where the dataset offers a choice (a folder), ``augment`` likewise, and a depth the family
    has (``depth_error``)."""
    from experiments.config.schema import family_of, recipe_of

    fixed = family_of(cfg.dataset)
    if cfg.dataset != "folder" and cfg.net_family not in (None, fixed):
        raise ConfigError(
            f"net_family applies only to dataset 'folder' ({cfg.dataset} trains the {fixed} family), "
            f"got {cfg.net_family!r}"
        )
    recipe = recipe_of(cfg.dataset)
    if recipe is not None and cfg.augment not in (None, recipe):
        raise ConfigError(
            f"augment applies only to dataset 'folder' ({cfg.dataset} is augmented as {recipe}), got {cfg.augment!r}"
        )
    try:
        validate_depth(cfg.family, cfg.depth)
    except ValueError:
        raise ConfigError(depth_error(cfg)) from None
