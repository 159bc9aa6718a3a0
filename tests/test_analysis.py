"""The analysis package on a fake run store: loaders, figures, tables, verdict and the report CLI."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import (
    StoreError,
    degradation_at_a_glance,
    fig1,
    fig4,
    fig6,
    fig7,
    last_responses,
    load_runs,
    load_wandb_sweep,
    savefig,
    shortcut_comparison,
    table2,
    table3,
    table6,
    to_latex,
    to_markdown,
    verdict,
    write_table,
)
from analysis.report import main
from experiments.store import RunDir
from models.paper import RESNET110_CIFAR_RUNS, TABLE2, TABLE3, TABLE6
from tests.analysis_fixtures import CIFAR_FINALS, IMAGENET_FINALS, FakeWandbApi, FakeWandbRun, write_store
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def frames(store):
    return load_runs(store)


@pytest.fixture(scope="module")
def level_store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("level"), degraded=False, imagenet=False)


def run_row(runs: pd.DataFrame, label: str, seed: int = 0) -> pd.Series:
    rows = runs[(runs["label"] == label) & (runs["seed"] == seed)]
    assert len(rows) == 1, f"{label} seed {seed}: {len(rows)} rows"
    return rows.iloc[0]


# -- loading -------------------------------------------------------------------------------------------------------


def test_runs_table_has_one_row_per_run_with_config_labels_and_final_numbers(frames):
    runs = frames.runs
    assert len(runs) == len(CIFAR_FINALS) + 2 + len(IMAGENET_FINALS)
    expected = ["run", "path", "status", "reason", "arch", "depth", "shortcut", "dataset", "seed", "label"]
    expected += ["final_train_error", "final_test_error", "final_val_error", "params", "images_per_s"]
    assert set(expected) <= set(runs.columns)
    labels = set(runs["label"])
    assert {"plain-20", "plain-56", "ResNet-20", "ResNet-110", "ResNet-34", "ResNet-34 B", "ResNet-34 C"} <= labels
    assert run_row(runs, "ResNet-110", seed=1)["final_train_error"] == CIFAR_FINALS["resnet", 110, 1][0]
    assert run_row(runs, "plain-56")["status"] == "finished"
    assert pd.isna(run_row(runs, "plain-56")["shortcut"])


def test_running_and_failed_runs_are_loaded_marked_and_fall_back_to_their_last_logged_numbers(frames):
    runs, curves = frames.runs, frames.curves
    running = run_row(runs, "ResNet-1202")
    failed = run_row(runs, "plain-110")
    assert running["status"] == "running" and failed["status"] == "failed"
    assert "DivergenceError" in failed["reason"]
    last = curves[curves["run"] == running["run"]].sort_values("step").iloc[-1]
    assert last["step"] == 8_000
    assert running["final_train_error"] == pytest.approx(last["train_error"])
    assert running["final_test_error"] == pytest.approx(
        curves.loc[curves["run"] == running["run"], "test_error"].dropna().iloc[-1]
    )


def test_curves_and_responses_are_tidy(frames):
    curves, responses = frames.curves, frames.responses
    assert (curves["iterations_1e4"] == curves["step"] / 1e4).all()
    identity = {"run", "label", "arch", "depth", "shortcut", "seed"}
    assert identity | {"step", "epoch", "iterations_1e4", "train_error", "test_error", "lr"} <= set(curves.columns)
    last = last_responses(responses)
    for label, layers in (("ResNet-20", 19), ("ResNet-56", 55), ("ResNet-110", 109), ("plain-20", 19)):
        per_run = last[last["label"] == label].groupby("run")
        assert (per_run.size() == layers).all()
        assert (per_run["step"].nunique() == 1).all()
    assert set(last["step"]) == {20_000, 4_000, 8_000}  # finished runs, the failed one, the running one
    assert responses["step"].nunique() > 1


def test_loading_a_missing_folder_or_one_without_runs_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        load_runs(tmp_path / "nowhere")
    with pytest.raises(StoreError, match="no runs"):
        load_runs(tmp_path)


def test_a_run_without_summary_is_loaded_as_running(tmp_path):
    run = RunDir(tmp_path / "resnet-20-A-s0-x")
    run.write_config({"arch": "resnet", "depth": 20, "dataset": "cifar10", "seed": 0, "shortcut": "A"})
    run.log_metrics(100, {"train_error": 50.0})
    row = load_runs(tmp_path).runs.iloc[0]
    assert row["status"] == "running" and row["final_train_error"] == 50.0 and row["label"] == "ResNet-20"


def test_wandb_sweep_maps_pairs_to_two_runs_with_the_store_columns():
    pair_history = [
        {
            "_step": 0,
            "trainer/global_step": 100,
            "plain/train_error": 60.0,
            "resnet/train_error": 50.0,
            "plain/lr": 0.1,
        },
        {"_step": 1, "trainer/global_step": 200, "plain/train_error": 40.0, "resnet/train_error": 30.0},
        {"_step": 2, "trainer/global_step": 200, "plain/test_error": 45.0, "resnet/test_error": 35.0},
    ]
    pair = FakeWandbRun(
        "pair-56-s0-abc",
        {"arch": "pair", "depth": 56, "dataset": "cifar10", "seed": 0, "shortcut": None, "_wandb": {}},
        {
            "plain/train_error": 40.0,
            "resnet/train_error": 30.0,
            "plain/test_error": 45.0,
            "resnet/test_error": 35.0,
            "_runtime": 12.0,
        },
        pair_history,
    )
    single = FakeWandbRun(
        "resnet-20-A-s1-def",
        {"arch": "resnet", "depth": 20, "dataset": "cifar10", "seed": {"value": 1}, "shortcut": "A"},
        {"train_error": 20.0},
        [{"_step": 0, "trainer/global_step": 100, "train_error": 20.0}],
        state="crashed",
    )
    api = FakeWandbApi([pair, single])
    runs, curves, responses, signals = load_wandb_sweep("me/degradation/sweep1", api=api)
    assert api.asked == ["me/degradation/sweep1"]
    assert list(runs["label"]) == ["plain-56", "ResNet-20", "ResNet-56"]
    assert run_row(runs, "plain-56")["final_test_error"] == 45.0
    assert run_row(runs, "ResNet-56")["final_train_error"] == 30.0
    assert run_row(runs, "ResNet-56")["shortcut"] == "A"
    assert run_row(runs, "ResNet-20", seed=1)["status"] == "failed"
    plain = curves[curves["label"] == "plain-56"].set_index("step")
    assert list(plain.index) == [100, 200]
    assert plain.loc[200, "train_error"] == 40.0 and plain.loc[200, "test_error"] == 45.0
    assert responses.empty and list(responses.columns)[-4:] == ["step", "layer", "name", "std"]
    assert signals.empty and list(signals.columns)[-5:] == ["step", "layer", "name", "stat", "value"]


# -- figures -------------------------------------------------------------------------------------------------------


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_fig6_draws_plain_resnet_and_deep_panels_with_train_and_test_lines(frames, tmp_path):
    fig = fig6(frames.curves[frames.curves["status"] != "failed"])
    plain, resnet, deep = fig.axes
    assert legend_texts(plain) == ["plain-20", "plain-56"]
    assert legend_texts(resnet) == ["ResNet-20", "ResNet-56", "ResNet-110"]
    assert legend_texts(deep) == ["ResNet-110", "ResNet-1202"]
    assert len(plain.lines) == 4 and len(resnet.lines) == 6
    assert [line.get_linestyle() for line in plain.lines] == ["--", "-", "--", "-"]
    assert plain.lines[1].get_linewidth() > plain.lines[0].get_linewidth()
    assert resnet.get_ylim() == (0.0, 20.0)
    assert resnet.get_xlabel() == "iterations (1e4)" and resnet.get_ylabel() == "error (%)"
    assert plain.lines[0].get_color() != resnet.lines[0].get_color()
    written = savefig(fig, tmp_path / "fig6")
    assert [p.suffix for p in written] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in written)


def test_fig1_draws_plain20_and_plain56_in_two_panels(frames):
    fig = fig1(frames.curves)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert legend_texts(ax) == ["20-layer", "56-layer"] and len(ax.lines) == 2
    assert fig.axes[0].get_ylabel() == "training error (%)" and fig.axes[1].get_ylabel() == "test error (%)"


def test_fig4_draws_imagenet_18_and_34_with_thin_training_and_bold_validation(frames):
    plain, resnet = fig4(frames.curves).axes
    assert legend_texts(plain) == ["plain-18", "plain-34"]
    assert legend_texts(resnet) == ["ResNet-18", "ResNet-34"]
    assert len(resnet.lines) == 4
    assert resnet.lines[1].get_linewidth() > 2 * resnet.lines[0].get_linewidth()
    assert resnet.get_ylim() == (20.0, 60.0)


def test_fig7_draws_the_papers_nets_in_network_order_and_sorted(frames):
    top, bottom = fig7(frames.responses).axes
    assert [line.get_label() for line in top.lines] == ["plain-20", "plain-56", "ResNet-20", "ResNet-56", "ResNet-110"]
    resnet20_top, resnet20_bottom = top.lines[2], bottom.lines[2]
    assert list(resnet20_top.get_xdata()) == list(range(1, 20))
    ordered = list(resnet20_bottom.get_ydata())
    assert ordered == sorted(ordered, reverse=True) and sorted(ordered) == sorted(resnet20_top.get_ydata())
    assert top.get_xlabel() == "layer index (original)" and bottom.get_ylabel() == "std"


def test_degradation_at_a_glance_puts_plain_and_resnet_side_by_side(frames):
    fig = degradation_at_a_glance(frames.runs)
    plain, resnet = fig.axes
    assert plain.get_title() == "plain networks" and resnet.get_title() == "ResNets"
    assert len(plain.containers) == 2 and len(resnet.containers) == 2  # training and test error bars
    resnet_train = resnet.containers[0].lines[0]
    assert list(resnet_train.get_xdata()) == [20, 56, 110]  # the running ResNet-1202 is left out
    assert resnet_train.get_ydata()[-1] == pytest.approx(2.2)  # mean of ResNet-110's two seeds


def test_shortcut_comparison_shows_options_and_paper_values(frames):
    fig = shortcut_comparison(frames.runs)
    top1, top5 = fig.axes
    assert [t.get_text() for t in top1.get_xticklabels()] == ["plain-34", "ResNet-34 A", "ResNet-34 B", "ResNet-34 C"]
    paper = [c for c in top1.collections if c.get_offsets()[0][1] == pytest.approx(TABLE3["resnet", 34, "B"].top1)]
    assert paper, "the paper's ResNet-34 B value is drawn"
    assert "10-crop" in top5.get_ylabel()


def test_figures_say_what_is_missing(frames):
    cifar_only = frames.runs[frames.runs["family"] == "cifar10"]
    with pytest.raises(ValueError, match="ImageNet"):
        fig4(frames.curves[frames.curves["family"] == "cifar10"])
    with pytest.raises(ValueError, match="shortcut"):
        shortcut_comparison(cifar_only)


# -- tables --------------------------------------------------------------------------------------------------------


def test_table6_puts_our_cifar_errors_beside_the_papers_with_differences(frames, tmp_path):
    table = table6(frames.runs).set_index("method")
    assert table.loc["ResNet-20", "error_paper"] == TABLE6["resnet", 20, "A"].top1
    assert table.loc["ResNet-20", "error_diff"] == pytest.approx(8.5 - TABLE6["resnet", 20, "A"].top1)
    assert table.loc["ResNet-110", "error"] == "6.50 ± 0.14" and table.loc["ResNet-110", "seeds"] == 2
    assert table.loc["ResNet-1202", "seeds"] == 0 and math.isnan(table.loc["ResNet-1202", "error_diff"])
    markdown = to_markdown(table6(frames.runs))
    assert "8.75" in markdown and "-0.25" in markdown and f"{RESNET110_CIFAR_RUNS.mean:.2f}" in markdown
    assert "unfinished" in markdown
    written = write_table(table6(frames.runs), tmp_path / "table6", latex=True)
    assert [p.suffix for p in written] == [".md", ".csv", ".tex"]
    assert pd.read_csv(written[1])["error_paper"].notna().any()
    assert r"\pm" in written[2].read_text()


def test_tables_2_and_3_use_10crop_top1_and_top5_from_imagenet_runs(frames):
    t2 = table2(frames.runs).set_index("method")
    assert t2.loc["plain-34", "top1_mean"] == IMAGENET_FINALS["plain", 34, None][2]
    assert t2.loc["ResNet-34", "top1_diff"] == pytest.approx(25.1 - TABLE2["resnet", 34, "A"].top1)
    t3 = table3(frames.runs).set_index("method")
    assert list(t3.index[:4]) == ["plain-34", "ResNet-34 A", "ResNet-34 B", "ResNet-34 C"]
    assert t3.loc["ResNet-34 C", "top5_diff"] == pytest.approx(7.4 - TABLE3["resnet", 34, "C"].top5)
    assert t3.loc["ResNet-50", "seeds"] == 0 and t3.loc["ResNet-50", "top1_paper"] == TABLE3["resnet", 50, "B"].top1
    layout = to_markdown(table2(frames.runs))
    assert "18 layers" in layout and "27.94" in layout and "+0.06" in layout
    assert "\\begin{tabular}" in to_latex(table3(frames.runs))


def test_tables_on_synthetic_data_keep_the_paper_column_but_compute_no_difference(tmp_path):
    runs = load_runs(write_store(tmp_path, dataset="synthetic", imagenet=False)).runs
    table = table6(runs)
    assert table["error_paper"].notna().any() and table["error_diff"].isna().all()
    assert "not the paper's dataset" in to_markdown(table)


# -- verdict and report --------------------------------------------------------------------------------------------


def test_verdict_reports_degradation_per_dataset_and_excludes_unfinished_runs(frames):
    judged = verdict(frames)
    text = judged.text()
    assert [g.name for g in judged.groups] == ["cifar10", "imagenet"]
    assert judged.groups[0].reproduced is True
    assert "plain-56 ends at 11.0% training error, 6.0 points above plain-20's 5.0%: more than the 3.0" in text
    assert "ResNet-110 ends at 2.2% (mean of 2 seeds) training error, 2.8 points below ResNet-20's 5.0%" in text
    assert "1 running, 1 failed" in text and "excluded" in text and "plain-110" in text


def test_verdict_judges_figure_7_responses(frames):
    text = verdict(frames).text()
    assert (
        "ResNet / plain ratio 0.75 at 20 layers, 0.45 at 56 layers (real beyond ±30%): ResNets respond less at 56 "
        "layers, as the paper reports; undecided at 20 layers." in text
    ), "one seed of ResNet-20: 25% less is within the 30% that counts as real"
    assert "Deeper ResNets respond less, as the paper reports: ResNet-110's response (" in text


def test_verdict_says_not_reproduced_when_plain_nets_end_level(level_store):
    judged = verdict(load_runs(level_store))
    assert judged.reproduced is False and judged.headline == "degradation not reproduced on cifar10"
    assert "plain-56 ends at 5.2% training error, 0.2 points above plain-20's 5.0%: within the 3.0 points" in (
        judged.text()
    )


def test_report_cli_writes_figures_tables_and_verdict(store, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(store), "--out", str(out), "--format", "png", "--latex"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "report.md") in printed and "degradation reproduced" in printed
    names = {p.name for p in out.iterdir()}
    for figure in ("fig1", "fig4", "fig6", "fig7", "degradation", "shortcuts"):
        assert f"{figure}.png" in names and f"{figure}.pdf" not in names
    for table in ("table2", "table3", "table6"):
        assert {f"{table}.md", f"{table}.csv", f"{table}.tex"} <= names
    report = (out / "report.md").read_text()
    assert "![" in report and "degradation reproduced" in report and "27.94" in report
    assert "*How this was judged:*" in report and "seed spread" in report


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing"], "does not exist"),
        (["empty"], "no runs"),
        (["store", "--format", "png,gif"], "--format"),
        ([], "required"),
    ],
)
def test_report_cli_bad_input_exits_2_with_one_line_and_writes_nothing(store, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": str(tmp_path / "missing"), "empty": str(tmp_path / "empty"), "store": str(store)}
    before = sorted(p.name for p in store.iterdir())
    assert main([paths.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not any((tmp_path / "empty").iterdir()) and sorted(p.name for p in store.iterdir()) == before


@pytest.mark.integration
def test_report_module_bad_input_prints_no_traceback(tmp_path):
    result = run_cli(["-m", "analysis.report", str(tmp_path / "missing")], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: runs folder '{tmp_path / 'missing'}' does not exist"]
