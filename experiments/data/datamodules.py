"""Lightning data modules: in-device-memory CIFAR-10/100 and generated data, and image folders (ImageNet or any
class-per-folder tree).

CIFAR and the generated datasets are small enough to live on the training device as uint8; ImageNet and folder
datasets are read from their folders by DataLoader workers. For all of them training batch ``k`` is a pure function
of (seed, k): the epoch's permutation is seeded by (seed, epoch) (``BatchOrder``) and the augmentation of the batch by
(seed, k). Resuming at step k therefore replays exactly the batches an uninterrupted run sees, mid-epoch or
not, and the only position to save is the global step, which Lightning's checkpoint already holds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch

from experiments.config import ConfigError, RunConfig
from experiments.config.policy import data_workers, run_threads, wants_gpu
from experiments.data.augment import (
    CIFAR_PAD,
    PCALighting,
    cifar_pad,
    cifar_views,
    geometry_for,
    normalize,
    pad_crop_flip,
)
from experiments.data.catalog import (
    FOLDER_DATASETS,
    FOLDER_IN_MEMORY_BYTES,
    SYNTHETIC_TEST_SIZE,
    SYNTHETIC_TRAIN_SIZE,
    folder_image_side,
)
from experiments.data.decode import EncodedBatch, EncodedImages, View, collate_encoded, decode_augment
from experiments.data.sources import (
    DataError,
    FolderImages,
    ImageArrays,
    check_image_headers,
    check_imagenet_folder,
    decode_folder,
    folder_channel_stats,
    load_cifar10,
    load_cifar100,
    pixel_mean,
    pixel_std,
    scan_image_folder,
    split_train_val,
    synthetic_arrays,
)

Batch = tuple[torch.Tensor, torch.Tensor]
_EPOCH_SALT = 0x9E3779B1
_STEP_SALT = 0x85EBCA77
_DECODE_SALT = 0xC2B2AE3D
_IMAGE_SALT = 0x27D4EB2F


def _seed(*key: int) -> int:
    seed = 0
    for k in key:
        seed = (seed * 1_000_003 + int(k)) % (2**63 - 1)
    return seed


def _generator(device: torch.device, *key: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(_seed(*key))


def spread(total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(total)`` from 0: a probe set from every class of a sorted split."""
    return list(range(0, total, max(1, total // max(n, 1))))[:n]


class BatchOrder:
    """Which images make up training batch ``k``: a pure function of (seed, k), the same on every rank.

    Epoch ``e`` is a permutation seeded by (seed, e), cut into ``n // batch_size`` global batches (the rest is
    dropped). Under DDP rank ``r`` takes the r-th contiguous share of each global batch, so the ranks together
    train on exactly the batches a single-device run trains on.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str = "cpu"):
        if batch_size > n:
            raise ValueError(f"batch_size ({batch_size}) is larger than the training set ({n} images)")
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, torch.device(device)
        self.batches_per_epoch = n // batch_size
        self._perm_epoch: int | None = None
        self._perm: torch.Tensor | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm_epoch != epoch:
            g = _generator(self.device, self.seed, _EPOCH_SALT, epoch)
            self._perm = torch.randperm(self.n, generator=g, device=self.device)
            self._perm_epoch = epoch
        return self._perm

    def indices(self, step: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
        """The image indices of global batch ``step`` that rank ``rank`` of ``world_size`` trains on."""
        epoch, b = divmod(step, self.batches_per_epoch)
        index = self._permutation(epoch)[b * self.batch_size : (b + 1) * self.batch_size]
        share = self.batch_size // world_size
        return index[rank * share : (rank + 1) * share]


class TrainStream:
    """Endless augmented training batches; batch ``k`` depends only on (seed, k), on every rank alike."""

    def __init__(
        self,
        data: ImageArrays,
        mean: torch.Tensor,
        batch_size: int,
        seed: int,
        augment: bool = True,
        rank: int = 0,
        world_size: int = 1,
        flip: bool = True,
        pad: int = CIFAR_PAD,
        std: torch.Tensor | None = None,
    ):
        self.order = BatchOrder(len(data), batch_size, seed, data.images.device)
        self.data, self.mean, self.std, self.batch_size, self.seed = data, mean, std, batch_size, seed
        self.augment, self.rank, self.world_size, self.flip, self.pad = augment, rank, world_size, flip, pad

    @property
    def device(self) -> torch.device:
        return self.data.images.device

    def epoch_of(self, step: int) -> float:
        """Epochs completed after ``step`` iterations (derived, as in the paper)."""
        return step / self.order.batches_per_epoch

    def batch(self, step: int) -> Batch:
        """The global batch of ``step``, restricted to this rank's share."""
        index = self.order.indices(step, self.rank, self.world_size)
        x = normalize(self.data.images[index], self.mean, self.std)
        if self.augment:
            x = pad_crop_flip(x, _generator(self.device, self.seed, _STEP_SALT, step), self.pad, self.flip)
        return x, self.data.labels[index]

    def iterate_from(self, step: int) -> Iterator[Batch]:
        while True:
            yield self.batch(step)
            step += 1


class _FromStep:
    """An iterable Lightning can use as a train loader: each ``iter`` starts at the trainer's current step."""

    def __init__(self, stream: TrainStream, current_step: Callable[[], int]):
        self.stream, self.current_step = stream, current_step

    def __iter__(self) -> Iterator[Batch]:
        return self.stream.iterate_from(self.current_step())


class EvalStream:
    """Un-augmented, mean-subtracted batches of a fixed split, in order, sharded across ranks."""

    def __init__(
        self,
        data: ImageArrays,
        mean: torch.Tensor,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        std: torch.Tensor | None = None,
    ):
        n = len(data)
        lo, hi = rank * n // world_size, (rank + 1) * n // world_size
        self.images, self.labels = data.images[lo:hi], data.labels[lo:hi]
        self.mean, self.std, self.batch_size = mean, std, batch_size

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        for i in range(0, len(self.labels), self.batch_size):
            x = normalize(self.images[i : i + self.batch_size], self.mean, self.std)
            yield x, self.labels[i : i + self.batch_size]


class InMemoryDataModule(pl.LightningDataModule):
    """CIFAR-10, CIFAR-100, generated data or a small folder held on the training device; evaluation on val (if held
    out) and test (``test_name``: a folder's val/ is its last split, named val as in the folder's other path).

    Every one of them is augmented as CIFAR (pad 4, random crop, flip unless ``cfg.flip`` is off), also the generated
    data of the ImageNet-family nets (``synthetic-imagenet``); a folder pads in proportion to its crop (``cifar_pad``).
    """

    def __init__(
        self,
        cfg: RunConfig,
        arrays: tuple[ImageArrays, ImageArrays | None, ImageArrays] | None = None,
        test_name: str = "test",
        spread_probe: bool = False,
    ):
        super().__init__()
        self.cfg, self.spread_probe = cfg, spread_probe
        self.train_data, self.val_data, self.test_data = arrays if arrays is not None else self._load()
        self.mean = pixel_mean(self.train_data.images)
        self.std = pixel_std(self.train_data.images, self.mean) if cfg.input_std else None
        self.eval_names = ["val"] * (self.val_data is not None) + [test_name]
        self.stream: TrainStream | None = None

    def _load(self) -> tuple[ImageArrays, ImageArrays | None, ImageArrays]:
        cfg = self.cfg
        if cfg.dataset in ("cifar10", "cifar100"):
            load = load_cifar10 if cfg.dataset == "cifar10" else load_cifar100
            train, test = load(cfg.data_dir, download=cfg.download, verify=cfg.data_verify)
        else:
            train, test = synthetic_arrays(
                num_classes=cfg.resolved_num_classes,
                image_size=cfg.input_shape[1],
                train_size=cfg.train_size or SYNTHETIC_TRAIN_SIZE,
                test_size=cfg.test_size or SYNTHETIC_TEST_SIZE,
                seed=cfg.seed,
            )
        train, val = split_train_val(train, cfg.val_size, cfg.seed)
        return train, val, test

    @property
    def train_size(self) -> int:
        return len(self.train_data)

    def _probe_index(self, n: int) -> list[int] | slice:
        return spread(len(self.test_data), n) if self.spread_probe else slice(0, n)

    def probe_images(self, n: int) -> torch.Tensor:
        """``n`` test images, normalised as training's: the fixed set for the layer-response probe (the first ``n``, or
        for a folder, whose split is sorted by class, ``n`` spread over it as its workers' path takes them)."""
        images = self.test_data.images[self._probe_index(n)]
        std = None if self.std is None else self.std.to(images.device)
        return normalize(images, self.mean.to(images.device), std)

    def probe_labels(self, n: int) -> torch.Tensor:
        """The labels of ``probe_images(n)`` (the signal probe's loss needs them)."""
        return self.test_data.labels[self._probe_index(n)]

    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        rank = self.trainer.global_rank if self.trainer is not None else 0
        world = self.trainer.world_size if self.trainer is not None else 1
        move = lambda d: None if d is None else ImageArrays(d.images.to(device), d.labels.to(device))  # noqa: E731
        self.train_data, self.val_data, self.test_data = map(move, (self.train_data, self.val_data, self.test_data))
        self.mean = self.mean.to(device)
        self.std = None if self.std is None else self.std.to(device)
        self.rank, self.world = rank, world
        cfg = self.cfg
        pad = cifar_pad(cfg.input_shape[-1]) if cfg.dataset == "folder" else CIFAR_PAD
        data = self.train_data
        self.stream = TrainStream(data, self.mean, cfg.batch_size, cfg.seed, True, rank, world, cfg.flip, pad, self.std)

    def train_dataloader(self) -> _FromStep:
        return _FromStep(self.stream, lambda: self.trainer.global_step)

    def val_dataloader(self) -> list[EvalStream]:
        per_rank = max(1, 1024 // self.world)
        splits = [self.val_data] * (self.val_data is not None) + [self.test_data]
        return [EvalStream(d, self.mean, per_rank, self.rank, self.world, self.std) for d in splits]


def stack_crops(crops: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """TenCrop's tuple of crops as one (10, C, H, W) tensor; the module averages their softmax."""
    return torch.stack(list(crops))


def check_decode(cfg: RunConfig) -> str:
    """The run's ``decode`` option, checked against this machine: ``gpu`` needs CUDA and a GPU run."""
    if cfg.decode != "gpu":
        return cfg.decode
    if not torch.cuda.is_available():
        raise ConfigError(
            "decode 'gpu' decodes JPEGs with nvjpeg on a CUDA GPU, but CUDA is not available on this machine; "
            "use --decode cpu"
        )
    if not wants_gpu(cfg):
        raise ConfigError(
            f"decode 'gpu' decodes JPEGs on the training GPU, but accelerator is {cfg.accelerator!r}; "
            "use --decode cpu or --accelerator gpu"
        )
    return cfg.decode


class StepBatchSampler(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """One rank's training batches from the trainer's current step on, endlessly, as (image index, image seed) items.

    Batch ``k`` holds ``order.indices(k, rank, world_size)``, and each image's seed depends only on (seed, k, its
    place in the global batch), so its augmentation does not depend on which worker makes it, on the number of
    workers or devices, or on what ran before. Lightning restores the global step from a checkpoint before it
    iterates the train loader, so a resumed run starts at the first batch its checkpoint had not trained on.
    """

    def __init__(self, order: BatchOrder, rank: int, world_size: int, current_step: Callable[[], int]):
        self.order, self.rank, self.world_size, self.current_step = order, rank, world_size, current_step

    def batch(self, step: int) -> list[tuple[int, int]]:
        """This rank's items of batch ``step``."""
        first = self.rank * (self.order.batch_size // self.world_size)
        index = self.order.indices(step, self.rank, self.world_size).tolist()
        return [(i, _seed(self.order.seed, _IMAGE_SALT, step, first + j)) for j, i in enumerate(index)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.current_step()
        while True:
            yield self.batch(step)
            step += 1


class SeededItems(torch.utils.data.Dataset):
    """Items ``(index, seed)``: ``dataset[index]`` computed with torch's global generator seeded by ``seed``.

    torchvision's random transforms draw from the global generator, which otherwise depends on the worker and on
    every image that worker made before.
    """

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class _AsIs:
    """The train DataLoader behind a plain iterable: under DDP Lightning re-creates a DataLoader to put its own
    DistributedSampler in, which would replace ``StepBatchSampler``'s sharding; other iterables it leaves alone."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)


class ImageNetDataModule(pl.LightningDataModule):
    """ImageNet, or any class-per-folder tree (``dataset=folder``), from ``data_dir/{train,val}`` (ImageFolder layout)
    with the paper's augmentation.

    Train: shorter side resized to a random size in [256, 480], random 224 crop, random flip, PCA colour noise,
    per-channel mean subtracted (the paper's per-pixel mean is replaced by the per-channel mean, which does
    not depend on the crop position). Validation: shorter side 256, centre 224 crop. Test: 10 crops of 224.
    A folder dataset takes the same views scaled to its ``image_size`` (``augment.geometry_for``: 64 px crops from
    a shorter side of 73..137, evaluated at 73), its classes from its folder names (the count checked against
    ``num_classes`` when that is set), and its own per-channel mean (``sources.folder_channel_stats``) instead of
    ImageNet's; with ``input_std`` every view is also divided by the per-channel std (ImageNet's or the folder's).
    Its every image header is read at start, so a file that is no image is named before training.

    ``decode=cpu``: workers decode with PIL and apply torchvision transforms. ``decode=gpu``: workers read bytes,
    and every split (train, val, 10-crop test) is decoded and transformed on the training device after the batch
    transfer (``experiments/data/decode.py``), so evaluation is not left waiting on the CPU decoder either. The fixed
    layer-response probe images are decoded once with PIL in both modes.

    A folder augmented as CIFAR (``cfg.resolved_augment``; by default up to 32 px) takes ``augment.cifar_views``
    instead: each image made square at ``image_size``, padded by 4, randomly cropped and flipped, evaluated on the
    square image (no 10-crop test). ``build_datamodule`` holds such a folder in memory when it fits (``in_memory``).
    A crop larger than the images (``catalog.folder_image_side``) is refused. Without ``cfg.flip`` no recipe flips.

    Training batches come from ``StepBatchSampler``: batch ``k`` and its augmentation depend only on (seed, k), as
    for CIFAR. Each split folder is scanned once (at construction for train, so a bad one fails before a run
    writes anything) and its file list kept.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)  # ImageNet's published per-channel std, divided by with input_std

    def __init__(self, cfg: RunConfig):
        super().__init__()
        self.cfg = cfg
        self.what = "ImageNet" if cfg.dataset == "imagenet" else "image"
        self.decode = check_decode(cfg)
        self.folders = check_imagenet_folder(cfg.data_dir, what=self.what)
        self.geometry = geometry_for(cfg.input_shape[-1])
        self.eval_names = ["val"]
        self._samples: dict[str, list[tuple[str, int]]] = {}
        self.samples("train")
        self.recipe = cfg.resolved_augment
        if cfg.dataset == "folder":
            side = folder_image_side(cfg.data_dir)
            if cfg.image_size is not None and side is not None and cfg.image_size > side:
                raise DataError(
                    f"image_size {cfg.image_size} is larger than the images of {self.folders['train']} ({side} px on "
                    f"the shorter side); use --image_size {side} or less, or leave it unset to take {side}"
                )
            check_image_headers(self.samples("train") + self.samples("val"))
        classes = sum(1 for p in self.folders["train"].iterdir() if p.is_dir())
        if cfg.num_classes is not None and cfg.num_classes != classes:
            raise DataError(
                f"num_classes is {cfg.num_classes} but {self.folders['train']} holds {classes} class folders; "
                f"pass --num_classes {classes}" + (" or leave it unset" if cfg.dataset == "folder" else "")
            )

    @functools.cached_property
    def _stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.cfg.dataset != "folder":
            return self.MEAN, self.STD
        return folder_channel_stats(self.samples("train"), side=self.geometry.resize)

    @property
    def mean(self) -> tuple[float, ...]:
        """The per-channel mean subtracted: ImageNet's, or a folder's own (read from 500 of its images on first use)."""
        return self._stats[0]

    @property
    def std(self) -> tuple[float, ...]:
        """The per-channel std divided by: ImageNet's or the folder's with ``input_std``, else 1 (the paper's)."""
        return self._stats[1] if self.cfg.input_std else (1.0, 1.0, 1.0)

    def fits_in_memory(self) -> bool:
        """Whether this folder is augmented as CIFAR and its decoded train and val images fit in
        ``FOLDER_IN_MEMORY_BYTES`` (uint8, ``image_size`` square)."""
        side = self.cfg.input_shape[-1]
        images = len(self.samples("train")) + len(self.samples("val"))
        return self.recipe == "cifar" and images * 3 * side * side <= FOLDER_IN_MEMORY_BYTES

    def in_memory(self) -> InMemoryDataModule:
        """This folder decoded once (``sources.decode_folder``) and held on the training device as CIFAR is: train/
        augmented by ``TrainStream``, val/ the evaluation split, each with the per-pixel mean of train/."""
        side, threads = self.cfg.input_shape[-1], run_threads()
        train, val = (decode_folder(self.samples(split), side, threads) for split in ("train", "val"))
        return InMemoryDataModule(self.cfg, arrays=(train, None, val), test_name="val", spread_probe=True)

    def samples(self, split: str) -> list[tuple[str, int]]:
        """(path, class index) of every image of ``split``, scanned on first use and kept."""
        if split not in self._samples:
            self._samples[split] = scan_image_folder(self.folders[split], self.what)
        return self._samples[split]

    def _transforms(self, kind: str):
        from torchvision.transforms import v2

        to_float = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
        norm = v2.Normalize(self.mean, self.std)
        (low, high), resize, crop = self.geometry
        if self.recipe == "cifar":
            return cifar_views(crop, self.mean, self.cfg.flip, self.std)["train" if kind == "train" else "val"]
        if kind == "train":
            scale_crop = [v2.RandomShortestSize(list(range(low, high + 1))), v2.RandomCrop(crop)]
            flip = [v2.RandomHorizontalFlip()] * self.cfg.flip
            return v2.Compose([*scale_crop, *flip, *to_float, PCALighting(), norm])
        if kind == "val":
            return v2.Compose([v2.Resize(resize), v2.CenterCrop(crop), *to_float, norm])
        return v2.Compose([v2.Resize(resize), v2.TenCrop(crop), *to_float, norm, stack_crops])

    @property
    def train_size(self) -> int:
        return len(self.samples("train"))

    def _images(self, split: str, view: View) -> torch.utils.data.Dataset:
        if self.decode == "gpu":
            return EncodedImages(self.samples(split))
        return FolderImages(self.samples(split), self._transforms(view))

    def _loader(self, dataset: torch.utils.data.Dataset, view: View, **batching: Any) -> torch.utils.data.DataLoader:
        workers = data_workers(self.cfg)
        return torch.utils.data.DataLoader(
            dataset,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0 and view != "train",  # the endless train loader is iterated once per fit
            collate_fn=functools.partial(collate_encoded, view=view) if self.decode == "gpu" else None,
            **batching,
        )

    def probe_images(self, n: int) -> torch.Tensor:
        ds = FolderImages(self.samples("val"), self._transforms("val"))
        return torch.stack([ds[i][0] for i in spread(len(ds), n)])

    def probe_labels(self, n: int) -> torch.Tensor:
        """The labels of ``probe_images(n)``, read from the folder scan (no image is decoded)."""
        samples = self.samples("val")
        return torch.tensor([samples[i][1] for i in spread(len(samples), n)], dtype=torch.long)

    def _per_rank(self, batch_size: int) -> int:
        return batch_size // (self.trainer.world_size if self.trainer else 1)

    def _global_step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    def train_dataloader(self) -> _AsIs:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)
        order = BatchOrder(self.train_size, self.cfg.batch_size, self.cfg.seed)
        sampler = StepBatchSampler(order, rank, world, self._global_step)
        return _AsIs(self._loader(SeededItems(self._images("train", "train")), "train", batch_sampler=sampler))

    def val_dataloader(self) -> list[torch.utils.data.DataLoader]:
        return [self._loader(self._images("val", "val"), "val", batch_size=self._per_rank(self.cfg.batch_size))]

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        batch_size = max(1, self._per_rank(self.cfg.batch_size // 10))
        return self._loader(self._images("val", "test"), "test", batch_size=batch_size)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if isinstance(batch, EncodedBatch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Decode and augment a ``decode=gpu`` batch on the device its labels were moved to.

        The augmentation of training batch ``k`` on rank ``r`` is drawn from a generator seeded by (seed, r, k).
        """
        if not isinstance(batch, EncodedBatch):
            return batch
        step = self._global_step()
        rank = self.trainer.global_rank if self.trainer is not None else 0
        generator = _generator(torch.device("cpu"), self.cfg.seed, _DECODE_SALT, rank, step)
        return decode_augment(batch, batch.labels.device, self.mean, generator, self.geometry, self.cfg.flip, self.std)


def build_datamodule(cfg: RunConfig) -> InMemoryDataModule | ImageNetDataModule:
    """The data module of ``cfg.dataset``; loading and checking happen here, before any output is written. A folder
    that fits in memory (``ImageNetDataModule.fits_in_memory``) is decoded once and kept there."""
    if cfg.dataset in FOLDER_DATASETS:
        folder = ImageNetDataModule(cfg)
        return folder.in_memory() if folder.fits_in_memory() else folder
    return InMemoryDataModule(cfg)
