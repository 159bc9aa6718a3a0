"""The landscape tools (analysis/landscape): closed-form curvature, filter normalisation, interpolation ends, rebuilt
initial weights, resuming a killed scan, bad input, and one end-to-end analysis of a tiny real store."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis.landscape import cli, curvature, directions, figures, layout, runner, shattered
from analysis.landscape.harness import Run, find_runs, open_run, training_images
from analysis.landscape.objective import Objective, make_batches
from analysis.landscape.scan import Scan, read_rows
from analysis.landscape.section import landscape_section
from experiments.config import config_from_dict
from experiments.sweep.spec import load_sweep, resolve_runs
from experiments.train import train
from models import build_model
from tests.helpers import REPO, run_cli, tiny

SMALL = ["--points", "3", "--line-points", "3", "--images", "64", "--eigenvalues", "2", "--lanczos-steps", "3",
         "--hutchinson-samples", "2", "--gradient-lines", "1", "--gradient-points", "8", "--batch-size", "64",
         "--format", "png"]  # fmt: skip
"""Options that make one run's analysis take a second or two on a tiny net."""


# -- curvature: a quadratic loss with a known Hessian ------------------------------------------------------------


def _mse(outputs, targets):
    return ((outputs.squeeze(-1) - targets) ** 2).mean()


def _linear_objective(x, y, bias=True):
    model = nn.Linear(x.shape[1], 1, bias=bias).double()
    batches = [(x[:16], y[:16]), (x[16:32], y[16:32]), (x[32:], y[32:])]  # unequal batches: weighting is tested too
    return Objective(model, [b for b in batches if len(b[1])], criterion=_mse)


def test_lanczos_and_hutchinson_on_a_linear_model_with_mse_give_the_closed_form_hessian():
    # loss(w, b) = mean((x w + b - y)^2) has Hessian H = 2 A^T A / n with A = [x, 1], whatever w and b are
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 5, generator=g, dtype=torch.float64), torch.randn(40, generator=g, dtype=torch.float64)
    objective = _linear_objective(x, y)
    a = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], 1)  # parameter order: weight (1 x 5), then bias
    hessian = 2 * a.T @ a / 40
    exact = np.sort(np.linalg.eigvalsh(hessian.numpy()))[::-1]
    matvec = objective.flat_hvp(objective.params)
    v = torch.randn(6, generator=g, dtype=torch.float64)
    assert torch.allclose(matvec(v), hessian @ v, rtol=1e-12, atol=1e-12)

    spectrum = curvature.lanczos(matvec, objective.dim, 20, torch.Generator().manual_seed(0), check=3)
    assert spectrum.steps == 6, "the Krylov space of a 6 x 6 Hessian closes after 6 steps"
    assert len(spectrum.measured) == 3 and max(spectrum.measured) < 1e-10, "H y = theta y, measured"
    assert spectrum.top(3) == pytest.approx(exact[:3].tolist(), rel=1e-9)  # exact up to rounding
    assert spectrum.smallest == pytest.approx(exact[-1], rel=1e-8)

    trace = curvature.hutchinson(matvec, objective.dim, 400, torch.Generator().manual_seed(0))
    exact_trace = float(torch.trace(hessian))
    assert trace.stderr > 0
    assert abs(trace.mean - exact_trace) < 4 * trace.stderr, "unbiased: within 4 standard errors"
    assert abs(trace.mean - exact_trace) / exact_trace < 0.05


def test_hutchinson_is_exact_for_a_diagonal_hessian_and_lanczos_finds_its_largest_entry():
    # rows of a scaled identity, no bias: H = 2 diag(s^2) / n, and v^T H v = tr(H) for every +-1 vector v
    scales = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    x, y = torch.diag(scales), torch.zeros(4, dtype=torch.float64)
    objective = Objective(nn.Linear(4, 1, bias=False).double(), [(x, y)], criterion=_mse)
    matvec = objective.flat_hvp(objective.params)
    trace = curvature.hutchinson(matvec, 4, 5, torch.Generator().manual_seed(3))
    assert trace.samples == pytest.approx([2 * 30 / 4] * 5, abs=1e-12)
    assert curvature.lanczos(matvec, 4, 4, torch.Generator().manual_seed(3)).largest == pytest.approx(8.0, abs=1e-12)


# -- filter-normalised directions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_filter_normalised_directions_have_the_weight_filter_norms_and_zero_bn_and_bias(shortcut):
    net = build_model("resnet", 8, "cifar10", shortcut=shortcut, width=4)
    weights = {k: p.detach() for k, p in net.named_parameters()}
    d1, d2 = directions.directions(weights, seed=5)
    zero = {k for k, w in weights.items() if w.dim() <= 1}
    assert zero == {k for k in weights if ".bn" in k or k.startswith("bn") or k.endswith("bias")}
    for name, w in weights.items():
        for d in (d1, d2):
            if name in zero:
                assert torch.count_nonzero(d[name]) == 0, name
            else:
                filters_d = d[name].flatten(1).double().norm(dim=1)
                filters_w = w.flatten(1).double().norm(dim=1)
                assert torch.allclose(filters_d, filters_w, rtol=1e-6, atol=0), name
    assert not torch.equal(d1["conv1.weight"], d2["conv1.weight"])
    again = directions.directions(weights, seed=5)
    assert all(torch.equal(again[0][k], d1[k]) for k in weights), "seeded: the same directions every time"


def test_a_zero_weight_filter_gets_a_zero_direction_filter():
    w = {"conv.weight": torch.ones(3, 2, 3, 3)}
    w["conv.weight"][1] = 0
    d = directions.random_direction(w, torch.Generator().manual_seed(0))["conv.weight"]
    assert torch.count_nonzero(d[1]) == 0
    assert float(d[0].norm()) == pytest.approx(float(w["conv.weight"][0].norm()), rel=1e-6)


# -- shattered gradients ---------------------------------------------------------------------------------------------


def test_autocorrelation_length_tells_white_noise_from_brown_noise():
    g = np.random.default_rng(0).standard_normal((256, 50))
    white = shattered.autocorrelation(g, 128)
    brown = shattered.autocorrelation(np.cumsum(g, axis=0), 128)
    assert white[0] == brown[0] == pytest.approx(1.0)
    assert shattered.autocorrelation_length(white).lag < 1.0
    assert shattered.autocorrelation_length(brown).lag > 10.0
    # the crossing is interpolated between the lags around it: 1 -> 0.5 -> 0.2 crosses 1/e at lag 1 + 0.133/0.3
    length = shattered.autocorrelation_length(np.array([1.0, 0.5, 0.2]))
    assert length.lag == pytest.approx(1 + (0.5 - 1 / math.e) / 0.3) and not length.censored
    assert shattered.autocorrelation_length(np.array([1.0, 0.9, 0.8])).censored


def test_input_gradients_are_each_inputs_own_gradient():
    net = build_model("plain", 8, "cifar10", width=4).eval()
    params, buffers = {k: p.detach() for k, p in net.named_parameters()}, dict(net.named_buffers())
    x = torch.randn(6, 3, 8, 8)
    grads = shattered.input_gradients(net, params, buffers, x, output=3, batch_size=4)
    xx = x.clone().requires_grad_(True)
    net(xx)[:, 3].sum().backward()
    assert grads.shape == (6, 3 * 8 * 8)
    assert torch.allclose(grads, xx.grad.flatten(1).double(), rtol=1e-5, atol=1e-7)


# -- resumable scans -------------------------------------------------------------------------------------------------


def test_a_killed_scan_keeps_every_finished_point_on_disk_and_resumes_from_there(tmp_path):
    points = [{"i": i, "alpha": i / 10} for i in range(10)]
    path = tmp_path / "line.csv"
    calls = []

    def evaluate(point):
        # flush_seconds=0: every earlier point is on disk before the next is computed, so a SIGKILL here loses none
        assert len(read_rows(path)) == len(calls)
        calls.append(point["i"])
        if len(calls) == 4:
            raise RuntimeError("killed")
        return {"loss": point["alpha"] ** 2}

    with pytest.raises(RuntimeError, match="killed"):
        Scan(path, "line", "fp1", points, ["i"], ["loss"], evaluate, flush_seconds=0).run()
    assert [r["i"] for r in read_rows(path)] == [0, 1, 2]
    calls.clear()
    rows = Scan(path, "line", "fp1", points, ["i"], ["loss"], lambda p: {"loss": p["alpha"] ** 2}).run()
    assert [r["loss"] for r in rows] == pytest.approx([(i / 10) ** 2 for i in range(10)])
    counted = []
    Scan(path, "line", "fp1", points, ["i"], ["loss"], lambda p: counted.append(p) or {"loss": 0.0}).run()
    assert counted == [], "a finished scan computes nothing"
    Scan(path, "line", "fp2", points, ["i"], ["loss"], lambda p: counted.append(p) or {"loss": 0.0}).run()
    assert len(counted) == 10, "points of another fingerprint (weights, images, grid) are not reused"


# -- a tiny real store -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tiny plain/ResNet-8 pair trained for real; the nets training started from are captured as it builds them."""
    from experiments.training.module import DegradationModule

    root = tmp_path_factory.mktemp("landscape")
    started = {}
    original = DegradationModule.__init__

    def spy(self, cfg, nets, *args, **kwargs):
        started.update({name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in nets.items()})
        original(self, cfg, nets, *args, **kwargs)

    cfg = config_from_dict(
        tiny(arch="pair", depth=8, max_steps=6, eval_every=6, log_every=3, checkpoint_every=6, sweep="tiny",
             runs_dir=str(root / "runs"), seed=3)
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(DegradationModule, "__init__", spy)
            train(cfg, echo=lambda *a, **k: None)
    finally:
        torch.set_num_threads(threads)
    return root / "runs" / "tiny", started


def _run_of(store_path, arch):
    runs, _ = find_runs(store_path)
    return next(r for r in runs if r.arch == arch)


@pytest.mark.integration
def test_initial_weights_rebuilt_from_config_json_equal_what_training_started_from(store):
    store_path, started = store
    for arch in ("plain", "resnet"):
        run = _run_of(store_path, arch)
        rebuilt = run.build().state_dict()
        assert rebuilt.keys() == started[arch].keys()
        assert all(torch.equal(rebuilt[k], started[arch][k]) for k in rebuilt), arch
        trained = run.final_state()
        assert not torch.equal(trained["conv1.weight"], rebuilt["conv1.weight"]), "model.pt holds trained weights"


def _copy_run(store_path, arch, tmp_path):
    run = _run_of(store_path, arch)
    target = tmp_path / run.name
    shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(layout.FOLDER))
    return target


def _loss(net, x, y):
    with torch.no_grad():
        return float(F.cross_entropy(net.eval()(x), y))


@pytest.mark.parametrize("line_bn", ["recomputed", "running"])
def test_the_interpolation_starts_at_the_initial_net_and_ends_at_the_final_net(
    store, tmp_path, torch_single_thread, line_bn
):
    """The line's ends are the initial and the final net, evaluated through their own forward. By default BN's
    statistics are re-estimated for each point's weights (the initial net's running statistics, mean 0 and variance
    1, would make BN the identity: a net training never saw); --line-bn running interpolates the stored ones."""
    from torch.optim.swa_utils import update_bn

    path = _copy_run(store[0], "plain", tmp_path)
    assert cli.main([str(path), *SMALL, "--only", "line", "--line-points", "5", "--line-bn", line_bn]) == 0
    rows = read_rows(layout.run_folder(path) / layout.LINE_CSV)
    assert [r["alpha"] for r in rows] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    # the same 64 training images, evaluated through the networks' own forward (no functional_call, no interpolation)
    run = open_run(path)
    data = training_images(run.config)
    x, y = data.normalized(runner.evaluation_subset(len(data), 64, 0))
    initial = run.build()
    final = run.build()
    final.load_state_dict(run.final_state())
    if line_bn == "recomputed":
        for net in (initial, final):
            update_bn([x], net)
    assert rows[0]["loss"] == pytest.approx(_loss(initial, x, y), rel=1e-5)
    assert rows[-1]["loss"] == pytest.approx(_loss(final, x, y), rel=1e-5)
    assert rows[0]["loss"] != pytest.approx(rows[-1]["loss"], rel=1e-3)
    summary = json.loads((layout.run_folder(path) / layout.SUMMARY_JSON).read_text())
    assert summary["line_bn"] == line_bn


def test_a_killed_surface_resumes_without_recomputing_finished_points(
    store, tmp_path, monkeypatch, torch_single_thread
):
    path = _copy_run(store[0], "resnet", tmp_path / "a")
    fresh = _copy_run(store[0], "resnet", tmp_path / "b")
    args = [*SMALL, "--only", "surface", "--points", "5"]
    calls, interrupt = [], [8]
    original = Objective.evaluate

    def counted(self, params, buffers=None):
        calls.append(1)
        if len(calls) == interrupt[0]:
            interrupt[0] = 0
            raise KeyboardInterrupt  # Ctrl-C in the middle of the 8th point, once
        return original(self, params, buffers)

    monkeypatch.setattr(Objective, "evaluate", counted)
    assert cli.main([str(path), *args]) == 130
    assert len(read_rows(layout.run_folder(path) / layout.SURFACE_CSV)) == 7
    calls.clear()
    assert cli.main([str(path), *args]) == 0
    assert len(calls) == 25 - 7, "only the missing points are computed"
    calls.clear()
    assert cli.main([str(path), *args]) == 0
    assert calls == [], "a finished analysis computes nothing"
    summary = json.loads((layout.run_folder(path) / layout.SUMMARY_JSON).read_text())
    assert summary["wall_time_s"]["surface"] > 0, "and keeps the time the stage took when it was computed"
    assert cli.main([str(fresh), *args]) == 0
    resumed = (layout.run_folder(path) / layout.SURFACE_CSV).read_text()
    assert resumed == (layout.run_folder(fresh) / layout.SURFACE_CSV).read_text(), "same numbers as in one go"


@pytest.mark.integration
def _record_titles(monkeypatch, name: str) -> list[str]:
    """Wrap the landscape figure function ``name`` so that each figure it draws leaves its title in the list."""
    drawn, titles = getattr(figures, name), []

    def recording(*args, **kwargs):
        fig = drawn(*args, **kwargs)
        titles.append(fig.get_suptitle())
        return fig

    monkeypatch.setattr(figures, name, recording)
    return titles


def test_a_whole_store_gives_every_file_and_a_report_section(store, torch_single_thread, capsys, monkeypatch):
    store_path, _ = store
    titles = {name: _record_titles(monkeypatch, name) for name in ("line_figure", "lines_figure")}
    assert cli.main([str(store_path), *SMALL[:-2]]) == 0  # default formats: png and pdf
    line_bn = "BN in eval mode with statistics re-estimated on these images for each point's weights"
    assert sorted(titles["line_figure"]) == [
        f"Linear interpolation\n{label}: training loss on 64 training images, un-augmented; {line_bn}"
        for label in ("ResNet-8", "plain-8")
    ]
    assert titles["lines_figure"] == [
        "Linear interpolation from initial to final weights\n"
        f"training loss on 64 training images, un-augmented; {line_bn}"
    ], "one statement of what BN used: never 're-estimated' beside 'running statistics'"
    out = capsys.readouterr().out
    for arch in ("plain", "resnet"):
        folder = layout.run_folder(_run_of(store_path, arch).path)
        files = [layout.LINE_CSV, layout.SURFACE_CSV, layout.CURVATURE_JSON, layout.AUTOCORRELATION_CSV,
                 layout.GRADIENTS_CSV, layout.SHATTERED_JSON, layout.SUMMARY_JSON]  # fmt: skip
        files += [f"{stem}.{fmt}" for stem in layout.RUN_FIGURES for fmt in ("png", "pdf")]
        assert all((folder / f).stat().st_size > 0 for f in files), sorted(p.name for p in folder.iterdir())
        summary = json.loads((folder / layout.SUMMARY_JSON).read_text())
        assert summary["images"] == 64 and len(summary["top_eigenvalues"]) == 2
        for key in ("final_loss", "top_eigenvalue", "trace", "autocorrelation_length"):
            assert math.isfinite(summary[key]), key
        assert len(read_rows(folder / layout.SURFACE_CSV)) == 9 and len(read_rows(folder / layout.LINE_CSV)) == 3
        assert summary["label"] in out
    folder = layout.store_folder(store_path)
    expected = [f"{layout.TABLE}.csv", f"{layout.TABLE}.md"]
    expected += [f"{stem}.{fmt}" for stem in layout.STORE_FIGURES for fmt in ("png", "pdf")]
    assert all((folder / f).stat().st_size > 0 for f in expected), sorted(p.name for p in folder.iterdir())
    table = (folder / f"{layout.TABLE}.csv").read_text().splitlines()
    assert len(table) == 3 and "top_eigenvalue" in table[0]
    section = landscape_section(store_path)
    assert section[0].startswith("## Why plain nets degrade")
    assert any("plain-8" in line for line in section) and any("ResNet-8" in line for line in section)
    links = [line[line.index("](") + 2 : -1] for line in section if line.startswith("![")]
    assert len(links) == len(layout.STORE_FIGURES)
    assert all((store_path / "report" / link).resolve().is_file() for link in links)
    assert landscape_section(store_path.parent / "nothing") == []


# -- bad input -------------------------------------------------------------------------------------------------------


def _tree(path):
    return sorted((str(p.relative_to(path)), p.stat().st_mtime_ns) for p in path.rglob("*"))


def _break(kind, store_path, tmp_path):
    """A path to analyse that is bad in the way ``kind`` says."""
    if kind == "missing folder":
        return tmp_path / "nowhere"
    if kind == "empty folder":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"
    run = _copy_run(store_path, "plain", tmp_path)
    if kind == "run without model.pt":
        (run / "checkpoints" / "model.pt").unlink()
    elif kind in ("unfinished run", "store of unfinished runs"):
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "status": "running"}))
        return tmp_path if kind == "store of unfinished runs" else run
    return run


@pytest.mark.parametrize(
    "kind, argv, message",
    [
        ("missing folder", [], "does not exist"),
        ("empty folder", [], "no runs in"),
        ("run without model.pt", [], "model.pt"),
        ("unfinished run", [], "not finished"),
        ("store of unfinished runs", [], "nothing to do"),
        ("good run", ["--points", "1"], "--points must be at least 3"),
        ("good run", ["--only", "everything"], "--only must be"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(store, tmp_path, capsys, kind, argv, message):
    path = _break(kind, store[0], tmp_path)
    before = _tree(tmp_path)
    assert cli.main([str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert _tree(tmp_path) == before


@pytest.mark.integration
def test_the_module_entry_point_reports_bad_input_in_one_line(tmp_path):
    result = run_cli(["-m", "analysis.landscape", str(tmp_path / "nowhere")], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# -- sweep files -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, preset, dataset",
    [("landscape", "cifar10-paper", "cifar10"), ("landscape_demo", "demo", "synthetic")],
)
def test_the_landscape_sweeps_train_the_plain_and_resnet_pairs_the_tools_compare(name, preset, dataset, tmp_path):
    spec = load_sweep(REPO / "sweeps" / f"{name}.yaml")
    assert spec["name"] == name and spec["parameters"]["sweep"]["value"] == name
    members = [m for r in resolve_runs(spec, runs_dir=str(tmp_path)) for m in r.config.members()]
    assert all(m.preset == preset and m.dataset == dataset for m in members)
    nets = {(m.arch, m.depth) for m in members}
    depths = {d for _, d in nets}
    assert nets == {(a, d) for a in ("plain", "resnet") for d in depths}, "every depth as a plain/ResNet pair"
    if name == "landscape":
        assert depths == {20, 56}


def test_the_evaluation_subset_and_the_rebuilt_net_ignore_the_global_random_state(store):
    """The subset depends on --images and --seed only; build_networks seeds the net itself."""
    a = runner.evaluation_subset(1000, 64, 0)
    assert torch.equal(a, runner.evaluation_subset(1000, 64, 0)) and len(set(a.tolist())) == 64
    assert not torch.equal(a, runner.evaluation_subset(1000, 64, 1))
    assert torch.equal(runner.evaluation_subset(50, 0, 0), torch.arange(50))
    run: Run = _run_of(store[0], "plain")
    torch.manual_seed(123)
    first = run.build().state_dict()
    torch.manual_seed(456)
    second = run.build().state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first), "build_networks seeds the net itself"


def test_make_batches_cover_every_image_once():
    x, y = torch.arange(10).view(10, 1).float(), torch.arange(10)
    batches = make_batches(x, y, 4, torch.device("cpu"))
    assert [len(b[1]) for b in batches] == [4, 4, 2] and torch.equal(torch.cat([b[1] for b in batches]), y)


def test_the_comparison_says_in_words_how_sharpness_and_autocorrelation_change_with_depth():
    import pandas as pd

    from analysis.landscape.compare import judgements

    def table(plain_top, plain_length, barrier=0.0, censored=False):
        rows = []
        for column, tops, lengths in (("plain", plain_top, plain_length), ("ResNet", (13.5, 9.7), (19.9, 19.2))):
            for depth, top, length in zip((8, 44), tops, lengths, strict=True):
                label = f"{column}-{depth}"
                rise = barrier if label == "plain-44" else 0.0
                rows.append({"label": label, "column": column, "group": "", "depth": depth, "seed": 0,
                             "top_eigenvalue": top, "autocorrelation_length": length, "line_barrier": rise,
                             "autocorrelation_censored": censored and label == "plain-44"})  # fmt: skip
        return pd.DataFrame(rows)

    sharp, shatter, monotone = judgements(table((18.9, 252.5), (18.4, 11.5)))
    assert sharp == (
        "Sharpness (top Hessian eigenvalue, shallowest -> deepest): plain 18.9 at 8 -> 252 at 44 (13x); ResNet 13.5 at "
        "8 -> 9.7 at 44 (0.72x): with depth the plain nets end where the loss curves more sharply than the ResNets' "
        "(not necessarily at a minimum)."
    )
    assert shatter.endswith(
        "the plain nets' gradients decorrelate faster with depth (the direction of Balduzzi et al. 2017's shattering; "
        "white noise would be a length under 1)."
    )
    assert monotone == "Every line from the initial to the final weights falls monotonically (no barrier above 0.01)."
    flat, level, barrier = judgements(table((18.9, 15.0), (18.4, 17.0), barrier=0.64))
    assert flat.endswith("the plain nets do not sharpen 1.25x more with depth than the ResNets.")
    assert level.endswith("the plain nets' gradients do not decorrelate 1.25x faster with depth.")
    assert barrier == "Lines that rise before they fall (barrier): plain-44 0.64."
    censored = judgements(table((18.9, 252.5), (18.4, 128.0), censored=True))
    assert not any(line.startswith("Input-gradient") for line in censored), "a lower bound gives no ratio"
    assert judgements(table((0.0, 252.5), (18.4, 11.5)))[0].startswith("Input-gradient"), "no ratio from 0"


def test_bn_statistics_for_a_point_leave_the_net_alone_and_follow_the_batches():
    """Re-estimating BN statistics for a point of the line works on a copy: the net's weights, buffers and mode stay
    as they were. The statistics average the batches', so the batch size enters the line's fingerprint."""
    from torch import nn

    from analysis.landscape.objective import Objective, make_batches

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    x, y = torch.randn(12, 3, 6, 6), torch.randint(0, 2, (12,))
    net(x)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    objective = Objective(net, make_batches(x, y, 4, torch.device("cpu")))
    state = objective.bn_statistics_for(before)
    assert not net.training and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    conv = nn.Conv2d(3, 4, 3).eval()
    conv.load_state_dict({k[2:]: v for k, v in before.items() if k.startswith("0.")})
    with torch.no_grad():
        means = torch.stack([conv(x[i : i + 4]).mean(dim=(0, 2, 3)) for i in (0, 4, 8)]).mean(0)
    assert torch.allclose(state["1.running_mean"], means, atol=1e-6), "the mean of the three batches' means"
    assert not torch.equal(state["1.running_mean"], before["1.running_mean"])
    recomputed, running = runner.Options(batch_size=250), runner.Options(batch_size=250, line_bn="running")
    assert recomputed.settings("line") != runner.Options().settings("line"), "batch size changes recomputed lines"
    assert running.settings("line") == runner.Options(line_bn="running").settings("line")
