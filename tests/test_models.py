"""The network family: structure, shortcut options, validation, torchvision equivalence, pickling, training step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import (
    ARCHS,
    IMAGENET_DEPTHS,
    SHORTCUTS,
    Network,
    build_model,
    count_params,
    default_num_classes,
    default_width,
    input_shape,
    resolve_shortcut,
    validate_depth,
)
from models.blocks import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ProjectionShortcut,
    ZeroPadShortcut,
    make_shortcut,
)
from models.options import uses_bottleneck
from models.torchvision_compat import from_torchvision_state_dict

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def projections(model: nn.Module) -> int:
    return sum(isinstance(m, ProjectionShortcut) for m in model.modules())


# --- options ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "depth", "width", "classes"), [("cifar10", 20, 16, 10), ("imagenet", 18, 64, 1000)])
def test_default_net_takes_the_papers_input_and_gives_the_datasets_classes(family, depth, width, classes) -> None:
    net = build_model("resnet", depth, family).eval()
    shape = input_shape(family)
    with torch.no_grad():
        logits = net(torch.zeros(1, *shape))
    assert shape == ((3, 32, 32) if family == "cifar10" else (3, 224, 224))
    assert (default_width(family), default_num_classes(family)) == (width, classes)
    assert (net.conv1.out_channels, logits.shape) == (width, (1, classes))


@pytest.mark.parametrize(
    ("arch", "depth", "family", "shortcut", "expected"),
    [
        ("resnet", 20, "cifar10", None, "A"),
        ("resnet", 1202, "cifar10", None, "A"),
        ("resnet", 18, "imagenet", None, "A"),
        ("resnet", 34, "imagenet", None, "A"),
        ("resnet", 50, "imagenet", None, "B"),
        ("resnet", 101, "imagenet", None, "B"),
        ("resnet", 152, "imagenet", None, "B"),
        ("resnet", 34, "imagenet", "C", "C"),
        ("resnet", 56, "cifar10", "B", "B"),
        ("plain", 56, "cifar10", None, None),
        ("plain", 56, "cifar10", "B", None),
        ("plain", 50, "imagenet", "C", None),
    ],
)
def test_resolve_shortcut(arch, depth, family, shortcut, expected) -> None:
    assert resolve_shortcut(arch, depth, family, shortcut) == expected


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (dict(arch="resnet", depth=21, family="cifar10"), ["depth must be 6n+2 for cifar10", "20, 32, 44", "got 21"]),
        (dict(arch="resnet", depth=2, family="cifar10"), ["depth must be 6n+2", "got 2"]),
        (dict(arch="resnet", depth=20, family="imagenet"), ["depth must be one of 18, 34, 50, 101, 152", "got 20"]),
        (dict(arch="resnet", depth=True, family="imagenet"), ["depth must be one of", "got True"]),
        (dict(arch="resnet", depth=20.0, family="cifar10"), ["depth must be 6n+2", "got 20.0"]),
        (dict(arch="resnet", depth=20, family="cifar10", shortcut="D"), ["shortcut must be one of 'A', 'B', 'C'"]),
        (dict(arch="plain", depth=20, family="cifar10", shortcut="D"), ["shortcut must be one of 'A', 'B', 'C'"]),
        (dict(arch="resnet", depth=20, family="cifar10", shortcut="a"), ["got 'a'"]),
        (dict(arch="x", depth=20, family="cifar10"), ["arch must be one of 'plain', 'resnet', 'preact', got 'x'"]),
        (dict(arch="resnet", depth=20, family="cifar100"), ["family must be one of 'cifar10', 'imagenet'"]),
        (dict(arch="resnet", depth=20, family="cifar10", width=0), ["width must be an integer >= 1, got 0"]),
        (dict(arch="resnet", depth=20, family="cifar10", num_classes=0), ["num_classes must be an integer >= 1"]),
        (dict(arch="resnet", depth=50, family="imagenet", stride_in="2x2"), ["stride_in must be one of '1x1', '3x3'"]),
        (
            dict(arch="resnet", depth=34, family="imagenet", stride_in="3x3"),
            [
                "stride_in '3x3' applies only to bottleneck nets (imagenet depth 50, 101, 152, cifar10 9n+2",
                "depth 34 has basic",
            ],
        ),
        (dict(arch="plain", depth=20, family="cifar10", stride_in="3x3"), ["cifar10 depth 20 has basic blocks"]),
        (dict(arch="resnet", depth=20, family="cifar10", zero_init_residual=1), ["zero_init_residual must be"]),
    ],
)
def test_bad_arguments_name_the_field_and_allowed_values(kwargs, fragments) -> None:
    with pytest.raises(ValueError) as info:
        build_model(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_validate_depth_returns_valid_depths() -> None:
    assert [validate_depth("cifar10", d) for d in (8, 20, 1202)] == [8, 20, 1202]
    assert [validate_depth("imagenet", d) for d in IMAGENET_DEPTHS] == list(IMAGENET_DEPTHS)


# --- structure -------------------------------------------------------------------------------------------------


def test_plain_net_ignores_shortcut_and_has_no_connections() -> None:
    nets = [build_model("plain", 20, "cifar10", shortcut) for shortcut in (None, *SHORTCUTS)]
    assert all(net.shortcut is None for net in nets)
    assert all(block.shortcut is None for net in nets for block in net.blocks())
    assert len({tuple(net.state_dict()) for net in nets}) == 1


def test_network_attributes_and_describe() -> None:
    net = build_model("resnet", 56, "cifar10")
    assert (net.arch, net.depth, net.family, net.shortcut, net.stride_in, net.width) == (
        "resnet",
        56,
        "cifar10",
        "A",
        "1x1",
        16,
    )
    assert isinstance(net, Network)
    assert net.describe() == "resnet-56 (cifar10, shortcut A)"
    assert build_model("plain", 20, "cifar10").describe() == "plain-20 (cifar10)"
    assert build_model("resnet", 50, "imagenet", stride_in="3x3").describe() == (
        "resnet-50 (imagenet, shortcut B, stride in 3x3)"
    )


@pytest.mark.parametrize("depth", [20, 56])
def test_cifar_stages(depth: int) -> None:
    net = build_model("resnet", depth, "cifar10")
    n = (depth - 2) // 6
    assert [len(stage) for stage in net.stages] == [n, n, n]
    assert [stage[0].conv1.stride for stage in net.stages] == [(1, 1), (2, 2), (2, 2)]
    assert [stage[-1].bn2.num_features for stage in net.stages] == [16, 32, 64]
    assert net.conv1.kernel_size == (3, 3) and net.maxpool is None
    weighted = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())
    assert weighted == depth


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_imagenet_depth_counts_weighted_layers(depth: int) -> None:
    net = build_model("plain", depth, "imagenet")
    assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()) == depth
    block = Bottleneck if depth >= 50 else BasicBlock
    assert all(isinstance(b, block) for b in net.blocks())
    assert net.conv1.kernel_size == (7, 7) and net.conv1.stride == (2, 2)
    assert isinstance(net.maxpool, nn.MaxPool2d)


def test_width_and_num_classes() -> None:
    net = build_model("resnet", 20, "cifar10", width=8, num_classes=100)
    assert net.conv1.out_channels == 8
    assert net.fc.in_features == 32 and net.fc.out_features == 100
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)


@pytest.mark.parametrize(("stride_in", "strided"), [("1x1", "conv1"), ("3x3", "conv2")])
def test_bottleneck_stride_placement(stride_in: str, strided: str) -> None:
    net = build_model("resnet", 50, "imagenet", stride_in=stride_in)
    for stage in list(net.stages)[1:]:
        first = stage[0]
        strides = {name: getattr(first, name).stride for name in ("conv1", "conv2", "conv3")}
        assert strides == {name: (2, 2) if name == strided else (1, 1) for name in strides}
        assert first.shortcut.conv.stride == (2, 2)


def test_bottleneck_output_is_four_times_width() -> None:
    block = Bottleneck(64, 64, 1, make_shortcut("B", 64, 256, 1))
    assert block(torch.randn(2, 64, 8, 8)).shape == (2, 256, 8, 8)


# --- shortcuts -------------------------------------------------------------------------------------------------


def test_option_a_subsamples_and_appends_zero_channels() -> None:
    shortcut = ZeroPadShortcut(16, 32, 2)
    x = torch.randn(2, 16, 9, 9)
    out = shortcut(x)
    assert list(shortcut.parameters()) == [] and list(shortcut.buffers()) == []
    assert out.shape == (2, 32, 5, 5)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.equal(out[:, 16:], torch.zeros(2, 16, 5, 5))


def test_option_a_widens_at_stride_one() -> None:
    x = torch.randn(1, 64, 4, 4)
    out = ZeroPadShortcut(64, 256, 1)(x)
    assert torch.equal(out[:, :64], x) and not out[:, 64:].any()


@pytest.mark.parametrize(
    ("option", "in_ch", "out_ch", "stride", "kind"),
    [
        ("A", 16, 16, 1, nn.Identity),
        ("A", 16, 32, 2, ZeroPadShortcut),
        ("A", 64, 256, 1, ZeroPadShortcut),
        ("B", 16, 16, 1, nn.Identity),
        ("B", 16, 32, 2, ProjectionShortcut),
        ("B", 64, 256, 1, ProjectionShortcut),
        ("C", 16, 16, 1, ProjectionShortcut),
    ],
)
def test_make_shortcut(option, in_ch, out_ch, stride, kind) -> None:
    assert type(make_shortcut(option, in_ch, out_ch, stride)) is kind


def test_projection_shortcut_names() -> None:
    assert [name for name, _ in ProjectionShortcut(16, 32, 2).named_children()] == ["conv", "bn"]


def test_resnet34_c_adds_thirteen_projections() -> None:
    b, c = (build_model("resnet", 34, "imagenet", s) for s in ("B", "C"))
    assert projections(b) == 3
    assert projections(c) - projections(b) == 13
    assert projections(build_model("resnet", 34, "imagenet", "A")) == 0


def test_block_module_names() -> None:
    net = build_model("resnet", 50, "imagenet")
    assert [name for name, _ in net.named_children()] == ["conv1", "bn1", "relu", "maxpool", "stages", "avgpool", "fc"]
    children = [name for name, _ in net.stages[0][0].named_children()]
    assert children == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "shortcut"]


# --- initialisation --------------------------------------------------------------------------------------------


def test_he_init() -> None:
    net = build_model("resnet", 20, "cifar10")
    conv = net.stages[2][0].conv2
    fan_out = conv.out_channels * 9
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5
    assert all(
        torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any()
        for m in net.modules()
        if isinstance(m, nn.BatchNorm2d)
    )


@pytest.mark.parametrize(("depth", "family", "shortcut"), [(20, "cifar10", "A"), (50, "imagenet", "B")])
def test_zero_init_residual_zeroes_only_the_last_bn_gamma(depth: int, family: str, shortcut: str) -> None:
    torch.manual_seed(1)
    reference = build_model("resnet", depth, family, shortcut).state_dict()
    torch.manual_seed(1)
    net = build_model("resnet", depth, family, shortcut, zero_init_residual=True)
    last = "bn3" if depth >= 50 else "bn2"
    zeroed = {f"stages.{i}.{j}.{last}.weight" for i, stage in enumerate(net.stages) for j in range(len(stage))}
    changed = {key for key, value in net.state_dict().items() if not torch.equal(value, reference[key])}
    assert changed == zeroed
    assert all(not net.state_dict()[key].any() for key in zeroed)


def test_zero_init_residual_is_off_for_plain_nets() -> None:
    net = build_model("plain", 20, "cifar10", zero_init_residual=True)
    assert net.zero_init_residual is False
    assert all(m.weight.all() for m in net.modules() if isinstance(m, nn.BatchNorm2d))


# --- torchvision equivalence -----------------------------------------------------------------------------------


def _randomise_batch_norm(model: nn.Module) -> None:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_matches_torchvision(depth: int) -> None:
    torchvision = pytest.importorskip("torchvision")
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    _randomise_batch_norm(theirs)
    ours = build_model("resnet", depth, "imagenet", shortcut="B", stride_in="3x3" if depth >= 50 else "1x1")
    ours.load_state_dict(from_torchvision_state_dict(theirs.state_dict(), ours), strict=True)
    theirs.eval()
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, actual = theirs(x), ours(x)
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_torchvision_key_mapping() -> None:
    mapped = from_torchvision_state_dict(
        {
            "conv1.weight": 0,
            "layer1.0.conv1.weight": 1,
            "layer4.2.bn3.running_var": 2,
            "layer2.0.downsample.0.weight": 3,
            "layer2.0.downsample.1.num_batches_tracked": 4,
            "fc.bias": 5,
        },
        build_model("resnet", 50, "imagenet", stride_in="3x3"),
    )
    assert mapped == {
        "conv1.weight": 0,
        "stages.0.0.conv1.weight": 1,
        "stages.3.2.bn3.running_var": 2,
        "stages.1.0.shortcut.conv.weight": 3,
        "stages.1.0.shortcut.bn.num_batches_tracked": 4,
        "fc.bias": 5,
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("resnet", 50, "imagenet", "B", "1x1"), '"3x3"); got resnet-50 (imagenet, shortcut B, stride in 1x1)'),
        (("resnet", 34, "imagenet", "A"), 'build_model("resnet", 34, "imagenet", shortcut="B"); got resnet-34'),
        (("plain", 18, "imagenet"), "got plain-18 (imagenet)"),
    ],
)
def test_torchvision_weights_are_refused_for_a_net_that_computes_something_else(args, expected) -> None:
    torchvision = pytest.importorskip("torchvision")
    theirs = getattr(torchvision.models, f"resnet{args[1]}")(weights=None).state_dict()
    with pytest.raises(ValueError) as info:
        from_torchvision_state_dict(theirs, build_model(*args))
    assert "\n" not in str(info.value) and expected in str(info.value)


# --- pickling and training step --------------------------------------------------------------------------------


@pytest.mark.parametrize(("depth", "family"), [(20, "cifar10"), (50, "imagenet")])
@pytest.mark.parametrize(("arch", "shortcut"), [("plain", None), ("resnet", "A"), ("resnet", "B"), ("resnet", "C")])
def test_torch_save_round_trip(tmp_path, depth, family, arch, shortcut) -> None:
    net = build_model(arch, depth, family, shortcut).eval()
    x = torch.randn(2, 3, 32, 32) if family == "cifar10" else torch.randn(1, 3, 64, 64)
    path = tmp_path / "model.pt"
    torch.save(net, path)
    loaded = torch.load(path, weights_only=False)
    assert type(loaded) is Network and loaded.describe() == net.describe()
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def _forward_backward(arch: str, depth: int, family: str, size: int) -> None:
    net = build_model(arch, depth, family).train()
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, net.num_classes)
    out.logsumexp(dim=1).mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_cifar_forward_backward(arch: str, depth: int) -> None:
    _forward_backward(arch, depth, "cifar10", 32)


@pytest.mark.slow
def test_resnet_1202_forward_backward() -> None:
    _forward_backward("resnet", 1202, "cifar10", 32)


@pytest.mark.slow
def test_plain_1202_forward() -> None:
    """Plain-1202's early gradients overflow float32 at init (BN gradients grow geometrically with plain depth), so
    only its forward pass and fc gradient are checked; the paper never trains it."""
    net = build_model("plain", 1202, "cifar10").train()
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(dim=1).mean().backward()
    assert torch.isfinite(net.fc.weight.grad).all()


@pytest.mark.integration
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_imagenet_forward_backward(arch: str, depth: int) -> None:
    _forward_backward(arch, depth, "imagenet", 64)


# --- pre-activation ResNets (He et al. 2016b) and the CIFAR bottleneck nets ------------------------------------


def test_cifar_bottleneck_depths_are_9n_plus_2_and_164_is_one() -> None:
    assert [uses_bottleneck("cifar10", d) for d in (20, 56, 110, 1202)] == [False] * 4
    assert [uses_bottleneck("cifar10", d) for d in (29, 164, 1001)] == [True] * 3
    assert validate_depth("cifar10", 1001) == 1001
    net = build_model("plain", 164, "cifar10")
    assert [len(stage) for stage in net.stages] == [18, 18, 18] and all(isinstance(b, Bottleneck) for b in net.blocks())
    assert [stage[-1].bn3.num_features for stage in net.stages] == [64, 128, 256]
    assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules()) == 164
    assert build_model("resnet", 164, "cifar10").shortcut == "B", "2016b's bottleneck nets project where shapes change"


def test_preact_units_are_bn_relu_conv_and_the_net_ends_with_bn_relu() -> None:
    net = build_model("preact", 20, "cifar10")
    assert [name for name, _ in net.named_children()] == ["conv1", "bn1", "relu", "stages", "final_bn", "avgpool", "fc"]
    blocks = net.blocks()
    assert all(isinstance(b, PreActBasicBlock) for b in blocks)
    assert blocks[0].bn1 is None, "the first unit's pre-activation is the stem's BN-ReLU"
    assert all(b.bn1.num_features == b.conv1.in_channels for b in blocks[1:])
    assert all(b.bn2.num_features == b.conv1.out_channels for b in blocks)
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: order.append(n)) for n, m in blocks[1].named_children()]
    pooled = []
    hooks.append(net.avgpool.register_forward_hook(lambda m, i, o: pooled.append(i[0])))
    net.eval()(torch.randn(2, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert order == ["bn1", "relu", "conv1", "bn2", "relu", "conv2", "shortcut"], "BN-ReLU-conv twice, then the add"
    assert (pooled[0] >= 0).all() and net.final_bn.num_features == 64, "the final BN-ReLU before pooling"


def test_preact_identity_paths_add_the_input_unchanged_and_projections_take_it_pre_activated() -> None:
    net = build_model("preact", 164, "cifar10").eval()
    x = torch.randn(2, 64, 8, 8)
    block = net.stages[0][1]
    with torch.no_grad():
        out = block(x)
        block.shortcut = None
        branch = block(x)
    assert torch.allclose(out - branch, x, atol=1e-6), "identity path: the unit adds its input unchanged"
    first = net.stages[1][0]
    assert isinstance(first, PreActBottleneck) and isinstance(first.shortcut, ProjectionShortcut)
    assert first.shortcut.bn is None and [n for n, _ in first.shortcut.named_children()] == ["conv"]
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        out = first(x)
        projected = first.shortcut(torch.relu(first.bn1(x)))
        first.shortcut = None
        branch = first(x)
    assert torch.allclose(out, branch + projected, atol=1e-5), "pre-activation on both paths where shapes change"


def _in_forward_order(net: Network) -> tuple[list[nn.Conv2d], list[nn.BatchNorm2d]]:
    """The main path's convs, and the BN that normalises each conv's output, in the order the forward pass uses them."""
    convs = [net.conv1] + [conv for b in net.blocks() for conv in (b.conv1, b.conv2, getattr(b, "conv3", None)) if conv]
    bns = [net.bn1] + [bn for b in net.blocks() for bn in (b.bn1, b.bn2, getattr(b, "bn3", None)) if bn]
    return convs, bns + ([net.final_bn] if net.final_bn is not None else [])


@pytest.mark.parametrize("depth", [20, 29])
def test_plain_is_the_preact_net_without_its_shortcuts(depth: int) -> None:
    """Removing the shortcuts of a pre-activation net leaves conv-BN-ReLU chains: each unit's BN-ReLU follows the
    previous conv, as in the original plain net. With the same weights the two compute the same function, so 'plain'
    is the plain counterpart of both 'resnet' and 'preact' (here 6n+2 basic units and a 9n+2 bottleneck net)."""
    torch.manual_seed(3)
    preact, plain = build_model("preact", depth, "cifar10").eval(), build_model("plain", depth, "cifar10").eval()
    for block in preact.blocks():
        block.shortcut = None
    (pre_convs, pre_bns), (plain_convs, plain_bns) = _in_forward_order(preact), _in_forward_order(plain)
    assert len(pre_convs) == len(plain_convs) and len(pre_bns) == len(plain_bns) == len(plain_convs)
    with torch.no_grad():
        for source, target in zip(pre_convs, plain_convs, strict=True):
            target.weight.copy_(source.weight)
        for source, target in zip(pre_bns, plain_bns, strict=True):
            for tensor in (source.weight, source.bias, source.running_mean):
                tensor.copy_(torch.randn_like(tensor))
            source.running_var.copy_(torch.rand_like(source.running_var) + 0.5)
            target.load_state_dict(source.state_dict())
        plain.fc.load_state_dict(preact.fc.state_dict())
        x = torch.randn(4, 3, 32, 32)
        assert torch.allclose(preact(x), plain(x), atol=1e-5)
    assert count_params(plain) == count_params(preact), "and the same parameters, once the shortcuts are gone"


def test_preact_response_layers_give_one_per_3x3_conv_and_the_probe_runs() -> None:
    from models import layer_responses

    preact, resnet = build_model("preact", 20, "cifar10"), build_model("resnet", 20, "cifar10")
    names = [name for name, _ in preact.response_layers()]
    assert len(names) == len(resnet.response_layers()) == 19
    assert names[:3] == ["bn1", "stages.0.0.bn2", "stages.0.0.conv2"]
    responses = layer_responses(preact, torch.randn(8, 3, 32, 32))
    assert [r.name for r in responses] == names and all(r.std > 0 for r in responses)
    bottleneck = [name for name, _ in build_model("preact", 29, "cifar10").response_layers()]
    assert bottleneck == ["bn1"] + [f"stages.{s}.{b}.bn3" for s in range(3) for b in range(3)]


def test_preact_refuses_zero_init_residual() -> None:
    with pytest.raises(ValueError, match="a pre-activation unit has none"):
        build_model("preact", 20, "cifar10", zero_init_residual=True)


# --- the stem ----------------------------------------------------------------------------------------------------


def _stage_sides(net: Network, side: int) -> list[int]:
    sides = []
    hooks = [stage.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for stage in net.stages]
    with torch.no_grad():
        out = net.eval()(torch.randn(2, 3, side, side))
    for hook in hooks:
        hook.remove()
    assert out.shape == (2, net.num_classes)
    return sides


@pytest.mark.parametrize("arch", ["plain", "resnet", "preact"])
def test_the_3x3_stem_keeps_a_64px_input_from_collapsing(arch: str) -> None:
    small = build_model(arch, 18, "imagenet", stem="3x3", width=8, num_classes=200)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and small.maxpool is None
    assert _stage_sides(small, 64) == [64, 32, 16, 8]
    assert _stage_sides(small, 32) == [32, 16, 8, 4]
    paper = build_model(arch, 18, "imagenet", width=8)
    assert paper.stem == "7x7" and _stage_sides(paper, 64) == [16, 8, 4, 2] and _stage_sides(paper, 224)[-1] == 7
    assert small.describe().endswith("stem 3x3, width 8, 200 classes)")
    assert "bn1" in dict(small.response_layers()) and "bn1" not in dict(paper.response_layers())


def test_the_cifar_family_has_the_3x3_stem_only() -> None:
    assert build_model("resnet", 20, "cifar10", stem="3x3").stem == "3x3"
    with pytest.raises(ValueError, match="stem '7x7' applies to the imagenet family"):
        build_model("resnet", 20, "cifar10", stem="7x7")
    with pytest.raises(ValueError, match="stem must be one of '7x7', '3x3', got '5x5'"):
        build_model("resnet", 18, "imagenet", stem="5x5")
