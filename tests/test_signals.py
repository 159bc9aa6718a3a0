"""Signal statistics (why plain nets degrade, part 1): the probe's numbers against hand computations, its silence
towards training state, the run store's signals.csv through training, resume and fusion, and its analysis."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis import gradient_norms, gradient_norms_over_training, gradient_sentences, load_runs, signal_propagation
from analysis.report import main as report_main
from analysis.style import NothingToDraw
from analysis.verdict import verdict
from experiments.config import config_from_dict, run_dirs
from experiments.store import SIGNAL_COLUMNS, SIGNAL_STATS, RunDir, read_csv_rows
from experiments.train import train
from models import build_model
from models.signals import STATS, SignalLayers, signal_layers, signal_statistics, signal_summary
from tests.analysis_fixtures import write_nets, write_store
from tests.helpers import REPO, cli_args, run_cli, tiny


def by_key(signals) -> dict[tuple[str, int], float]:
    return {(s.stat, s.layer): s.value for s in signals}


# -- the probe against hand computations ---------------------------------------------------------------------------


@pytest.mark.usefixtures("torch_single_thread")
@pytest.mark.parametrize("chunk_size", [None, 3])
def test_a_linear_stack_gives_the_closed_form_statistics(chunk_size):
    """Four bias-free linear layers W_k = a_k I and the loss mean_n sum_j out[n, j]: every gradient is known.

    h_k = c_k x with c_k = a_0...a_k; dL/dh_k = (P_k / N) 1 with P_k = a_{k+1}...a_3, so
    ||dL/dh_k|| = P_k sqrt(N d) / N; dL/dW_k = (dL/dh_k)^T h_{k-1} = (P_k c_{k-1} / N) 1 (sum_n x_n)^T, whose norm is
    P_k c_{k-1} sqrt(d) ||sum_n x_n|| / N.
    """
    n, d, scales = 7, 5, (2.0, 0.5, 3.0, 1.5)
    layers = [nn.Linear(d, d, bias=False).double() for _ in scales]
    with torch.no_grad():
        for layer, a in zip(layers, scales, strict=True):
            layer.weight.copy_(a * torch.eye(d, dtype=torch.float64))
    model = nn.Sequential(*layers)
    x = torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    spec = SignalLayers(
        blocks=[(str(k), layers[k]) for k in (1, 2, 3)],
        branches={},
        weights=[(str(k), layer) for k, layer in enumerate(layers)],
    )
    got = by_key(
        signal_statistics(
            model, x, torch.zeros(n), spec, loss_fn=lambda out, y: out.sum(1).mean(), chunk_size=chunk_size
        )
    )

    c = [math.prod(scales[: k + 1]) for k in range(4)]  # h_k = c_k x (stream layer k is h_k, k = 0..3)
    p = [math.prod(scales[k + 1 :]) for k in range(4)]
    mean_sq, var = x.mean(0).square().mean().item(), x.var(0, correction=0).mean().item()
    column_sum = x.sum(0).norm().item()
    for k in range(4):
        assert got[("act_grad_norm", k)] == pytest.approx(p[k] * math.sqrt(n * d) / n, rel=1e-10)
        assert got[("act_mean_sq", k)] == pytest.approx(c[k] ** 2 * mean_sq, rel=1e-10)
        assert got[("act_var", k)] == pytest.approx(c[k] ** 2 * var, rel=1e-10)
        previous = c[k - 1] if k else 1.0
        grad = p[k] * previous * math.sqrt(d) * column_sum / n
        assert got[("weight_grad_norm", k + 1)] == pytest.approx(grad, rel=1e-10)
        assert got[("weight_norm", k + 1)] == pytest.approx(scales[k] * math.sqrt(d), rel=1e-12)
        assert got[("weight_grad_ratio", k + 1)] == pytest.approx(grad / (scales[k] * math.sqrt(d)), rel=1e-10)
    assert not any(stat.startswith("branch") for stat, _ in got)


@pytest.mark.usefixtures("torch_single_thread")
def test_a_resnet_block_matches_its_branch_and_output_computed_by_hand():
    net = build_model("resnet", 8, "cifar10", width=4).double().eval()
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):  # running statistics that are not the identity
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (6,))
    got = by_key(signal_statistics(net, x, y))

    stem = torch.relu(net.bn1(net.conv1(x)))
    block = net.stages[0][0]
    branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(stem)))))
    out = torch.relu(branch + stem)

    def channel(t):
        return t.mean((0, 2, 3)).square().mean().item(), t.var((0, 2, 3), correction=0).mean().item()

    assert (got[("act_mean_sq", 0)], got[("act_var", 0)]) == pytest.approx(channel(stem), rel=1e-10)
    assert (got[("branch_mean_sq", 1)], got[("branch_var", 1)]) == pytest.approx(channel(branch), rel=1e-10)
    assert (got[("act_mean_sq", 1)], got[("act_var", 1)]) == pytest.approx(channel(out), rel=1e-10)
    last = out
    for stage in net.stages[1:]:
        last = stage(last)
    last = last.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(net.fc(net.avgpool(last).flatten(1)), y), last)
    assert got[("act_grad_norm", 3)] == pytest.approx(grad.norm().item(), rel=1e-10)
    conv1_grad = torch.autograd.grad(F.cross_entropy(net(x), y), net.conv1.weight)[0]
    assert got[("weight_grad_norm", 1)] == pytest.approx(conv1_grad.norm().item(), rel=1e-10)


@pytest.mark.usefixtures("torch_single_thread")
@pytest.mark.parametrize(("family", "depth", "size"), [("cifar10", 20, 8), ("cifar10", 56, 8), ("imagenet", 18, 32)])
def test_plain_and_resnet_of_one_depth_give_the_same_layers(family, depth, size):
    x, y = torch.randn(2, 3, size, size), torch.tensor([1, 2])
    found = {}
    for arch in ("plain", "resnet"):
        signals = signal_statistics(build_model(arch, depth, family, width=4), x, y)
        found[arch] = {stat: [(s.layer, s.name) for s in signals if s.stat == stat] for stat in STATS}
    blocks = 3 * ((depth - 2) // 6) if family == "cifar10" else 8
    for stat in (*("act_grad_norm", "act_mean_sq", "act_var"), *("weight_grad_norm", "weight_norm")):
        assert found["plain"][stat] == found["resnet"][stat], stat
    assert len(found["plain"]["act_grad_norm"]) == blocks + 1 and found["plain"]["act_grad_norm"][0] == (0, "stem")
    assert len(found["plain"]["weight_grad_norm"]) == depth - 1  # every conv but the classifier (option A)
    assert found["plain"]["branch_var"] == [] and len(found["resnet"]["branch_var"]) == blocks


@pytest.mark.usefixtures("torch_single_thread")
def test_chunks_give_the_statistics_of_the_whole_batch():
    net = build_model("resnet", 8, "cifar10", width=4).double()
    net.train()
    net(torch.randn(16, 3, 8, 8, dtype=torch.float64))  # running statistics that are not the identity
    x, y = torch.randn(10, 3, 8, 8, dtype=torch.float64), torch.randint(0, 10, (10,))
    whole, chunked = signal_statistics(net, x, y), signal_statistics(net, x, y, chunk_size=4)
    assert [s[:3] for s in whole] == [s[:3] for s in chunked]
    for a, b in zip(whole, chunked, strict=True):
        assert b.value == pytest.approx(a.value, rel=1e-10, abs=1e-300), a


@pytest.mark.usefixtures("torch_single_thread")
@pytest.mark.parametrize("batch_stats", [False, True])
@pytest.mark.parametrize("context", ["grad", "no_grad", "inference_mode"])
def test_the_probe_leaves_weights_grads_buffers_modes_and_rng_untouched(batch_stats, context):
    net = build_model("resnet", 8, "cifar10", width=4)
    net.train()
    net(torch.randn(8, 3, 8, 8))
    net.stages[1].eval()
    net.fc.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 10, (6,))
    rng = torch.get_rng_state()
    scope = {"grad": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}[context]
    with scope():
        signals = signal_statistics(net, x, y, chunk_size=4, batch_stats=batch_stats)
    assert signals and all(math.isfinite(s.value) for s in signals)
    assert all(p.grad is None for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()].count(False) == 1
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert [m.training for m in net.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_the_statistics_are_the_stores_and_the_summary_has_a_few_scalars():
    assert set(STATS) == set(SIGNAL_STATS)
    signals = signal_statistics(
        build_model("plain", 8, "cifar10", width=4), torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    )
    summary = signal_summary(signals)
    assert set(summary) == {"grad_min_over_max", "grad_in_over_out", "weight_grad_ratio_median", "out_var"}
    assert 0 < summary["grad_min_over_max"] <= 1


def test_signal_layers_of_a_network_name_blocks_branches_and_convs():
    layers = signal_layers(build_model("resnet", 20, "cifar10", shortcut="B"))
    assert [name for name, _ in layers.blocks][:2] == ["stages.0.0", "stages.0.1"]
    assert set(layers.branches) == {name for name, _ in layers.blocks}
    assert any(name.endswith("shortcut.conv") for name, _ in layers.weights)


# -- the run store ---------------------------------------------------------------------------------------------------


def test_signals_csv_appends_replaces_a_repeated_step_ignores_a_torn_row_and_truncates(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.log_signals(0, [(0, "stem", "act_grad_norm", 1.0), (1, "stages.0.0", "act_grad_norm", 2.0)])
    run.log_signals(10, [(0, "stem", "act_grad_norm", 3.0)])
    run.log_signals(10, [(0, "stem", "act_grad_norm", 4.0)])  # probed again after a resume
    with run.signals_path.open("a") as f:
        f.write("20,0,stem,act_gr")  # a crash mid-append
    rows = run.read_signals()
    assert [(r["step"], r["layer"], r["value"]) for r in rows] == [(0, 0, 1.0), (0, 1, 2.0), (10, 0, 4.0)]
    assert set(rows[0]) == set(SIGNAL_COLUMNS) and rows[0]["name"] == "stem" and rows[0]["stat"] == "act_grad_norm"
    run = RunDir(run.path)  # the next process cuts the torn row off before appending
    run.log_signals(20, [(0, "stem", "act_var", 5.0)])
    assert [r["step"] for r in run.read_signals()] == [0, 0, 10, 20]
    run.truncate_after(10)
    assert len(read_csv_rows(run.signals_path)) == 3 and [r["step"] for r in run.read_signals()] == [0, 0, 10]


# -- through training --------------------------------------------------------------------------------------------


def _pair(tmp_path, name, **overrides):
    cfg = config_from_dict(
        tiny(arch="pair", max_steps=20, eval_every=10, log_every=5, checkpoint_every=10, runs_dir=str(tmp_path / name))
        | overrides
    )
    train(cfg, echo=lambda *a, **k: None)
    return {m.arch: RunDir(path) for m, path in zip(cfg.members(), run_dirs(cfg), strict=True)}


@pytest.mark.integration
def test_a_pair_records_each_member_at_step_0_and_every_evaluation_and_fused_agrees(tmp_path):
    unfused, fused = _pair(tmp_path, "unfused", fuse="off"), _pair(tmp_path, "fused", fuse="on")
    for arch in ("plain", "resnet"):
        rows, reference = fused[arch].read_signals(), unfused[arch].read_signals()
        assert sorted({r["step"] for r in rows}) == [0, 10, 20]
        stats = Counter(r["stat"] for r in rows if r["step"] == 20)
        assert stats["act_grad_norm"] == 4 and stats["weight_grad_norm"] == 7
        assert stats["branch_var"] == (3 if arch == "resnet" else 0)
        assert [(r["step"], r["stat"], r["layer"], r["name"]) for r in rows] == [
            (r["step"], r["stat"], r["layer"], r["name"]) for r in reference
        ]
        for row, expected in zip(rows, reference, strict=True):
            assert row["value"] == pytest.approx(expected["value"], rel=1e-4, abs=1e-9), row
        raw = read_csv_rows(fused[arch].signals_path)
        assert len(raw) == len(rows), "one row per step, statistic and layer once training ends"
    ends = {arch: {(r["stat"], r["layer"]): r["value"] for r in run.read_signals() if r["step"] == 20}
            for arch, run in unfused.items()}  # fmt: skip
    assert ends["plain"][("act_grad_norm", 0)] != ends["resnet"][("act_grad_norm", 0)], "each member its own"


@pytest.mark.integration
def test_step_0_is_probed_with_batch_statistics_and_evaluations_with_running_ones(tmp_path, monkeypatch):
    """Before any batch, BN's running statistics (mean 0, variance 1) make BN the identity: step 0 is measured on
    the net as training sees it, normalised by the probe batch; later probes follow --response_bn (eval)."""
    from experiments.training import module

    calls = []

    def recording(*args, **kwargs):
        calls.append(kwargs["batch_stats"])
        return signal_statistics(*args, **kwargs)

    monkeypatch.setattr(module, "signal_statistics", recording)
    _pair(tmp_path, "probe", fuse="off")
    assert calls == [True, True, False, False, False, False], "two members: step 0, then evaluations at 10 and 20"
    calls.clear()
    _pair(tmp_path, "probe_batch", fuse="off", response_bn="batch")
    assert calls == [True] * 6


@pytest.mark.integration
def test_the_other_loggers_get_a_few_scalars_per_member_and_probe(tmp_path):
    """What W&B receives: four scalars per member at step 0 and at each evaluation, not one key per layer."""
    from pytorch_lightning.loggers.logger import Logger

    from experiments.data.datamodules import InMemoryDataModule
    from experiments.train import build_networks, build_trainer
    from experiments.training.callbacks import TrainingWindow
    from experiments.training.module import DegradationModule

    class Recorder(Logger):
        name, version = "recorder", "0"
        logged: list[tuple[int, dict]] = []

        def log_metrics(self, metrics, step=None):
            self.logged.append((step, dict(metrics)))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    cfg = config_from_dict(tiny(arch="pair", max_steps=4, eval_every=2, log_every=2, runs_dir=str(tmp_path)))
    data = InMemoryDataModule(cfg)
    module = DegradationModule(
        cfg,
        build_networks(cfg),
        data.train_size,
        data.eval_names,
        probe_images=data.probe_images(cfg.response_images),
        probe_labels=data.probe_labels(cfg.response_images),
    )
    recorder = Recorder()
    build_trainer(cfg, [recorder], [TrainingWindow()], progress_bar=False).fit(module, datamodule=data)
    probes = [(step, m) for step, m in recorder.logged if any(k.split("/")[-1].startswith("signal_") for k in m)]
    assert [step for step, _ in probes] == [0, 2, 4]
    keys = {f"{arch}/signal_{k}" for arch in ("plain", "resnet") for k in ("grad_min_over_max", "grad_in_over_out")}
    keys |= {f"{arch}/signal_{k}" for arch in ("plain", "resnet") for k in ("weight_grad_ratio_median", "out_var")}
    assert all(set(m) == keys for _, m in probes)


@pytest.mark.integration
def test_no_probe_images_means_no_signals(tmp_path):
    cfg = config_from_dict(tiny(max_steps=10, eval_every=5, log_every=5, response_images=0, runs_dir=str(tmp_path)))
    train(cfg, echo=lambda *a, **k: None)
    assert RunDir(run_dirs(cfg)[0]).read_signals() == []


@pytest.mark.integration
def test_signals_survive_a_kill_and_resume_exactly(tmp_path):
    args = cli_args(tiny(max_steps=160, eval_every=50, log_every=10, checkpoint_every=20))
    ref = run_cli(["-m", "experiments.train", *args, "--out", str(tmp_path / "ref")], cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "killed"
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO), "CI": "1"}
    cmd = [sys.executable, "-m", "experiments.train", *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step=60.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 50 in {r["step"] for r in RunDir(out).read_signals()}, "killed after the probe at step 50"
    resumed = run_cli(["-m", "experiments.train", *args, "--out", str(out)], cwd=tmp_path)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-2000:]
    rows, reference = RunDir(out).read_signals(), RunDir(tmp_path / "ref").read_signals()
    assert sorted({r["step"] for r in rows}) == [0, 50, 100, 150, 160]
    assert rows == reference
    raw = read_csv_rows(RunDir(out).signals_path)
    assert len(raw) == len({(r["step"], r["stat"], r["layer"]) for r in raw}), "no step twice"


# -- analysis ------------------------------------------------------------------------------------------------------


def _profile(arch: str, blocks: int, end: bool, vanish: bool, explode: bool = False) -> list[float]:
    """Block-gradient norms: a plain net's fall towards the input (by 1e-3 when ``vanish``; rise by 1e3 when
    ``explode``), a ResNet's stay level."""
    if arch == "resnet":
        return [0.05 * (1 + 0.1 * math.sin(k)) for k in range(blocks + 1)]
    low = 1e-3 if vanish or explode else (0.2 if end else 0.1)
    norms = [0.05 * low ** (1 - k / blocks) for k in range(blocks + 1)]
    return norms[::-1] if explode else norms


def add_signals(store, vanish: bool = False, explode: bool = False) -> None:
    """Signal rows for every CIFAR-family run of a fake store, at step 0 and at each step with metrics."""
    for run in (RunDir(p.parent) for p in store.glob("**/config.json")):
        config = run.read_config()
        if config["dataset"] == "imagenet":
            continue
        blocks, arch = 3 * ((config["depth"] - 2) // 6), config["arch"]
        steps = [0, *sorted({r["step"] for r in run.read_metrics() if r.get("test_error") is not None})]
        for step in steps:
            end = step == steps[-1]
            rows = []
            for k, grad in enumerate(_profile(arch, blocks, end, vanish and end, explode and not end)):
                name = "stem" if k == 0 else f"block{k}"
                rows += [(k, name, "act_grad_norm", grad), (k, name, "act_mean_sq", 0.1), (k, name, "act_var", 0.5)]
                if arch == "resnet" and k:
                    rows += [(k, name, "branch_mean_sq", 0.01), (k, name, "branch_var", 0.2)]
            run.log_signals(step, rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = write_store(tmp_path_factory.mktemp("signals-store"), imagenet=False)
    add_signals(root)
    return root


def test_load_runs_gives_a_tidy_signals_frame(store):
    signals = load_runs(store).signals
    assert list(signals.columns)[-5:] == list(SIGNAL_COLUMNS)
    assert {"run", "label", "arch", "depth", "status"} <= set(signals.columns)
    plain56 = signals[(signals["label"] == "plain-56") & (signals["stat"] == "act_grad_norm")]
    assert sorted(plain56["step"].unique()) == [0, 4_000, 8_000, 12_000, 16_000, 20_000]
    assert (plain56.groupby("step").size() == 28).all()


def test_signal_figures_draw_plain_and_resnets_and_refuse_an_empty_frame(store):
    signals = load_runs(store).signals
    fig = gradient_norms(signals)
    assert len(fig.axes) == 2 and [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    assert {line.get_label() for line in fig.axes[0].get_lines()} >= {"plain-20", "plain-56", "ResNet-110"}
    assert len(signal_propagation(signals).axes) == 6
    small = gradient_norms_over_training(signals)
    titles = [ax.get_title() for ax in small.axes if ax.get_visible()]
    assert "plain-56" in titles and "ResNet-1202" in titles and len(titles) == 7
    for draw in (gradient_norms, gradient_norms_over_training, signal_propagation):
        with pytest.raises(NothingToDraw):
            draw(signals.iloc[0:0])


@pytest.mark.parametrize("vanish", [False, True])
def test_the_verdict_says_whether_the_deepest_plain_nets_gradients_vanish(tmp_path, vanish):
    root = write_nets(tmp_path, {("plain", 8, 0): 5.0, ("plain", 20, 0): 9.0, ("resnet", 8, 0): 4.0,
                                 ("resnet", 20, 0): 3.0})  # fmt: skip
    add_signals(root, vanish=vanish)
    (group,) = verdict(load_runs(root)).groups
    (sentence,) = [s for s in group.sentences if s.startswith("Backward signals")]
    ratio = 1e-3 if vanish else 0.2
    assert f"plain-20's smallest block-gradient norm (block 0) is {ratio:.2g} times its largest (block 9)" in sentence
    assert "at initialisation 0.1" in sentence and "ResNet-20's at the end" in sentence
    assert ("its gradients vanish (below 0.01), unlike the paper's argument" in sentence) is vanish
    assert ("its gradients do not vanish (vanishing: below 0.01), as the paper argues" in sentence) is not vanish
    assert any(s.startswith("Forward signals of plain-20 keep non-zero variance") for s in group.sentences)
    assert gradient_sentences(pd.DataFrame(columns=load_runs(root).signals.columns)) == []


def test_gradients_that_grow_toward_the_input_are_not_called_vanishing(tmp_path):
    """At initialisation a deep plain net with BN has block-gradient norms that grow toward the input (measured with
    batch statistics, as training sees the net); the verdict names the direction, and never calls it vanishing."""
    root = write_nets(tmp_path, {("plain", 8, 0): 5.0, ("plain", 20, 0): 9.0})
    add_signals(root, explode=True)
    (group,) = verdict(load_runs(root)).groups
    (sentence,) = [s for s in group.sentences if s.startswith("Backward signals")]
    assert "at initialisation 0.001, largest at the input side" in sentence, sentence
    assert "its gradients do not vanish (vanishing: below 0.01)" in sentence, "at the end the profile is healthy"
    grads = load_runs(root).signals
    grads = grads[grads["stat"] == "act_grad_norm"]
    last = grads["step"].max()
    end = grads["step"] == last
    blocks = grads.loc[end & (grads["label"] == "plain-20"), "layer"].max()
    reversed_end = grads.assign(value=grads["value"].where(~end, 0.05 * 1e-3 ** (grads["layer"] / blocks)))
    sentences = gradient_sentences(reversed_end)
    assert "grow toward the input" in sentences[0] and "vanish (below" not in sentences[0], sentences[0]


def test_the_report_has_the_signal_figures(store, tmp_path):
    out = tmp_path / "report"
    assert report_main([str(store), "--out", str(out), "--format", "png"]) == 0
    for name in ("gradients", "gradients_over_training", "signal_propagation"):
        assert (out / f"{name}.png").exists()
    assert "Backward signals" in (out / "report.md").read_text()


def test_the_cost_benchmark_compares_training_with_and_without_the_probe(tmp_path):
    import json

    from benchmarks import signals as bench

    out = tmp_path / "signals.json"
    args = ["--models", "demo8", "--steps", "2", "--eval-every", "1", "--repeats", "1", "--out", str(out)]
    assert bench.main(args) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["model"] == "demo8" and result["probes"] == 3 and result["ratio"] > 0
    assert 0 < result["projected_ratio_at_preset"] <= 1 and result["probe_s"] > 0 and 0 < result["ratio_in_fit"] < 1
