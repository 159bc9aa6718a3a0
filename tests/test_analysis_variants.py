"""The analysis of the new kinds of run: Figure 4 and the verdict on ImageNet-family nets trained on generated data
or a folder, Table 6's layout on CIFAR-100 (no paper number where no paper has one), and original vs pre-activation
ResNets beside He et al. 2016b."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.figures import fig4, fig6
from analysis.load import load_runs, run_label
from analysis.report import write_report
from analysis.style import NothingToDraw
from analysis.summary import with_final_errors
from analysis.tables import TABLES, has_ours, layout, preact, table6, table6_cifar100
from analysis.verdict import verdict
from tests.analysis_fixtures import write_nets

FIG4_FINALS = {("plain", 18, 0): 20.0, ("plain", 34, 0): 30.0, ("resnet", 18, 0): 12.0, ("resnet", 34, 0): 9.0}


@pytest.mark.parametrize("dataset", ["synthetic-imagenet", "folder"])
def test_figure_4_and_the_verdict_cover_imagenet_family_nets_on_other_data(tmp_path, dataset):
    frames = load_runs(write_nets(tmp_path, FIG4_FINALS, dataset=dataset))
    assert set(frames.runs["family"]) == {"imagenet"}
    fig = fig4(frames.curves)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["plain networks", "ResNets"]
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
    assert legends == [["plain-18", "plain-34"], ["ResNet-18", "ResNet-34"]]
    with pytest.raises(NothingToDraw):
        fig6(frames.curves)
    name = "data" if dataset == "folder" else dataset  # a folder by its name: the default data_dir is "data"
    assert verdict(frames).headline == f"degradation reproduced on {name}"
    finals = with_final_errors(frames.runs)
    assert list(finals["top1_source"].unique()) == ["test error"], "no val/ split: the test error, as on CIFAR"
    assert finals["top1"].notna().all()


def test_the_report_of_a_demo34_store_draws_figure_4_and_judges_it(tmp_path):
    store = write_nets(tmp_path / "demo34", FIG4_FINALS, dataset="synthetic-imagenet")
    report = write_report(store, formats=["png"])
    text = report.path.read_text()
    assert "### Figure 4" in text and (store / "report" / "fig4.png").exists()
    assert "Figure 6: CIFAR-family training and test error: not drawn" in text
    assert report.verdict.headline == "degradation reproduced on synthetic-imagenet"


CIFAR100_FINALS = {
    ("resnet", 20, 0): 10.0,
    ("resnet", 56, 0): 6.0,
    ("resnet", 164, 0): 4.0,
    ("preact", 164, 0): 3.0,
}


def test_cifar100_gets_table_6s_layout_with_paper_numbers_only_where_a_paper_has_them(tmp_path):
    runs = load_runs(write_nets(tmp_path, CIFAR100_FINALS, dataset="cifar100")).runs
    table = table6_cifar100(runs)
    assert has_ours(table) and table.attrs["dataset"] == "cifar100" and table.attrs["comparable"]
    assert list(table["method"]) == ["ResNet-20", "ResNet-56", "ResNet-164", "pre-act ResNet-164"]
    paper = dict(zip(table["method"], table["error_paper"], strict=True))
    assert paper["ResNet-164"] == 25.16 and paper["pre-act ResNet-164"] == 24.33, "He et al. 2016b, Table 4"
    assert pd.isna(paper["ResNet-20"]) and pd.isna(paper["ResNet-56"]), "no paper has CIFAR-100 numbers for these"
    assert math.isnan(table.loc[0, "error_diff"]) and table.loc[3, "error_diff"] == pytest.approx(3.0 + 2.0 - 24.33)
    shown = layout(table)
    assert list(shown.loc[0, ["error (%) paper", "error (%) difference"]]) == ["—", "—"]
    assert shown.loc[3, "# params (paper)"] == "1.7M"
    assert not has_ours(table6(runs)), "Table 6 (CIFAR-10) does not take CIFAR-100 runs"
    assert "table6_cifar100" in TABLES and "preact" in TABLES


PREACT_FINALS = {
    ("resnet", 110, 0): 1.0,
    ("preact", 110, 0): 0.8,
    ("resnet", 164, 0): 0.6,
    ("preact", 164, 0): 0.5,
}


def test_original_and_pre_activation_resnets_sit_beside_he_et_al_2016b(tmp_path):
    store = write_nets(tmp_path / "preact", PREACT_FINALS, dataset="cifar10", test_offset=5.0)
    frames = load_runs(store)
    assert set(frames.runs["label"]) == {"ResNet-110", "pre-act ResNet-110", "ResNet-164", "pre-act ResNet-164"}
    table = preact(frames.runs)
    assert list(table["method"]) == ["ResNet-110", "pre-act ResNet-110", "ResNet-164", "pre-act ResNet-164"]
    assert list(table["error_paper"]) == [6.61, 6.37, 5.93, 5.46]
    assert table["error_diff"].round(2).tolist() == [-0.61, -0.57, -0.33, 0.04]
    assert [None if pd.isna(p) else p for p in table["params_paper"]] == [None, None, None, "1.7M"]
    report = write_report(store, formats=["png"])
    assert "He et al. 2016b, Table 4: original vs pre-activation" in report.path.read_text()
    assert (store / "report" / "preact.md").exists()
    sentences = [s for g in report.verdict.groups for s in g.sentences if s.startswith("Pre-activation")]
    assert sentences == [
        "Pre-activation (He et al. 2016b): pre-act ResNet-110 ends at 5.80% test error, 0.20 points below "
        "ResNet-110's 6.00%: within the 3.0 points that count as real (2016b: 6.37% vs 6.61%).",
        "Pre-activation (He et al. 2016b): pre-act ResNet-164 ends at 5.50% test error, 0.10 points below "
        "ResNet-164's 5.60%: within the 3.0 points that count as real (2016b: 5.46% vs 5.93%).",
    ]
    assert run_label("preact", 164, "B") == "pre-act ResNet-164" and run_label("preact", 110, "B") == (
        "pre-act ResNet-110 B"
    )


def test_the_preact_table_is_empty_without_pre_activation_runs(tmp_path):
    runs = load_runs(write_nets(tmp_path, {("resnet", 20, 0): 5.0}, dataset="cifar10")).runs
    assert not has_ours(preact(runs)) and not has_ours(table6_cifar100(runs))
