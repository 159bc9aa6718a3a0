"""Horizontal fusion: a FusedNetwork computes each member exactly, and a fused pair trains like an unfused one."""

import pytest
import torch
import torch.nn.functional as F

from experiments.config import ConfigError, config_from_dict, fuses, fusion_blocker, run_dirs
from experiments.store import RunDir
from experiments.train import build_networks, train
from experiments.training import fusion
from experiments.training.module import DegradationModule
from models import build_model, layer_responses
from models.fused import FusedNetwork, fused_state, fusion_problem, split_state
from tests.helpers import tiny

CASES = [
    ("cifar10", 20, ("plain", "resnet"), None, 16),
    ("cifar10", 8, ("resnet", "resnet", "resnet"), "B", 16),
    ("cifar10", 8, ("plain", "plain"), None, 16),
    ("imagenet", 18, ("plain", "resnet"), "A", 32),
    ("imagenet", 50, ("resnet", "resnet"), "C", 32),
]


def _members(family, depth, archs, shortcut, dtype=torch.float32):
    width = 8 if family == "imagenet" else None
    nets = []
    for seed, arch in enumerate(archs):
        torch.manual_seed(seed)
        nets.append(build_model(arch, depth, family, shortcut=shortcut, width=width).to(dtype))
    return nets


@pytest.mark.parametrize(
    ("family", "depth", "archs", "shortcut", "size"), CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CASES]
)
def test_fused_network_computes_every_member_exactly(family, depth, archs, shortcut, size):
    members = _members(family, depth, archs, shortcut, torch.float64)
    fused = FusedNetwork(members)
    assert list(fused.state_dict()) == list(members[0].state_dict())
    assert [n for n, _ in fused.named_parameters()] == [n for n, _ in members[0].named_parameters()]
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([1, 2, 3])
    logits = fused(x)
    assert logits.shape == (len(archs), 3, members[0].num_classes)
    sum(F.cross_entropy(out, y) for out in logits.unbind(0)).backward()
    for k, member in enumerate(members):
        reference = member(x)
        F.cross_entropy(reference, y).backward()
        torch.testing.assert_close(logits[k], reference, rtol=1e-10, atol=1e-10)
        fused_params = dict(fused.named_parameters())
        for name, param in member.named_parameters():
            torch.testing.assert_close(fused_params[name].grad.chunk(len(archs))[k], param.grad, rtol=1e-8, atol=1e-10)
        for name, buf in member.named_buffers():
            if buf.ndim:
                torch.testing.assert_close(dict(fused.named_buffers())[name].chunk(len(archs))[k], buf)


def test_a_stacked_input_gives_each_member_its_own_batch():
    members = _members("cifar10", 8, ("plain", "resnet"), None)
    fused = FusedNetwork(members).eval()
    x = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits = fused(x.flatten(1, 2))
    for k, member in enumerate(members):
        torch.testing.assert_close(logits[k], member.eval()(x[:, k]), rtol=1e-5, atol=1e-5)


def test_split_and_fuse_layouts_are_inverse():
    members = _members("cifar10", 8, ("plain", "resnet"), None)
    fused = FusedNetwork(members)
    with torch.no_grad():
        for p in fused.parameters():
            p.add_(1.0)
    copies = _members("cifar10", 8, ("plain", "plain"), None)
    fused.split_into(copies)
    states = [c.state_dict() for c in copies]
    assert copies[0].conv1.weight[0, 0, 0, 0] == members[0].conv1.weight[0, 0, 0, 0] + 1
    for key, value in fused_state(states).items():
        torch.testing.assert_close(value, fused.state_dict()[key], rtol=0, atol=0)
    for again, state in zip(split_state(fused_state(states), 2), states, strict=True):
        assert all(torch.equal(again[k], state[k]) for k in state)


@pytest.mark.parametrize(
    ("nets", "problem"),
    [
        (lambda: [build_model("resnet", 20, "cifar10")], "fusion needs at least two networks"),
        (lambda: [build_model("resnet", 20, "cifar10"), build_model("resnet", 32, "cifar10")], "share their depth"),
        (
            lambda: [build_model("plain", 20, "cifar10"), build_model("resnet", 20, "cifar10", shortcut="B")],
            "a plain net fuses only with option-A ResNets",
        ),
        (
            lambda: [build_model("resnet", 20, "cifar10"), build_model("resnet", 20, "cifar10", shortcut="C")],
            "must share one shortcut option, got ['A', 'C']",
        ),
        (lambda: [build_model("resnet", 20, "cifar10", width=8), build_model("resnet", 20, "cifar10")], "width"),
    ],
)
def test_networks_that_cannot_be_fused_are_refused_with_the_reason(nets, problem):
    members = nets()
    assert problem in fusion_problem(members)
    with pytest.raises(ValueError, match="fus|share"):
        FusedNetwork(members)


@pytest.mark.parametrize(
    ("overrides", "blocker"),
    [
        ({"arch": "pair", "depth": 56}, None),
        ({"arch": "resnet", "depth": 56}, "needs arch 'pair'"),
        ({"arch": "pair", "depth": 110}, "warm-up"),
        ({"arch": "pair", "depth": 56, "shortcut": "B"}, "option B has projection weights"),
        ({"arch": "pair", "dataset": "imagenet", "depth": 34}, "validation plateaus"),
    ],
)
def test_the_config_says_where_fusion_would_change_the_recipe(overrides, blocker):
    auto = config_from_dict({**overrides, "fuse": "auto"})
    if blocker is None:
        assert fusion_blocker(auto) is None and fuses(auto)
        assert fuses(auto.replace(fuse="on")) and not fuses(auto.replace(fuse="off"))
        return
    assert blocker in fusion_blocker(auto) and not fuses(auto)
    with pytest.raises(ConfigError, match="fuse 'on' is not possible for this run"):
        fuses(auto.replace(fuse="on"))


def _module(tmp_path, fuse):
    cfg = config_from_dict(tiny(arch="pair", fuse=fuse, runs_dir=str(tmp_path)))
    torch.manual_seed(0)
    return DegradationModule(cfg, build_networks(cfg), train_size=512, eval_names=["test"])


def test_a_fused_module_saves_and_loads_the_members_layout(tmp_path):
    unfused, fused = _module(tmp_path, "off"), _module(tmp_path, "on")
    with torch.no_grad():
        for p in unfused.parameters():
            p.normal_()
    fused.load_state_dict(unfused.state_dict())
    torch.testing.assert_close(
        fused.fused.conv1.weight, torch.cat([unfused.nets["plain"].conv1.weight, unfused.nets["resnet"].conv1.weight])
    )
    saved = fused.state_dict()
    assert not any(k.startswith("fused.") for k in saved)
    assert all(torch.equal(saved[k], v) for k, v in unfused.state_dict().items())


def test_optimizer_state_converts_between_layouts_without_loss():
    buffers = [torch.randn(4, 3), torch.randn(5), torch.randn(4, 3), torch.randn(5)]
    members = {
        "state": {i: {"momentum_buffer": b} for i, b in enumerate(buffers)},
        "param_groups": [
            {"lr": 0.1, "momentum": 0.9, "params": [0, 1], "name": "plain"},
            {"lr": 0.1, "momentum": 0.9, "params": [2, 3], "name": "resnet"},
        ],
    }
    fused = fusion.optimizer_to_fused(members, ["plain", "resnet"])
    assert [g["name"] for g in fused["param_groups"]] == ["fused"] and fused["param_groups"][0]["params"] == [0, 1]
    assert torch.equal(fused["state"][0]["momentum_buffer"], torch.cat([buffers[0], buffers[2]]))
    back = fusion.optimizer_to_members(fused, ["plain", "resnet"])
    assert back["param_groups"] == members["param_groups"]
    assert all(torch.equal(back["state"][i]["momentum_buffer"], b) for i, b in enumerate(buffers))


def _pair(tmp_path, name, **overrides):
    cfg = config_from_dict(
        tiny(arch="pair", max_steps=20, eval_every=10, log_every=5, checkpoint_every=10, runs_dir=str(tmp_path / name))
        | overrides
    )
    train(cfg, echo=lambda *a, **k: None)
    return cfg, {m.arch: RunDir(path) for m, path in zip(cfg.members(), run_dirs(cfg), strict=True)}


@pytest.mark.integration
def test_a_fused_pair_trains_like_the_unfused_pair(tmp_path):
    _, unfused = _pair(tmp_path, "unfused", fuse="off")
    _, fused = _pair(tmp_path, "fused", fuse="on")
    for arch, run in fused.items():
        s, ref = run.read_summary(), unfused[arch].read_summary()
        assert s["fused"] is True and ref["fused"] is False and s["arch"] == arch
        for key in ("final_train_loss", "final_test_loss", "final_train_error", "final_test_error"):
            assert s[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-4), (arch, key)
        weights = torch.load(run.checkpoint_dir / "model.pt")
        reference = torch.load(unfused[arch].checkpoint_dir / "model.pt")
        assert weights.keys() == reference.keys()
        for key, value in reference.items():
            torch.testing.assert_close(weights[key].double(), value.double(), rtol=1e-4, atol=1e-4)
        responses, reference_responses = run.read_responses(), unfused[arch].read_responses()
        assert len(responses) == len(reference_responses) > 0
        for row, expected in zip(responses, reference_responses, strict=True):
            assert (row["step"], row["layer"]) == (expected["step"], expected["layer"])
            assert row["std"] == pytest.approx(expected["std"], rel=1e-4)
    plain = torch.load(fused["plain"].checkpoint_dir / "model.pt")
    resnet = torch.load(fused["resnet"].checkpoint_dir / "model.pt")
    assert not torch.equal(plain["conv1.weight"], resnet["conv1.weight"])


@pytest.mark.integration
@pytest.mark.parametrize(("first", "then"), [("on", "off"), ("off", "on")])
def test_a_run_resumes_with_fusion_switched(tmp_path, first, then):
    _, reference = _pair(tmp_path, "ref", fuse=then)
    cfg, switched = _pair(tmp_path, "switched", fuse=first)
    (switched["plain"].checkpoint_dir / "step=20.ckpt").unlink()
    for run in switched.values():
        run.update_summary(status="running")
    lines = []
    train(cfg.replace(fuse=then), echo=lines.append)
    assert any("resuming" in line and "step=10" in line for line in lines)
    for arch, run in switched.items():
        s, ref = run.read_summary(), reference[arch].read_summary()
        assert s["status"] == "finished" and s["step"] == 20 and s["fused"] is (then == "on")
        assert s["resumed_from"].endswith("step=10.ckpt")
        for key in ("final_train_loss", "final_test_loss"):
            assert s[key] == pytest.approx(ref[key], rel=1e-4), (arch, key)


def test_fused_option_a_keeps_channels_last_and_refuses_a_layer_probe():
    members = _members("cifar10", 8, ("plain", "resnet"), None)
    fused = FusedNetwork(members).to(memory_format=torch.channels_last)
    x = torch.randn(2, 32, 8, 8).contiguous(memory_format=torch.channels_last)
    padded = fused.stages[1][0].shortcut.shortcut(x)
    assert padded.shape == (2, 64, 4, 4) and padded.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(padded[:, :16], x[:, :16, ::2, ::2])
    assert padded[:, 16:32].abs().sum() == 0
    torch.testing.assert_close(padded[:, 32:48], x[:, 16:, ::2, ::2])
    with pytest.raises(TypeError, match="split_into"):
        layer_responses(fused, torch.randn(2, 3, 32, 32))
