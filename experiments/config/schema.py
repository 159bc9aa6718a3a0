"""The run config's schema: one typed dataclass whose field names are the CLI flags, sweep keys and W&B keys.

Each field's comment is its ``--help`` text. Defaults are the ``cifar10-paper`` recipe's (``presets.CIFAR10_PAPER``);
validation (``checks.check``) runs on construction and raises ``ConfigError`` naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from experiments.config.checks import ConfigError, check
from experiments.config.presets import CIFAR10_PAPER
from experiments.data.catalog import (
    CIFAR100_CLASSES,
    CIFAR_RECIPE_MAX_SIZE,
    FOLDER_IMAGE_SIZE,
    IMAGENET_FAMILY_DATASETS,
    SMALL_STEM_MAX_SIZE,
    SYNTHETIC_CLASSES,
    SYNTHETIC_DATASETS,
    SYNTHETIC_IMAGE_SIZE,
    class_folders,
    folder_image_side,
)
from models.options import (
    IMAGENET_DEPTHS,
    Activation,
    Family,
    Init,
    Norm,
    Shortcut,
    Stem,
    StrideIn,
    default_num_classes,
    default_stem,
    has_depth,
    input_shape,
    resolve_shortcut,
)
from models.spec import NETWORK_FIELDS, PAPER, NetworkSpec

RunArch = Literal["plain", "resnet", "pair", "preact"]
Dataset = Literal["cifar10", "cifar100", "imagenet", "folder", "synthetic", "synthetic-imagenet"]
Schedule = Literal["multistep", "plateau"]
Toggle = Literal["auto", "on", "off"]
ResponseStat = Literal["all", "channel"]
ResponseBN = Literal["eval", "batch"]
WandbMode = Literal["offline", "online", "disabled"]
Precision = Literal["auto", "32-true", "bf16-mixed", "16-mixed"]
CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
DecodeDevice = Literal["cpu", "gpu"]
Augment = Literal["cifar", "imagenet"]

PAIR_MEMBERS = ("plain", "resnet")
"""The two networks of a pair (``arch: pair``), in the order they are trained, logged and written."""


def family_of(dataset: str | None, depth: int | None = None) -> str:
    """The network family a dataset trains: ImageNet's (18/34/50...: imagenet, folder, synthetic-imagenet), or the
    CIFAR 6n+2 one (cifar10, cifar100, synthetic). A folder trains the CIFAR family at a ``depth`` only it has
    (8, 20, 56, 110, ...), the ImageNet family otherwise (``net_family`` chooses either)."""
    if dataset == "folder" and depth is not None and depth not in IMAGENET_DEPTHS and has_depth("cifar10", depth):
        return "cifar10"
    return "imagenet" if dataset in IMAGENET_FAMILY_DATASETS else "cifar10"


def recipe_of(dataset: str | None) -> Augment | None:
    """The augmentation a dataset is trained with when it offers no choice (imagenet's, or CIFAR's for the in-memory
    datasets), or None for a folder (``augment`` chooses, by image size by default)."""
    if dataset == "folder":
        return None
    return "imagenet" if dataset == "imagenet" else "cifar"


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; ``dataclasses.asdict`` of it is the run's config.json."""

    # -- the network (models.build_model) --
    arch: RunArch = "resnet"  # pair: plain + resnet on identical batches; preact: pre-activation ResNet (He 2016b)
    depth: int = 20  # CIFAR family: 6n+2 (9n+2 bottlenecks: 164, 1001); ImageNet family: 18/34/50/101/152
    net_family: Family | None = None  # folder: the nets' family; None = cifar10 for a depth only it has, else imagenet
    dataset: Dataset = CIFAR10_PAPER["dataset"]  # folder: any class-per-folder tree; synthetic[-imagenet]: generated
    shortcut: Shortcut | None = None  # A/B/C; None = paper default (A for CIFAR and ImageNet 18/34, B for 50+)
    stride_in: StrideIn = "1x1"  # where a downsampling bottleneck puts its stride: paper "1x1", torchvision "3x3"
    width: int | None = None  # first-stage width; None = 16 (CIFAR) or 64 (ImageNet)
    stem: Stem | None = None  # ImageNet family: 7x7/2 + max pool (paper) or 3x3/1; None = 3x3 up to 128 px, else 7x7
    zero_init_residual: bool = False  # zero the last BN of each residual branch (not in the paper)
    shortcut_weight: float = PAPER["shortcut_weight"]  # alpha in relu(alpha*shortcut(x) + F(x)); resnet/preact only
    norm: Norm = PAPER["norm"]  # BN after every conv (paper), or none
    init: Init = PAPER["init"]  # he (paper, fan-out), orthogonal, delta-orthogonal; fixup/skipinit: resnet, norm none
    activation: Activation = PAPER["activation"]  # relu, or TAT / DKS for a vanilla net (plain, norm none)
    preset: str | None = None  # recipe to start from; None = the dataset's paper recipe (demo for synthetic)
    seed: int = 0  # model init, data split, shuffling and augmentation all derive from it

    # -- optimisation: SGD with momentum, counted in iterations as in the paper (defaults: CIFAR10_PAPER) --
    max_steps: int = CIFAR10_PAPER["max_steps"]  # training iterations (optimizer steps), as the paper counts
    batch_size: int = CIFAR10_PAPER["batch_size"]  # global batch (split across devices under DDP)
    lr: float = CIFAR10_PAPER["lr"]  # initial learning rate of SGD
    momentum: float = 0.9  # SGD momentum (Sec. 3.4)
    weight_decay: float = 1e-4  # L2 penalty on every weight (Sec. 3.4)
    lr_schedule: Schedule = CIFAR10_PAPER["lr_schedule"]  # multistep (CIFAR) or divide-on-plateau (ImageNet)
    lr_milestones: tuple[float, ...] = CIFAR10_PAPER["lr_milestones"]  # fractions of max_steps
    lr_gamma: float = 0.1  # factor applied to the lr at each milestone or plateau
    plateau_patience: int = 3  # evaluations without improvement before the lr is divided
    plateau_threshold: float = 0.1  # improvement (error points) that counts as progress
    warmup: Toggle = "auto"  # auto = on for CIFAR ResNets of depth >= 110, as in the paper
    warmup_lr: float = 0.01  # lr during warm-up (Sec. 4.2: 0.01 for ResNet-110)
    warmup_until_error: float = 80.0  # training error (%) under which warm-up ends
    grad_clip: float | None = None  # max L2 norm of each net's gradient per step; None = unclipped (the paper's SGD)

    # -- evaluation, logging, checkpoints (iterations) --
    eval_every: int = CIFAR10_PAPER["eval_every"]  # iterations between evaluations (and layer-response probes)
    log_every: int = CIFAR10_PAPER["log_every"]  # iterations per logging window (training error is its mean)
    checkpoint_every: int = CIFAR10_PAPER["checkpoint_every"]  # iterations between checkpoints (two newest kept)
    response_images: int = 500  # fixed test images used for the layer-response probe (0 = off)
    response_stat: ResponseStat = "all"  # std over all elements, or mean of per-channel stds
    response_bn: ResponseBN = "eval"  # BN running statistics (eval) or the probe batch's statistics

    # -- data --
    data_dir: str = "data"  # holds cifar-10-batches-py, cifar-100-python, or train/ and val/ (imagenet, folder)
    download: bool = False  # allow torchvision to download CIFAR-10 / CIFAR-100 into data_dir
    data_verify: bool = True  # check CIFAR-10 / CIFAR-100 files against their published MD5 sums
    val_size: int = CIFAR10_PAPER["val_size"]  # training images held out for validation (0 = train on all)
    image_size: int | None = None  # generated data: image side (None = 32); folder: crop (None = image side, <= 224)
    num_classes: int | None = None  # None = 10 (CIFAR-10, generated), 100, 1000 (ImageNet), folder: its class count
    train_size: int | None = None  # generated data only; None = 10,000 (data.catalog)
    test_size: int | None = None  # generated data only; None = 2,000 (data.catalog)
    augment: Augment | None = None  # folder: cifar (pad, crop; Sec. 4.2) or imagenet (Sec. 3.4); None = cifar to 32 px
    input_std: bool = False  # also divide the mean-subtracted inputs by their per-channel std (paper: mean only)
    flip: bool = True  # random horizontal flip in training (false for digits and text, whose mirror images mean else)
    num_workers: int | None = None  # imagenet / folder DataLoader workers; None = the run's CPU threads (0 for one)
    test_crops: int = 10  # imagenet / folder final test (augment imagenet): 1 (centre crop) or 10 (Tables 2-3)

    # -- hardware --
    accelerator: str = "auto"  # Lightning accelerator: auto (GPU when present), cpu, gpu
    devices: int = 1  # devices per node (DDP above 1; batch_size stays the global batch)
    num_nodes: int = 1  # machines (DDP)
    precision: Precision = CIFAR10_PAPER["precision"]  # auto = bf16-mixed on GPU, 32-true on CPU (the demo's)
    channels_last: Toggle = "auto"  # auto = on with 16-bit precision on GPU only (see uses_channels_last)
    compile: CompileMode = "off"  # torch.compile mode; reduce-overhead adds CUDA graphs (see README, Speed)
    fuse: Toggle = "off"  # compute a pair's two networks as one grouped network; auto = where the recipe allows
    decode: DecodeDevice = "cpu"  # imagenet / folder JPEG decoding: PIL in DataLoader workers, or nvjpeg on the GPU

    # -- output --
    out: str | None = None  # run directory (for arch=pair: the folder holding both runs)
    runs_dir: str = "runs"  # the run store's root folder
    sweep: str = "adhoc"  # runs go to <runs_dir>/<sweep>/<run name> unless out is given
    wandb: WandbMode = "offline"  # W&B logging: offline files, online sync, or none
    wandb_project: str = "degradation"  # W&B project of the run
    wandb_entity: str | None = None  # W&B team or user; None = your default entity
    progress: Toggle = "auto"  # progress bar: auto = when attached to a terminal

    def __post_init__(self) -> None:
        check(self)

    # -- derived ---------------------------------------------------------------------------------------------------

    @property
    def family(self) -> str:
        """The network family: ``net_family`` where set, else the dataset's (``family_of``: CIFAR 6n+2 for cifar10,
        cifar100, synthetic and a folder at a CIFAR-only depth, the ImageNet family otherwise)."""
        return self.net_family or family_of(self.dataset, self.depth)

    @property
    def resolved_num_classes(self) -> int:
        """As set, else the dataset's: a folder's class count (its train/ sub-folders), 10 for generated data, 100 for
        CIFAR-100, else the family's (10 or 1000)."""
        if self.num_classes:
            return self.num_classes
        if self.dataset == "folder":
            return len(class_folders(self.data_dir)) or default_num_classes(self.family)
        if self.dataset in SYNTHETIC_DATASETS:
            return SYNTHETIC_CLASSES
        return CIFAR100_CLASSES if self.dataset == "cifar100" else default_num_classes(self.family)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input image: the family's, or the generated data's or folder's size."""
        if self.dataset in SYNTHETIC_DATASETS:
            side = self.image_size or SYNTHETIC_IMAGE_SIZE
        elif self.dataset == "folder":
            side = self.image_size or min(folder_image_side(self.data_dir) or FOLDER_IMAGE_SIZE, FOLDER_IMAGE_SIZE)
        else:
            return input_shape(self.family)
        return (3, side, side)

    @property
    def resolved_augment(self) -> Augment:
        """The training augmentation: as set, else the dataset's, and for a folder the CIFAR recipe up to
        ``CIFAR_RECIPE_MAX_SIZE`` px (a 16 px digit keeps all of itself), the paper's ImageNet one above."""
        if self.augment is not None:
            return self.augment
        return recipe_of(self.dataset) or ("cifar" if self.input_shape[-1] <= CIFAR_RECIPE_MAX_SIZE else "imagenet")

    @property
    def resolved_stem(self) -> Stem:
        """The stem built: as set, else the family's for inputs above SMALL_STEM_MAX_SIZE px and the 3x3 up to it
        (a 7x7/2 conv and max pool would leave a 64 px input 2x2 in the last stage)."""
        if self.stem is not None:
            return self.stem
        if self.family == "imagenet" and self.input_shape[-1] <= SMALL_STEM_MAX_SIZE:
            return "3x3"
        return default_stem(self.family)

    @property
    def warmup_enabled(self) -> bool:
        if self.warmup == "auto":
            return self.arch != "plain" and self.family == "cifar10" and self.depth >= 110
        return self.warmup == "on"

    @property
    def member_archs(self) -> tuple[str, ...]:
        """The arch of each network the config trains: plain and resnet for a pair, else its own."""
        return PAIR_MEMBERS if self.arch == "pair" else (self.arch,)

    def network_spec(self, arch: str | None = None, resolved: bool = True) -> NetworkSpec:
        """The network the config trains (a pair: its member ``arch``), its options as ``models`` builds them.

        With ``resolved`` False, num_classes and stem as set (no look into a folder's classes): what the checks
        validate."""
        options = {name: getattr(self, name) for name in NETWORK_FIELDS if name not in ("family", "arch")}
        options["arch"] = arch or self.arch
        if resolved:
            options.update(num_classes=self.resolved_num_classes, stem=self.resolved_stem)
        return NetworkSpec(family=self.family, **options)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolved(self) -> RunConfig:
        """This config with its data-dependent choices made (as its config.json records them): the family, the
        augmentation and a folder's crop, each as set or as derived from the dataset, its images and the depth."""
        size = {"image_size": self.input_shape[-1]} if self.dataset == "folder" else {}
        return self.replace(net_family=self.family, augment=self.resolved_augment, **size)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def members(self) -> list[RunConfig]:
        """The single-network runs this config trains (shortcut resolved): itself, or plain and resnet for a pair."""
        return [
            self.replace(arch=a, shortcut=resolve_shortcut(a, self.depth, self.family, self.shortcut))
            for a in self.member_archs
        ]


__all__ = ["PAIR_MEMBERS", "Augment", "ConfigError", "RunConfig", "family_of", "recipe_of"]
