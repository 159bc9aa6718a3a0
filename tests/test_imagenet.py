"""The ImageNet path end to end on a tiny ImageFolder of real JPEGs: augmentation, centre crop and 10-crop test,
with PIL decoding in workers (decode=cpu) and batched decoding after the transfer (decode=gpu, run here on the CPU).
"""

import itertools
import os
from collections import Counter

import numpy
import pytest
import torch

from experiments.config import ConfigError, config_from_dict
from experiments.data.augment import (
    PCA_ALPHA_STD,
    PCA_EIGVAL,
    PCA_EIGVEC,
    PCALighting,
    draw_scale_crop_flip,
    pca_lighting,
    scale_crop_flip,
    shorter_side_size,
)
from experiments.data.datamodules import BatchOrder, ImageNetDataModule, SeededItems, StepBatchSampler
from experiments.data.decode import (
    EncodedBatch,
    EncodedImages,
    collate_encoded,
    decode_augment,
    decode_batch,
    read_encoded,
)
from experiments.data.sources import DataError, FolderImages, load_image
from experiments.train import train
from experiments.training.module import DegradationModule


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
    train_img, _ = dm._images("train", "train")[0]
    val_img, _ = dm._images("val", "val")[0]
    crops, _ = dm._images("val", "test")[0]
    assert train_img.shape == val_img.shape == (3, 224, 224) and crops.shape == (10, 3, 224, 224)
    assert abs(val_img.mean().item()) < 0.6, "per-channel mean subtracted"
    assert torch.allclose(crops[4], crops[9].flip(-1), atol=1e-6), "the 10 crops are 5 crops and their flips"
    assert dm.train_size == 8


@pytest.mark.integration
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


# -- decode=gpu: bytes from workers, batched decode and augmentation on the device (run here on the CPU) ---------

ONE_LEVEL = 1 / 255 + 1e-6


def imagenet_config(root, **overrides):
    """A tiny two-class ImageNet run config on the ImageFolder at ``root``."""
    values = {"dataset": "imagenet", "data_dir": str(root), "depth": 18, "num_classes": 2, "num_workers": 0,
              "batch_size": 4}  # fmt: skip
    return config_from_dict({**values, **overrides})


def gpu_path_on_cpu(root, **overrides) -> ImageNetDataModule:
    """The data module with its decode=gpu loaders and hooks, run on the CPU (check_decode is tested separately)."""
    dm = ImageNetDataModule(imagenet_config(root, **overrides))
    dm.decode = "gpu"
    return dm


def device_batch(dm: ImageNetDataModule, batch):
    """What Lightning does with a loader's batch before the step: transfer, then ``on_after_batch_transfer``."""
    return dm.on_after_batch_transfer(dm.transfer_batch_to_device(batch, torch.device("cpu"), 0), 0)


def test_gpu_decode_path_gives_the_papers_shapes(tmp_path):
    write_imagefolder(tmp_path)
    dm = gpu_path_on_cpu(tmp_path)
    expected = {"train": (4, 3, 224, 224), "val": (4, 3, 224, 224), "test": (1, 10, 3, 224, 224)}
    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader()[0], "test": dm.test_dataloader()}
    for view, loader in loaders.items():
        batch = next(iter(loader))
        assert isinstance(batch, EncodedBatch) and batch.view == view
        assert batch.decoded == [] and sum(batch.lengths) == len(batch.data), "workers only read the bytes"
        assert all(t.ndim == 1 and t[:2].tolist() == [0xFF, 0xD8] for t in batch.images()), "one JPEG per image"
        x, y = device_batch(dm, batch)
        assert x.shape == expected[view] and x.dtype == torch.float32, view
        assert y.dtype == torch.int64 and y.tolist() == batch.labels.tolist()
        assert -0.6 < x.mean().item() < 0.6 and x.min() >= -0.6 and x.max() <= 1.0, "scaled to [0, 1], mean removed"


def test_gpu_decode_path_reads_bytes_in_two_workers(tmp_path):
    write_imagefolder(tmp_path)
    dm = gpu_path_on_cpu(tmp_path, num_workers=2)
    labels = []
    for batch in itertools.islice(dm.train_dataloader(), 2):
        x, y = device_batch(dm, batch)
        assert x.shape == (4, 3, 224, 224)
        labels += y.tolist()
    assert sorted(labels) == [0, 0, 0, 0, 1, 1, 1, 1], "one epoch sees every training image once"


@pytest.mark.parametrize("view", ["val", "test"])
def test_gpu_decode_eval_views_match_the_pil_path(tmp_path, view):
    """Same JPEG, same geometry: at most one grey level apart anywhere.

    Both decoders are libjpeg-turbo with the same settings (identical pixels); the resize is Pillow's fixed-point
    antialiased bilinear against torch's, which round a few pixels the other way. A crop one pixel off or a
    different filter puts these noise images tens of levels apart.
    """
    write_imagefolder(tmp_path)
    dm = gpu_path_on_cpu(tmp_path)
    pil = FolderImages(dm.samples("val"), dm._transforms(view))
    encoded = EncodedImages(pil.samples)
    for i in range(len(pil)):
        x, _ = decode_augment(collate_encoded([encoded[i]], view), torch.device("cpu"), dm.MEAN, torch.Generator())
        assert (x[0] - pil[i][0]).abs().max() <= ONE_LEVEL, pil.samples[i][0]


def test_scale_augmentation_draws_match_the_papers_distribution():
    """Shorter side uniform over 256..480, crop offsets uniform over every position, flips half the time.

    Sizes 256x320 and 320x256 scale without rounding, so the drawn shorter side is read back exactly.
    """
    n = 20_000
    sizes = [(256, 320), (320, 256)] * (n // 2)
    h, w, top, left, flip = draw_scale_crop_flip(sizes, torch.Generator().manual_seed(1)).T
    shorter, longer = torch.minimum(h, w), torch.maximum(h, w)
    counts = torch.bincount(shorter - 256, minlength=225)
    assert shorter.min() == 256 and shorter.max() == 480 and len(counts) == 225
    assert counts.min() > 0.5 * n / 225 and counts.max() < 1.5 * n / 225, "every size about equally often"
    assert torch.equal(longer, shorter * 5 // 4), "aspect ratio kept"
    for offset, extent in ((top, h), (left, w)):
        room = extent - 224
        assert offset.min() == 0 and (offset <= room).all() and (offset == room).any(), "every position reachable"
        fraction = torch.histc((offset.double() + 0.5) / (room + 1).double(), bins=10, min=0, max=1) / n
        assert (fraction - 0.1).abs().max() < 0.015, f"offsets uniform over the image: {fraction.tolist()}"
    assert abs(flip.double().mean().item() - 0.5) < 0.02
    assert h[0::2].lt(w[0::2]).all() and h[1::2].gt(w[1::2]).all(), "each row belongs to its own image"


@pytest.mark.parametrize("height, width", [(375, 500), (500, 375), (333, 500), (300, 260), (480, 640)])
def test_scaled_sizes_round_as_random_shortest_size(height, width):
    from torchvision.transforms import v2

    image = torch.zeros(3, height, width, dtype=torch.uint8)
    for s in range(256, 481, 7):
        assert shorter_side_size(height, width, s) == tuple(v2.RandomShortestSize([s])(image).shape[-2:]), s


def test_scale_crop_flip_applies_its_drawn_parameters():
    from torchvision.transforms.v2 import functional as TF

    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 300 + 20 * i, 260 + 30 * i), generator=g, dtype=torch.uint8) for i in range(6)]
    x = scale_crop_flip(images, torch.Generator().manual_seed(3))
    params = draw_scale_crop_flip([tuple(im.shape[-2:]) for im in images], torch.Generator().manual_seed(3))
    assert x.shape == (6, 3, 224, 224) and x.dtype == torch.uint8
    assert 0 < params[:, 4].sum() < 6, "the seed gives both flipped and unflipped images"
    for img, out, (h, w, top, left, flip) in zip(images, x, params.tolist(), strict=True):
        crop = TF.resize(img, [h, w], antialias=True)[:, top : top + 224, left : left + 224]
        assert torch.equal(out, crop.flip(-1) if flip else crop)


def test_batched_pca_lighting_has_the_cpu_paths_colour_covariance():
    """PCA noise adds eigvec @ (alpha * eigval) per image: covariance eigvec diag((0.1 eigval)^2) eigvec^T."""
    n = 20_000
    batched = pca_lighting(torch.zeros(n, 3, 1, 1), torch.Generator().manual_seed(0)).view(n, 3)
    per_image = torch.stack([PCALighting()(torch.zeros(3, 1, 1)).view(3) for _ in range(n)])
    eigvec, eigval = torch.tensor(PCA_EIGVEC), torch.tensor(PCA_EIGVAL)
    expected = eigvec @ torch.diag((PCA_ALPHA_STD * eigval) ** 2) @ eigvec.T
    wrong = eigvec.T @ torch.diag((PCA_ALPHA_STD * eigval) ** 2) @ eigvec
    assert (expected - wrong).abs().max() > 5e-5, "the check below can tell eigvec from its transpose"
    for noise in (batched, per_image):
        assert torch.allclose(noise.T.cov(), expected, atol=1e-5)
        assert noise.mean(0).abs().max() < 1e-3


def write_odd_images(folder):
    """The files nvjpeg cannot take that real ImageNet holds, each named .JPEG, and a plain JPEG."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    image = Image.fromarray(torch.randint(0, 256, (300, 260, 3), generator=g, dtype=torch.uint8).numpy())
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / "rgb.JPEG", "JPEG", quality=90)
    image.save(folder / "png.JPEG", "PNG")
    image.convert("CMYK").save(folder / "cmyk.JPEG", "JPEG", quality=90)
    image.convert("L").save(folder / "gray.JPEG", "JPEG", quality=90)
    image.save(folder / "progressive.JPEG", "JPEG", quality=90, progressive=True)
    return {p.stem: str(p) for p in folder.iterdir()}


def pil_pixels(path):
    return torch.from_numpy(numpy.array(load_image(path))).permute(2, 0, 1)


def test_files_nvjpeg_cannot_decode_fall_back_to_the_cpu_decoder(tmp_path):
    from torchvision.io import read_file

    paths = write_odd_images(tmp_path)
    read = {name: read_encoded(path) for name, path in paths.items()}
    assert {name for name, t in read.items() if t.ndim == 1} == {"rgb", "progressive"}, "only these reach nvjpeg"
    for name in ("png", "cmyk", "gray"):
        assert torch.equal(read[name], pil_pixels(paths[name])), f"{name} decoded in the worker as PIL decodes it"
    names = sorted(paths)
    batch = collate_encoded([(read[n], i, paths[n]) for i, n in enumerate(names)], "val")
    assert len(batch.decoded) == 3 and batch.lengths.count(0) == 3
    decoded = decode_batch(batch.images(), batch.paths, torch.device("cpu"))
    for name, image in zip(names, decoded, strict=True):
        assert image.shape == (3, 300, 260) and torch.equal(image, pil_pixels(paths[name])), name
    raw = [read_file(paths[n]) for n in names]
    retried = decode_batch(raw, [paths[n] for n in names], torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(retried, decoded, strict=True)), "a rejected batch is decoded alone"


def test_a_corrupt_file_raises_the_named_data_error(tmp_path):
    paths = write_odd_images(tmp_path)
    garbage = tmp_path / "garbage.JPEG"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match=rf"unreadable image {garbage}.*remove or replace the file"):
        read_encoded(str(garbage))
    truncated = tmp_path / "truncated.JPEG"
    whole = open(paths["rgb"], "rb").read()
    truncated.write_bytes(whole[: len(whole) // 2])
    bytes_ = read_encoded(str(truncated))
    assert bytes_.ndim == 1, "its header is intact, so only decoding can find the fault"
    batch = collate_encoded([(read_encoded(paths["rgb"]), 0, paths["rgb"]), (bytes_, 1, str(truncated))], "train")
    with pytest.raises(DataError, match=rf"unreadable image {truncated}"):
        decode_augment(batch, torch.device("cpu"), ImageNetDataModule.MEAN, torch.Generator())


def test_gpu_decode_without_cuda_fails_before_anything_is_written(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "data")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = imagenet_config(tmp_path / "data", decode="gpu", runs_dir=str(tmp_path / "runs"), wandb="disabled")
    with pytest.raises(ConfigError, match=r"^decode 'gpu' .* CUDA is not available .*; use --decode cpu$"):
        ImageNetDataModule(cfg)
    with pytest.raises(ConfigError, match="decode 'gpu'"):
        train(cfg, echo=lambda *a, **k: None)
    assert not (tmp_path / "runs").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match=r"accelerator is 'cpu'; use --decode cpu or --accelerator gpu$"):
        ImageNetDataModule(imagenet_config(tmp_path / "data", decode="gpu", accelerator="cpu"))


def _train_tiny_with_gpu_decoding(tmp_path):
    """Four steps of a width-8 ResNet-18 with decode=gpu, evaluated twice and 10-crop tested; a finished run."""
    cfg = imagenet_config(
        tmp_path / "data", decode="gpu", arch="resnet", width=8, max_steps=4, eval_every=2, log_every=2,
        checkpoint_every=4, num_workers=2, response_images=4, wandb="disabled", runs_dir=str(tmp_path / "runs"),
    )  # fmt: skip
    (summary,) = train(cfg, echo=lambda *a, **k: None).values()
    assert summary["status"] == "finished" and summary["step"] == 4
    assert summary["final_val_error"] is not None and summary["final_test10crop_error"] is not None


@pytest.mark.integration
def test_lightning_runs_the_gpu_decode_hooks_in_fit_validate_and_test(tmp_path, monkeypatch):
    """The decode=gpu path on the CPU through Lightning: only the CUDA check is bypassed, nothing else is faked."""
    import experiments.data.datamodules

    write_imagefolder(tmp_path / "data")
    write_odd_images(tmp_path / "data" / "train" / "n01440764")
    monkeypatch.setattr(experiments.data.datamodules, "check_decode", lambda cfg: cfg.decode)
    calls, decode = [], experiments.data.datamodules.decode_augment

    def counted(batch, *args):
        calls.append(batch.view)
        return decode(batch, *args)

    monkeypatch.setattr(experiments.data.datamodules, "decode_augment", counted)
    _train_tiny_with_gpu_decoding(tmp_path)
    assert calls.count("train") == 4 and "val" in calls and "test" in calls


@pytest.mark.integration
@pytest.mark.skipif(not torch.cuda.is_available(), reason="decode=gpu needs CUDA (nvjpeg)")
def test_tiny_imagenet_trains_with_gpu_decoding(tmp_path):
    write_imagefolder(tmp_path / "data")
    write_odd_images(tmp_path / "data" / "train" / "n01440764")
    _train_tiny_with_gpu_decoding(tmp_path)


@pytest.mark.integration
def test_decode_benchmark_runs_and_saves_every_path_it_can(tmp_path, capsys):
    import json

    from benchmarks import decode as bench

    out = tmp_path / "decode.json"
    args = ["--images", "16", "--batch", "8", "--workers", "0", "--rounds", "1", "--out", str(out)]
    assert bench.main(args) == 0
    report = json.loads(out.read_text())
    expected = ["cpu", "gpu"] if torch.cuda.is_available() else ["cpu"]
    assert [r["path"] for r in report["results"]] == expected and all(r["images_per_s"] > 0 for r in report["results"])
    assert ("gpu path: needs CUDA" in capsys.readouterr().out) != torch.cuda.is_available()


# -- training batches: each folder scanned once; batch k a function of (seed, k) alone, as for CIFAR -------------


def tiny_run(root, runs, **overrides):
    """Seven steps of batch 2 (four batches an epoch) with a width-8 ResNet-18, step=5.ckpt, no 10-crop test."""
    values = {"arch": "resnet", "width": 8, "batch_size": 2, "max_steps": 7, "eval_every": 7, "log_every": 1,
              "checkpoint_every": 5, "test_crops": 1, "response_images": 0, "wandb": "disabled",
              "runs_dir": str(runs)}  # fmt: skip
    return imagenet_config(root, **{**values, **overrides})


def quiet(*args, **kwargs):
    pass


@pytest.mark.integration
def test_a_run_lists_each_image_folder_once(tmp_path, monkeypatch):
    """Listing ImageNet's class folders reads 1.28M directory entries for train alone."""
    write_imagefolder(tmp_path / "data")
    class_folders = {str(p) for p in (tmp_path / "data").glob("*/*")}
    listed, scandir = Counter(), os.scandir

    def counted(path="."):
        listed[str(path)] += 1
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counted)
    train(tiny_run(tmp_path / "data", tmp_path / "runs", max_steps=2, eval_every=2), echo=quiet)
    assert {p: listed[p] for p in class_folders} == dict.fromkeys(class_folders, 1)


def test_training_batches_depend_on_seed_and_step_only_on_any_number_of_devices():
    single = StepBatchSampler(BatchOrder(10, batch_size=4, seed=3), 0, 1, lambda: 0)
    epochs = [[i for k in (2 * e, 2 * e + 1) for i, _ in single.batch(k)] for e in range(3)]
    assert all(len(set(e)) == 8 for e in epochs), "an epoch: two batches of distinct images, the other two dropped"
    assert len({tuple(e) for e in epochs}) == 3, "each epoch its own order"
    assert len({seed for k in range(6) for _, seed in single.batch(k)}) == 24, "each image of each step its own seed"
    from_step_5 = StepBatchSampler(BatchOrder(10, 4, 3), 0, 1, lambda: 5)
    assert list(itertools.islice(from_step_5, 3)) == [single.batch(k) for k in (5, 6, 7)], "a resumed run's batches"
    ranks = [StepBatchSampler(BatchOrder(10, 4, 3), rank, 2, lambda: 0) for rank in range(2)]
    for k in range(6):
        assert ranks[0].batch(k) + ranks[1].batch(k) == single.batch(k), "DDP ranks split the batch, seeds and all"
    assert StepBatchSampler(BatchOrder(10, 4, 4), 0, 1, lambda: 0).batch(0) != single.batch(0)


def test_an_images_augmentation_depends_on_its_seed_only(tmp_path):
    write_imagefolder(tmp_path)
    items = SeededItems(ImageNetDataModule(imagenet_config(tmp_path))._images("train", "train"))
    state = torch.get_rng_state()
    a, _ = items[(3, 7)]
    assert torch.equal(torch.get_rng_state(), state), "the caller's generator is left as it was"
    torch.rand(100)
    b, _ = items[(3, 7)]
    c, _ = items[(3, 8)]
    assert torch.equal(a, b) and not torch.equal(a, c)


class _Killed(Exception):
    """Stops a run between checkpoints, as a kill does."""


@pytest.mark.integration
def test_a_run_resumed_mid_epoch_trains_on_the_batches_of_an_uninterrupted_one(tmp_path, monkeypatch):
    """Stopped while training step 6 and resumed from step=5.ckpt (epoch 1, batch 1): every step's images and their
    augmentation equal the uninterrupted run's, which also ran with no workers against two.

    One training image per class, so a batch's labels name its images.
    """
    write_imagefolder(tmp_path / "data", classes=[f"n{c:08d}" for c in range(8)], per_class=1)
    seen, stop_at, step = {}, [None], DegradationModule.training_step

    def recorded(self, batch, batch_idx):
        if self.global_step == stop_at[0]:
            raise _Killed
        seen[self.global_step] = batch
        return step(self, batch, batch_idx)

    monkeypatch.setattr(DegradationModule, "training_step", recorded)
    train(tiny_run(tmp_path / "data", tmp_path / "whole", num_classes=8), echo=quiet)
    whole = dict(seen)
    seen.clear()
    cut = tiny_run(tmp_path / "data", tmp_path / "cut", num_classes=8, num_workers=2)
    stop_at[0] = 6
    with pytest.raises(_Killed):
        train(cut, echo=quiet)
    resumed = dict(seen)
    seen.clear()
    stop_at[0] = None
    (summary,) = train(cut, echo=quiet).values()
    assert summary["status"] == "finished" and sorted(seen) == [5, 6], "resumed from step=5.ckpt"
    resumed.update(seen)

    def images(run):
        return [run[k][1].tolist() for k in sorted(run)]

    assert sorted(sum(images(whole)[:4], [])) == list(range(8)), "four batches an epoch, each image once"
    assert images(resumed) == images(whole)
    assert all(torch.equal(resumed[k][0], whole[k][0]) for k in whole), "and each image augmented the same way"
