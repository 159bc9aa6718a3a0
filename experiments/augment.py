"""Augmentation as the paper describes it, done on whole batches on the training device.

CIFAR: per-pixel mean subtracted, 4 pixels of zero padding on each side, a uniformly random 32x32 crop and a
horizontal flip with probability 0.5. ImageNet: AlexNet-style PCA colour noise (the shorter-side resize, crop
and flip come from torchvision transforms in the data module).
"""

from __future__ import annotations

import torch

# AlexNet's PCA of ImageNet RGB pixels (in [0, 1]); the values used by fb.resnet.torch and others.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
PCA_ALPHA_STD = 0.1


def normalize(images: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW images to float in [0, 1] minus the per-pixel mean."""
    return images.float().div_(255.0).sub_(mean)


def pad_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Zero-pad by ``pad``, take a uniformly random crop of the original size, flip half the images at random.

    Offsets are uniform over 0..2*pad in each axis and flips are Bernoulli(0.5), drawn per image from
    ``generator`` (on the tensor's device), so a batch is a pure function of its inputs and generator state.
    """
    n, _, h, w = x.shape
    device = x.device
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=device)
    flips = torch.rand(n, generator=generator, device=device) < 0.5
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, 0, None] + torch.arange(h, device=device)
    cols = offsets[:, 1, None] + torch.arange(w, device=device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


class PCALighting:
    """AlexNet PCA colour augmentation on a float CHW image in [0, 1]."""

    def __init__(self, alpha_std: float = PCA_ALPHA_STD):
        self.alpha_std = alpha_std
        self.eigval = torch.tensor(PCA_EIGVAL)
        self.eigvec = torch.tensor(PCA_EIGVEC)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.alpha_std == 0:
            return img
        alpha = torch.randn(3) * self.alpha_std
        rgb = self.eigvec @ (alpha * self.eigval)
        return img + rgb.view(3, 1, 1).to(img.dtype)
