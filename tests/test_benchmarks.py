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
