"""Issue 22's analysis: intervention runs read from the store, judged by the paper's noise rule, drawn, reported."""

from __future__ import annotations

import pytest

from analysis import load_runs, load_wandb_sweep, verdict
from analysis.intervention_figures import alpha_dial, alpha_table, depth_table, interventions_by_depth
from analysis.intervention_report import intervention_section, reference_frames
from analysis.interventions import PAPER_VALUES, intervention_label, intervention_values, net_label
from analysis.report import write_report
from analysis.signals import gradient_norms, signal_propagation
from analysis.style import NothingToDraw
from experiments.config.identity import SCHEMA_DEFAULTS
from tests.analysis_fixtures import FakeWandbApi, FakeWandbRun, write_nets, write_store
from tests.intervention_fixtures import NO_BN_FIXUP, NO_BN_TAT, write_intervention_nets, write_probe_signals

PAPER_PAIR = {("plain", 8, 0): 3.0, ("plain", 44, 0): 30.0, ("resnet", 8, 0): 2.5, ("resnet", 44, 0): 2.0}
TWO_SEED_PAIR = {
    ("plain", 8, 0): 3.0,
    ("plain", 8, 1): 3.2,
    ("plain", 44, 0): 30.0,
    ("plain", 44, 1): 30.4,
    ("resnet", 8, 0): 2.5,
    ("resnet", 8, 1): 2.7,
    ("resnet", 44, 0): 2.0,
    ("resnet", 44, 1): 2.2,
}


def bullets(judged) -> list[str]:
    return [line.removeprefix("- ") for line in judged.text().splitlines() if line.startswith("- ")]


@pytest.mark.parametrize(
    ("config", "label"),
    [
        ({"arch": "plain"}, "plain"),
        ({"arch": "resnet", "shortcut_weight": 1}, "ResNet"),
        ({"arch": "resnet", "shortcut_weight": 0.5}, "ResNet alpha=0.5"),
        ({"arch": "plain", "norm": "none", "activation": "tat"}, "plain, no BN, TAT"),
        ({"arch": "resnet", "norm": "none", "init": "fixup"}, "ResNet, no BN, Fixup"),
        (
            {"arch": "resnet", "shortcut_weight": 0.25, "norm": "none", "init": "skipinit"},
            "ResNet alpha=0.25, no BN, SkipInit",
        ),
        ({"arch": "plain", "init": "delta-orthogonal", "activation": "dks"}, "plain, delta-orthogonal init, DKS"),
        ({"arch": "preact", "init": "orthogonal"}, "pre-act ResNet, orthogonal init"),
    ],
)
def test_an_intervention_reads_as_its_arch_and_the_remedies_that_differ_from_the_paper(config, label):
    assert intervention_label(config) == label


def test_a_nets_label_carries_its_remedies_in_brackets_and_the_papers_nets_keep_theirs():
    assert net_label("plain-56", {"norm": "none", "activation": "tat"}) == "plain-56 (no BN, TAT)"
    assert net_label("ResNet-56", {"shortcut_weight": 0.5}) == "ResNet-56 (alpha=0.5)"
    assert net_label("ResNet-56", {"shortcut_weight": 1.0, "norm": "bn"}) == "ResNet-56"


def test_the_papers_values_are_runconfigs_defaults_wherever_runconfig_has_the_field():
    shared = [f for f in PAPER_VALUES if f in SCHEMA_DEFAULTS]
    assert {f: SCHEMA_DEFAULTS[f] for f in shared} == {f: PAPER_VALUES[f] for f in shared}


def test_a_store_from_before_issue_22_reads_as_the_papers_values_and_keeps_its_labels(tmp_path):
    legacy = load_runs(write_intervention_nets(tmp_path, PAPER_PAIR, intervention=None)).runs
    assert intervention_values({}) == PAPER_VALUES
    assert legacy["shortcut_weight"].tolist() == [1.0] * 4
    assert set(legacy["norm"]) == {"bn"} and set(legacy["init"]) == {"he"} and set(legacy["activation"]) == {"relu"}
    assert legacy["intervention"].tolist() == ["plain", "plain", "ResNet", "ResNet"]
    assert legacy["label"].tolist() == ["plain-8", "plain-44", "ResNet-8", "ResNet-44"]


def test_intervention_runs_share_the_papers_recipe_and_have_labels_of_their_own(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    runs = load_runs(write_intervention_nets(tmp_path, {("plain", 44, 0): 4.0}, NO_BN_TAT)).runs
    assert set(runs["recipe"]) == {""}
    assert runs["label"].tolist() == ["plain-8", "plain-44", "plain-44 (no BN, TAT)", "ResNet-8", "ResNet-44"]


def test_the_verdict_says_an_intervention_removes_the_degradation_and_another_does_not(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    write_intervention_nets(tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 4.0}, NO_BN_TAT)
    judged = verdict(
        load_runs(write_intervention_nets(tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 20.0}, {"norm": "none"}))
    )
    assert judged.reproduced is True and judged.groups[0].plain_margin == pytest.approx(27.0)
    assert bullets(judged)[-4:] == [
        "Intervention plain, no BN: still degrades with depth. plain-44 (no BN) ends at 20.0% training error, 17.0 "
        "points above plain-8 (no BN)'s 3.0%: more than the 3.0 points that count as real, and stays above it at "
        "100% of the logged points of the last 50% of training.",
        "Intervention plain, no BN against the paper's ResNet of its deepest depth: plain-44 (no BN) ends at 20.0% "
        "training error, 18.0 points above ResNet-44's 2.0%: more than the 3.0 points that count as real.",
        "Intervention plain, no BN, TAT: does not degrade with depth. plain-44 (no BN, TAT) ends at 4.0% training "
        "error, 1.0 points above plain-8 (no BN, TAT)'s 3.0%: within the 3.0 points that count as real; no deeper "
        "net ends really above a shallower one.",
        "Intervention plain, no BN, TAT against the paper's ResNet of its deepest depth: plain-44 (no BN, TAT) ends "
        "at 4.0% training error, 2.0 points above ResNet-44's 2.0%: within the 3.0 points that count as real.",
    ]


def test_one_seed_near_the_margin_does_not_count_as_degrading_and_the_verdict_asks_for_seeds(tmp_path):
    write_intervention_nets(tmp_path, TWO_SEED_PAIR)
    store = write_intervention_nets(tmp_path, {("resnet", 8, 0): 3.0, ("resnet", 44, 0): 5.9}, NO_BN_FIXUP)
    assert bullets(verdict(load_runs(store)))[-3:] == [
        "ResNet-8 (no BN, Fixup), ResNet-44 (no BN, Fixup) have one seed, which gives no measure of noise: a "
        "difference involving them must exceed 3 points. Train seeds 1 and 2 as well (--seed) to judge by the seed "
        "spread.",
        "Intervention ResNet, no BN, Fixup: does not degrade with depth. ResNet-44 (no BN, Fixup) ends at 5.9% "
        "training error, 2.9 points above ResNet-8 (no BN, Fixup)'s 3.0%: within the 3.0 points that count as real; "
        "no deeper net ends really above a shallower one.",
        "Intervention ResNet, no BN, Fixup against the paper's ResNet of its deepest depth: ResNet-44 (no BN, Fixup) "
        "ends at 5.9% training error, 3.8 points above ResNet-44's 2.1%: more than the 3.0 points that count as "
        "real.",
    ]


def test_the_same_margin_over_three_tight_seeds_still_degrades(tmp_path):
    write_intervention_nets(tmp_path, TWO_SEED_PAIR)
    finals = {("resnet", 8, s): 3.0 + 0.1 * (s - 1) for s in range(3)}
    finals |= {("resnet", 44, s): 5.9 + 0.1 * (s - 1) for s in range(3)}
    judged = verdict(load_runs(write_intervention_nets(tmp_path, finals, NO_BN_FIXUP)))
    assert bullets(judged)[-2:] == [
        "Intervention ResNet, no BN, Fixup: still degrades with depth. ResNet-44 (no BN, Fixup) ends at 5.9% (mean of "
        "3 seeds) training error, 2.9 points above ResNet-8 (no BN, Fixup)'s 3.0%: more than the 1.0 points that count "
        "as real, and stays above it at 100% of the logged points of the last 50% of training.",
        "Intervention ResNet, no BN, Fixup against the paper's ResNet of its deepest depth: ResNet-44 (no BN, Fixup) "
        "ends at 5.9% (mean of 3 seeds) training error, 3.8 points above ResNet-44's 2.1%: more than the 1.0 points "
        "that count as real.",
    ]


def test_a_store_without_interventions_has_no_intervention_sentence_section_or_figure(tmp_path, monkeypatch):
    store = write_store(tmp_path)
    frames = load_runs(store)
    assert reference_frames(frames) is frames
    assert intervention_section(frames, tmp_path / "out", ["png"]) == []
    today = write_report(store, tmp_path / "today", formats=["png"]).path.read_text()
    assert "Intervention" not in today and "alpha" not in today
    assert not (tmp_path / "today" / "interventions_depth.png").exists()
    monkeypatch.setattr("analysis.report.intervention_section", lambda *args: [])
    monkeypatch.setattr("analysis.report.reference_frames", lambda frames: frames)
    monkeypatch.setattr("analysis.intervention_verdict.intervention_sentences", lambda *args: [])
    assert write_report(store, tmp_path / "without", formats=["png"]).path.read_text() == today


def test_the_depth_figure_draws_a_line_per_intervention_with_the_papers_pair_bold(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    write_intervention_nets(tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 4.0}, NO_BN_TAT)
    store = write_intervention_nets(
        tmp_path, {("resnet", 8, 0): 3.5, ("resnet", 44, 0): 10.0}, {"shortcut_weight": 0.5}
    )
    runs = load_runs(store).runs
    table = depth_table(runs)
    assert table[["intervention", "depth", "mean"]].values.tolist() == [
        ["plain", 8, 3.0],
        ["plain", 44, 30.0],
        ["ResNet", 8, 2.5],
        ["ResNet", 44, 2.0],
        ["plain, no BN, TAT", 8, 3.0],
        ["plain, no BN, TAT", 44, 4.0],
        ["ResNet alpha=0.5", 8, 3.5],
        ["ResNet alpha=0.5", 44, 10.0],
    ]
    assert table["reference"].tolist() == [True] * 4 + [False] * 4
    (ax,) = interventions_by_depth(runs).axes
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["plain", "ResNet", "plain, no BN, TAT", "ResNet alpha=0.5"]
    widths = [h.lines[0].get_linewidth() for h in handles]
    assert widths[0] == widths[1] > widths[2] == widths[3]
    assert [h.lines[0].get_ydata().tolist() for h in handles] == [[3.0, 30.0], [2.5, 2.0], [3.0, 4.0], [3.5, 10.0]]


def test_the_alpha_dial_draws_error_against_alpha_one_line_per_depth_the_papers_resnet_at_alpha_one(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    for alpha, deep in ((0.0, 20.0), (0.5, 10.0)):
        write_intervention_nets(tmp_path, {("resnet", 8, 0): 3.0, ("resnet", 44, 0): deep}, {"shortcut_weight": alpha})
    store = write_intervention_nets(tmp_path, {("plain", 44, 0): 4.0}, NO_BN_TAT)
    runs = load_runs(store).runs
    table = alpha_table(runs)
    assert set(table["dial"]) == {"ResNet"}
    assert table[["depth", "shortcut_weight", "mean"]].values.tolist() == [
        [8, 0.0, 3.0],
        [8, 0.5, 3.0],
        [8, 1.0, 2.5],
        [44, 0.0, 20.0],
        [44, 0.5, 10.0],
        [44, 1.0, 2.0],
    ]
    (ax,) = alpha_dial(runs).axes
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["8 layers", "44 layers"]
    assert handles[1].lines[0].get_xdata().tolist() == [0.0, 0.5, 1.0]
    assert ax.get_xlabel() == "shortcut weight alpha"


def test_no_alpha_dial_without_a_resnet_off_alpha_one(tmp_path):
    store = write_intervention_nets(tmp_path, {("plain", 44, 0): 4.0, ("resnet", 44, 0): 3.0}, NO_BN_TAT)
    with pytest.raises(NothingToDraw, match="alpha other than 1"):
        alpha_dial(load_runs(store).runs)


def test_the_report_shows_the_papers_figures_for_the_papers_nets_and_an_interventions_section(tmp_path):
    write_intervention_nets(tmp_path / "sweep", PAPER_PAIR)
    store = write_intervention_nets(tmp_path / "sweep", {("plain", 8, 0): 3.0, ("plain", 44, 0): 4.0}, NO_BN_TAT)
    frames = load_runs(store)
    assert reference_frames(frames).runs["label"].tolist() == ["plain-8", "plain-44", "ResNet-8", "ResNet-44"]
    assert set(reference_frames(frames).curves["label"]) == {"plain-8", "plain-44", "ResNet-8", "ResNet-44"}
    text = write_report(store, tmp_path / "report", formats=["png"]).path.read_text()
    assert "## Interventions" in text
    assert "Interventions in this store: plain, no BN, TAT (2 runs)." in text
    assert "No BN, so no running statistics, in the nets of: plain, no BN, TAT." in text
    assert "![Interventions: final training error against depth](interventions_depth.png)" in text
    assert (
        "- The alpha dial: final training error against the shortcut weight, per depth: not drawn (no finished " in text
    )
    assert (tmp_path / "report" / "interventions_depth.png").exists()
    assert not (tmp_path / "report" / "alpha_dial.png").exists()


def test_the_signal_figures_draw_bn_free_intervention_nets(tmp_path):
    nets = write_intervention_nets(tmp_path, {("plain", 8, 0): 3.0, ("plain", 20, 0): 4.0}, NO_BN_TAT)
    store = write_probe_signals(nets)
    signals = load_runs(store).signals
    assert set(signals["label"]) == {"plain-8 (no BN, TAT)", "plain-20 (no BN, TAT)"}
    for draw in (gradient_norms, signal_propagation):
        labels = {label for ax in draw(signals).axes for label in ax.get_legend_handles_labels()[1]}
        assert {"plain-8 (no BN, TAT)", "plain-20 (no BN, TAT)"} <= labels


def test_write_nets_stores_still_judge_the_papers_claim_alone(tmp_path):
    judged = verdict(load_runs(write_nets(tmp_path, PAPER_PAIR)))
    assert not any(b.startswith("Intervention") for b in bullets(judged))


def test_an_intervention_that_rises_but_not_at_every_depth_is_undecided_and_names_the_step(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    finals = {("plain", 8, 0): 3.0, ("plain", 20, 0): 20.0, ("plain", 44, 0): 10.0}
    judged = verdict(load_runs(write_intervention_nets(tmp_path, finals, {"init": "orthogonal"})))
    assert bullets(judged)[-2] == (
        "Intervention plain, orthogonal init: undecided. plain-44 (orthogonal init) ends at 10.0% training error, 7.0 "
        "points above plain-8 (orthogonal init)'s 3.0%: more than the 3.0 points that count as real; not monotone: "
        "plain-44 (orthogonal init) ends at 10.0% training error, 10.0 points below plain-20 (orthogonal init)'s "
        "20.0%: more than the 3.0 points that count as real."
    )
    assert bullets(judged)[-1] == (
        "Intervention plain, orthogonal init against the paper's ResNet of its deepest depth: plain-44 (orthogonal "
        "init) ends at 10.0% training error, 8.0 points above ResNet-44's 2.0%: more than the 3.0 points that count as "
        "real."
    )


def test_an_intervention_at_one_depth_without_the_papers_resnet_there_is_not_judged(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    judged = verdict(load_runs(write_intervention_nets(tmp_path, {("plain", 20, 0): 5.0}, NO_BN_TAT)))
    assert bullets(judged)[-2:] == [
        "Intervention plain, no BN, TAT: fewer than two finished depths, so its trend with depth is not judged.",
        "No finished ResNet of the paper at 20 layers to compare plain, no BN, TAT with.",
    ]
    assert judged.reproduced is True


def test_a_wandb_sweep_reads_interventions_from_the_run_config_and_old_runs_as_the_papers_values():
    config = {"arch": "resnet", "depth": 20, "dataset": "synthetic", "seed": 0, "shortcut": "A"}
    history = [{"trainer/global_step": 100, "train_error": 9.0}]
    runs = load_wandb_sweep(
        "me/degradation/sweep",
        api=FakeWandbApi(
            [
                FakeWandbRun("old", config, {"train_error": 9.0}, history),
                FakeWandbRun("fixup", {**config, "norm": "none", "init": "fixup"}, {"train_error": 9.0}, history),
                FakeWandbRun("alpha", {**config, "shortcut_weight": {"value": 0.5}}, {"train_error": 9.0}, history),
            ]
        ),
    ).runs
    by_run = runs.set_index("run")
    assert by_run["intervention"].to_dict() == {
        "old": "ResNet",
        "fixup": "ResNet, no BN, Fixup",
        "alpha": "ResNet alpha=0.5",
    }
    assert by_run.loc["alpha", "label"] == "ResNet-20 (alpha=0.5)"


def test_an_intervention_whose_nets_never_learned_is_not_called_free_of_degradation(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    stuck = {("resnet", 8, 0): 89.4, ("resnet", 44, 0): 89.4}
    flat = {net: (lambda step: 89.4) for net in stuck}
    store = write_intervention_nets(tmp_path, stuck, NO_BN_FIXUP, curves=flat)
    assert bullets(verdict(load_runs(store)))[-2] == (
        "Intervention ResNet, no BN, Fixup: did not learn: no net ends really below the training error of its first "
        "logged window (ResNet-8 (no BN, Fixup) 89.4% (first window 89.4%), ResNet-44 (no BN, Fixup) 89.4% (first "
        "window 89.4%)), so its trend with depth is not judged."
    )


def test_a_degrading_intervention_names_the_nets_that_never_learned(tmp_path):
    write_intervention_nets(tmp_path, PAPER_PAIR)
    finals = {("resnet", 8, 0): 10.0, ("resnet", 44, 0): 89.4}
    curves = {("resnet", 44, 0): lambda step: 89.4}
    store = write_intervention_nets(tmp_path, finals, NO_BN_FIXUP, curves=curves)
    sentence = bullets(verdict(load_runs(store)))[-2]
    assert sentence.startswith("Intervention ResNet, no BN, Fixup: still degrades with depth. ResNet-44 (no BN, Fixup)")
    assert sentence.endswith(
        "Of its nets, these did not learn (none ends really below its first window): ResNet-44 (no BN, Fixup) 89.4% "
        "(first window 89.4%)."
    )
