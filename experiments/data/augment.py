"""Augmentation as the paper describes it, done on whole batches on the training device.

CIFAR: per-pixel mean subtracted, 4 pixels of zero padding on each side, a uniformly random 32x32 crop and a
horizontal flip with probability 0.5 (Sec. 4.2; a folder of small images takes the same at its size, ``cifar_views``).
ImageNet: AlexNet-style PCA colour noise (with ``decode=cpu`` the shorter-side resize, crop and flip come from
torchvision transforms in the data module); with ``decode=gpu`` the same resize, crop, flip and colour noise are
applied here to lists of decoded images on the training device.
A folder dataset at another input size takes the same views with every length scaled (``geometry_for``). Either
recipe's flip can be switched off (``flip``: digits and text, whose mirror images are other symbols).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from models.options import input_shape

# AlexNet's PCA of ImageNet RGB pixels (in [0, 1]); the values used by fb.resnet.torch and others.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
PCA_ALPHA_STD = 0.1
_PCA_EIGVAL = torch.tensor(PCA_EIGVAL)
_PCA_EIGVEC_T = torch.tensor(PCA_EIGVEC).T

# The paper's ImageNet views: shorter side uniform in [256, 480] for training, 256 for testing; crops the net's input.
IMAGENET_SCALE = (256, 480)
IMAGENET_RESIZE = 256
IMAGENET_CROP = input_shape("imagenet")[-1]


class Geometry(NamedTuple):
    """The paper's ImageNet views at one input size: for training the shorter side uniform in ``scale`` and a random
    ``crop``; for evaluation the shorter side ``resize`` and the centre ``crop`` (or 10 crops)."""

    scale: tuple[int, int]
    resize: int
    crop: int


IMAGENET_GEOMETRY = Geometry(IMAGENET_SCALE, IMAGENET_RESIZE, IMAGENET_CROP)


def geometry_for(crop: int) -> Geometry:
    """The paper's views scaled to a ``crop``-px input: each length times crop / 224, rounded.

    The crop keeps its share of the resized image (shorter side 1.14x to 2.14x the crop, evaluation at 1.14x), so
    the scale augmentation is the paper's at any size: 64 px crops come from a shorter side of 73 to 137 and are
    evaluated at 73.
    """
    if crop == IMAGENET_CROP:
        return IMAGENET_GEOMETRY
    factor = crop / IMAGENET_CROP
    low, high = (round(side * factor) for side in IMAGENET_SCALE)
    return Geometry((max(low, crop), max(high, crop)), max(round(IMAGENET_RESIZE * factor), crop), crop)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 NCHW images to float in [0, 1] minus the per-pixel mean (the paper's), then divided by the per-channel
    ``std`` (C, 1, 1) where given (``input_std``)."""
    x = images.float().div_(255.0).sub_(mean)
    return x if std is None else x.div_(std)


CIFAR_PAD = 4
"""Zero padding on each side before the CIFAR recipe's random crop of 32 px (Sec. 4.2)."""


def cifar_pad(side: int) -> int:
    """A folder's CIFAR padding at a ``side``-px crop: the paper's 4 px of 32 scaled as its ImageNet views are
    (``geometry_for``), at least 1: an 8 px digit moves by up to 1 px, not half its width."""
    return max(1, round(CIFAR_PAD * side / input_shape("cifar10")[-1]))


def pad_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = CIFAR_PAD, flip: bool = True) -> torch.Tensor:
    """Zero-pad by ``pad``, take a uniformly random crop of the original size, flip half the images at random.

    Offsets are uniform over 0..2*pad in each axis and flips are Bernoulli(0.5), drawn per image from
    ``generator`` (on the tensor's device), so a batch is a pure function of its inputs and generator state.
    Without ``flip`` the flips are drawn and not applied: the crops are those of the flipping run.
    """
    n, _, h, w = x.shape
    device = x.device
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=device)
    flips = (torch.rand(n, generator=generator, device=device) < 0.5) & flip
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, 0, None] + torch.arange(h, device=device)
    cols = offsets[:, 1, None] + torch.arange(w, device=device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


class PCALighting:
    """AlexNet PCA colour augmentation on a float CHW image in [0, 1], as a transform for DataLoader workers."""

    def __init__(self, alpha_std: float = PCA_ALPHA_STD):
        self.alpha_std = alpha_std

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.alpha_std == 0:
            return img
        return pca_lighting(img[None], None, self.alpha_std)[0]


def pca_lighting(x: torch.Tensor, generator: torch.Generator | None, alpha_std: float = PCA_ALPHA_STD) -> torch.Tensor:
    """AlexNet PCA colour noise on a float NCHW batch: per image, alpha ~ N(0, alpha_std^2) per eigenvector.

    ``generator`` is a CPU generator (None: the global one, which DataLoader workers seed); the three numbers per
    image are drawn on the host and added on ``x``'s device.
    """
    alpha = torch.randn(len(x), 3, generator=generator) * alpha_std
    rgb = (alpha * _PCA_EIGVAL) @ _PCA_EIGVEC_T
    return x + rgb.to(device=x.device, dtype=x.dtype, non_blocking=True).view(-1, 3, 1, 1)


def shorter_side_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """(height, width) after scaling the shorter side to ``shorter``, rounded as torchvision's RandomShortestSize."""
    r = shorter / min(height, width)
    return int(height * r), int(width * r)


def draw_scale_crop_flip(
    sizes: list[tuple[int, int]],
    generator: torch.Generator,
    scale: tuple[int, int] = IMAGENET_SCALE,
    crop: int = IMAGENET_CROP,
) -> torch.Tensor:
    """Random parameters of the paper's ImageNet scale augmentation for images of the given (height, width).

    Per image, as the ``decode=cpu`` transforms draw them: shorter side an integer uniform in ``scale``
    (inclusive), crop offsets uniform over every valid position of the resized image, flip with probability 0.5.
    Returns int64 (N, 5) rows of (resized height, resized width, top, left, flip), drawn on the host.
    """
    n = len(sizes)
    shorter = torch.randint(scale[0], scale[1] + 1, (n,), generator=generator).tolist()
    offsets = torch.rand(n, 2, generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    rows = []
    for (h0, w0), s, (u, v), flip in zip(sizes, shorter, offsets, flips, strict=True):
        h, w = shorter_side_size(h0, w0, s)
        rows.append((h, w, int(u * (h - crop + 1)), int(v * (w - crop + 1)), int(flip)))
    return torch.tensor(rows, dtype=torch.int64).view(n, 5)


def scale_crop_flip(
    images: list[torch.Tensor],
    generator: torch.Generator,
    scale: tuple[int, int] = IMAGENET_SCALE,
    crop: int = IMAGENET_CROP,
    flip: bool = True,
) -> torch.Tensor:
    """The paper's ImageNet scale augmentation on uint8 CHW images of any sizes, as one uint8 NCHW batch.

    Each image is resized (antialiased bilinear, as ``RandomShortestSize``), cropped and flipped with the
    parameters of ``draw_scale_crop_flip`` (the flips drawn and dropped without ``flip``). Image sizes are host
    metadata even for CUDA tensors, so no step waits on the device.
    """
    from torchvision.transforms.v2 import functional as TF

    params = draw_scale_crop_flip([tuple(img.shape[-2:]) for img in images], generator, scale, crop)
    crops = []
    for img, (h, w, top, left, _) in zip(images, params.tolist(), strict=True):
        crops.append(TF.resize(img, [h, w], antialias=True)[:, top : top + crop, left : left + crop])
    x = torch.stack(crops)
    flips = (params[:, 4].bool() & flip).to(x.device, non_blocking=True)  # a blocking copy would wait for the step
    return torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)


def resize_center_crop(
    images: list[torch.Tensor], resize: int = IMAGENET_RESIZE, crop: int = IMAGENET_CROP
) -> torch.Tensor:
    """Validation view of each uint8 CHW image: shorter side ``resize``, centre ``crop``; one uint8 NCHW batch."""
    from torchvision.transforms.v2 import functional as TF

    return torch.stack([TF.center_crop(TF.resize(img, [resize], antialias=True), [crop]) for img in images])


def resize_ten_crop(
    images: list[torch.Tensor], resize: int = IMAGENET_RESIZE, crop: int = IMAGENET_CROP
) -> torch.Tensor:
    """The 10-crop test view (corners, centre and their flips) of each image after resizing: uint8 (N, 10, C, H, W)."""
    from torchvision.transforms.v2 import functional as TF

    return torch.stack(
        [torch.stack(list(TF.ten_crop(TF.resize(img, [resize], antialias=True), [crop]))) for img in images]
    )


def fit_to_square(side: int) -> list:
    """torchvision transforms that make any image ``side`` x ``side``: shorter side resized to it, centre crop. Applied
    once to a folder augmented as CIFAR (its images already that size pass unchanged), in memory or by workers."""
    from torchvision.transforms import v2

    return [v2.Resize(side), v2.CenterCrop(side)]


def cifar_views(
    side: int, mean: tuple[float, ...], flip: bool = True, std: tuple[float, ...] = (1.0, 1.0, 1.0)
) -> dict[str, object]:
    """The CIFAR recipe for DataLoader workers on a folder, as ``TrainStream`` applies it in memory: the image made
    ``side`` px square, scaled to [0, 1], the mean subtracted (and divided by ``std``), then (train) zero-padded by
    ``cifar_pad(side)``, randomly cropped and (``flip``) flipped; evaluation takes the square image itself."""
    from torchvision.transforms import v2

    square = [*fit_to_square(side), v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    train = [*square, v2.RandomCrop(side, padding=cifar_pad(side))] + [v2.RandomHorizontalFlip()] * flip
    return {"train": v2.Compose(train), "val": v2.Compose(square)}
