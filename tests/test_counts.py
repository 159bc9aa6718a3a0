"""Parameter and MAC counts against the expected exact counts, the paper's tables, and `python -m models`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from models import CIFAR_PAPER_DEPTHS, IMAGENET_DEPTHS, build_model, count_macs, count_params
from models.options import uses_bottleneck
from models.paper import (
    CIFAR_BOTTLENECK_COUNTS,
    CIFAR_COUNTS,
    IMAGENET_COUNTS,
    MACS_RTOL,
    PLAIN18_PARAMS,
    PREACT_CIFAR_COUNTS,
    RESNET34_COUNTS,
    RESNET110_CIFAR_RUNS,
    SMALL_STEM,
    SMALL_STEM_CLASSES,
    SMALL_STEM_COUNTS,
    SMALL_STEM_SIDE,
    paper_error,
    paper_macs,
    paper_params,
)

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("torch_single_thread")


PLAIN_A_B = (("plain", None), ("resnet", "A"), ("resnet", "B"))


# --- parameters and MACs --------------------------------------------------------------------------------------


def assert_macs_match(ours: int, paper: float, decimals: int, unit: float) -> None:
    """Within MACS_RTOL of the paper's figure, and equal to it when rounded to the digits the paper gives."""
    assert abs(ours - paper) <= MACS_RTOL * paper
    assert round(ours / unit, decimals) == pytest.approx(paper / unit)


@pytest.mark.parametrize("depth", CIFAR_PAPER_DEPTHS)
def test_cifar_counts(depth: int) -> None:
    counts = CIFAR_COUNTS[depth]
    plain, option_a, option_b = (build_model(a, depth, "cifar10", s) for a, s in PLAIN_A_B)
    assert count_params(plain) == count_params(option_a) == counts.params_a
    assert count_params(option_b) == counts.params_b
    ours = count_macs(option_a, (3, 32, 32))
    assert count_macs(plain, (3, 32, 32)) == ours
    assert_macs_match(ours, counts.mmacs_a * 1e6, 1 if depth == 1202 else 2, 1e6)


@pytest.mark.parametrize(
    ("depth", "stride_in"),
    [(d, s) for d in IMAGENET_DEPTHS for s in ("1x1", "3x3") if s == "1x1" or uses_bottleneck("imagenet", d)],
)  # a basic block has no 1x1 conv to move the stride from, so models refuses 3x3 below 50 layers
def test_imagenet_counts_option_b(depth: int, stride_in: str) -> None:
    counts = IMAGENET_COUNTS[depth]
    model = build_model("resnet", depth, "imagenet", "B", stride_in)
    assert count_params(model) == counts.params
    paper = counts.gmacs_stride_1x1 if stride_in == "1x1" else counts.gmacs_stride_3x3
    assert_macs_match(count_macs(model, (3, 224, 224)), paper * 1e9, 3, 1e9)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_plain_params_equal_option_a(depth: int) -> None:
    plain = count_params(build_model("plain", depth, "imagenet"))
    assert plain == count_params(build_model("resnet", depth, "imagenet", "A"))


def test_plain18_params() -> None:
    assert count_params(build_model("plain", 18, "imagenet")) == PLAIN18_PARAMS == 11_515_688


@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
def test_resnet34_counts(shortcut: str) -> None:
    model = build_model("resnet", 34, "imagenet", shortcut)
    assert count_params(model) == RESNET34_COUNTS[shortcut].params
    assert_macs_match(count_macs(model, (3, 224, 224)), RESNET34_COUNTS[shortcut].gmacs * 1e9, 3, 1e9)


def test_count_macs_formula_and_mode() -> None:
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )
    model.train()
    model[1].eval()
    expected = 4 * 4 * 9 * 4 * 8 + 4 * 4 * 9 * 4 * 8 + 8 * 5
    assert count_macs(model, (4, 8, 8)) == expected
    assert model.training and model[0].training and not model[1].training
    assert not any(module._forward_hooks for module in model.modules())


def test_count_macs_leaves_batch_norm_statistics_alone() -> None:
    net = build_model("resnet", 20, "cifar10").train()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    count_macs(net, (3, 32, 32))
    assert all(torch.equal(before[key], value) for key, value in net.state_dict().items())
    assert net.training


# --- the paper's tables ----------------------------------------------------------------------------------------


def test_paper_lookups() -> None:
    assert paper_error("table2", "plain", 34).top1 == 28.54
    assert paper_error("table2", "resnet", 34).top1 == 25.03
    assert paper_error("table3", "plain", 34) == (28.54, 10.02)
    assert paper_error("table3", "resnet", 34, "C") == (24.19, 7.40)
    assert paper_error("table3", "resnet", 152).top1 == 21.43
    assert paper_error("table4", "resnet", 50).top5 == 5.25
    assert paper_error("table6", "resnet", 110).top1 == 6.43
    assert (RESNET110_CIFAR_RUNS.mean, RESNET110_CIFAR_RUNS.std) == (6.61, 0.16)
    with pytest.raises(KeyError, match="table4 has no resnet-34 with shortcut A"):
        paper_error("table4", "resnet", 34)
    with pytest.raises(ValueError, match="table must be one of"):
        paper_error("table5", "resnet", 34)


def test_paper_count_lookups() -> None:
    assert paper_params("plain", 56, "cifar10") == 853_018
    assert paper_params("resnet", 56, "cifar10", "B") == 855_770
    assert paper_params("resnet", 56, "cifar10", "C") is None
    assert paper_params("resnet", 50, "imagenet") == 25_557_032
    assert paper_params("plain", 50, "imagenet") is None
    assert paper_macs("resnet", 50, "imagenet", stride_in="3x3") == pytest.approx(4.089e9)
    assert paper_macs("plain", 34, "imagenet") == pytest.approx(3.644e9)


@pytest.mark.integration
def test_cli_lists_every_cifar_depth_as_matching() -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-m", "models", "--family", "cifar10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "✗" not in result.stdout and "imagenet" not in result.stdout
    for depth in CIFAR_PAPER_DEPTHS:
        for name in (f"plain-{depth} (cifar10)", f"resnet-{depth} (cifar10, shortcut A)"):
            assert any(line.startswith(name) and line.endswith("✓") for line in lines), name


def _cli_rows(capsys: pytest.CaptureFixture[str], family: str) -> tuple[int, list[str], dict[str, list[str]]]:
    """Run ``python -m models --family <family>`` in process: exit status, header cells, and each row's cells."""
    from models.__main__ import main

    code = main(["--family", family])
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("network"))
    rows = {line.split(")")[0] + ")": line.split(")", 1)[1].split() for line in lines if line.endswith(("✓", "✗"))}
    return code, header.split(), rows


@pytest.mark.integration
def test_cli_labels_exact_counts_expected_and_the_papers_printed_figures_paper(capsys) -> None:
    code, header, rows = _cli_rows(capsys, "cifar10")
    assert code == 0
    assert header == ["network", "params", "expected", "paper", "MMACs", "expected", "paper", "match"]
    assert rows["resnet-56 (cifar10, shortcut A)"] == ["853,018", "853,018", "0.85M", "125.49", "125.49", "-", "✓"]
    assert rows["plain-56 (cifar10)"][:3] == ["853,018", "853,018", "-"], "Table 6 prints ResNets only"
    assert rows["resnet-56 (cifar10, shortcut B)"][:3] == ["855,770", "855,770", "-"], "the paper uses option A"


@pytest.mark.integration
def test_cli_exits_1_when_an_exact_count_differs(capsys, monkeypatch) -> None:
    import models.__main__ as cli

    monkeypatch.setattr(cli, "paper_params", lambda *row: 1 if row[:2] == ("plain", 20) else paper_params(*row))
    code, _, rows = _cli_rows(capsys, "cifar10")
    assert code == 1 and rows["plain-20 (cifar10)"][-1] == "✗" and rows["plain-32 (cifar10)"][-1] == "✓"


# --- He et al. 2016b's CIFAR nets and the small-stem shapes -----------------------------------------------------


def _without_bn(net: nn.Module) -> int:
    bn = sum(p.numel() for m in net.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    return count_params(net) - bn


@pytest.mark.parametrize("depth", sorted(PREACT_CIFAR_COUNTS))
def test_preact_counts_equal_the_expected_and_round_to_what_2016b_prints(depth: int) -> None:
    net = build_model("preact", depth, "cifar10")
    expected = PREACT_CIFAR_COUNTS[depth]
    assert (count_params(net), _without_bn(net)) == (expected.params, expected.params_without_bn)
    assert_macs_match(count_macs(net, (3, 32, 32)), expected.mmacs * 1e6, 2, 1e6)
    assert paper_params("preact", depth, "cifar10") == expected.params
    if expected.printed_params is not None:
        assert f"{expected.params_without_bn / 1e6:.1f}M" == expected.printed_params


def test_resnet_164_is_1_7m_either_way_and_1001s_10_2m_leaves_bn_out() -> None:
    assert PREACT_CIFAR_COUNTS[164].printed_params == "1.7M" and PREACT_CIFAR_COUNTS[1001].printed_params == "10.2M"
    assert f"{PREACT_CIFAR_COUNTS[164].params / 1e6:.1f}M" == "1.7M"
    assert f"{PREACT_CIFAR_COUNTS[1001].params / 1e6:.1f}M" == "10.3M", "with BN's gamma and beta, as Table 6 counts"
    assert f"{PREACT_CIFAR_COUNTS[1001].params_without_bn / 1e6:.1f}M" == "10.2M"


@pytest.mark.parametrize("depth", sorted(CIFAR_BOTTLENECK_COUNTS))
def test_original_cifar_bottleneck_counts(depth: int) -> None:
    net = build_model("resnet", depth, "cifar10")
    assert count_params(net) == CIFAR_BOTTLENECK_COUNTS[depth].params == paper_params("resnet", depth, "cifar10")
    assert_macs_match(count_macs(net, (3, 32, 32)), CIFAR_BOTTLENECK_COUNTS[depth].gmacs * 1e9, 4, 1e9)
    preact = PREACT_CIFAR_COUNTS[depth]
    assert count_params(net) - preact.params == 896, "the BNs of three projections (2 x 448), less final-BN and stem"


@pytest.mark.parametrize("depth", sorted(SMALL_STEM_COUNTS))
@pytest.mark.parametrize("arch", ["plain", "resnet"])
def test_small_stem_counts_at_64px(arch: str, depth: int) -> None:
    net = build_model(arch, depth, "imagenet", stem=SMALL_STEM, num_classes=SMALL_STEM_CLASSES)
    assert count_params(net) == SMALL_STEM_COUNTS[depth].params
    assert_macs_match(
        count_macs(net, (3, SMALL_STEM_SIDE, SMALL_STEM_SIDE)), SMALL_STEM_COUNTS[depth].gmacs * 1e9, 3, 1e9
    )
    paper_stem = build_model(arch, depth, "imagenet", num_classes=SMALL_STEM_CLASSES)
    assert count_params(paper_stem) - count_params(net) == (7 * 7 - 3 * 3) * 3 * 64, "only the stem conv differs"


@pytest.mark.integration
def test_cli_lists_the_2016b_nets_as_matching(capsys) -> None:
    code, _, rows = _cli_rows(capsys, "cifar10")
    assert code == 0
    assert rows["preact-164 (cifar10, shortcut B, stride in 1x1)"] == [
        "1,703,258", "1,703,258", "1.7M", "244.50", "244.50", "-", "✓"
    ]  # fmt: skip
    assert rows["preact-1001 (cifar10, shortcut B, stride in 1x1)"][2:3] == ["10.2M"]
    assert rows["resnet-1001 (cifar10, shortcut B, stride in 1x1)"][-1] == "✓"
