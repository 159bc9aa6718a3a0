"""A class-per-folder image tree (dataset folder): classes from folder names, the paper's ImageNet views scaled to the
chosen size, the small stem, training through the CLI on real JPEG and PNG files, and bad trees refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.config import config_from_dict, run_name
from experiments.data.augment import IMAGENET_GEOMETRY, Geometry, geometry_for
from experiments.data.datamodules import ImageNetDataModule, build_datamodule
from experiments.data.decode import EncodedBatch
from experiments.errors import EXIT_BAD_INPUT
from experiments.train import main
from tests.helpers import run_cli

CLASSES = ("cat", "apple", "boat")
"""Not in sorted order: the labels must follow the sorted folder names (apple 0, boat 1, cat 2), as ImageFolder's."""


def write_folder(root, classes=CLASSES, per_class=3, seed=0):
    """train/ and val/ with one folder per class: JPEGs and PNGs of several sizes, each class its own colour."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for split in ("train", "val"):
        for c, name in enumerate(sorted(classes)):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                h, w = 40 + 6 * i, 52 - 4 * i
                pixels = (torch.rand(h, w, 3, generator=g) * 50 + 80 * c).clamp(0, 255).to(torch.uint8)
                image = Image.fromarray(pixels.numpy())
                if i % 2:
                    image.save(root / split / name / f"{i}.png")
                else:
                    image.save(root / split / name / f"{i}.jpg", quality=90)
    return root


def folder_config(root, **overrides):
    values = {"dataset": "folder", "data_dir": str(root), "image_size": 16, "depth": 18, "width": 4,
              "batch_size": 4, "num_workers": 0, "augment": "imagenet"}  # fmt: skip
    return config_from_dict({**values, **overrides})


# -- classes, views, mean ----------------------------------------------------------------------------------------


def test_classes_come_from_the_folder_names_in_sorted_order(tmp_path):
    write_folder(tmp_path)
    cfg = folder_config(tmp_path)
    assert cfg.resolved_num_classes == 3 and cfg.family == "imagenet" and cfg.preset == "folder"
    dm = build_datamodule(cfg)
    assert isinstance(dm, ImageNetDataModule) and dm.train_size == 9
    by_class = {path.split("/")[-2]: label for path, label in dm.samples("train")}
    assert by_class == {"apple": 0, "boat": 1, "cat": 2}
    assert {label for _, label in dm.samples("val")} == {0, 1, 2}


def test_the_papers_views_scale_with_the_image_size():
    assert geometry_for(224) == IMAGENET_GEOMETRY == Geometry((256, 480), 256, 224)
    assert geometry_for(64) == Geometry((73, 137), 73, 64), "shorter side 1.14x..2.14x the crop, as 256..480 / 224"
    assert geometry_for(32) == Geometry((37, 69), 37, 32)
    assert geometry_for(8).resize >= 8


def test_folder_views_have_the_chosen_size_and_the_folders_own_mean(tmp_path):
    write_folder(tmp_path)
    dm = ImageNetDataModule(folder_config(tmp_path))
    train_img, _ = dm._images("train", "train")[0]
    val_img, _ = dm._images("val", "val")[0]
    crops, _ = dm._images("val", "test")[0]
    assert train_img.shape == val_img.shape == (3, 16, 16) and crops.shape == (10, 3, 16, 16)
    assert dm.mean != ImageNetDataModule.MEAN, "a folder subtracts its own mean, not ImageNet's"
    assert all(0 < m < 1 for m in dm.mean)
    assert dm.probe_images(4).shape == (4, 3, 16, 16)


def test_the_gpu_decode_path_makes_the_same_sizes(tmp_path):
    """decode=gpu's batched path, run on the CPU (only the CUDA check is skipped): the folder's geometry and mean."""
    write_folder(tmp_path)
    dm = ImageNetDataModule(folder_config(tmp_path))
    dm.decode = "gpu"
    expected = {"train": (4, 3, 16, 16), "val": (4, 3, 16, 16), "test": (1, 10, 3, 16, 16)}
    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader()[0], "test": dm.test_dataloader()}
    for view, loader in loaders.items():
        batch = next(iter(loader))
        assert isinstance(batch, EncodedBatch) and batch.view == view
        batch = dm.transfer_batch_to_device(batch, torch.device("cpu"), 0)
        x, _ = dm.on_after_batch_transfer(batch, 0)
        assert x.shape == expected[view], view


# -- the stem ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "stem"), [(16, "3x3"), (64, "3x3"), (128, "3x3"), (160, "7x7"), (224, "7x7")])
def test_small_inputs_get_the_3x3_stem_unless_told_otherwise(tmp_path, size, stem):
    assert folder_config(tmp_path, image_size=size).resolved_stem == stem
    assert folder_config(tmp_path, image_size=size, stem="7x7").resolved_stem == "7x7"
    assert config_from_dict({"dataset": "imagenet"}).resolved_stem == "7x7"
    assert config_from_dict({"dataset": "synthetic-imagenet", "depth": 34}).resolved_stem == "3x3"


def test_the_7x7_stem_is_refused_for_the_cifar_family():
    from experiments.config import ConfigError

    with pytest.raises(ConfigError, match=r"^stem '7x7' applies to the imagenet family"):
        config_from_dict({"dataset": "cifar10", "stem": "7x7"})


# -- training through the CLI --------------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_tiny_folder_of_jpegs_and_pngs_trains_through_the_cli(tmp_path):
    write_folder(tmp_path / "data")
    runs = tmp_path / "runs"
    args = ["--dataset", "folder", "--data_dir", str(tmp_path / "data"), "--image_size", "16", "--augment", "imagenet",
            "--arch", "pair",
            "--depth", "18", "--width", "4", "--batch_size", "4", "--max_steps", "4", "--eval_every", "2",
            "--log_every", "2", "--checkpoint_every", "4", "--num_workers", "0", "--response_images", "4",
            "--no-wandb", "--runs_dir", str(runs), "--sweep", "tiny"]  # fmt: skip
    result = run_cli(["-m", "experiments.train", *args], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    folders = sorted((runs / "tiny").iterdir())
    assert [f.name.split("-s0-")[0] for f in folders] == ["plain-18", "resnet-18-A"]
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["step"] == 4
        assert summary["final_val_error"] is not None and summary["final_test10crop_error"] is not None
        state = torch.load(folder / "checkpoints" / "model.pt", weights_only=True)
        state = state.get("state_dict", state)
        assert state["fc.weight"].shape == (3, 32), "three classes inferred from the folder names"
        assert state["conv1.weight"].shape == (4, 3, 3, 3), "the 3x3 stem at 16 px"
        assert (folder / "responses.csv").exists()


# -- bad trees: one line, exit code 2, nothing written ---------------------------------------------------------------


def _break_empty_class(root):
    (root / "train" / "dog").mkdir()
    (root / "val" / "dog").mkdir()
    (root / "val" / "dog" / "a.png").write_bytes((root / "val" / "cat" / "1.png").read_bytes())


def _break_unreadable(root):
    (root / "train" / "boat" / "broken.jpg").write_bytes(b"this is not an image")


def _break_mismatch(root):
    (root / "val" / "dog").mkdir()
    (root / "val" / "dog" / "a.png").write_bytes((root / "val" / "cat" / "1.png").read_bytes())


def _break_no_val(root):
    import shutil

    shutil.rmtree(root / "val")


@pytest.mark.parametrize(
    ("damage", "extra", "message"),
    [
        (_break_empty_class, [], r"image folder .*train: Found no valid file for the classes dog"),
        (_break_unreadable, [], r"unreadable image .*boat/broken\.jpg \(.*\); remove or replace the file"),
        (_break_mismatch, [], r"image val classes differ from train classes .*only in val: dog\); both must hold"),
        (_break_no_val, [], r"image folder .*val not found; expected .*/train/<class>/<image>"),
        (None, ["--num_classes", "5"], r"num_classes is 5 but .*train holds 3 class folders; pass --num_classes 3"),
        (None, ["--val_size", "2"], r"val_size applies to in-memory datasets; a folder dataset validates on its val/"),
    ],
    ids=["empty class", "unreadable image", "val classes differ", "no val", "num_classes", "val_size"],
)
def test_a_bad_tree_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, damage, extra, message):
    root = write_folder(tmp_path / "data")
    if damage is not None:
        damage(root)
    runs = tmp_path / "runs"
    args = [
        "--dataset",
        "folder",
        "--data_dir",
        str(root),
        "--image_size",
        "16",
        "--depth",
        "18",
        "--width",
        "4",
        "--batch_size",
        "4",
        "--max_steps",
        "2",
        "--num_workers",
        "0",
        "--no-wandb",
        "--runs_dir",
        str(runs),
    ]
    assert main([*args, *extra]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert __import__("re").search(message, err[0]), err[0]
    assert not runs.exists()


# -- identity ------------------------------------------------------------------------------------------------------


def test_runs_on_two_trees_are_named_apart_and_a_tree_that_moves_keeps_its_names(tmp_path):
    names = {}
    for where in ("a/tiny-imagenet-200", "b/tiny-imagenet-200", "a/imagenette2-320"):
        names[where] = run_name(folder_config(tmp_path / where, image_size=64))
    assert names["a/tiny-imagenet-200"] == names["b/tiny-imagenet-200"]
    assert names["a/tiny-imagenet-200"] != names["a/imagenette2-320"]
