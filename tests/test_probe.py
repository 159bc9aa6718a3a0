"""The layer-response probe of Figure 7: which layers it hooks, what it measures, and that it changes nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import LayerResponse, build_model, layer_responses

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def images(count: int = 8, size: int = 32) -> torch.Tensor:
    return torch.randn(count, 3, size, size)


def test_resnet20_has_19_responses_in_network_order() -> None:
    net = build_model("resnet", 20, "cifar10")
    responses = layer_responses(net, images())
    assert len(responses) == 19
    assert all(isinstance(r, LayerResponse) for r in responses)
    assert [r.index for r in responses] == list(range(1, 20))
    assert [r.name for r in responses] == [name for name, _ in net.response_layers()]
    assert responses[0].name == "bn1"
    assert [r.name for r in responses[1:3]] == ["stages.0.0.bn1", "stages.0.0.bn2"]
    assert responses[-1].name == "stages.2.2.bn2"
    assert all(r.std > 0 for r in responses)


def test_plain56_has_55_responses() -> None:
    assert len(layer_responses(build_model("plain", 56, "cifar10"), images(4))) == 55


def test_imagenet_resnet50_has_one_response_per_bottleneck() -> None:
    net = build_model("resnet", 50, "imagenet")
    responses = layer_responses(net, images(2, 64))
    assert len(responses) == 16
    assert all(r.name.endswith(".bn2") for r in responses)
    assert "bn1" not in [name for name, _ in net.response_layers()]


def test_projection_and_last_bn_are_not_hooked() -> None:
    names = [name for name, _ in build_model("resnet", 34, "imagenet", "C").response_layers()]
    assert len(names) == 32
    assert not any("shortcut" in name for name in names)


def test_batch_stats_normalise_each_channel() -> None:
    responses = layer_responses(build_model("plain", 20, "cifar10"), images(), per_channel=True, batch_stats=True)
    assert [r.std for r in responses] == pytest.approx([1.0] * 19, abs=0.01)


@pytest.mark.parametrize("training", [True, False])
def test_batch_stats_leave_buffers_and_mode_unchanged(training: bool) -> None:
    net = build_model("resnet", 20, "cifar10")
    net(images())
    net.train(training)
    net.stages[1].eval()
    before = {key: value.clone() for key, value in net.named_buffers()}
    modes = {name: module.training for name, module in net.named_modules()}
    layer_responses(net, images(), batch_stats=True)
    assert all(torch.equal(before[key], value) for key, value in net.named_buffers())
    assert {name: module.training for name, module in net.named_modules()} == modes
    assert not any(module._forward_hooks for module in net.modules())


def test_eval_and_batch_stats_differ_and_eval_is_deterministic() -> None:
    net = build_model("resnet", 20, "cifar10")
    net.train()
    for _ in range(3):
        net(images())
    x = images()
    running = layer_responses(net, x)
    assert running == layer_responses(net, x)
    assert [r.std for r in running] != pytest.approx([r.std for r in layer_responses(net, x, batch_stats=True)])
    assert net.training


def _bn_output(net: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """The output of the response layer ``name`` for ``x``, copied before the in-place ReLU can change it."""
    captured: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        captured["out"] = output.clone()

    handle = dict(net.response_layers())[name].register_forward_hook(keep)
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return captured["out"]


def test_std_is_taken_before_the_in_place_relu() -> None:
    net = build_model("plain", 20, "cifar10").eval()
    x = images()
    out = _bn_output(net, x, "stages.0.0.bn1")
    assert out.min() < 0
    response = {r.name: r.std for r in layer_responses(net, x)}["stages.0.0.bn1"]
    assert response == pytest.approx(out.std().item(), rel=1e-6)


def test_per_channel_is_the_mean_of_each_channels_std_over_batch_and_pixels() -> None:
    net = build_model("plain", 20, "cifar10").eval()
    with torch.no_grad():
        net.stages[0][0].bn1.weight.copy_(torch.arange(1.0, 17.0))  # channels of different scales
    x = images()
    out = _bn_output(net, x, "stages.0.0.bn1")
    expected = sum(out[:, c].std().item() for c in range(out.shape[1])) / out.shape[1]
    response = {r.name: r.std for r in layer_responses(net, x, per_channel=True)}["stages.0.0.bn1"]
    assert response == pytest.approx(expected, rel=1e-5)
    assert response != pytest.approx(out.std().item(), rel=0.05), "not the all-elements std"


def test_response_layers_are_batch_norms_after_3x3_convs() -> None:
    net = build_model("resnet", 56, "cifar10")
    layers = net.response_layers()
    assert len(layers) == 55
    assert all(isinstance(bn, nn.BatchNorm2d) for _, bn in layers)
