"""The BN-free recipe's two stabilisers (issue 22): inputs divided by their per-channel std (``input_std``) and each
net's gradient clipped to a norm (``grad_clip``); both off by default, so the paper's path is unchanged."""

from __future__ import annotations

import pytest
import torch

from experiments import train as train_cli
from experiments.config import ConfigError, config_from_dict, fusion_blocker, run_name
from experiments.data.augment import normalize
from experiments.data.datamodules import ImageNetDataModule, InMemoryDataModule
from experiments.data.decode import EncodedImages, collate_encoded, decode_augment
from experiments.data.sources import folder_channel_stats, pixel_mean, pixel_std
from experiments.train import train
from experiments.training.module import DegradationModule
from experiments.training.phases import build_networks
from tests.helpers import tiny
from tests.test_folder_small import small_config, write_small_folder

pytestmark = pytest.mark.usefixtures("torch_single_thread")


# -- input_std ---------------------------------------------------------------------------------------------------


def test_pixel_std_is_each_channels_std_after_the_per_pixel_mean_and_needs_no_float_copy() -> None:
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(100, 3, 5, 5, generator=g) * torch.tensor([40.0, 120.0, 250.0]).view(1, 3, 1, 1)).byte()
    mean = pixel_mean(images)
    expected = (images.double() / 255 - mean.double()).transpose(0, 1).reshape(3, -1).std(1, unbiased=False)
    for chunk in (7, 4096):
        assert torch.allclose(pixel_std(images, mean, chunk=chunk).flatten().double(), expected, rtol=1e-5)
    assert pixel_std(images, mean).shape == (3, 1, 1)


def test_normalize_without_std_is_the_papers_mean_subtraction_bit_for_bit() -> None:
    images = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    mean = pixel_mean(images)
    assert torch.equal(normalize(images, mean), images.float() / 255.0 - mean)
    std = torch.tensor([0.5, 0.25, 2.0]).view(3, 1, 1)
    assert torch.allclose(normalize(images, mean, std), (images.float() / 255.0 - mean) / std)


def test_input_std_gives_training_evaluation_and_probe_inputs_unit_std_per_channel() -> None:
    cfg = config_from_dict(tiny(input_std="true", train_size=1024))
    data = InMemoryDataModule(cfg)
    data.setup()
    evaluated = torch.cat([x for x, _ in data.val_dataloader()[-1]])
    for batch in (evaluated, data.probe_images(64)):
        per_channel = batch.transpose(0, 1).reshape(3, -1).std(1)
        assert torch.all((per_channel > 0.9) & (per_channel < 1.1)), per_channel
    paper = InMemoryDataModule(config_from_dict(tiny(train_size=1024)))
    paper.setup()
    assert paper.std is None
    assert torch.allclose(data.stream.batch(0)[0] * data.std, paper.stream.batch(0)[0], atol=1e-6), "and augmented"


def test_a_streamed_folder_divides_by_its_own_std_and_imagenet_by_its_published_one(tmp_path) -> None:
    root = write_small_folder(tmp_path / "digits", per_class=6)
    module = ImageNetDataModule(small_config(root, input_std=True, augment="imagenet"))
    mean, std = folder_channel_stats(module.samples("train"), side=8)
    assert module.mean == pytest.approx(mean) and module.std == pytest.approx(std)
    assert all(0.05 < s < 0.5 for s in std), std
    assert ImageNetDataModule(small_config(root, augment="imagenet")).std == (1.0, 1.0, 1.0)
    assert ImageNetDataModule.STD == (0.229, 0.224, 0.225)
    from PIL import Image

    first = Image.open(module.samples("val")[0][0])
    scaled = module._transforms("val")(first)
    paper = ImageNetDataModule(small_config(root, augment="imagenet"))._transforms("val")(first)
    assert torch.allclose(scaled * torch.tensor(std).view(3, 1, 1), paper, atol=1e-6)


def test_the_device_decoder_divides_by_the_std_it_is_given_and_not_without_one(tmp_path) -> None:
    from tests.test_imagenet import gpu_path_on_cpu, write_imagefolder

    write_imagefolder(tmp_path)
    paper, scaled = gpu_path_on_cpu(tmp_path), gpu_path_on_cpu(tmp_path, input_std=True)
    batch = collate_encoded([EncodedImages(paper.samples("val"))[0]], "val")
    plain, _ = decode_augment(batch, torch.device("cpu"), paper.MEAN, torch.Generator(), std=paper.std)
    divided, _ = decode_augment(batch, torch.device("cpu"), scaled.MEAN, torch.Generator(), std=scaled.std)
    assert scaled.std == ImageNetDataModule.STD
    assert torch.allclose(divided * torch.tensor(scaled.std).view(1, 3, 1, 1), plain, atol=1e-6)
    assert not torch.allclose(divided, plain)


# -- grad_clip ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1"])
def test_grad_clip_must_be_positive(value) -> None:
    with pytest.raises(ConfigError, match=r"^grad_clip must be a positive number \(or unset: no clipping\), got "):
        config_from_dict({"grad_clip": value})


def test_the_new_recipe_fields_leave_the_papers_runs_their_names() -> None:
    paper = config_from_dict({"preset": "demo", "arch": "resnet", "depth": 20})
    assert (paper.input_std, paper.grad_clip) == (False, None)
    named = [paper.replace(input_std=True), paper.replace(grad_clip=1.0)]
    assert len({run_name(paper), *map(run_name, named)}) == 3


def _module_with_gradients(clip: float | None, scales: dict[str, float]) -> DegradationModule:
    cfg = config_from_dict(tiny(arch="pair", grad_clip="none" if clip is None else str(clip)))
    module = DegradationModule(cfg, build_networks(cfg), train_size=512, eval_names=["test"])
    for name, net in module.nets.items():
        for p in net.parameters():
            p.grad = torch.full_like(p, scales[name])
    return module


def _norm(net: torch.nn.Module) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()])))


def test_grad_clip_scales_each_members_gradient_to_the_norm_on_its_own() -> None:
    module = _module_with_gradients(0.5, {"plain": 1.0, "resnet": 1e-4})
    small = _norm(module.nets["resnet"])
    assert small < 0.5
    module.configure_gradient_clipping(None)
    assert _norm(module.nets["plain"]) == pytest.approx(0.5, rel=1e-4)
    assert _norm(module.nets["resnet"]) == pytest.approx(small), "the plain net's norm does not shrink the ResNet's"
    unclipped = _module_with_gradients(None, {"plain": 1.0, "resnet": 1.0})
    before = _norm(unclipped.nets["plain"])
    unclipped.configure_gradient_clipping(None)
    assert _norm(unclipped.nets["plain"]) == before


def test_grad_clip_keeps_a_pair_unfused_and_fuse_on_says_why() -> None:
    cfg = config_from_dict(tiny(arch="pair", grad_clip="1"))
    assert fusion_blocker(cfg).startswith("grad_clip clips each member's gradient by its own norm")
    assert fusion_blocker(config_from_dict(tiny(arch="pair"))) is None


@pytest.mark.integration
def test_a_clipped_pair_trains_each_member_as_its_clipped_single_run(tmp_path) -> None:
    """Lightning calls the clipping hook at every step: a clipped pair's ResNet ends where the clipped ResNet alone
    does, and not where the unclipped one does."""
    base = tiny(depth=8, max_steps=20, eval_every=20, log_every=10, checkpoint_every=20, lr="0.5")

    def final(arch: str, folder: str, **overrides) -> dict[str, float]:
        cfg = config_from_dict({**base, "arch": arch, "runs_dir": str(tmp_path / folder), **overrides})
        return {s["arch"]: s["final_train_loss"] for s in train(cfg, echo=lambda *a, **k: None).values()}

    pair = final("pair", "pair", grad_clip="0.05")
    single = final("resnet", "single", grad_clip="0.05")
    unclipped = final("resnet", "unclipped")
    assert pair["resnet"] == pytest.approx(single["resnet"], rel=1e-5)
    assert abs(unclipped["resnet"] - single["resnet"]) > 1e-3


def test_train_cli_refuses_a_non_positive_grad_clip_in_one_line(tmp_path, capsys) -> None:
    code = train_cli.main(["--preset", "demo", "--grad_clip", "0", "--out", str(tmp_path / "run"), "--no-wandb"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and lines == ["error: grad_clip must be a positive number (or unset: no clipping), got 0.0"]


def test_the_landscape_tools_feed_a_run_the_inputs_it_trained_on() -> None:
    from analysis.landscape.harness import training_images

    cfg = config_from_dict(tiny(input_std="true", train_size=256))
    images = training_images(cfg)
    data = InMemoryDataModule(cfg)
    index = torch.arange(8)
    x, labels = images.normalized(index)
    assert torch.equal(x, normalize(data.train_data.images[index], data.mean, data.std))
    assert torch.equal(labels, data.train_data.labels[index])
    paper, _ = training_images(cfg.replace(input_std=False)).normalized(index)
    assert torch.allclose(x * data.std, paper, atol=1e-6)
