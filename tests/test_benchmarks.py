"""The throughput benchmark runs on CPU unchanged and saves every path it measured, with ratios and projections."""

import json

import pytest

from benchmarks import throughput


def test_fig6_projection_adds_both_networks_of_each_depth():
    rates = {20: 1000.0, 56: 1000.0, 110: 1000.0}
    networks = 2 * len(throughput.FIG6_DEPTHS)
    assert throughput.project_fig6(rates, 1.0) == pytest.approx(networks * 64_000 * 128 / 1000.0)
    assert throughput.project_fig6(rates, 4.0) == pytest.approx(networks * 64_000 * 128 / 4000.0)
    by_depth = {20: 2000.0, 56: 1000.0, 110: 250.0}
    per_image = [1 / 2000, (2 / 3) / 2000 + (1 / 3) / 1000, (1 / 3) / 2000 + (2 / 3) / 1000, 1 / 1000, 1 / 250]
    assert throughput.project_fig6(by_depth, 1.0) == pytest.approx(2 * 64_000 * 128 * sum(per_image))


def test_every_path_runs_on_cpu_and_lands_in_the_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    paths = "default,bare,reference,pair,pair-fused"
    args = ["--device", "cpu", "--models", "cifar20", "--paths", paths, "--steps", "2", "--warmup", "1"]
    assert throughput.main([*args, "--batch", "16", "--workers", "0", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(r["model"], r["path"]) for r in report["results"]] == [("cifar20", p) for p in paths.split(",")]
    assert all(r["images_per_s"] > 0 and r["batch"] == 16 for r in report["results"])
    assert set(report["ratios"]) == {
        "cifar20 default/bare",
        "cifar20 default/reference",
        "cifar20 pair-fused/pair",
    }
    assert report["fig6_projection"] == {}
    assert "pair-fused" in capsys.readouterr().out


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
