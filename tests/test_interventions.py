"""Issue 22's interventions on the paper's nets: the shortcut weight, BN-free nets, their inits and activations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from experiments import train
from experiments.config import ConfigError, config_from_dict, fusion_blocker
from experiments.training.phases import build_networks
from models import FusedNetwork, build_model, fusion_problem, layer_responses
from models.layers import Bias, Multiplier, ScaledShortcut, ShiftedConv2d, ShiftedLinear, TransformedActivation
from models.signals import ACT_MEAN_SQ, ACT_VAR, signal_statistics
from models.spec import NetworkSpec
from models.transforms import chain_subnet_max, transform_params

pytestmark = pytest.mark.usefixtures("torch_single_thread")

BN_FREE = dict(norm="none")


def _images(n: int = 4, side: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _net(*args, seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(*args, **options)


# --- the shortcut weight ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("train_mode", [True, False])
def test_alpha_1_is_the_resnet_and_alpha_0_the_plain_net_bit_for_bit_from_the_same_weights(train_mode) -> None:
    x = _images()
    resnet, alpha_1 = _net("resnet", 20, "cifar10"), _net("resnet", 20, "cifar10", shortcut_weight=1.0)
    plain, alpha_0 = _net("plain", 20, "cifar10", seed=3), _net("resnet", 20, "cifar10", shortcut_weight=0.0)
    alpha_0.load_state_dict(plain.state_dict())
    half = _net("resnet", 20, "cifar10", shortcut_weight=0.5)
    half.load_state_dict(plain.state_dict())
    outputs = {}
    for name, net in dict(resnet=resnet, alpha_1=alpha_1, plain=plain, alpha_0=alpha_0, half=half).items():
        outputs[name] = net.train(train_mode)(x).detach()
    assert torch.equal(outputs["alpha_1"], outputs["resnet"])
    assert torch.equal(outputs["alpha_0"], outputs["plain"])
    assert not torch.equal(outputs["half"], outputs["plain"]) and not torch.equal(outputs["half"], outputs["resnet"])


def test_the_papers_block_holds_no_multiply_and_alpha_below_1_scales_every_shortcut() -> None:
    assert not any(isinstance(m, ScaledShortcut) for m in _net("resnet", 20, "cifar10").modules())
    net = _net("resnet", 20, "cifar10", shortcut="B", shortcut_weight=0.25)
    scaled = [b.shortcut for b in net.blocks()]
    assert all(isinstance(s, ScaledShortcut) and s.weight == 0.25 for s in scaled) and len(scaled) == 9
    assert net.describe() == "resnet-20 (cifar10, shortcut B, shortcut_weight 0.25)"


# --- initialisations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("activation", "gain"), [("relu", math.sqrt(2)), ("tat", 1.0)])
def test_delta_orthogonal_kernels_are_orthogonal_at_the_centre_and_zero_elsewhere(activation, gain) -> None:
    net = _net("plain", 20, "cifar10", norm="none", init="delta-orthogonal", activation=activation)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19
    for conv in convs:
        out_channels, in_channels, k, _ = conv.weight.shape
        centre = conv.weight[:, :, k // 2, k // 2]
        rest = conv.weight.clone()
        rest[:, :, k // 2, k // 2] = 0
        assert torch.count_nonzero(rest) == 0
        if out_channels <= in_channels:  # orthonormal rows, times the gain
            gram, expected = centre @ centre.T, gain**2
        else:  # orthonormal columns, times the gain and sqrt(out / in), so the conv keeps the second moment
            gram, expected = centre.T @ centre, gain**2 * out_channels / in_channels
        torch.testing.assert_close(gram, expected * torch.eye(len(gram)), atol=1e-5, rtol=0)


def test_orthogonal_init_gives_each_conv_orthonormal_rows_over_its_patch() -> None:
    net = _net("plain", 20, "cifar10", norm="none", init="orthogonal")
    for conv in (m for m in net.modules() if isinstance(m, nn.Conv2d)):
        rows = conv.weight.flatten(1)
        torch.testing.assert_close(rows @ rows.T, 2.0 * torch.eye(len(rows)), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("depth", "convs_per_branch"), [(20, 2), (11, 3)])
def test_fixup_starts_as_its_paper_defines_it(depth, convs_per_branch) -> None:
    """He init, then the branch's convs but the last scaled by L^(-1/(2m-2)), the last zeroed, the classifier
    zeroed; scalar biases 0 and multipliers 1 (Zhang, Dauphin and Ma 2019, Sec. 3)."""
    he = _net("resnet", depth, "cifar10", width=4, norm="none")
    fixup = _net("resnet", depth, "cifar10", width=4, norm="none", init="fixup")
    blocks = fixup.blocks()
    factor = len(blocks) ** (-1.0 / (2 * convs_per_branch - 2))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fixup.modules())
    assert torch.equal(fixup.conv1.weight, he.conv1.weight)
    for ours, theirs in zip(blocks, he.blocks(), strict=True):
        convs = [m for m in ours.children() if isinstance(m, nn.Conv2d)]
        reference = [m for m in theirs.children() if isinstance(m, nn.Conv2d)]
        assert len(convs) == convs_per_branch and all(isinstance(c, ShiftedConv2d) for c in convs)
        for conv, he_conv in zip(convs[:-1], reference[:-1], strict=True):
            assert torch.equal(conv.weight, he_conv.weight * factor)
        assert torch.count_nonzero(convs[-1].weight) == 0
        assert isinstance(ours.last_bn(), Multiplier) and ours.last_bn().scale.item() == 1.0
        assert ours.last_bn().bias.item() == 0.0
    assert isinstance(fixup.fc, ShiftedLinear)
    assert torch.count_nonzero(fixup.fc.weight) == 0 and torch.count_nonzero(fixup.fc.bias) == 0
    shifted = [m.shift for m in fixup.modules() if isinstance(m, ShiftedConv2d | ShiftedLinear)]
    scalars = [m.bias for m in fixup.modules() if isinstance(m, Bias)] + shifted
    assert scalars and all(p.shape == (1,) and p.item() == 0.0 for p in scalars)
    assert torch.count_nonzero(fixup(_images())) == 0


def test_skipinit_starts_each_block_as_its_shortcut() -> None:
    """SkipInit (De and Smith 2020): a learnable scalar on each residual branch, initialised to 0, and no BN."""
    net = _net("resnet", 20, "cifar10", norm="none", init="skipinit").eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    x = net.relu(net.conv1(_images()))
    for block in net.blocks():
        multiplier = block.last_bn()
        assert isinstance(multiplier, Multiplier) and multiplier.bias is None and multiplier.scale.item() == 0.0
        assert multiplier.scale.requires_grad
        y = block(x)
        assert torch.equal(y, torch.relu(block.shortcut(x)))
        x = y


# --- TAT and DKS -----------------------------------------------------------------------------------------------


def _dks_reference(activation: str, layers: int):
    from dks.pytorch.activation_transform import get_transformed_activations

    method, base = {"tat": ("TAT", "leaky_relu"), "dks": ("DKS", "softplus")}[activation]
    return get_transformed_activations([base], method=method, subnet_max_func=chain_subnet_max(layers))[base]


@pytest.mark.parametrize("activation", ["tat", "dks"])
@pytest.mark.parametrize("depth", [20, 44])
def test_tat_and_dks_activations_equal_the_dks_packages_on_our_nets(activation, depth) -> None:
    net = _net("plain", depth, "cifar10", width=4, norm="none", init="delta-orthogonal", activation=activation)
    calls = []
    modules = [m for m in net.modules() if isinstance(m, TransformedActivation)]
    for module in modules:
        module.register_forward_hook(lambda m, i, o: calls.append(m))
    net(_images(2, 8))
    assert len(calls) == depth - 1  # the stem's and two per block: the chain the parameters are solved for
    reference = _dks_reference(activation, depth - 1)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    for module in modules:
        assert torch.equal(module(x), reference(x))


def test_tat_leaky_relu_reaches_its_papers_c0_target_over_the_net() -> None:
    """TAT's closed form: the leaky ReLU's C map, composed over the net's 43 activations, maps 0 to eta = 0.9."""
    params = transform_params("tat", 43)
    slope = params["negative_slope"]
    c = 0.0
    for _ in range(43):
        c = ((1 - slope) ** 2 * (np.sqrt(1 - c**2) + (np.pi - np.arccos(c)) * c) / np.pi + 2 * slope * c) / (
            1 + slope**2
        )
    assert c == pytest.approx(0.9, abs=1e-4)
    assert params["output_scale"] == pytest.approx(math.sqrt(2 / (1 + slope**2)))


def _forward_second_moments(net: nn.Module, images: torch.Tensor) -> list[float]:
    """Per block, the average channel second moment of its output (act_mean_sq + act_var of signals.csv) over the
    stem's: the forward variance q that TAT's Q map keeps."""
    labels = torch.zeros(len(images), dtype=torch.int64)
    rows = signal_statistics(net, images, labels)
    q: dict[int, float] = {}
    for row in rows:
        if row.stat in (ACT_MEAN_SQ, ACT_VAR):
            q[row.layer] = q.get(row.layer, 0.0) + row.value
    return [q[k] / q[0] for k in sorted(q)]


@pytest.mark.integration
def test_a_bn_free_plain_44_keeps_its_forward_variance_with_tat_and_loses_it_with_he_init() -> None:
    """At initialisation, averaged over six inits: with TAT every block's forward variance stays within a factor of 2
    of the input's; with He init it falls by orders of magnitude (zero-padded borders and fan-out downsampling thin
    it block after block). The average is what TAT's Q map fixes (E[q_out] = q_in at each leaky-ReLU layer); one net
    of width 32 wanders around it (seeds 0-5 here reach 0.1 to 3.3 of the input's somewhere), since its C map keeps
    inputs correlated (C(0) = 0.9), so a layer's random rotation moves every input's q alike."""
    images = _images(8, 8)

    def mean_ratio(**options) -> np.ndarray:
        nets = [_net("plain", 44, "cifar10", width=32, seed=seed, **options) for seed in range(6)]
        return np.mean([_forward_second_moments(net, images) for net in nets], axis=0)

    tat = mean_ratio(norm="none", init="delta-orthogonal", activation="tat")
    he = mean_ratio(norm="none")
    assert len(tat) == 22 and np.all((tat > 0.5) & (tat < 2)), tat
    assert he.min() < 0.01, he


def test_the_probes_and_the_landscape_objective_work_on_a_bn_free_net() -> None:
    """A BN-free net has no running statistics: the layer responses read the modules in BN's places, and the
    landscape's BN re-estimation leaves its state as it is."""
    from analysis.landscape.objective import Objective

    net = _net("plain", 20, "cifar10", width=4, norm="none", init="delta-orthogonal", activation="tat")
    responses = layer_responses(net, _images(2))
    assert len(responses) == 19 and all(r.std > 0 for r in responses)
    objective = Objective(net, [(_images(2), torch.tensor([0, 1]))])
    state = net.state_dict()
    assert all(torch.equal(state[k], v) for k, v in objective.bn_statistics_for(state).items())
    assert math.isfinite(objective.evaluate(objective.params)[0])


# --- options, configs, refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(arch="plain", shortcut_weight=0.5), "shortcut_weight applies only to arch 'resnet' or 'preact'"),
        (dict(arch="resnet", shortcut_weight=1.5), "shortcut_weight must be a number in [0, 1], got 1.5"),
        (dict(arch="resnet", shortcut_weight=-0.1), "shortcut_weight must be a number in [0, 1], got -0.1"),
        (dict(arch="plain", norm="none", init="fixup"), "init 'fixup' replaces BN in a residual net"),
        (dict(arch="resnet", init="skipinit"), "init 'skipinit' replaces BN in a residual net"),
        (dict(arch="resnet", norm="none", init="fixup", shortcut_weight=0), "at shortcut_weight 0 (no shortcut)"),
        (dict(arch="resnet", norm="none", init="skipinit", shortcut_weight=0.0), "each block outputs zero"),
        (dict(arch="resnet", norm="none", activation="tat", init="delta-orthogonal"), "activation 'tat' transforms"),
        (dict(arch="plain", activation="dks", init="delta-orthogonal"), "needs arch 'plain' and norm 'none'"),
        (dict(arch="plain", norm="none", activation="tat"), "needs init 'delta-orthogonal', got 'he'"),
        (dict(arch="plain", norm="none", activation="tat", init="orthogonal"), "needs init 'delta-orthogonal'"),
        (dict(arch="resnet", norm="none", zero_init_residual=True), "norm 'none' has no BN"),
        (dict(arch="resnet", init="xavier"), "init must be one of 'he', 'orthogonal', 'delta-orthogonal', 'fixup'"),
        (dict(arch="resnet", norm="layer"), "norm must be one of 'bn', 'none', got 'layer'"),
    ],
)
def test_network_spec_refuses_what_does_not_apply_in_one_line(options, message) -> None:
    with pytest.raises(ValueError, match="^.*$") as error:
        NetworkSpec(depth=20, family="cifar10", **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_tat_is_refused_in_one_line_where_dks_has_no_transformation_for_the_depth() -> None:
    vanilla = dict(arch="plain", family="cifar10", norm="none", init="delta-orthogonal", activation="tat")
    with pytest.raises(ValueError) as error:
        NetworkSpec(depth=8, **vanilla)
    assert str(error.value).startswith("activation 'tat' has no transformation for a 8-layer net (7 activations; dks:")
    assert "\n" not in str(error.value)
    assert NetworkSpec(depth=20, **vanilla).nonlinear_layers() == 19


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "plain", "--shortcut_weight", "0.5"], "shortcut_weight applies only to arch 'resnet' or 'preact'"),
        (["--arch", "resnet", "--shortcut_weight", "2"], "shortcut_weight must be a number in [0, 1], got 2.0"),
        (["--arch", "plain", "--norm", "none", "--init", "fixup"], "init 'fixup' replaces BN in a residual net"),
        (["--arch", "pair", "--init", "fixup", "--norm", "none"], "init 'fixup' replaces BN in a residual net"),
        (["--arch", "resnet", "--norm", "none", "--init", "skipinit", "--shortcut_weight", "0"], "each block outputs"),
        (["--arch", "plain", "--activation", "tat", "--init", "delta-orthogonal"], "needs arch 'plain' and norm"),
        (["--init", "xavier"], "init must be one of 'he', 'orthogonal', 'delta-orthogonal', 'fixup', 'skipinit'"),
        (["--arch", "pair", "--norm", "none", "--fuse", "on"], "fusion computes the paper's nets only"),
    ],
)
def test_train_cli_refuses_an_intervention_that_does_not_apply_with_one_line_and_exit_2(
    tmp_path, capsys, args, message
):
    code = train.main(["--preset", "demo", *args, "--out", str(tmp_path / "run"), "--no-wandb"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "run").exists()


def test_run_config_carries_the_spec_its_network_is_built_from() -> None:
    cfg = config_from_dict(
        {"preset": "demo", "arch": "resnet", "depth": 8, "norm": "none", "init": "fixup", "shortcut_weight": "0.5"}
    )
    spec = cfg.network_spec()
    assert (spec.arch, spec.depth, spec.width, spec.num_classes, spec.stem) == ("resnet", 8, 8, 10, "3x3")
    assert spec.interventions() == {"shortcut_weight": 0.5, "norm": "none", "init": "fixup"}
    net = build_networks(cfg)["resnet"]
    assert net.spec == spec.resolved() and isinstance(net.fc, ShiftedLinear)
    assert {k: cfg.to_dict()[k] for k in ("shortcut_weight", "norm", "init", "activation")} == {
        "shortcut_weight": 0.5,
        "norm": "none",
        "init": "fixup",
        "activation": "relu",
    }
    with pytest.raises(ConfigError, match="shortcut_weight must be a number in"):
        cfg.replace(shortcut_weight=True)


def test_a_pair_of_bn_free_nets_trains_unfused_and_fusion_refuses_an_intervention() -> None:
    cfg = config_from_dict({"preset": "demo", "arch": "pair", "norm": "none", "init": "orthogonal"})
    assert fusion_blocker(cfg) == "fusion computes the paper's nets only, and this pair sets init, norm"
    members = [_net(a, 8, "cifar10", norm="none") for a in ("plain", "resnet")]
    assert fusion_problem(members) == "fusion computes the paper's nets only, got norm 'none'"
    with pytest.raises(ValueError, match="paper's nets only"):
        FusedNetwork(members)
