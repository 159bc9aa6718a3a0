"""A run's identity: its name (from every field that changes what is trained) and its folder in the store.

A field added to ``RunConfig`` enters a run's name only where the run sets it to something other than its schema
default, so adding a field never renames a stored run. The fields that existed when this rule was made
(``ALWAYS_NAMED``) enter as they always did, so the runs stored before it keep their names too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from experiments.config.schema import RunConfig, family_of, recipe_of
from models.options import default_stem, resolve_shortcut

IDENTITY_EXCLUDED = frozenset(
    {"out", "runs_dir", "sweep", "wandb", "wandb_project", "wandb_entity", "progress", "accelerator", "devices",
     "num_nodes", "num_workers", "data_dir", "download", "data_verify", "compile", "fuse", "decode", "arch"}
)  # fmt: skip

ALWAYS_NAMED = frozenset(
    {"depth", "dataset", "shortcut", "stride_in", "width", "zero_init_residual", "preset", "seed", "max_steps",
     "batch_size", "lr", "momentum", "weight_decay", "lr_schedule", "lr_milestones", "lr_gamma", "plateau_patience",
     "plateau_threshold", "warmup", "warmup_lr", "warmup_until_error", "eval_every", "log_every", "checkpoint_every",
     "response_images", "response_stat", "response_bn", "val_size", "image_size", "num_classes", "train_size",
     "test_size", "test_crops", "precision", "channels_last"}
)  # fmt: skip
"""The named fields of RunConfig before the default rule: they enter every name, default or not (do not extend)."""

SCHEMA_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


def named_fields(resolved: dict) -> dict:
    """The part of a resolved config that names a run: ``ALWAYS_NAMED`` as set, any other field only off its default."""
    return {
        k: v
        for k, v in sorted(resolved.items())
        if k not in IDENTITY_EXCLUDED and (k in ALWAYS_NAMED or k not in SCHEMA_DEFAULTS or v != SCHEMA_DEFAULTS[k])
    }


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
    # ``stem`` (added after runs were stored) enters the hash resolved, and only where it is not the family's paper
    # stem: runs stored before it existed keep their names, and --stem 7x7 on ImageNet names the run it always was.
    resolved.pop("stem", None)
    if cfg.resolved_stem != default_stem(cfg.family):
        resolved["stem"] = cfg.resolved_stem
    if cfg.dataset == "folder":  # which tree it trained on: its folder's name (data_dir itself may move)
        resolved["folder"] = Path(cfg.data_dir).resolve().name
        resolved["image_size"] = cfg.input_shape[-1]  # as set or read from the images: a run named as it trains
    # ``net_family`` and ``augment`` (added after runs were stored) enter resolved, and only where they are not what
    # the dataset trained before they existed: an unset and an explicit choice of the same thing name one run.
    resolved.pop("net_family", None)
    resolved.pop("augment", None)
    if cfg.family != family_of(cfg.dataset):
        resolved["net_family"] = cfg.family
    if cfg.resolved_augment != (recipe_of(cfg.dataset) or "imagenet"):
        resolved["augment"] = cfg.resolved_augment
    identity = named_fields(resolved)
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
