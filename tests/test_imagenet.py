"""The ImageNet path end to end on a tiny ImageFolder of real JPEGs: augmentation, centre crop and 10-crop test."""

import pytest
import torch

from experiments.config import config_from_dict
from experiments.datamodules import ImageNetDataModule
from experiments.train import train


def write_imagefolder(root, classes=("n01440764", "n01443537"), per_class=4, seed=0):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    for split in ("train", "val"):
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                w, h = 260 + 40 * i, 300 - 20 * i
                pixels = (torch.rand(h, w, 3, generator=g) * 60 + 100 * c).clamp(0, 255).to(torch.uint8)
                Image.fromarray(pixels.numpy()).save(root / split / name / f"{split}_{i}.JPEG", quality=90)
    return root


def test_transforms_give_the_papers_shapes(tmp_path):
    write_imagefolder(tmp_path)
    cfg = config_from_dict(
        {
            "dataset": "imagenet",
            "data_dir": str(tmp_path),
            "depth": 18,
            "num_classes": 2,
            "num_workers": 0,
            "batch_size": 4,
        }
    )
    dm = ImageNetDataModule(cfg)
    train_img, _ = dm._dataset("train", dm._transforms("train"))[0]
    val_img, _ = dm._dataset("val", dm._transforms("val"))[0]
    crops, _ = dm._dataset("val", dm._transforms("test"))[0]
    assert train_img.shape == val_img.shape == (3, 224, 224) and crops.shape == (10, 3, 224, 224)
    assert abs(val_img.mean().item()) < 0.6, "per-channel mean subtracted"
    assert torch.allclose(crops[4], crops[9].flip(-1), atol=1e-6), "the 10 crops are 5 crops and their flips"
    assert dm.train_size == 8


@pytest.mark.parametrize("workers", [0, 2])
def test_tiny_imagenet_trains_and_tests_with_ten_crops(tmp_path, workers):
    write_imagefolder(tmp_path / "data")
    cfg = config_from_dict(
        {
            "dataset": "imagenet",
            "data_dir": str(tmp_path / "data"),
            "arch": "resnet",
            "depth": 18,
            "width": 8,
            "num_classes": 2,
            "batch_size": 4,
            "max_steps": 4,
            "eval_every": 2,
            "log_every": 2,
            "checkpoint_every": 4,
            "num_workers": workers,
            "response_images": 4,
            "wandb": "disabled",
            "runs_dir": str(tmp_path / "runs"),
        }
    )
    (summary,) = train(cfg, echo=lambda *a, **k: None).values()
    assert summary["status"] == "finished" and summary["step"] == 4
    assert summary["final_val_error"] is not None and summary["final_test10crop_error"] is not None
    assert summary["macs"] > 0 and summary["params"] > 0
