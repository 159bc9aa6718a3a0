"""Where images come from: CIFAR-10's and CIFAR-100's python-format files, image folders (ImageNet or any
class-per-folder tree), and a generated dataset.

Each loader checks its inputs before anything is trained and raises ``DataError`` with one line that names
the file or folder at fault and how to fix it.
"""

from __future__ import annotations

import math
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from experiments.data.augment import fit_to_square
from experiments.data.catalog import CIFAR_BATCH_SIZE

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"


class CifarFormat(NamedTuple):
    """One CIFAR in torchvision's python format: its name, folder, archive, meta file key, classes, images per file."""

    name: str
    folder: str
    archive: str
    meta_key: str
    classes: int
    rows: dict[str, int]


CIFAR_FORMATS = {
    "cifar10": CifarFormat(
        "CIFAR-10",
        CIFAR_FOLDER,
        "cifar-10-python.tar.gz",
        "label_names",
        10,
        {**{f"data_batch_{i}": CIFAR_BATCH_SIZE for i in range(1, 6)}, "test_batch": CIFAR_BATCH_SIZE},
    ),
    "cifar100": CifarFormat(
        "CIFAR-100",
        CIFAR100_FOLDER,
        "cifar-100-python.tar.gz",
        "fine_label_names",
        100,
        {"train": 50_000, "test": 10_000},
    ),
}


class DataError(RuntimeError):
    """Missing, corrupt or unreadable data: the message names the file or folder and the fix."""


def unreadable_image(path: str, reason: str) -> DataError:
    """The error for an image file that cannot be read or decoded, naming it and the fix."""
    return DataError(f"unreadable image {path} ({reason}); remove or replace the file")


@dataclass
class ImageArrays:
    """A labelled image split held as uint8 NCHW plus int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> ImageArrays:
        return ImageArrays(self.images[index], self.labels[index])


# -- CIFAR-10 -------------------------------------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches, allowing only numpy's array reconstruction: a tampered file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _check_cifar_file(path: Path, expected_rows: int | None, cifar: CifarFormat = CIFAR_FORMATS["cifar10"]) -> None:
    """Read one file with the safe unpickler and check its keys, shape and labels; name the file on failure."""
    try:
        with path.open("rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
        if path.name not in cifar.rows:  # the meta file
            if len(entry[cifar.meta_key]) != cifar.classes:
                raise ValueError(f"{len(entry[cifar.meta_key])} label names, expected {cifar.classes}")
            return
        data = entry["data"]
        labels = entry.get("labels", entry.get("fine_labels"))
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != data.shape[0]:
            raise ValueError(f"data has shape {tuple(data.shape)} with {len(labels)} labels, expected (N, 3072)")
        if expected_rows is not None and data.shape[0] != expected_rows:
            raise ValueError(f"{data.shape[0]} images, expected {expected_rows}")
        if len(labels) and not 0 <= min(labels) <= max(labels) < cifar.classes:
            raise ValueError(f"labels outside 0..{cifar.classes - 1}")
    except Exception as e:  # any failure means the file is unusable; say which one
        raise DataError(
            f"{cifar.name} file {path} is corrupt or not in {cifar.name}'s python format ({e}); "
            f"delete it and download {cifar.archive} again from {CIFAR_URL}"
        ) from None


def load_cifar10(data_dir: str | Path, download: bool = False, verify: bool = True) -> tuple[ImageArrays, ImageArrays]:
    """CIFAR-10 train (50k) and test (10k) splits from ``data_dir/cifar-10-batches-py``, read through torchvision.

    With ``verify`` every file must match its published MD5; without it (small copies made for tests) every file
    is still checked for the right layout. Each file is first opened with a restricted unpickler, so torchvision
    only ever unpickles files that hold plain arrays.
    """
    return load_cifar("cifar10", data_dir, download, verify)


def load_cifar100(data_dir: str | Path, download: bool = False, verify: bool = True) -> tuple[ImageArrays, ImageArrays]:
    """CIFAR-100 train (50k) and test (10k) splits from ``data_dir/cifar-100-python`` with its 100 fine labels,
    checked and read as ``load_cifar10`` reads CIFAR-10."""
    return load_cifar("cifar100", data_dir, download, verify)


def load_cifar(
    kind: str, data_dir: str | Path, download: bool = False, verify: bool = True
) -> tuple[ImageArrays, ImageArrays]:
    """Train and test splits of ``kind`` ('cifar10' or 'cifar100') from its torchvision folder in ``data_dir``."""
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import check_integrity

    cifar = CIFAR_FORMATS[kind]
    reader = CIFAR10 if kind == "cifar10" else CIFAR100
    root = Path(data_dir)
    folder = root / cifar.folder
    files = [*reader.train_list, *reader.test_list, (reader.meta["filename"], reader.meta["md5"])]
    if download and not folder.is_dir():
        try:
            reader(root, train=True, download=True)
        except Exception as e:
            raise DataError(
                f"could not download {cifar.name} into {root} ({e}); download it by hand from {CIFAR_URL}"
            ) from None
    if not folder.is_dir():
        raise DataError(
            f"{cifar.name} not found: expected the python-format batches in {folder}; download "
            f"{cifar.archive} from {CIFAR_URL} and extract it into {root}, or pass --download true"
        )
    for name, md5 in files:
        path = folder / name
        if not path.is_file():
            raise DataError(
                f"{cifar.name} file {path} is missing; extract {cifar.archive} from {CIFAR_URL} into {root}"
            )
        if verify and not check_integrity(str(path), md5):
            raise DataError(
                f"{cifar.name} file {path} fails its MD5 check (corrupt or not the official file); download it "
                f"again from {CIFAR_URL}, or pass --data_verify false for a non-standard copy"
            )
        _check_cifar_file(path, cifar.rows.get(name) if verify else None, cifar)

    class _Reader(reader):
        def _check_integrity(self) -> bool:
            return True  # checked above, file by file, with a message naming the file

        def _load_meta(self) -> None:
            with (folder / reader.meta["filename"]).open("rb") as f:
                self.classes = _ArrayUnpickler(f, encoding="latin1").load()[cifar.meta_key]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    splits = []
    for train in (True, False):
        ds = _Reader(str(root), train=train, download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        splits.append(ImageArrays(images, torch.tensor(ds.targets, dtype=torch.int64)))
    return splits[0], splits[1]


def split_train_val(train: ImageArrays, val_size: int, seed: int) -> tuple[ImageArrays, ImageArrays | None]:
    """Hold out ``val_size`` training images at random (fixed seed), as the paper's 45k/5k split."""
    if val_size == 0:
        return train, None
    if val_size >= len(train):
        raise DataError(f"val_size ({val_size}) must be smaller than the training set ({len(train)} images)")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train.subset(perm[val_size:].sort().values), train.subset(perm[:val_size].sort().values)


def pixel_mean(images: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean image (C, H, W) in [0, 1], from the training split only."""
    return images.float().mean(0) / 255.0


def pixel_std(images: torch.Tensor, mean: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Per-channel std (C, 1, 1) of the training images in [0, 1] after the per-pixel ``mean`` is subtracted: what
    ``input_std`` divides the inputs by. Summed in chunks, so a 50k-image split needs no float copy of itself."""
    square = torch.zeros(images.shape[1], dtype=torch.float64, device=images.device)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].double().div_(255.0)
        square += x.square().sum((0, 2, 3))
    variance = square / (len(images) * images.shape[2] * images.shape[3]) - mean.double().square().mean((1, 2))
    return variance.clamp_min(0).sqrt().float().view(-1, 1, 1)


# -- the generated dataset ------------------------------------------------------------------------------------------


def synthetic_arrays(
    num_classes: int, image_size: int, train_size: int, test_size: int, seed: int
) -> tuple[ImageArrays, ImageArrays]:
    """A learnable image classification task generated from a seed, no files.

    Each class has a smooth colour prototype; an image is its class prototype, shifted at random, blended with
    a random other class's prototype (up to 45%) and covered in pixel noise. The classes overlap enough that a
    network must learn spatial features, and a deep plain net visibly lags a shallow one within ~1000 steps.
    """
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(num_classes, 3, 4, 4, generator=g)
    protos = F.interpolate(coarse, size=(image_size, image_size), mode="bicubic", align_corners=False)
    protos = protos / protos.flatten(1).std(1).view(-1, 1, 1, 1)

    def draw(n: int) -> ImageArrays:
        labels = torch.randint(num_classes, (n,), generator=g)
        other = (labels + torch.randint(1, num_classes, (n,), generator=g)) % num_classes
        mix = 0.45 * torch.rand(n, 1, 1, 1, generator=g)
        images = (1 - mix) * protos[labels] + mix * protos[other]
        max_shift = max(1, image_size // 4)
        shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=g)
        images = torch.stack(
            [img.roll((int(dy), int(dx)), dims=(1, 2)) for img, (dy, dx) in zip(images, shifts, strict=True)]
        )
        images = images + 0.8 * torch.randn(images.shape, generator=g)
        pixels = (128 + 40 * images).round().clamp(0, 255).to(torch.uint8)
        return ImageArrays(pixels, labels)

    return draw(train_size), draw(test_size)


# -- image folders: ImageNet, or any class-per-folder tree ------------------------------------------------------------


def check_imagenet_folder(
    data_dir: str | Path, splits: tuple[str, ...] = ("train", "val"), what: str = "ImageNet"
) -> dict[str, Path]:
    """Check the ImageFolder layout ``data_dir/{train,val}/<class>/<image>`` and return the split folders.

    ``what`` names the dataset in messages ("ImageNet", or "image" for a folder dataset). Both splits must hold the
    same class folders; where they differ, the message names classes that one has and the other lacks.
    """
    root = Path(data_dir)
    found = {}
    pattern = "*.JPEG" if what == "ImageNet" else "<image>"
    for split in splits:
        folder = root / split
        if not folder.is_dir():
            raise DataError(
                f"{what} folder {folder} not found; expected {root}/train/<class>/{pattern} and "
                f"{root}/val/<class>/{pattern} (the ImageFolder layout; sort val images into class folders)"
            )
        classes = [p for p in folder.iterdir() if p.is_dir()]
        if not classes:
            raise DataError(f"{what} folder {folder} has no class sub-folders; expected {folder}/<class>/<image>")
        found[split] = folder
    train_classes = sorted(p.name for p in found[splits[0]].iterdir() if p.is_dir())
    for split in splits[1:]:
        other = sorted(p.name for p in found[split].iterdir() if p.is_dir())
        if other != train_classes:
            extra, missing = sorted(set(other) - set(train_classes)), sorted(set(train_classes) - set(other))
            named = "; ".join(
                f"{where} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                for where, names in ((f"only in {split}:", extra), (f"only in {splits[0]}:", missing))
                if names
            )
            raise DataError(
                f"{what} {split} classes differ from train classes in {root} "
                f"({len(other)} vs {len(train_classes)} folders; {named}); both must hold the same class folders"
            )
    return found


def scan_image_folder(folder: str | Path, what: str = "ImageNet") -> list[tuple[str, int]]:
    """(path, class index) of every image in ``folder/<class>/``, classes in sorted order: ImageFolder's samples.

    This lists every file of the split (1.28M for ImageNet train), so a data module does it once and keeps the list.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        _, class_to_idx = find_classes(str(folder))
        return make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise DataError(f"{what} folder {folder}: {e}; every class folder must hold images") from None


def _header_problem(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.width < 1 or img.height < 1:
                return f"{img.width}x{img.height} pixels"
    except Exception as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def check_image_headers(samples: list[tuple[str, int]], threads: int = 8) -> None:
    """Open every image and read its header (no decoding), so a file that is no image stops a run at its start.

    Raises ``DataError`` naming the first such file in sample order. A file whose header is fine but whose data is
    truncated is found only when it is decoded during training (the run then fails naming it). Reading the headers
    of Tiny-ImageNet's 110k files takes seconds on a local disk.
    """
    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = pool.map(_header_problem, [path for path, _ in samples], chunksize=256)
        for (path, _), problem in zip(samples, problems, strict=True):
            if problem is not None:
                raise unreadable_image(path, problem)


def _image_moments(path: str, side: int) -> tuple[list[float], list[float]]:
    """One image's per-channel mean and mean square, in [0, 1]."""
    import numpy as np
    from PIL import Image

    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.draft("RGB", (side * 4, side * 4))  # a JPEG decoded at a reduced scale: the mean is that of the image
            img = img.convert("RGB")
    except Exception as e:
        raise unreadable_image(path, str(e)) from None
    pixels = np.asarray(img, dtype=np.float64).reshape(-1, 3) / 255.0
    return list(pixels.mean(0)), list((pixels**2).mean(0))


def folder_channel_stats(
    samples: list[tuple[str, int]], count: int = 500, side: int = 64
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1]) of a folder dataset's training images, from ``count`` images spread evenly
    over the sorted samples (every class), each weighted equally: the mean the paper subtracts (and the std that
    ``input_std`` divides by), estimated without decoding a whole dataset at start."""
    if not samples:
        raise DataError("no training images to compute the mean from")
    step = max(1, len(samples) // count)
    paths = [path for path, _ in samples[::step][:count]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        moments = list(pool.map(lambda p: _image_moments(p, side), paths))
    mean = tuple(float(sum(m[0][c] for m in moments) / len(moments)) for c in range(3))
    square = (float(sum(m[1][c] for m in moments) / len(moments)) for c in range(3))
    return mean, tuple(math.sqrt(max(sq - mu * mu, 0.0)) for sq, mu in zip(square, mean, strict=True))


def decode_folder(samples: list[tuple[str, int]], side: int, threads: int = 8) -> ImageArrays:
    """Every image of a scanned split decoded once with PIL and made ``side`` px square (``augment.fit_to_square``,
    as DataLoader workers make it): a folder held in memory as CIFAR is. Names the first file that cannot be read."""
    from torchvision.transforms import v2

    square = v2.Compose([*fit_to_square(side), v2.PILToTensor()])
    with ThreadPoolExecutor(max_workers=threads) as pool:
        images = list(pool.map(lambda sample: square(load_image(sample[0])), samples, chunksize=64))
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return ImageArrays(torch.stack(images), labels)


class FolderImages(torch.utils.data.Dataset):
    """Scanned ``(path, label)`` samples as ``(transform(image), label)``, each image opened with ``load_image``."""

    def __init__(self, samples: list[tuple[str, int]], transform=None):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[object, int]:
        path, label = self.samples[index]
        image = load_image(path)
        return (image if self.transform is None else self.transform(image)), label


def load_image(path: str) -> object:
    """Open an image as RGB, naming the file if it cannot be read."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")
    except Exception as e:
        raise unreadable_image(path, str(e)) from None
