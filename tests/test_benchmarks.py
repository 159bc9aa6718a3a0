"""The throughput benchmark runs on CPU unchanged and saves every path it measured, with ratios and projections."""

import json

import pytest
import torch

from benchmarks import projection, throughput
from experiments.sweep.spec import load_sweep, resolve_runs
from tests.helpers import REPO

FIG6 = resolve_runs(load_sweep(projection.FIG6_SWEEP))
IMAGES = 64_000 * 128


def test_fig6_runs_as_five_pair_processes_longest_first_with_the_warmed_up_110_pair_unfused():
    pairs = projection.sweep_jobs(FIG6, "pair-fused")
    assert [(j.name, j.networks, j.kind, j.images) for j in pairs] == [
        ("pair-110", 2, "pair", IMAGES),
        *[(f"pair-{d}", 2, "pair-fused", IMAGES) for d in (56, 44, 32, 20)],
    ]
    singles = projection.sweep_jobs(FIG6, "default")
    assert [j.name for j in singles[:3]] == ["plain-110", "resnet-110", "plain-56"] and len(singles) == 10


def test_rates_between_measured_depths_keep_time_per_image_linear_in_depth_and_refuse_to_extrapolate():
    rates = {20: 2000.0, 56: 1000.0, 110: 250.0}
    assert projection.rate_at(rates, 56) == 1000.0
    assert 1 / projection.rate_at(rates, 32) == pytest.approx((2 / 3) / 2000 + (1 / 3) / 1000)
    with pytest.raises(ValueError, match=r"depth 1202 is outside the measured depths \[20, 56, 110\]"):
        projection.rate_at(rates, 1202)


def test_runs_start_in_order_in_the_first_free_slot_and_the_sweep_ends_with_its_last_run():
    assert projection.makespan([4, 3, 3, 2, 2], 1) == 14
    assert projection.makespan([4, 3, 3, 2, 2], 2) == 8  # 4+2+2 | 3+3
    assert projection.makespan([4, 3, 3, 2, 2], 2, slowdown=1.5) == 12
    assert projection.makespan([4, 1, 1], 3) == 4, "the longest run is a floor"


def test_projection_applies_the_runs_per_gpu_slowdown_and_never_beats_the_longest_run():
    jobs = projection.sweep_jobs(FIG6, "pair")
    rates = {"pair": {20: 1000.0, 56: 1000.0, 110: 1000.0}}
    alone = 2 * IMAGES / 1000.0
    out = projection.project(jobs, rates, {1: 1000.0, 2: 1600.0, 5: 2500.0, 8: 4000.0})
    assert out["one_run_per_gpu_s"] == pytest.approx(5 * alone)
    assert out["runs_per_gpu_s"] == pytest.approx({2: 3 * alone * 1.25, 5: alone * 2.0}), "8 > 5 runs: unused"
    assert out["best_runs_per_gpu"] == 5 and out["longest_run"] == "pair-110"
    assert out["longest_run_alone_s"] == pytest.approx(alone)
    superlinear = projection.project(jobs, rates, {1: 1000.0, 2: 2500.0, 4: 9000.0})
    assert superlinear["runs_per_gpu_s"] == pytest.approx({2: 3 * alone, 4: 2 * alone}), "no run faster than alone"
    assert superlinear["best_runs_per_gpu_s"] >= superlinear["longest_run_alone_s"]
    with pytest.raises(ValueError, match="needs the pair path measured too"):
        projection.project(projection.sweep_jobs(FIG6, "pair-fused"), {"pair-fused": rates["pair"]})


H100 = REPO / "benchmarks" / "results" / "h100.json"


def test_the_saved_h100_projection_is_what_re_projecting_its_report_gives(capsys):
    saved = json.loads(H100.read_text())["fig6_projection"]["default"]
    assert projection.main([str(H100)]) == 0
    out = capsys.readouterr().out
    layout = "(default: each network its own run, as run_sweep.py --split-pairs starts them; 10 runs)"
    minutes = {k: saved[k] / 60 for k in ("one_run_per_gpu_s", "best_runs_per_gpu_s", "longest_run_alone_s")}
    best = saved["best_runs_per_gpu"]
    assert (
        f"fig6 sweep projected {layout}: {minutes['one_run_per_gpu_s']:.1f} min one run per GPU, "
        f"{minutes['best_runs_per_gpu_s']:.1f} min with {best} runs per GPU; " in out
    )
    assert f"floor: {saved['longest_run']} alone takes {minutes['longest_run_alone_s']:.1f} min" in out


def test_the_sweeps_gpu_default_is_the_runs_per_gpu_the_h100_projection_found_fastest():
    from experiments.sweep.devices import MEASURED_RUNS_PER_GPU

    assert json.loads(H100.read_text())["fig6_projection"]["default"]["best_runs_per_gpu"] == MEASURED_RUNS_PER_GPU


def test_projection_of_a_report_without_cifar_depths_exits_2(tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": [{"model": "imagenet50", "path": "default", "images_per_s": 1.0}]}))
    assert projection.main([str(report)]) == 2
    assert "no path in the report was measured at CIFAR depths 20, 56 and 110" in capsys.readouterr().err


@pytest.mark.integration
def test_every_path_runs_on_cpu_and_lands_in_the_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    paths = "default,bare,reference,pair,pair-fused".split(",")
    args = ["--device", "cpu", "--models", "cifar20", "--paths", ",".join(paths), "--steps", "2", "--warmup", "1"]
    assert throughput.main([*args, "--batch", "16", "--workers", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["steps"], report["warmup"], report["runs_per_gpu_aggregate"], report["fig6_projection"]) == (
        2, 1, {}, {},
    )  # fmt: skip
    results = report["results"]
    assert [(r["model"], r["path"], r["batch"], r["peak_gib"]) for r in results] == [
        ("cifar20", p, 16, None) for p in paths
    ]
    rate = {r["path"]: r["images_per_s"] for r in results}
    assert all(0 < v < float("inf") for v in rate.values())
    assert report["ratios"] == {
        "cifar20 default/bare": rate["default"] / rate["bare"],
        "cifar20 default/reference": rate["default"] / rate["reference"],
        "cifar20 pair-fused/pair": rate["pair-fused"] / rate["pair"],
    }
    printed = capsys.readouterr().out.splitlines()
    for path in paths:
        assert any(line.split()[:3] == ["cifar20", path, "16"] for line in printed), path


def test_compile_check_refuses_fusion_of_a_single_network_in_one_line(tmp_path, capsys):
    from benchmarks import compile_check

    code = compile_check.main(["--arch", "resnet", "--fuse", "on", "--out", str(tmp_path / "check.json")])
    assert code == 2 and not (tmp_path / "check.json").exists()
    assert capsys.readouterr().err.strip() == (
        "error: fuse 'on' is not possible for this run: fusion computes a pair's two networks as one, "
        "so it needs arch 'pair'; use --fuse auto or off"
    )


def test_compile_check_compares_members_and_names_each_disagreement():
    from benchmarks import compile_check

    run = {"first_train_loss": 2.0, "eval_steps": [100, 200], "probe_steps": [100, 200], "final_train_error": 10.0,
           "final_test_error": 12.0, "images_per_s": 1.0}  # fmt: skip
    assert compile_check.compare({"plain": run}, {"plain": dict(run, images_per_s=9.0)}) == []
    drifted = dict(run, first_train_loss=2.1, eval_steps=[100], final_test_error=20.0)
    problems = compile_check.compare({"plain": run}, {"plain": drifted})
    assert problems == [
        "plain: first-window loss 2.1000 vs eager 2.0000",
        "plain: eval_steps [100] vs eager [100, 200]",
        "plain: final_test_error 20.00 vs eager 12.00",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--paths", "default,fused"],
            "--paths: unknown 'fused'; choose from default, bare, reference, pair, pair-fused",
        ),
        (["--models", "cifar57"], "--models: unknown 'cifar57'; choose from cifar20, cifar56, cifar110, imagenet34"),
    ],
)
def test_an_unknown_model_or_path_exits_2_naming_it(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        throughput.main([*args, "--out", str(tmp_path / "bench.json")])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


def test_a_benchmark_writes_outside_the_tracked_results_unless_asked(tmp_path, monkeypatch, capsys):
    from benchmarks.common import LATEST, RESULTS, save_report

    monkeypatch.chdir(tmp_path)
    assert save_report({"a": 1}, None, "cpu") == LATEST / "cpu.json"
    assert json.loads((tmp_path / LATEST / "cpu.json").read_text()) == {"a": 1} and not (tmp_path / RESULTS).exists()
    assert save_report({"b": 2}, RESULTS / "cpu.json", "cpu") == RESULTS / "cpu.json"
    assert capsys.readouterr().out.splitlines() == [f"saved {LATEST / 'cpu.json'}", f"saved {RESULTS / 'cpu.json'}"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a machine without a GPU gives")
def test_compile_check_says_it_needs_a_gpu_and_exits_at_once_on_a_cpu(tmp_path, capsys):
    from benchmarks import compile_check

    assert compile_check.main(["--out", str(tmp_path / "check.json")]) == 2
    assert capsys.readouterr().err.startswith("error: compile_check compares CUDA-graph runs with eager ones and needs")
    assert not (tmp_path / "check.json").exists()
