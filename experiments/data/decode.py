"""ImageNet JPEGs decoded on the training device (``decode=gpu``): workers read bytes, nvjpeg decodes whole batches.

With ``decode=cpu`` each DataLoader worker decodes and augments single images with PIL. With ``decode=gpu`` a
worker only reads a file's bytes; the collated batch (the bytes and labels) reaches the training step, where
``decode_augment`` decodes it with one batched ``torchvision.io.decode_jpeg`` call (nvjpeg on CUDA, libjpeg-turbo
on CPU, so the tests run this same code) and applies the paper's augmentation from ``augment.py``.

nvjpeg takes 8-bit, three-component, Huffman-coded JPEGs (baseline and progressive) and fails the whole batched
call on anything else. ImageNet also holds CMYK and grayscale JPEGs and a PNG named .JPEG, so workers read each
file's header and decode such files themselves with ``torchvision.io.decode_image`` (the libjpeg-turbo and
libpng that PIL uses too). A file that passes the header check but still fails in the batch is retried alone,
then on the CPU, and raises ``DataError`` naming it if nothing can decode it.

torchvision 0.29 deprecates its image decoders in favour of TorchCodec and warns on each call; they are the
decoders the harness's supported torchvision range (0.19 and later) has in common.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from experiments.data.augment import (
    IMAGENET_GEOMETRY,
    Geometry,
    pca_lighting,
    resize_center_crop,
    resize_ten_crop,
    scale_crop_flip,
)
from experiments.data.sources import DataError, unreadable_image

View = Literal["train", "val", "test"]
_HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2}  # SOF0 baseline, SOF1 extended, SOF2 progressive
_NOT_FRAMES = {0xC4, 0xC8, 0xCC}  # DHT, JPG, DAC share the 0xC? range with the frame markers
_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 have no length field
_SOS, _EOI = 0xDA, 0xD9


def device_decodable(data: torch.Tensor) -> bool:
    """Whether encoded bytes are a JPEG that nvjpeg decodes to RGB: Huffman-coded, 8-bit, three components.

    Walks the marker segments to the first frame header. PNGs, CMYK and grayscale JPEGs, arithmetic or
    lossless coding, 12-bit samples and anything unparsable answer False and are decoded on the CPU instead.
    """
    buf = memoryview(data.numpy())
    n, i = len(buf), 2
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return False
    while i + 4 <= n:
        if buf[i] != 0xFF:
            return False
        marker = buf[i + 1]
        if marker == 0xFF:
            i += 1
        elif marker in _NO_LENGTH:
            i += 2
        elif marker in (_SOS, _EOI):
            return False
        elif 0xC0 <= marker <= 0xCF and marker not in _NOT_FRAMES:
            return marker in _HUFFMAN_FRAMES and i + 10 <= n and buf[i + 4] == 8 and buf[i + 9] == 3
        else:
            i += 2 + (buf[i + 2] << 8 | buf[i + 3])
    return False


def _unreadable(path: str, error: Exception) -> DataError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return unreadable_image(path, reason)


def decode_on_cpu(data: torch.Tensor, path: str) -> torch.Tensor:
    """Decode any image torchvision reads (JPEG of any colour space, PNG, ...) to uint8 RGB CHW on the CPU."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise _unreadable(path, e) from None


def read_encoded(path: str) -> torch.Tensor:
    """A ``decode=gpu`` worker's share of one image: its bytes (1-D uint8) if nvjpeg can decode them, else the
    image decoded here on the CPU (uint8 RGB CHW), so a batch never holds bytes the batched decoder rejects."""
    from torchvision.io import read_file

    try:
        data = read_file(path)
    except RuntimeError as e:
        raise _unreadable(path, e) from None
    return data if device_decodable(data) else decode_on_cpu(data, path)


class EncodedImages(torch.utils.data.Dataset):
    """An ImageFolder's (path, label) samples as ``(read_encoded(path), label, path)``: no decoding for JPEGs."""

    def __init__(self, samples: Sequence[tuple[str, int]]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, str]:
        path, label = self.samples[index]
        return read_encoded(path), label, path


@dataclass
class EncodedBatch:
    """A collated ``decode=gpu`` batch: the JPEG bytes end to end in one tensor, plus any worker-decoded images.

    One buffer per batch, not one tensor per image: a worker sends a batch through one shared-memory segment, and
    ``read_file``'s own tensors cannot be shared between processes at all.
    """

    data: torch.Tensor  # 1-D uint8: the bytes of every JPEG left for the batched decoder, end to end
    lengths: list[int]  # per image: its number of bytes in data, or 0 when decoded holds it
    decoded: list[torch.Tensor]  # images decoded in the worker (uint8 RGB CHW), in batch order
    labels: torch.Tensor
    paths: list[str]
    view: View  # which view decode_augment makes: random train crop, centre crop or 10 crops

    def __len__(self) -> int:
        return len(self.labels)

    def images(self) -> list[torch.Tensor]:
        """Per image, in batch order: its JPEG bytes (a 1-D view into ``data``) or its decoded pixels (CHW)."""
        chunks = iter(self.data.split([n for n in self.lengths if n]))
        decoded = iter(self.decoded)
        return [next(chunks) if n else next(decoded) for n in self.lengths]

    def pin_memory(self) -> EncodedBatch:
        """Pin what is copied to the GPU (labels, worker-decoded images); nvjpeg reads the bytes on the host."""
        decoded = [t.pin_memory() for t in self.decoded]
        return dataclasses.replace(self, decoded=decoded, labels=self.labels.pin_memory())

    def to(self, device: torch.device) -> EncodedBatch:
        """Labels to ``device``; the bytes stay on the host, where ``decode_jpeg`` requires its input."""
        return dataclasses.replace(self, labels=self.labels.to(device, non_blocking=True))


def collate_encoded(items: list[tuple[torch.Tensor, int, str]], view: View) -> EncodedBatch:
    """DataLoader ``collate_fn`` for ``EncodedImages``: JPEG bytes packed into one buffer, decoded images kept."""
    images, labels, paths = zip(*items, strict=True)
    jpegs = [t for t in images if t.ndim == 1]
    return EncodedBatch(
        data=torch.cat(jpegs) if jpegs else torch.empty(0, dtype=torch.uint8),
        lengths=[len(t) if t.ndim == 1 else 0 for t in images],
        decoded=[t for t in images if t.ndim == 3],
        labels=torch.tensor(labels, dtype=torch.int64),
        paths=list(paths),
        view=view,
    )


def _decode_alone(data: torch.Tensor, path: str, device: torch.device) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError:
        return decode_on_cpu(data, path).to(device, non_blocking=True)


def decode_batch(images: list[torch.Tensor], paths: list[str], device: torch.device) -> list[torch.Tensor]:
    """Every image as uint8 RGB CHW on ``device``: JPEG bytes in one batched ``decode_jpeg`` call, decoded ones moved.

    The batched call fails as a whole if any image in it fails; then each image is decoded alone, so only a file
    that no decoder reads stops the run (``DataError`` naming it).
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    out = list(images)
    encoded = [i for i, t in enumerate(images) if t.ndim == 1]
    if encoded:
        try:
            decoded = decode_jpeg([images[i] for i in encoded], mode=ImageReadMode.RGB, device=device)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError:
            decoded = [_decode_alone(images[i], paths[i], device) for i in encoded]
        for i, img in zip(encoded, decoded, strict=True):
            out[i] = img
    return [t.to(device, non_blocking=True) for t in out]


def decode_augment(
    batch: EncodedBatch,
    device: torch.device,
    mean: Sequence[float],
    generator: torch.Generator,
    geometry: Geometry = IMAGENET_GEOMETRY,
    flip: bool = True,
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float batch and labels the ``decode=cpu`` loader gives for ``batch.view``, made on ``device``.

    train: scale augmentation, random crop and flip (``scale_crop_flip``; no flip without ``flip``), then PCA colour
    noise; val: shorter side 256 and centre crop; test: 10 crops (N, 10, 3, 224, 224); the sizes are ``geometry``'s
    (ImageNet's by default).
    All views are scaled to [0, 1], have the per-channel ``mean`` subtracted and are divided by ``std``. Random
    draws come from the CPU ``generator`` (unused for val and test).
    """
    images = decode_batch(batch.images(), batch.paths, device)
    scale, resize, crop = geometry
    if batch.view == "train":
        x = pca_lighting(scale_crop_flip(images, generator, scale, crop, flip).float().div_(255.0), generator)
    elif batch.view == "val":
        x = resize_center_crop(images, resize, crop).float().div_(255.0)
    else:
        x = resize_ten_crop(images, resize, crop).float().div_(255.0)
    stats = torch.tensor([mean, std]).to(x.device, non_blocking=True)  # no torch.tensor(device=...): that syncs
    x = x.sub_(stats[0].view(3, 1, 1))
    if any(s != 1.0 for s in std):  # the paper's path (mean only) keeps its one pass over the batch
        x = x.div_(stats[1].view(3, 1, 1))
    return x, batch.labels.to(device, non_blocking=True)
