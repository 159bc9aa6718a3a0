"""The run config: presets, overrides, validation messages, CLI parsing and run names."""

import dataclasses

import pytest
import torch

from experiments.config import (
    PRESETS,
    ConfigError,
    RunConfig,
    config_from_dict,
    parse_cli,
    run_dirs,
    run_name,
    uses_channels_last,
)
from experiments.data.catalog import CIFAR_TRAIN_SIZE
from experiments.data.sources import ImageArrays


def test_dataset_picks_its_paper_preset_and_overrides_win():
    cfg = config_from_dict({"arch": "plain", "depth": "56", "dataset": "cifar10"})
    assert cfg.preset == "cifar10-paper"
    assert (cfg.max_steps, cfg.batch_size, cfg.lr, cfg.val_size) == (64_000, 128, 0.1, 0)
    assert cfg.lr_milestones == (0.5, 0.75)
    cfg = config_from_dict({"dataset": "cifar10", "max_steps": "640", "lr": "0.05"})
    assert (cfg.max_steps, cfg.lr) == (640, 0.05)
    assert config_from_dict({"dataset": "imagenet"}).lr_schedule == "plateau"
    assert config_from_dict({"preset": "demo"}).dataset == "synthetic"


def test_the_dataclass_defaults_are_the_cifar10_paper_recipe_not_a_second_copy():
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    assert {name: defaults[name] for name in PRESETS["cifar10-paper"]} == PRESETS["cifar10-paper"]
    assert config_from_dict({}) == config_from_dict({"preset": "cifar10-paper"})


def test_cifar10_paper_trains_on_all_50k_images_and_val_size_5000_gives_the_45k_5k_split(monkeypatch):
    import experiments.data.datamodules as dm

    def fake_cifar10(*args, **kwargs) -> tuple[ImageArrays, ImageArrays]:
        def split(n: int) -> ImageArrays:
            return ImageArrays(torch.zeros(n, 3, 1, 1, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))

        return split(CIFAR_TRAIN_SIZE), split(10)

    monkeypatch.setattr(dm, "load_cifar10", fake_cifar10)
    paper = config_from_dict({"preset": "cifar10-paper"})
    data = dm.build_datamodule(paper)
    assert (data.train_size, data.eval_names) == (50_000, ["test"]), "reported numbers: all 50k, test error"
    assert paper.max_steps * paper.batch_size / data.train_size == pytest.approx(163.84)
    data = dm.build_datamodule(config_from_dict({"preset": "cifar10-paper", "val_size": "5000"}))
    assert (data.train_size, data.eval_names) == (45_000, ["val", "test"]), "the schedule study's split"


@pytest.mark.parametrize(
    ("values", "on_gpu", "precision", "channels_last"),
    [
        ({"preset": "cifar10-paper"}, True, "32-true", False),
        ({"preset": "cifar10-paper"}, False, "32-true", False),
        ({"preset": "imagenet-paper"}, True, "32-true", False),
        ({"preset": "imagenet-paper"}, False, "32-true", False),
        ({"preset": "demo"}, True, "bf16-mixed", True),
        ({"preset": "demo"}, False, "32-true", False),
        ({"preset": "cifar10-paper", "precision": "bf16-mixed"}, True, "bf16-mixed", True),
        ({"preset": "cifar10-paper", "channels_last": "on"}, True, "32-true", True),
    ],
)
def test_paper_presets_train_in_fp32_on_gpu_and_cpu_and_bf16_is_asked_for(
    monkeypatch, values, on_gpu, precision, channels_last
):
    from experiments.train import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: on_gpu)
    cfg = config_from_dict(values)
    assert resolve_precision(cfg) == precision
    assert uses_channels_last(cfg, on_gpu) is channels_last


def test_every_preset_names_only_real_fields():
    for name, recipe in PRESETS.items():
        assert set(recipe) <= set(RunConfig.__dataclass_fields__), name
        config_from_dict({"preset": name})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"preset": "fast"},
            "preset must be one of 'cifar10-paper', 'imagenet-paper', 'demo', 'cifar100-paper', 'folder', 'demo34', "
            "got 'fast'",
        ),
        ({"depth": 21}, "depth must be 6n+2 for cifar10"),
        ({"dataset": "imagenet", "depth": 20}, "depth must be one of 18, 34, 50, 101, 152 for imagenet, got 20"),
        ({"shortcut": "D"}, "shortcut must be one of 'A', 'B', 'C'"),
        ({"arch": "dense"}, "arch must be one of 'plain', 'resnet', 'pair', 'preact', got 'dense'"),
        ({"lr": "-0.1"}, "lr must be a positive number, got -0.1"),
        ({"batch_size": "lots"}, "batch_size must be an integer, got 'lots'"),
        ({"download": "maybe"}, "download must be true or false, got 'maybe'"),
        ({"depht": 20}, "unknown config field 'depht'"),
        ({"lr_milestones": "0.75,0.5"}, "lr_milestones must be increasing fractions"),
        ({"batch_size": 100, "devices": 3}, "batch_size (100) must divide evenly over devices x num_nodes (3)"),
        ({"dataset": "cifar10", "image_size": 16}, "image_size applies only to dataset 'synthetic'"),
    ],
)
def test_bad_values_fail_with_one_sentence_naming_the_field(values, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(values)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_accepts_the_forms_a_wandb_agent_passes():
    assert parse_cli(["--depth=56", "--arch", "plain", "--lr_milestones=[0.5, 0.75]"]) == {
        "depth": "56",
        "arch": "plain",
        "lr_milestones": "[0.5, 0.75]",
    }
    cfg = config_from_dict(parse_cli(["--lr_milestones=[0.5, 0.75]", "--width=None", "--download=False"]))
    assert cfg.lr_milestones == (0.5, 0.75) and cfg.width is None and cfg.download is False
    with pytest.raises(ConfigError, match="--depth needs a value"):
        parse_cli(["--depth"])
    with pytest.raises(ConfigError, match="unexpected argument 'plain'"):
        parse_cli(["plain"])


def test_run_name_is_stable_unique_and_ignores_where_output_goes():
    a = config_from_dict({"arch": "resnet", "depth": 56})
    assert run_name(a) == run_name(config_from_dict({"arch": "resnet", "depth": "56", "out": "x", "wandb": "disabled"}))
    assert run_name(a).startswith("resnet-56-A-s0-")
    assert run_name(a) != run_name(a.replace(seed=1)) != run_name(a.replace(lr=0.05))
    assert run_name(a) == run_name(a.replace(shortcut="A")), "the default shortcut resolves to A on CIFAR"


def test_plain_net_ignores_shortcut_so_a_sweep_trains_it_once():
    names = {run_name(config_from_dict({"arch": "plain", "depth": 20, "shortcut": s})) for s in ("A", "B", "C", None)}
    assert len(names) == 1 and next(iter(names)).startswith("plain-20-s0-")


def test_pair_has_two_members_named_like_their_single_runs(tmp_path):
    pair = config_from_dict({"arch": "pair", "depth": 56, "runs_dir": str(tmp_path), "sweep": "fig6"})
    plain, resnet = pair.members()
    assert (plain.arch, plain.shortcut, resnet.arch, resnet.shortcut) == ("plain", None, "resnet", "A")
    single = config_from_dict({"arch": "resnet", "depth": 56, "runs_dir": str(tmp_path), "sweep": "fig6"})
    assert run_dirs(pair)[1] == run_dirs(single)[0] == tmp_path / "fig6" / run_name(single)


def test_warmup_is_on_for_cifar_resnet_110_and_up_only():
    assert config_from_dict({"arch": "resnet", "depth": 110}).warmup_enabled
    assert not config_from_dict({"arch": "resnet", "depth": 56}).warmup_enabled
    assert not config_from_dict({"arch": "plain", "depth": 110}).warmup_enabled
    assert config_from_dict({"arch": "resnet", "depth": 20, "warmup": "on"}).warmup_enabled


def test_a_plateau_schedule_without_a_validation_split_is_refused_rather_than_run_on_the_test_set():
    with pytest.raises(ConfigError, match="with val_size 0 there is no validation split"):
        config_from_dict({"preset": "cifar10-paper", "lr_schedule": "plateau"})
    assert config_from_dict({"preset": "cifar10-paper", "lr_schedule": "plateau", "val_size": 5000}).val_size == 5000


def test_a_runs_config_json_reads_back_into_the_config_it_trained_with(tmp_path):
    import json

    from experiments.config import load_config_json

    cfg = config_from_dict({"preset": "demo", "arch": "pair", "depth": 20, "lr": 0.05}).members()[0]
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**cfg.to_dict(), "run_name": run_name(cfg), "family": cfg.family}))
    again = load_config_json(path)
    assert again == cfg and run_name(again) == run_name(cfg)


@pytest.mark.integration
def test_the_analysis_reads_stores_without_torch_or_lightning():
    from tests.helpers import REPO, run_cli

    code = "import analysis, sys; print(sorted(m for m in ('torch', 'pytorch_lightning') if m in sys.modules))"
    result = run_cli(["-c", code], cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr
