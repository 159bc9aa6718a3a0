"""Facts about each dataset that config validation needs without torch: sizes, kinds and the generated data's
defaults; and a folder's classes (its train/ sub-folders) and image side (read from its first images)."""

import functools
from pathlib import Path

FOLDER_DATASETS = ("imagenet", "folder")
"""Datasets read from ``data_dir/{train,val}/<class>/`` by DataLoader workers, evaluated on ``val/``."""
SYNTHETIC_DATASETS = ("synthetic", "synthetic-imagenet")
"""Generated datasets (no files), for the CIFAR-family and the ImageNet-family nets."""
IMAGENET_FAMILY_DATASETS = ("imagenet", "folder", "synthetic-imagenet")
"""Datasets trained with the ImageNet-family nets (18/34/50/101/152); the others train the CIFAR 6n+2 family."""
FOLDER_IMAGE_SIZE = 224
"""A folder dataset's largest default crop (ImageNet's): ``image_size`` unset is the images' side up to this."""
FOLDER_SAMPLED_CLASSES = 16
"""Class folders whose first image is read for a folder's image side (headers only: milliseconds)."""
CIFAR_RECIPE_MAX_SIZE = 32
"""Up to this input side a folder is augmented as CIFAR (pad 4, crop, flip; Sec. 4.2) unless ``augment`` says
otherwise; above it with the paper's ImageNet scale augmentation, scaled to the crop (Sec. 3.4)."""
FOLDER_IN_MEMORY_BYTES = 512 << 20
"""A folder augmented as CIFAR whose decoded train and val images take up to this many bytes is decoded once and
held in device memory as CIFAR is (CIFAR-10 takes 184 MB); a larger one is read by DataLoader workers."""
SMALL_STEM_MAX_SIZE = 128
"""Up to this input side the ImageNet-family nets take the 3x3/1 stem unless ``stem`` says otherwise."""
CIFAR100_CLASSES = 100

CIFAR_TRAIN_SIZE = 50_000
"""CIFAR-10's training images (five batches of 10,000)."""
CIFAR_BATCH_SIZE = 10_000
"""Images per CIFAR-10 batch file (data_batch_1..5, test_batch)."""
SYNTHETIC_CLASSES = 10
"""The generated datasets' classes when ``num_classes`` is not set (also for the ImageNet-family nets)."""
SYNTHETIC_IMAGE_SIZE = 32
"""The generated dataset's image side when ``image_size`` is not set (CIFAR's)."""
SYNTHETIC_TRAIN_SIZE = 10_000
"""The generated dataset's training images when ``train_size`` is not set."""
SYNTHETIC_TEST_SIZE = 2_000
"""The generated dataset's test images when ``test_size`` is not set."""
CIFAR_TRAIN_SIZES = {"cifar10": CIFAR_TRAIN_SIZE, "cifar100": CIFAR_TRAIN_SIZE}
"""Training images of each CIFAR (both 50,000: CIFAR-100 holds them in one file)."""


def class_folders(data_dir: str | Path) -> list[str]:
    """The class names of a folder dataset: the sub-folders of ``data_dir/train``, sorted (ImageFolder's order)."""
    train = Path(data_dir) / "train"
    return sorted(p.name for p in train.iterdir() if p.is_dir()) if train.is_dir() else []


def folder_image_side(data_dir: str | Path) -> int | None:
    """A folder's image side: the median shorter side of the first image of each of its first classes in train/
    (``FOLDER_SAMPLED_CLASSES``), read from the image headers; None where train/ holds no readable image."""
    return _image_side(str(Path(data_dir).resolve()))


@functools.lru_cache(maxsize=64)
def _image_side(train_parent: str) -> int | None:
    from PIL import Image

    sides = []
    for name in class_folders(train_parent)[:FOLDER_SAMPLED_CLASSES]:
        for path in sorted(p for p in (Path(train_parent) / "train" / name).iterdir() if p.is_file()):
            try:
                with Image.open(path) as img:
                    sides.append(min(img.size))
                break
            except Exception:  # not an image (a README, a corrupt file): the data module names it; try the next
                continue
    return sorted(sides)[(len(sides) - 1) // 2] if sides else None
