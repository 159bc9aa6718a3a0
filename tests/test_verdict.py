"""The verdict on small run stores in the real format: each part of the paper's claim, the noise rule, recipes."""

from __future__ import annotations

import pytest

from analysis import fig6, load_runs, verdict
from analysis.verdict import RULE
from tests.analysis_fixtures import write_nets


def judge(tmp_path, finals, **kwargs):
    return verdict(load_runs(write_nets(tmp_path, finals, **kwargs)))


def test_both_parts_hold_reads_reproduced_and_names_the_dataset(tmp_path):
    judged = judge(
        tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 30.0, ("resnet", 8, 0): 2.5, ("resnet", 44, 0): 2.0}
    )
    assert judged.reproduced is True
    assert judged.headline == "degradation reproduced on synthetic"
    group = judged.groups[0]
    assert group.plain_degrades is True and group.resnets_not_worse is True
    assert "plain nets get worse with depth: yes, +27.0 points" in group.summary
    assert "*How this was judged:*" in judged.text() and "3 points" in judged.text()


def test_resnets_that_degrade_too_are_not_reproduced_and_the_verdict_says_why(tmp_path):
    judged = judge(
        tmp_path, {("plain", 8, 0): 10.0, ("plain", 44, 0): 20.0, ("resnet", 8, 0): 9.0, ("resnet", 44, 0): 15.0}
    )
    text = judged.text()
    assert judged.reproduced is False and judged.headline == "degradation not reproduced on synthetic"
    assert judged.groups[0].plain_degrades is True and judged.groups[0].resnets_not_worse is False
    assert "Part 2 does not hold: the deeper ResNets train worse too." in text
    assert "under-training" in text


def test_the_issue_store_where_both_archs_get_worse_is_not_reproduced(tmp_path):
    # plain-8 10.0%, plain-44 11.1%, ResNet-8 9.0%, ResNet-44 12.5%: read "reproduced" before this rule existed
    judged = judge(
        tmp_path, {("plain", 8, 0): 10.0, ("plain", 44, 0): 11.1, ("resnet", 8, 0): 9.0, ("resnet", 44, 0): 12.5}
    )
    group = judged.groups[0]
    assert judged.reproduced is False
    assert group.plain_degrades is False and group.resnets_not_worse is False
    assert "plain-44 ends at 11.1% training error, 1.1 points above plain-8's 10.0%: within the 3.0 points" in (
        judged.text()
    )


def test_plain_nets_that_stay_flat_are_not_reproduced_though_resnets_are_fine(tmp_path):
    judged = judge(
        tmp_path, {("plain", 8, 0): 5.0, ("plain", 44, 0): 5.5, ("resnet", 8, 0): 5.0, ("resnet", 44, 0): 4.0}
    )
    group = judged.groups[0]
    assert judged.reproduced is False and group.plain_degrades is False and group.resnets_not_worse is True
    assert "Part 1 does not hold: plain-44 does not end really above plain-8." in judged.text()


def test_one_seed_near_the_margin_is_not_enough_and_the_verdict_asks_for_seeds(tmp_path):
    finals = {("plain", 8, 0): 5.0, ("plain", 44, 0): 7.5, ("resnet", 8, 0): 5.0, ("resnet", 44, 0): 5.0}
    judged = judge(tmp_path, finals)
    assert judged.groups[0].plain_degrades is False
    text = judged.text()
    margin = f"{RULE.single_seed_margin:g}"
    assert f"one seed, which gives no measure of noise: a difference involving them must exceed {margin}" in text
    assert "Train seeds 1 and 2" in text


def test_the_same_margin_over_three_tight_seeds_is_judged_by_the_seed_spread(tmp_path):
    finals = {}
    for seed, jitter in enumerate((-0.1, 0.0, 0.1)):
        finals |= {("plain", 8, seed): 5.0 + jitter, ("plain", 44, seed): 7.5 - jitter}
        finals |= {("resnet", 8, seed): 5.0 + jitter, ("resnet", 44, seed): 5.0 - jitter}
    judged = judge(tmp_path, finals)
    assert judged.reproduced is True
    assert (
        "plain-44 ends at 7.5% (mean of 3 seeds) training error, 2.5 points above plain-8's 5.0%: more than the 1.0"
        in (judged.text())
    )
    assert "gives no measure of noise:" not in judged.text()


def test_two_recipes_in_one_store_are_two_groups_never_averaged(tmp_path):
    write_nets(tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 30.0, ("resnet", 8, 0): 2.5, ("resnet", 44, 0): 2.0})
    write_nets(tmp_path, {("plain", 8, 0): 16.0}, lr=0.01)
    frames = load_runs(tmp_path)
    assert sorted(frames.runs["label"]) == sorted(
        ["plain-8 (lr 0.1)", "plain-44 (lr 0.1)", "ResNet-8 (lr 0.1)", "ResNet-44 (lr 0.1)", "plain-8 (lr 0.01)"]
    )
    judged = verdict(frames)
    assert [g.name for g in judged.groups] == ["synthetic (lr 0.01)", "synthetic (lr 0.1)"]
    assert judged.headline == "degradation not judged on synthetic (lr 0.01); reproduced on synthetic (lr 0.1)"
    assert "above plain-8 (lr 0.1)'s 3.0%" in judged.text()  # not the 9.5% mean of 3.0 and 16.0
    plain_panel = fig6(frames.curves).axes[0]
    assert "plain-8 (lr 0.01)" in [t.get_text() for t in plain_panel.get_legend().get_texts()]


def test_a_non_monotone_middle_depth_is_named_and_part_one_fails(tmp_path):
    finals = {("plain", 8, 0): 5.0, ("plain", 20, 0): 25.0, ("plain", 44, 0): 12.0}
    finals |= {("resnet", 8, 0): 4.0, ("resnet", 20, 0): 4.0, ("resnet", 44, 0): 4.0}
    judged = judge(tmp_path, finals)
    text = judged.text()
    assert judged.reproduced is False and judged.groups[0].plain_degrades is False
    assert "Not monotone: plain-44 ends at 12.0% training error, 13.0 points below plain-20's 25.0%" in text
    assert "plain-20 breaks the order" in text and "training error does not rise at every depth" in text


def test_a_deep_plain_net_that_ends_higher_but_was_lower_through_late_training_does_not_degrade(tmp_path):
    steps = 2_000

    def crossing(step: int) -> float:
        return 4.0 if step < steps else 9.0  # below plain-8 until the very last logged point

    finals = {("plain", 8, 0): 5.0, ("plain", 44, 0): 9.0, ("resnet", 8, 0): 4.0, ("resnet", 44, 0): 4.0}
    judged = judge(tmp_path, finals, steps=steps, curves={("plain", 44, 0): crossing})
    group = judged.groups[0]
    assert group.plain_margin == pytest.approx(4.0) and group.plain_degrades is False
    assert "plain-44 does not stay above plain-8 in training error over the last 50% of training" in judged.text()
    assert "the gap does not last through the end of training" in judged.text()


def test_plain_nets_alone_leave_the_claim_unjudged(tmp_path):
    judged = judge(tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 30.0})
    assert judged.groups[0].plain_degrades is True and judged.groups[0].resnets_not_worse is None
    assert judged.reproduced is None and judged.headline == "degradation not judged on synthetic"


def test_test_error_below_training_error_is_explained(tmp_path):
    judged = judge(tmp_path, {("plain", 8, 0): 3.0, ("plain", 44, 0): 30.0}, test_offset=-1.0)
    assert "2 net(s) end with a lower test error than training error (e.g. plain-8: 2.0% vs 3.0%)" in judged.text()
    assert "augmented mini-batches" in judged.text()


# -- figures as the paper draws them -----------------------------------------------------------------------------


def test_fig6_leaves_plain_110_out_of_its_plain_panel_says_where_it_ended_and_keeps_the_papers_range(tmp_path):
    finals = {("plain", d, 0): e for d, e in ((20, 6.0), (32, 8.0), (44, 10.0), (56, 12.0), (110, 62.0))}
    finals |= {("resnet", d, 0): e for d, e in ((20, 6.0), (56, 4.0), (110, 3.0))}
    frames = load_runs(write_nets(tmp_path, finals, dataset="cifar10", steps=64_000))
    plain, resnet = fig6(frames.curves).axes
    assert [t.get_text() for t in plain.get_legend().get_texts()] == ["plain-20", "plain-32", "plain-44", "plain-56"]
    assert len(plain.lines) == 8  # training and test curve of each drawn net, none of plain-110
    note = " ".join(t.get_text() for t in plain.texts)
    assert "plain-110 not drawn (as in the paper): ends at training error 62.0%, test error 64.0%" in note
    assert plain.get_ylim() == resnet.get_ylim() == (0.0, 20.0)


def test_side_by_side_panels_share_one_range_that_cuts_no_curve_where_the_papers_range_does_not_fit(tmp_path):
    finals = {("plain", 8, 0): 3.0, ("plain", 44, 0): 35.0, ("resnet", 8, 0): 2.5, ("resnet", 44, 0): 2.0}
    frames = load_runs(write_nets(tmp_path, finals))
    plain, resnet = fig6(frames.curves).axes
    highest = max(max(line.get_ydata()) for ax in (plain, resnet) for line in ax.lines)
    assert plain.get_ylim() == resnet.get_ylim()
    assert plain.get_ylim()[0] == 0.0 and highest <= plain.get_ylim()[1] < highest + 10


def test_neighbouring_depths_differ_in_greyscale(tmp_path):
    from analysis.style import depth_colors, lightness

    for arch in ("plain", "resnet"):
        colors = depth_colors([20, 32, 44, 56, 110, 1202, 8], arch)
        levels = [lightness(colors[d]) for d in sorted(colors)]
        assert all(a - b >= 7 for a, b in zip(levels, levels[1:], strict=False)), (arch, levels)
