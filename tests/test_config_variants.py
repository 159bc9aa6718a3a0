"""Config of the new datasets, archs and stem: defaults and presets, checks, and run names that stay as they were."""

from __future__ import annotations

import re

import pytest

from experiments.config import ConfigError, config_from_dict, run_name

OLD_DEMO = {"max_steps": 1000, "eval_every": 250, "checkpoint_every": 250}
"""The demo preset's schedule when these names were computed (issue 14 made it 600 steps)."""
BEFORE_STEM = {
    "resnet-20-A-s0-8530f286": {"preset": "demo", "arch": "resnet", "depth": 20, **OLD_DEMO},
    "plain-56-s0-be031e4b": {"arch": "plain", "depth": 56},
    "resnet-34-A-s0-fbaf428d": {"dataset": "imagenet", "arch": "resnet", "depth": 34},
    "plain-18-s0-c513cb21": {"dataset": "imagenet", "arch": "plain", "depth": 18, "width": 8, "num_classes": 2},
    "pair-8-s0-dc178886": {"preset": "demo", "arch": "pair", "depth": 8, **OLD_DEMO},
    "resnet-8-A-s0-1dcc92ff": {"dataset": "synthetic", "depth": 8, "image_size": 8, **OLD_DEMO},
}
"""Run names computed before the ``stem`` field existed: a stored run must keep its folder."""


@pytest.mark.parametrize("name", BEFORE_STEM)
def test_runs_stored_before_the_stem_field_keep_their_names(name):
    assert run_name(config_from_dict(BEFORE_STEM[name])) == name


def test_the_stem_enters_a_name_only_where_it_is_not_the_familys_own():
    imagenet = {"dataset": "imagenet", "arch": "resnet", "depth": 34}
    assert run_name(config_from_dict({**imagenet, "stem": "7x7"})) == "resnet-34-A-s0-fbaf428d"
    assert run_name(config_from_dict({**imagenet, "stem": "3x3"})) != "resnet-34-A-s0-fbaf428d"
    cifar = {"arch": "plain", "depth": 56}
    assert run_name(config_from_dict({**cifar, "stem": "3x3"})) == "plain-56-s0-be031e4b"
    small = {"dataset": "synthetic-imagenet", "depth": 18}
    assert run_name(config_from_dict(small)) == run_name(config_from_dict({**small, "stem": "3x3"}))


@pytest.mark.parametrize(
    ("dataset", "preset", "depth", "classes", "family"),
    [
        ("cifar100", "cifar100-paper", 20, 100, "cifar10"),
        ("folder", "folder", 34, 1000, "imagenet"),
        ("synthetic-imagenet", "demo34", 34, 10, "imagenet"),
    ],
)
def test_each_new_dataset_has_its_preset_family_and_default_depth(dataset, preset, depth, classes, family):
    cfg = config_from_dict({"dataset": dataset, "data_dir": "/nowhere"})
    assert (cfg.preset, cfg.depth, cfg.resolved_num_classes, cfg.family) == (preset, depth, classes, family)


def test_a_preact_run_is_named_apart_from_the_original_and_warms_up_like_it():
    resnet, preact = (config_from_dict({"arch": a, "depth": 110}) for a in ("resnet", "preact"))
    assert run_name(resnet) != run_name(preact) and run_name(preact).startswith("preact-110-A-s0-")
    assert resnet.warmup_enabled and preact.warmup_enabled
    assert config_from_dict({"arch": "preact", "depth": 164}).members()[0].shortcut == "B"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"arch": "preact", "zero_init_residual": True}, "a pre-activation unit has none"),
        ({"dataset": "cifar100", "image_size": 16}, "image_size applies only to dataset 'synthetic', "),
        ({"dataset": "cifar100", "val_size": 50_000}, "val_size must be below cifar100's 50000 training images"),
        ({"dataset": "synthetic", "decode": "gpu"}, "decode applies only to dataset 'imagenet' or 'folder'"),
        (
            {"dataset": "folder", "depth": 21},
            "depth must be 6n+2 or 9n+2 (CIFAR-family nets, such as 20, 32, 44, 56, "
            "110, 1202) or one of 18, 34, 50, 101, 152 (ImageNet-family nets) for folder, got 21",
        ),
        ({"dataset": "synthetic", "depth": 18}, "depth must be 6n+2 for synthetic (n >= 1; the paper's depths are "),
        (
            {"dataset": "folder", "depth": 18, "net_family": "cifar10"},
            "depth must be 6n+2 for folder with net_family 'cifar10' (n >= 1",
        ),
        (
            {"dataset": "synthetic-imagenet", "depth": 20},
            "depth must be one of 18, 34, 50, 101, 152 for "
            "synthetic-imagenet, got 20; dataset 'synthetic' trains the other family, which has it",
        ),
        (
            {"dataset": "cifar10", "net_family": "imagenet"},
            "net_family applies only to dataset 'folder' (cifar10 trains the cifar10 family), got 'imagenet'",
        ),
        (
            {"dataset": "imagenet", "augment": "cifar"},
            "augment applies only to dataset 'folder' (imagenet is augmented as imagenet), got 'cifar'",
        ),
        ({"dataset": "folder", "image_size": 16, "decode": "gpu"}, "decode 'gpu' applies to augment 'imagenet'; "),
        ({"dataset": "imagenet", "stem": "5x5"}, "stem must be one of '7x7', '3x3', None, got '5x5'"),
    ],
)
def test_bad_values_of_the_new_fields_fail_in_one_sentence(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(values)


def test_a_depth_neither_family_has_names_no_other_dataset():
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"dataset": "synthetic", "depth": 10})
    assert str(caught.value).endswith("got 10"), "synthetic-imagenet has no depth 10 either"


def test_a_folder_run_takes_the_decode_paths_and_the_plateau_schedule_of_imagenet():
    cfg = config_from_dict({"dataset": "folder", "decode": "gpu", "lr_schedule": "plateau", "image_size": 64})
    assert cfg.decode == "gpu" and cfg.input_shape == (3, 64, 64) and cfg.resolved_stem == "3x3"
    assert config_from_dict({"dataset": "folder", "image_size": 160}).resolved_stem == "7x7"


PINNED_NAMES = {
    "demo/plain-8-s0-5fa10fce": {"preset": "demo", "sweep": "demo", "arch": "plain", "depth": 8},
    "demo/plain-20-s0-46ee66d1": {"preset": "demo", "sweep": "demo", "arch": "plain", "depth": 20},
    "demo/plain-44-s0-cd7cceef": {"preset": "demo", "sweep": "demo", "arch": "plain", "depth": 44},
    "demo/resnet-8-A-s0-bc80ca4b": {"preset": "demo", "sweep": "demo", "arch": "resnet", "depth": 8},
    "demo/resnet-20-A-s0-27e46779": {"preset": "demo", "sweep": "demo", "arch": "resnet", "depth": 20},
    "demo/resnet-44-A-s0-bebab47d": {"preset": "demo", "sweep": "demo", "arch": "resnet", "depth": 44},
    "fig6/plain-56-s0-be031e4b": {"sweep": "fig6", "arch": "plain", "depth": 56},
    "fig6/resnet-56-A-s0-6a1fab9d": {"sweep": "fig6", "arch": "resnet", "depth": 56},
    "table3/resnet-34-C-s0-3ef05155": {"sweep": "table3", "dataset": "imagenet", "arch": "resnet", "depth": 34,
                                       "shortcut": "C"},
}  # fmt: skip
"""Names computed before the default rule (identity.ALWAYS_NAMED): no field added later may rename these runs."""


@pytest.mark.parametrize("name", PINNED_NAMES)
def test_the_demo_fig6_and_imagenet_runs_keep_their_names_whatever_fields_are_added(name):
    sweep, run = name.split("/")
    cfg = config_from_dict(PINNED_NAMES[name])
    assert cfg.sweep == sweep and run_name(cfg) == run


def test_a_field_outside_the_named_set_enters_a_name_only_off_its_default():
    from experiments.config.identity import ALWAYS_NAMED, IDENTITY_EXCLUDED, SCHEMA_DEFAULTS, named_fields

    resolved = config_from_dict({"arch": "plain", "depth": 20}).to_dict()
    newer = {k for k in SCHEMA_DEFAULTS if k not in ALWAYS_NAMED | IDENTITY_EXCLUDED | {"stem"}}
    core = {k: v for k, v in resolved.items() if k not in newer}
    assert named_fields(resolved) == named_fields(core), "fields at their defaults change nothing"
    assert named_fields({**resolved, "added_later": 1}) != named_fields(resolved), "an unknown field counts"
    for field in newer:
        assert named_fields({**resolved, field: "changed"})[field] == "changed", field
