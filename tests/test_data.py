"""Data: CIFAR-10 and CIFAR-100 read from their real on-disk formats, the paper's split and augmentation, generated
data, ImageNet."""

import pickle

import pytest
import torch

from experiments.config import ConfigError, config_from_dict
from experiments.data.augment import normalize, pad_crop_flip
from experiments.data.datamodules import BatchOrder, EvalStream, InMemoryDataModule, TrainStream
from experiments.data.sources import (
    DataError,
    check_imagenet_folder,
    load_cifar10,
    load_cifar100,
    load_image,
    pixel_mean,
    scan_image_folder,
    split_train_val,
    synthetic_arrays,
)
from tests.helpers import write_cifar10, write_cifar100


def test_tiny_cifar_in_the_real_pickle_layout_reads_through_torchvision(tmp_path):
    write_cifar10(tmp_path, per_batch=20, test=30)
    train, test = load_cifar10(tmp_path, verify=False)
    assert train.images.shape == (100, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (30, 3, 32, 32) and train.labels.dtype == torch.int64
    with (tmp_path / "cifar-10-batches-py" / "data_batch_1").open("rb") as f:
        raw = pickle.load(f, encoding="latin1")
    first = torch.from_numpy(raw["data"][0]).view(3, 32, 32)
    assert torch.equal(train.images[0], first), "row-major 3x32x32 planes, as CIFAR-10 stores them"
    assert train.labels[0].item() == raw["labels"][0]


def test_split_is_fixed_by_seed_and_disjoint(tmp_path):
    write_cifar10(tmp_path)
    train, _ = load_cifar10(tmp_path, verify=False)
    a_train, a_val = split_train_val(train, 10, seed=0)
    b_train, b_val = split_train_val(train, 10, seed=0)
    assert (len(a_train), len(a_val)) == (90, 10)
    assert torch.equal(a_val.images, b_val.images)
    _, c_val = split_train_val(train, 10, seed=1)
    assert not torch.equal(a_val.images, c_val.images)
    assert split_train_val(train, 0, seed=0)[1] is None
    rows = {tuple(x.flatten()[:16].tolist()) for x in a_train.images} & {
        tuple(x.flatten()[:16].tolist()) for x in a_val.images
    }
    assert not rows


def test_datamodule_mean_comes_from_the_training_split_only(tmp_path):
    write_cifar10(tmp_path)
    cfg = config_from_dict(
        {"dataset": "cifar10", "data_dir": str(tmp_path), "data_verify": False, "val_size": 10, "batch_size": 8}
    )
    dm = InMemoryDataModule(cfg)
    assert (len(dm.train_data), len(dm.val_data), len(dm.test_data)) == (90, 10, 20)
    assert torch.allclose(dm.mean, dm.train_data.images.float().mean(0) / 255)
    assert dm.eval_names == ["val", "test"]


def test_verified_load_names_the_file_that_fails_its_checksum(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"data_batch_1 fails its MD5 check"):
        load_cifar10(tmp_path, verify=True)


def test_missing_folder_and_missing_file_say_where_files_are_expected(tmp_path):
    with pytest.raises(
        DataError, match=r"CIFAR-10 not found: expected the python-format batches in .*cifar-10-batches-py"
    ):
        load_cifar10(tmp_path / "nowhere")
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"data_batch_3 is missing"):
        load_cifar10(tmp_path, verify=False)


def test_corrupt_batch_file_is_named(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"data_batch_2 is corrupt"):
        load_cifar10(tmp_path, verify=False)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with (tmp_path / "cifar-10-batches-py" / "test_batch").open("wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(DataError, match=r"test_batch is corrupt .*refusing to load builtins.print"):
        load_cifar10(tmp_path, verify=False)


def test_pad_crop_flip_has_the_papers_distribution():
    n = 20_000
    x = torch.arange(32.0).view(1, 1, 1, 32).expand(n, 1, 32, 32).contiguous()
    g = torch.Generator().manual_seed(0)
    out = pad_crop_flip(x + 1, g, pad=4)
    assert out.shape == (n, 1, 32, 32)
    # each output row is a window of (x+1) with zero padding; find its offset and orientation
    row = out[:, 0, 16]
    smallest = torch.where(row > 0, row, torch.inf).argmin(1)
    flipped = row.argmax(1) < smallest
    assert abs(flipped.float().mean().item() - 0.5) < 0.02
    oriented = torch.where(flipped[:, None], row.flip(1), row)
    first_nonzero = (oriented > 0).float().argmax(1)
    offset = torch.where(oriented[:, 0] > 0, 4 + oriented[:, 0].long() - 1, 4 - first_nonzero)
    counts = torch.bincount(offset, minlength=9)
    assert len(counts) == 9 and (counts > 0).all(), "offsets 0..8: up to 4 px each way"
    assert (counts.float() / n - 1 / 9).abs().max() < 0.015, "uniform over the 9 horizontal offsets"
    vertical = out[:, 0, :, 16]
    assert ((vertical == 0).sum(1) <= 4).all() and ((vertical == 0).any(1)).float().mean() > 0.8
    assert (out == 0).any(), "padding is zeros"


def test_train_stream_batch_k_depends_only_on_seed_and_k():
    data = synthetic_arrays(num_classes=4, image_size=8, train_size=64, test_size=8, seed=0)[0]
    mean = pixel_mean(data.images)
    a = TrainStream(data, mean, batch_size=16, seed=3)
    b = TrainStream(data, mean, batch_size=16, seed=3)
    seq = [a.batch(k) for k in range(10)]
    x7, y7 = b.batch(7)
    assert torch.equal(seq[7][0], x7) and torch.equal(seq[7][1], y7)
    assert torch.equal(y7, data.labels[BatchOrder(64, 16, seed=3).indices(7)]), "ImageNet's batch order, too"
    epoch0 = torch.cat([a.batch(k)[1] for k in range(4)])
    assert sorted(epoch0.tolist()) == sorted(data.labels.tolist()), "an epoch visits every image once"
    assert not torch.equal(a.batch(0)[0], a.batch(4)[0])
    halves = [TrainStream(data, mean, 16, 3, rank=r, world_size=2).batch(5) for r in range(2)]
    assert torch.equal(torch.cat([h[1] for h in halves]), a.batch(5)[1]), "DDP ranks split the global batch"


def test_eval_stream_is_unaugmented_and_complete():
    data = synthetic_arrays(num_classes=4, image_size=8, train_size=8, test_size=50, seed=0)[1]
    mean = torch.zeros(3, 8, 8)
    batches = list(EvalStream(data, mean, batch_size=16))
    assert len(batches) == 4 and sum(len(y) for _, y in batches) == 50
    assert torch.allclose(torch.cat([x for x, _ in batches]), normalize(data.images, mean))


def test_generated_data_is_reproducible_and_class_dependent():
    a_train, a_test = synthetic_arrays(num_classes=10, image_size=16, train_size=500, test_size=100, seed=0)
    b_train, _ = synthetic_arrays(num_classes=10, image_size=16, train_size=500, test_size=100, seed=0)
    assert torch.equal(a_train.images, b_train.images) and a_train.images.shape == (500, 3, 16, 16)
    assert set(a_train.labels.tolist()) == set(range(10))
    means = torch.stack([a_train.images[a_train.labels == c].float().mean(0) for c in range(10)])
    assert (means[0] - means[1]).abs().mean() > 5, "classes differ in their mean image"
    c_train, _ = synthetic_arrays(num_classes=3, image_size=24, train_size=60, test_size=10, seed=1)
    assert c_train.images.shape == (60, 3, 24, 24) and set(c_train.labels.tolist()) <= {0, 1, 2}


def test_imagenet_folder_layout_and_unreadable_images_are_named(tmp_path):
    from PIL import Image

    with pytest.raises(DataError, match=r"ImageNet folder .*train not found"):
        check_imagenet_folder(tmp_path)
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / split / cls / "a.JPEG")
    assert set(check_imagenet_folder(tmp_path)) == {"train", "val"}
    bad = tmp_path / "train" / "n01" / "broken.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"unreadable image .*broken.JPEG"):
        load_image(str(bad))
    assert [label for _, label in scan_image_folder(tmp_path / "train")] == [0, 0, 1]
    (tmp_path / "val" / "n03").mkdir()
    with pytest.raises(DataError, match=r"val classes differ from train classes"):
        check_imagenet_folder(tmp_path)
    with pytest.raises(DataError, match=r"ImageNet folder .*val: Found no valid file for the classes n03"):
        scan_image_folder(tmp_path / "val")


# -- CIFAR-100: torchvision's python format, checked and read as CIFAR-10 ----------------------------------------------


def test_tiny_cifar100_in_the_real_pickle_layout_reads_its_fine_labels(tmp_path):
    write_cifar100(tmp_path, train=60, test=20)
    train, test = load_cifar100(tmp_path, verify=False)
    assert train.images.shape == (60, 3, 32, 32) and test.images.shape == (20, 3, 32, 32)
    with (tmp_path / "cifar-100-python" / "train").open("rb") as f:
        raw = pickle.load(f, encoding="latin1")
    assert torch.equal(train.images[0], torch.from_numpy(raw["data"][0]).view(3, 32, 32))
    assert train.labels.tolist() == raw["fine_labels"], "the 100 fine labels, not the 20 coarse ones"


def test_cifar100_trains_on_100_classes_with_its_paper_preset(tmp_path):
    write_cifar100(tmp_path)
    cfg = config_from_dict({"dataset": "cifar100", "data_dir": str(tmp_path), "data_verify": False, "val_size": 10})
    assert (cfg.preset, cfg.resolved_num_classes, cfg.family, cfg.max_steps) == (
        "cifar100-paper",
        100,
        "cifar10",
        64_000,
    )
    dm = InMemoryDataModule(cfg)
    assert (len(dm.train_data), len(dm.val_data), len(dm.test_data)) == (50, 10, 20)
    with pytest.raises(ConfigError, match="num_classes must be 100 for cifar100, got 10"):
        config_from_dict({"dataset": "cifar100", "num_classes": 10})


def test_cifar100_is_md5_checked_and_its_faults_are_named(tmp_path):
    write_cifar100(tmp_path)
    folder = tmp_path / "cifar-100-python"
    with pytest.raises(DataError, match=r"CIFAR-100 file .*train fails its MD5 check"):
        load_cifar100(tmp_path, verify=True)
    with pytest.raises(DataError, match=r"CIFAR-100 not found: expected .*cifar-100-python; download cifar-100-python"):
        load_cifar100(tmp_path / "nowhere")
    with (folder / "meta").open("wb") as f:
        pickle.dump({"fine_label_names": ["a"] * 10}, f)
    with pytest.raises(DataError, match=r"meta is corrupt or not in CIFAR-100's python format \(10 label names, "):
        load_cifar100(tmp_path, verify=False)
    write_cifar100(tmp_path)
    (folder / "test").unlink()
    with pytest.raises(DataError, match=r"CIFAR-100 file .*test is missing; extract cifar-100-python.tar.gz"):
        load_cifar100(tmp_path, verify=False)


def test_a_cifar100_pickle_that_would_run_code_is_refused(tmp_path):
    write_cifar100(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with (tmp_path / "cifar-100-python" / "train").open("wb") as f:
        pickle.dump({"data": Evil(), "fine_labels": []}, f)
    with pytest.raises(DataError, match=r"train is corrupt .*refusing to load builtins.print"):
        load_cifar100(tmp_path, verify=False)


def test_cifar100_labels_beyond_its_classes_are_refused(tmp_path):
    write_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "test"
    with path.open("rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry["fine_labels"][0] = 100
    with path.open("wb") as f:
        pickle.dump(entry, f, protocol=2)
    with pytest.raises(DataError, match=r"test is corrupt .*labels outside 0\.\.99"):
        load_cifar100(tmp_path, verify=False)
