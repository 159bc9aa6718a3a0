"""The verdict on each intervention (issue 22), by the noise rule of the paper's claim (``analysis.verdict``).

Within one dataset and recipe, each intervention (``analysis.interventions``) gets two answers from the final
training error averaged over seeds: does it still degrade with depth, and how far does its deepest net end from the
paper's ResNet of that depth? "Still degrades" is part 1's rule (the deepest net ends really above the shallowest,
stays above it late in training, and no deeper net ends really below its neighbour); "does not degrade" is part 2's
(no deeper net ends really above the shallowest or its neighbour); neither holding leaves it undecided.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.interventions import INTERVENTION_COLUMN, reference_mask
from analysis.load import ARCH_ORDER
from analysis.summary import per_net
from analysis.verdict import RULE, Comparison, NoiseRule, _late_share, _seed_note


@dataclass
class InterventionVerdict:
    """One intervention in one dataset and recipe: whether it degrades with depth (None: undecided or not judged),
    its deepest net against the paper's ResNet of that depth (None: no such ResNet), and the sentences."""

    name: str
    degrades: bool | None
    gap: Comparison | None
    sentences: list[str] = field(default_factory=list)


def _first_error(curves: pd.DataFrame, label: str) -> float:
    """A net's training error in its first logged window (mean over seeds): where its training began."""
    rows = curves[curves["label"] == label].dropna(subset=["train_error"])
    return float(rows[rows["step"] == rows["step"].min()]["train_error"].mean()) if not rows.empty else float("nan")


def _stuck(nets: list[pd.Series], curves: pd.DataFrame, rule: NoiseRule) -> list[tuple[pd.Series, float]]:
    """The nets that never learned, with their first logged training error: each ends no really lower than it (by
    the rule's margin; a net without a logged window counts as having learned)."""
    stuck = []
    for net in nets:
        start = _first_error(curves, net["label"])
        margin = rule.threshold(net, net) if net["n"] >= 2 else rule.single_seed_margin
        if start == start and start - net["mean"] <= margin:
            stuck.append((net, start))
    return stuck


def _stuck_text(stuck: list[tuple[pd.Series, float]]) -> str:
    return ", ".join(f"{net['label']} {net['mean']:.1f}% (first window {s:.1f}%)" for net, s in stuck)


def _trend(name: str, nets: list[pd.Series], curves: pd.DataFrame, rule: NoiseRule) -> tuple[bool | None, str]:
    if len(nets) < 2:
        return None, f"Intervention {name}: fewer than two finished depths, so its trend with depth is not judged."
    stuck = _stuck(nets, curves, rule)
    if len(stuck) == len(nets):  # equal errors at chance across depths say nothing about degradation
        return None, (
            f"Intervention {name}: did not learn: no net ends really below the training error of its first logged "
            f"window ({_stuck_text(stuck)}), so its trend with depth is not judged."
        )
    ends = Comparison(nets[0], nets[-1], rule)
    adjacent = [Comparison(a, b, rule) for a, b in zip(nets, nets[1:], strict=False)]
    worse = [c for c in adjacent + ([ends] if len(nets) > 2 else []) if c.rises]
    if not worse:
        return False, (
            f"Intervention {name}: does not degrade with depth. {ends.text()}; no deeper net ends really above a "
            "shallower one."
        )
    share, points = _late_share(curves, ends.shallow["label"], ends.deep["label"], rule)
    lasts = points > 0 and share >= rule.late_agreement
    reversed_ = [c for c in adjacent if c.falls]
    late = f"the last {rule.late_fraction:.0%} of training"
    if ends.rises and lasts and not reversed_:
        unlearned = ""
        if stuck:
            unlearned = (
                f" Of its nets, these did not learn (none ends really below its first window): {_stuck_text(stuck)}."
            )
        return True, (
            f"Intervention {name}: still degrades with depth. {ends.text()}, and stays above it at {share:.0%} of "
            f"the logged points of {late}.{unlearned}"
        )
    if reversed_:
        why = f"not monotone: {reversed_[0].text()}"
    elif ends.rises:
        why = f"the gap does not last through {late} (above at {share:.0%} of {points} points)"
    else:
        why = f"a deeper net ends really above its neighbour: {worse[0].text()}"
    return None, f"Intervention {name}: undecided. {ends.text()}; {why}."


def judge_intervention(
    name: str, nets: pd.DataFrame, resnets: pd.DataFrame, curves: pd.DataFrame, rule: NoiseRule = RULE
) -> InterventionVerdict:
    """Judge one intervention's nets (``per_net`` rows, one per depth) against the paper's ResNets (``per_net`` rows)
    of the same dataset and recipe; ``curves`` holds their training curves (for part 1's "throughout training")."""
    rows = [row for _, row in nets.sort_values("depth").iterrows()]
    degrades, trend = _trend(name, rows, curves, rule)
    deep = rows[-1]
    matched = resnets[resnets["depth"] == deep["depth"]]
    gap = Comparison(matched.iloc[0], deep, rule) if not matched.empty else None
    sentences = [trend]
    if gap is None:
        sentences.append(f"No finished ResNet of the paper at {int(deep['depth'])} layers to compare {name} with.")
    else:
        sentences.append(f"Intervention {name} against the paper's ResNet of its deepest depth: {gap.text()}.")
    return InterventionVerdict(name, degrades, gap, sentences)


def judge_interventions(group: pd.DataFrame, curves: pd.DataFrame, rule: NoiseRule = RULE) -> list[InterventionVerdict]:
    """Every intervention of one dataset's and recipe's finished runs (``group``, with the ``train`` column of
    ``summary.with_final_errors``), in the order plain, ResNet, pre-act, then by name; none for the paper's nets."""
    reference = reference_mask(group)
    if reference.all():
        return []
    resnets = per_net(group[reference & (group["arch"] == "resnet")], "train")
    others = group[~reference]
    archs = others.groupby(INTERVENTION_COLUMN)["arch"].first()
    names = sorted(archs.index, key=lambda n: (ARCH_ORDER.get(archs[n], len(ARCH_ORDER)), n))
    return [
        judge_intervention(n, per_net(others[others[INTERVENTION_COLUMN] == n], "train"), resnets, curves, rule)
        for n in names
    ]


def intervention_sentences(group: pd.DataFrame, curves: pd.DataFrame, rule: NoiseRule = RULE) -> list[str]:
    """The verdict's sentences on every intervention of one dataset and recipe (none where it holds only the
    paper's nets)."""
    judged = judge_interventions(group, curves, rule)
    if not judged:
        return []
    nets = per_net(group, "train")
    single = nets["n"] < 2
    note = _seed_note(nets, rule) if single.any() and not single.all() else []  # all single: the verdict said so
    return note + [s for one in judged for s in one.sentences]
