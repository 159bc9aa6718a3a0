"""A report that never contradicts itself: Figure 7 wherever the verdict quotes layer responses, its sentence under the
verdict's noise rule, one name per error number (tables, figures, verdict, the runner's table), Table 3's top-5, the
width beside the paper's numbers, Figure 6's readable ResNet panel and the dataset named as the user knows it."""

from __future__ import annotations

import pytest

from analysis.figures import fig6, fig7
from analysis.load import load_runs
from analysis.overview import degradation_at_a_glance
from analysis.report import write_report
from analysis.tables import layout, table3, table6, to_markdown
from analysis.verdict import verdict
from experiments.config import config_from_dict
from experiments.store import RunDir
from experiments.sweep.runner import summary_table
from experiments.sweep.spec import SweepRun
from tests.analysis_fixtures import write_nets, write_store

CIFAR = {("plain", 20, 0): 5.0, ("plain", 56, 0): 12.0, ("resnet", 20, 0): 5.0, ("resnet", 56, 0): 4.0}
IMAGENET = {("plain", 18, 0): 20.0, ("plain", 34, 0): 30.0, ("resnet", 18, 0): 12.0, ("resnet", 34, 0): 9.0}


def legend_texts(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


# -- Figure 7 and its sentence ---------------------------------------------------------------------------------------


def test_figure_7_draws_every_dataset_the_verdict_quotes_responses_of_imagenet_family_too(tmp_path):
    levels = {net: 2.0 if net[0] == "plain" else 1.0 for net in CIFAR}
    write_nets(tmp_path, CIFAR, dataset="cifar10", responses=levels)
    levels = {net: 2.0 if net[0] == "plain" else 1.0 for net in IMAGENET}
    write_nets(tmp_path, IMAGENET, dataset="folder", responses=levels, data_dir=str(tmp_path / "data" / "flowers"))
    frames = load_runs(tmp_path)
    fig = fig7(frames.responses)
    tops = [ax for ax in fig.axes if ax.get_xlabel() == "layer index (original)"]
    assert [ax.get_title() for ax in tops] == ["cifar10", "flowers"]
    assert [line.get_label() for line in tops[1].lines] == ["plain-18", "plain-34", "ResNet-18", "ResNet-34"]
    report = write_report(tmp_path, formats=["png"]).path.read_text()
    assert "### Figure 7: layer responses" in report and "layer responses: not drawn" not in report
    assert report.count("Layer responses (Figure 7;") == 2, "one sentence per dataset, each drawn in Figure 7"


def test_figure_7_with_imagenet_family_responses_only_is_drawn(tmp_path):
    write_nets(tmp_path, IMAGENET, dataset="synthetic-imagenet", responses={net: 1.5 for net in IMAGENET})
    report = write_report(tmp_path, formats=["png"])
    assert (tmp_path / "report" / "fig7.png").exists()
    assert "Figure 7: layer responses: not drawn" not in report.path.read_text()


@pytest.mark.parametrize("seeds", [1, 2])
def test_a_one_percent_response_difference_is_undecided_with_one_seed_and_with_two(tmp_path, seeds):
    finals, levels = {}, {}
    for seed in range(seeds):
        jitter = 0.002 * seed
        finals |= {(a, d, seed): e for (a, d, _), e in CIFAR.items()}
        levels |= {("plain", 20, seed): 2.0, ("plain", 56, seed): 2.0 + jitter}
        levels |= {("resnet", 20, seed): 1.0 + jitter, ("resnet", 56, seed): 0.99 + jitter}
    text = verdict(load_runs(write_nets(tmp_path, finals, dataset="cifar10", responses=levels))).text()
    threshold = "30%" if seeds == 1 else "10%"
    assert "Whether deeper ResNets respond less is undecided: ResNet-56's response (0.99" in text.replace(
        " (mean of 2 seeds)", ""
    )
    assert "1% below ResNet-20's" in text and f"within the {threshold} that counts as real." in text
    assert "Deeper ResNets respond less" not in text


def test_a_large_response_difference_over_tight_seeds_is_real(tmp_path):
    finals, levels = {}, {}
    for seed in range(3):
        jitter = 0.01 * (seed - 1)
        finals |= {(a, d, seed): e for (a, d, _), e in CIFAR.items()}
        levels |= {("plain", 20, seed): 2.0 + jitter, ("plain", 56, seed): 2.4 + jitter}
        levels |= {("resnet", 20, seed): 1.2 + jitter, ("resnet", 56, seed): 0.8 + jitter}
    text = verdict(load_runs(write_nets(tmp_path, finals, dataset="cifar10", responses=levels))).text()
    assert (
        "ResNet / plain ratio 0.60 at 20 layers, 0.33 at 56 layers (real beyond ±10%): ResNets respond less at every "
        "depth, as the paper reports." in text
    )
    assert (
        "Deeper ResNets respond less, as the paper reports: ResNet-56's response (0.80 (mean of 3 seeds)) is 33% "
        "below ResNet-20's (1.20 (mean of 3 seeds)), more than the 10% that counts as real." in text
    )
    assert "the same rule: a difference is real when it exceeds 2x the seed spread" in text


# -- one name per number ---------------------------------------------------------------------------------------------


def test_the_10_crop_test_error_has_one_name_in_tables_figures_and_the_runners_table(tmp_path):
    store = write_store(tmp_path, imagenet=True)
    runs = load_runs(store).runs
    imagenet = runs[runs["family"] == "imagenet"]
    fig = degradation_at_a_glance(imagenet)
    assert "final 10-crop test error" in legend_texts(fig) and "final validation error" not in legend_texts(fig)
    assert "final test error" in legend_texts(degradation_at_a_glance(runs[runs["family"] == "cifar10"]))
    assert "the paper's Tables 2-3 are" not in to_markdown(table3(runs)), "ours are 10-crop too: nothing to note"
    config = config_from_dict({"arch": "resnet", "depth": 34, "dataset": "imagenet", "runs_dir": str(tmp_path)})
    run = SweepRun(params={}, extras={}, config=config)
    RunDir(run.dirs[0]).write_summary(
        {"status": "finished", "dataset": "imagenet", "final_train_error": 23.0, "final_val_error": 26.0,
         "final_test10crop_error": 25.1, "wall_time_s": 60.0}
    )  # fmt: skip
    header, _, row = summary_table([run]).splitlines()
    assert header.split()[2:-1] == [
        "training",
        "error",
        "10-crop",
        "test",
        "error",
        "centre-crop",
        "validation",
        "error",
    ]
    assert row.split()[2:5] == ["23.00", "25.10", "26.00"]


def test_a_centre_crop_only_imagenet_store_says_so_beside_the_papers_10_crop_numbers(tmp_path):
    write_nets(tmp_path, IMAGENET, dataset="folder", data_dir="flowers")
    runs = load_runs(tmp_path).runs
    runs["final_val_error"] = runs["final_test_error"]
    runs["final_test_error"] = None
    notes = table3(runs).attrs["notes"]
    assert "ours: centre-crop validation error; the paper's Tables 2-3 are 10-crop test error." in notes
    assert "final centre-crop validation error" in legend_texts(degradation_at_a_glance(runs))


def test_test_below_training_error_quotes_the_means_over_seeds_the_verdict_uses(tmp_path):
    finals = {("plain", 8, 0): 2.5, ("plain", 8, 1): 3.5, ("plain", 44, 0): 30.0, ("plain", 44, 1): 31.0}
    text = verdict(load_runs(write_nets(tmp_path, finals, test_offset=-1.0))).text()
    assert (
        "2 net(s) end with a lower test error than training error (e.g. plain-8: 2.0% vs 3.0%, means of 2 seeds)"
        in (text)
    )


# -- tables ----------------------------------------------------------------------------------------------------------


def test_table_3_fills_top5_from_what_training_logs_and_says_when_none_was_logged(tmp_path):
    frames = load_runs(write_store(tmp_path / "a", imagenet=True))
    shown = layout(table3(frames.runs)).set_index("method")
    assert shown.loc["ResNet-34 B", "top-5 err. (%) ours"] == "7.50"
    assert shown.loc["plain-34", "top-5 err. (%) ours"] == "10.10"
    runs = load_runs(write_nets(tmp_path / "b", IMAGENET, dataset="synthetic-imagenet")).runs
    assert "ours: no top-5 error was logged for these runs" in " ".join(table3(runs).attrs["notes"])


def test_a_width_8_net_beside_the_papers_cifar_numbers_says_its_width_and_computes_no_difference(tmp_path):
    finals = {("resnet", 20, 0): 8.0, ("resnet", 56, 0): 7.0}
    runs = load_runs(write_nets(tmp_path, finals, dataset="cifar10", width=8)).runs
    table = table6(runs)
    assert table.attrs["title"] == "Table 6: CIFAR-10 test error (%); our nets have width 8 (the paper's: 16)"
    assert table["error_paper"].notna().any() and table["error_diff"].isna().all()
    assert "our nets start with 8 filters where the paper's start with 16 (width)" in to_markdown(table)


# -- figures and names -----------------------------------------------------------------------------------------------


def test_figure_6_keeps_one_range_and_zooms_the_resnet_panel_in_an_inset(tmp_path):
    finals = {("plain", 8, 0): 3.0, ("plain", 44, 0): 45.0, ("resnet", 8, 0): 2.5, ("resnet", 44, 0): 2.0}
    plain, resnet = fig6(load_runs(write_nets(tmp_path, finals)).curves).axes[:2]
    assert plain.get_ylim() == resnet.get_ylim() and resnet.get_ylim()[1] >= 50
    assert plain.child_axes == [], "the plain nets fill the range: no inset"
    (inset,) = resnet.child_axes
    low, high = inset.get_ylim()
    assert high - low < 0.15 * resnet.get_ylim()[1], "zoomed: its range is under 15% of the shared one"
    drawn = [y for line in inset.lines for y in line.get_ydata()]
    assert len(inset.lines) == 4 and low <= min(drawn) and max(drawn) <= high, "both nets' training and test error"
    assert inset.get_xlim() == (1000, 2000), "the last half of the 2,000 iterations"
    assert inset.get_title() == "last 50% of training, zoomed"


def test_a_panel_whose_curves_end_in_a_readable_band_gets_no_inset(tmp_path):
    panels = fig6(load_runs(write_nets(tmp_path, {("plain", 8, 0): 20.0, ("resnet", 8, 0): 15.0})).curves).axes
    assert [ax.child_axes for ax in panels] == [[], []]


def test_the_headline_names_a_folder_dataset_by_its_folder(tmp_path):
    store = write_nets(tmp_path, IMAGENET, dataset="folder", data_dir=str(tmp_path / "data" / "tiny-imagenet-200"))
    judged = verdict(load_runs(store))
    assert judged.headline == "degradation reproduced on tiny-imagenet-200"
    assert judged.groups[0].summary.startswith("tiny-imagenet-200: degradation reproduced")


def test_a_folder_of_small_images_trained_on_cifar_family_nets_is_read_and_drawn_as_that_family(tmp_path):
    store = write_nets(tmp_path, CIFAR, dataset="folder", data_dir=str(tmp_path / "data" / "digits"))
    frames = load_runs(store)
    assert set(frames.runs["family"]) == {"cifar10"}
    assert sorted(frames.runs["label"]) == ["ResNet-20", "ResNet-56", "plain-20", "plain-56"]
    assert len(fig6(frames.curves).axes) == 2, "Figure 6's plain and ResNet panels, not Figure 4"
    assert verdict(frames).headline == "degradation reproduced on digits"
