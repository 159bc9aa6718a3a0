"""A folder of small images (digits-like: 8 px grayscale PNGs): the CIFAR-family nets, the crop taken from the images,
the CIFAR recipe with its flip switch, the folder held in memory, DataLoader workers per core, and names that stay."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.config import ConfigError, config_from_dict, load_config_json, run_name
from experiments.config.policy import data_workers
from experiments.data import datamodules
from experiments.data.augment import CIFAR_PAD, cifar_pad, cifar_views, pad_crop_flip, scale_crop_flip
from experiments.data.datamodules import ImageNetDataModule, InMemoryDataModule, build_datamodule
from experiments.errors import EXIT_BAD_INPUT
from experiments.train import main
from tests.test_folder import write_folder

DIGITS = ("zero", "one", "two")


def write_small_folder(root, side=8, per_class=4, seed=0):
    """train/ and val/ of 8 px grayscale PNGs (one JPEG per class in train/), each class a different stroke."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for split in ("train", "val"):
        for c, name in enumerate(DIGITS):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = (torch.rand(side, side, generator=g) * 60).to(torch.uint8)
                pixels[:, c * side // 3 : (c + 1) * side // 3] += 180
                image = Image.fromarray(pixels.numpy(), mode="L")
                if split == "train" and i == 0:
                    image.save(root / split / name / f"{i}.jpg", quality=95)
                else:
                    image.save(root / split / name / f"{i}.png")
    return root


def small_config(root, **overrides):
    values = {"dataset": "folder", "data_dir": str(root), "depth": 8, "batch_size": 4}
    return config_from_dict({**values, **overrides})


def cli_args(root, runs, *extra):
    return ["--dataset", "folder", "--data_dir", str(root), "--batch_size", "4", "--max_steps", "1",
            "--response_images", "4", "--no-wandb", "--runs_dir", str(runs), "--sweep", "small", *extra]  # fmt: skip


# -- the CIFAR family on a folder -------------------------------------------------------------------------------------


def test_a_depth_only_the_cifar_family_has_picks_it_and_net_family_chooses_at_50_and_152(tmp_path):
    root = write_small_folder(tmp_path / "digits")
    assert [small_config(root, depth=d).family for d in (8, 20, 56, 110)] == ["cifar10"] * 4
    assert [small_config(root, depth=d).family for d in (18, 34, 50, 152)] == ["imagenet"] * 4
    cifar50 = small_config(root, depth=50, net_family="cifar10")
    assert cifar50.family == "cifar10" and cifar50.members()[0].shortcut == "A", "50 = 6*8+2: basic blocks, option A"
    assert small_config(root, depth=50).members()[0].shortcut == "B", "ImageNet-50: bottlenecks, option B"
    assert run_name(cifar50) != run_name(small_config(root, depth=50))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"depth": 21}, "depth must be 6n+2 or 9n+2 (CIFAR-family nets, such as 20, 32, 44, 56, 110, 1202) or one of "
         "18, 34, 50, 101, 152 (ImageNet-family nets) for folder, got 21"),
        ({"depth": 34, "net_family": "cifar10"}, "depth must be 6n+2 for folder with net_family 'cifar10' (n >= 1; "),
    ],
)  # fmt: skip
def test_a_depth_error_names_the_folder_and_exits_2_writing_nothing(tmp_path, capsys, values, message):
    root = write_small_folder(tmp_path / "digits")
    extra = [x for k, v in values.items() for x in (f"--{k}", str(v))]
    assert main(cli_args(root, tmp_path / "runs", *extra)) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.integration
def test_a_cifar_depth_trains_a_step_on_a_folder_in_memory_and_records_what_it_chose(tmp_path):
    root = write_small_folder(tmp_path / "digits")
    runs = tmp_path / "runs"
    assert main(cli_args(root, runs, "--depth", "8", "--arch", "pair", "--flip", "false")) == 0
    folders = sorted((runs / "small").iterdir())
    assert [f.name.split("-s0-")[0] for f in folders] == ["plain-8", "resnet-8-A"]
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["step"] == 1 and summary["final_val_error"] is not None
        assert summary.get("final_test10crop_error") is None, "the CIFAR recipe has no 10-crop test"
        config = json.loads((folder / "config.json").read_text())
        chosen = {k: config[k] for k in ("family", "net_family", "augment", "flip", "image_size")}
        assert chosen == {"family": "cifar10", "net_family": "cifar10", "augment": "cifar", "flip": False,
                          "image_size": 8}  # fmt: skip
        assert load_config_json(folder / "config.json").members()[0].arch in ("plain", "resnet")
        state = torch.load(folder / "checkpoints" / "model.pt", weights_only=True)
        assert state["fc.weight"].shape == (3, 64), "three classes, the CIFAR family's 64 final filters"
        assert state["conv1.weight"].shape == (16, 3, 3, 3), "the CIFAR stem: 16 3x3 filters"


# -- image_size from the data -----------------------------------------------------------------------------------------


def test_the_crop_is_the_images_side_up_to_224(tmp_path):
    from PIL import Image

    assert small_config(write_small_folder(tmp_path / "digits")).input_shape == (3, 8, 8)
    mixed = write_folder(tmp_path / "mixed")  # 40x52, 46x48, 52x44 px: the median shorter side of the first images
    assert config_from_dict({"dataset": "folder", "data_dir": str(mixed)}).input_shape == (3, 40, 40)
    for split in ("train", "val"):
        (tmp_path / "large" / split / "a").mkdir(parents=True)
        Image.new("RGB", (300, 260)).save(tmp_path / "large" / split / "a" / "0.jpg")
    large = config_from_dict({"dataset": "folder", "data_dir": str(tmp_path / "large")})
    assert large.input_shape == (3, 224, 224) and large.resolved_augment == "imagenet" and large.family == "imagenet"


def test_a_crop_larger_than_the_images_is_refused_in_one_line(tmp_path, capsys):
    root = write_small_folder(tmp_path / "digits")
    assert main(cli_args(root, tmp_path / "runs", "--depth", "8", "--image_size", "16")) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == (
        f"error: image_size 16 is larger than the images of {root}/train (8 px on the shorter side); use "
        "--image_size 8 or less, or leave it unset to take 8"
    )
    assert not (tmp_path / "runs").exists()


# -- the CIFAR recipe and the flip switch -----------------------------------------------------------------------------


def _windows(padded: torch.Tensor, side: int) -> list[torch.Tensor]:
    span = padded.shape[-1] - side + 1
    return [padded[..., r : r + side, c : c + side] for r in range(span) for c in range(span)]


def test_pad_crop_flip_crops_the_zero_padded_image_and_flips_only_when_asked():
    x = torch.arange(64 * 3 * 8 * 8, dtype=torch.float32).view(64, 3, 8, 8)
    flipped = pad_crop_flip(x, torch.Generator().manual_seed(0))
    kept = pad_crop_flip(x, torch.Generator().manual_seed(0), flip=False)
    padded = torch.nn.functional.pad(x, (CIFAR_PAD,) * 4)
    mirrored = 0
    for i in range(len(x)):
        assert any(torch.equal(kept[i], w) for w in _windows(padded[i], 8)), "an unflipped window of the padding"
        same, mirror = torch.equal(flipped[i], kept[i]), torch.equal(flipped[i], kept[i].flip(-1))
        assert same or mirror, "flip on: the same crop, mirrored or not"
        mirrored += mirror
    assert 16 < mirrored < 48, "about half the images mirrored"


def test_the_workers_cifar_views_pad_crop_and_flip_only_when_asked():
    image = torch.arange(3 * 8 * 8, dtype=torch.uint8).view(3, 8, 8) * 3
    mean = (0.1, 0.2, 0.3)
    square = image.float() / 255 - torch.tensor(mean).view(3, 1, 1)
    assert [cifar_pad(s) for s in (8, 16, 24, 32)] == [1, 2, 3, CIFAR_PAD], "the paper's 4 px of 32, scaled"
    windows = _windows(torch.nn.functional.pad(square, (1,) * 4), 8)
    mirrors = [w.flip(-1) for w in windows]
    assert torch.allclose(cifar_views(8, mean)["val"](image), square)
    torch.manual_seed(0)
    no_flip = [cifar_views(8, mean, flip=False)["train"](image) for _ in range(40)]
    assert all(any(torch.allclose(v, w) for w in windows) for v in no_flip)
    assert not any(any(torch.allclose(v, w) for w in mirrors) for v in no_flip if not torch.allclose(v, v.flip(-1)))
    flip = [cifar_views(8, mean)["train"](image) for _ in range(40)]
    assert any(any(torch.allclose(v, w) for w in mirrors) for v in flip), "flip on: some views mirrored"


def test_the_imagenet_recipe_without_flip_mirrors_nothing():
    images = [torch.arange(3 * 20 * 24, dtype=torch.uint8).view(3, 20, 24)] * 32
    flipped = scale_crop_flip(images, torch.Generator().manual_seed(1), (20, 30), 16)
    kept = scale_crop_flip(images, torch.Generator().manual_seed(1), (20, 30), 16, flip=False)
    mirrored = [not torch.equal(a, b) and torch.equal(a, b.flip(-1)) for a, b in zip(flipped, kept, strict=True)]
    same = [torch.equal(a, b) for a, b in zip(flipped, kept, strict=True)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True)) and any(mirrored)


def test_the_recipe_follows_the_image_size_and_can_be_chosen(tmp_path):
    root = write_small_folder(tmp_path / "digits")
    assert small_config(root).resolved_augment == "cifar"
    assert small_config(root, augment="imagenet").resolved_augment == "imagenet"
    assert config_from_dict({"dataset": "folder", "image_size": 48}).resolved_augment == "imagenet"
    with pytest.raises(ConfigError, match=r"^augment must be one of 'cifar', 'imagenet', None, got 'mnist'$"):
        small_config(root, augment="mnist")


# -- in memory --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tree", ["digits", "mixed sizes"])
def test_a_folder_in_memory_holds_the_images_the_workers_decode(tmp_path, tree):
    root = write_small_folder(tmp_path / "d") if tree == "digits" else write_folder(tmp_path / "d")
    cfg = small_config(root, image_size=8, num_workers=0)
    memory = build_datamodule(cfg)
    assert isinstance(memory, InMemoryDataModule) and memory.eval_names == ["val"]
    memory.setup()
    assert (memory.stream.pad, memory.stream.flip) == (1, True), "an 8 px crop pads by 1 px"
    workers = ImageNetDataModule(cfg)
    assert workers.recipe == "cifar"
    assert torch.equal(memory.probe_labels(5), workers.probe_labels(5)), "the same probe images, from every class"
    channel_mean = torch.tensor(workers.mean).view(3, 1, 1)
    assert torch.allclose(memory.probe_images(5) + memory.mean, workers.probe_images(5) + channel_mean, atol=1e-6)
    views = workers._images("val", "val")
    assert len(views) == len(memory.test_data) and memory.train_size == workers.train_size
    for i in range(len(views)):
        x, label = views[i]
        decoded = ((x + torch.tensor(workers.mean).view(3, 1, 1)) * 255).round()
        assert torch.equal(decoded, memory.test_data.images[i].float()), i
        assert label == memory.test_data.labels[i]


def test_a_folder_too_large_for_memory_is_read_by_workers_with_the_same_recipe(tmp_path, monkeypatch):
    root = write_small_folder(tmp_path / "digits")
    monkeypatch.setattr(datamodules, "FOLDER_IN_MEMORY_BYTES", 100)
    dm = build_datamodule(small_config(root, num_workers=0))
    assert isinstance(dm, ImageNetDataModule) and dm.recipe == "cifar"
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 8, 8) and y.shape == (4,)


# -- DataLoader workers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("threads", "workers"), [("1", 0), ("2", 2)])
def test_workers_follow_the_runs_cpu_threads(tmp_path, monkeypatch, threads, workers):
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    cfg = config_from_dict({"dataset": "folder", "data_dir": str(write_folder(tmp_path / "d")), "image_size": 40})
    assert cfg.num_workers is None and data_workers(cfg) == workers
    assert data_workers(cfg.replace(num_workers=3)) == 3
    assert ImageNetDataModule(cfg).val_dataloader()[0].num_workers == workers


# -- names ------------------------------------------------------------------------------------------------------------


def test_a_tiny_imagenet_run_keeps_its_name_and_a_choice_made_explicit_names_the_same_run(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        (tmp_path / "tiny-imagenet-200" / split / "n01").mkdir(parents=True)
        Image.new("RGB", (64, 64)).save(tmp_path / "tiny-imagenet-200" / split / "n01" / "0.JPEG")
    tiny = config_from_dict({"dataset": "folder", "data_dir": str(tmp_path / "tiny-imagenet-200"), "depth": 18,
                             "arch": "plain"})  # fmt: skip
    assert run_name(tiny) == "plain-18-s0-753de88a", "the name it had when the folder preset set image_size 64"
    assert run_name(tiny.resolved()) == run_name(tiny)
    lone = config_from_dict({"dataset": "folder", "data_dir": "/x/imagenette2-320", "depth": 50, "image_size": 160})
    assert run_name(lone) == "resnet-50-B-s0-3c9fe4aa"
    digits = small_config(write_small_folder(tmp_path / "digits"), depth=20)
    assert run_name(digits) == run_name(digits.resolved()) == run_name(digits.replace(net_family="cifar10"))
    assert run_name(digits) != run_name(digits.replace(flip=False))


# -- the digits folder ------------------------------------------------------------------------------------------------


def test_the_digits_export_writes_class_folders_of_8px_grayscale_pngs(tmp_path):
    pytest.importorskip("sklearn", reason="scikit-learn is the examples extra: pip install -e '.[examples]'")
    from PIL import Image

    from experiments.data.export_digits import main as export

    assert export([str(tmp_path / "digits")]) == 0
    for split, count in (("train", 1438), ("val", 359)):
        folders = sorted((tmp_path / "digits" / split).iterdir())
        assert [f.name for f in folders] == [str(d) for d in range(10)]
        assert sum(len(list(f.iterdir())) for f in folders) == count
    with Image.open(next((tmp_path / "digits" / "val" / "7").iterdir())) as image:
        assert (image.size, image.mode) == ((8, 8), "L")
    cfg = config_from_dict({"dataset": "folder", "data_dir": str(tmp_path / "digits"), "depth": 20})
    assert (cfg.input_shape, cfg.family, cfg.resolved_augment, cfg.resolved_num_classes) == ((3, 8, 8), "cifar10",
                                                                                           "cifar", 10)  # fmt: skip
