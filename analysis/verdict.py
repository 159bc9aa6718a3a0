"""The verdict in words: the paper's whole claim, judged from the data, per dataset and per recipe.

The paper's claim (Sec. 4.1, 4.2, Figures 1, 4 and 6) has two parts, both about *training* error (an optimisation
claim, so not test error):

1. plain nets: the deeper net has the higher training error, "throughout the whole training procedure";
2. ResNets: the deeper nets are not worse.

Each part is judged on finished runs within one group (one dataset, one recipe: ``analysis.recipes``), from the
final training error averaged over seeds, with the noise rule of ``NoiseRule``; "reproduced" needs both parts.
Figure 7's claim (ResNets respond less than plain nets) gets its own sentence, and so does Sec. 4.1's argument that
the plain nets' gradients do not vanish (``analysis.signals``); where original and pre-activation ResNets of one
depth both finished, He et al. 2016b's claim (pre-activation ends with the lower test error) gets one too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from analysis.interventions import reference_mask
from analysis.load import DATA_NAME, RunFrames, last_responses
from analysis.recipes import RECIPE_COLUMN
from analysis.signals import gradient_sentences
from analysis.summary import NET_KEYS, finished, paper_shortcuts, per_net, with_final_errors
from experiments.store import STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING
from models.options import paper_shortcut
from models.paper import preact_error

DATASET_ORDER = ("cifar10", "imagenet", "synthetic")
MAX_LISTED_FAILURES = 5


@dataclass(frozen=True)
class NoiseRule:
    """When a difference in final training error between two nets counts as real.

    With at least two seeds of each net, the margin must exceed ``spread_factor`` times the seed spread (the two
    nets' seed stds added in quadrature: the spread of the difference of two single runs) and ``min_margin``. With
    one seed of either net there is no measure of noise, so the margin must exceed the larger
    ``single_seed_margin``. "Throughout training": over the last ``late_fraction`` of the logged steps, the deeper
    plain net's training error (mean over seeds) must be above the shallower's at ``late_agreement`` of the points.
    """

    spread_factor: float = 2.0
    min_margin: float = 1.0
    single_seed_margin: float = 3.0
    late_fraction: float = 0.5
    late_agreement: float = 0.9
    response_margin: float = 0.1
    single_seed_response_margin: float = 0.3

    def threshold(self, a: pd.Series, b: pd.Series) -> float:
        """The margin (points) by which two nets' mean errors must differ to count as a real difference."""
        if min(a["n"], b["n"]) < 2:
            return self.single_seed_margin
        return max(self.min_margin, self.spread_factor * math.hypot(a["std"], b["std"]))

    def response_threshold(self, a: pd.Series, b: pd.Series) -> float:
        """The relative difference (0.1: 10%) by which two nets' mean layer responses must differ to count as real:
        the error rule's, on ratios (relative seed stds in quadrature; floors ``response_margin`` with seeds and
        ``single_seed_response_margin`` without, in the error rule's proportion of 1 to 3 points)."""
        if min(a["n"], b["n"]) < 2:
            return self.single_seed_response_margin
        spread = math.hypot(a["std"] / a["mean"], b["std"] / b["mean"])
        return max(self.response_margin, self.spread_factor * spread)

    def text(self) -> str:
        """The rule in words, for the report."""
        return (
            "Judged on finished runs, separately for each dataset and recipe (runs that differ in anything but "
            "seed, depth, arch and shortcut are never averaged), from the final training error averaged over "
            "seeds. A difference between two nets is real when it exceeds "
            f"{self.spread_factor:g}x their seed spread (seed stds added in quadrature) and {self.min_margin:g} "
            f"point; with one seed of either net there is no measure of noise, and it must exceed "
            f"{self.single_seed_margin:g} points. Part 1 (plain nets degrade) holds when the deepest plain net ends "
            "really above the shallowest, stays above it at "
            f"{self.late_agreement:.0%} or more of the logged points of the last {self.late_fraction:.0%} of "
            "training, and no deeper plain net ends really below its shallower neighbour. Part 2 (ResNets do not "
            "degrade) holds when no deeper ResNet ends really above the shallowest one or its shallower neighbour. "
            "Degradation is reproduced only where both parts hold. Layer responses (Figure 7: a net's mean std over "
            "its layers at the last evaluation) are compared by ratio with the same rule: a difference is real when "
            f"it exceeds {self.spread_factor:g}x the seed spread (relative seed stds in quadrature) and "
            f"{self.response_margin:.0%}, with one seed of either net {self.single_seed_response_margin:.0%}; "
            "otherwise it is undecided."
        )


RULE = NoiseRule()
RESPONSE_WORDS = {
    "less": ("ResNets respond less", ", as the paper reports"),
    "more": ("ResNets respond more", ", unlike the paper"),
    "undecided": ("undecided", ""),
}
"""Figure 7's first claim in words, by what the noise rule found at a depth: (what, beside the paper)."""


@dataclass(frozen=True)
class Comparison:
    """A shallower and a deeper net of one arch, and whether the deeper one ends really higher or lower."""

    shallow: pd.Series
    deep: pd.Series
    rule: NoiseRule = RULE

    @property
    def margin(self) -> float:
        return float(self.deep["mean"] - self.shallow["mean"])

    @property
    def threshold(self) -> float:
        return self.rule.threshold(self.shallow, self.deep)

    @property
    def rises(self) -> bool:
        return self.margin > self.threshold

    @property
    def falls(self) -> bool:
        return self.margin < -self.threshold

    def text(self) -> str:
        """'plain-44 ends at 32.9% training error, 30.6 points above plain-8's 2.4%: more than the 3.0 that count'."""
        deep, shallow = self.deep, self.shallow
        if self.margin == 0:
            where = f"level with {shallow['label']}'s {shallow['mean']:.1f}%"
        else:
            side = "above" if self.margin > 0 else "below"
            where = f"{abs(self.margin):.1f} points {side} {shallow['label']}'s {shallow['mean']:.1f}%"
        real = self.rises or self.falls
        judged = f"{'more than' if real else 'within'} the {self.threshold:.1f} points that count as real"
        return f"{deep['label']} ends at {_pct(deep)} training error, {where}: {judged}"


@dataclass
class GroupVerdict:
    """The two parts of the claim for one dataset and recipe (None: not judged), with the sentences behind them."""

    dataset: str
    recipe: str
    plain_degrades: bool | None
    resnets_not_worse: bool | None
    sentences: list[str] = field(default_factory=list)
    plain_margin: float = float("nan")
    resnet_margin: float = float("nan")

    @property
    def name(self) -> str:
        return f"{self.dataset} ({self.recipe})" if self.recipe else self.dataset

    @property
    def reproduced(self) -> bool | None:
        """True only when both parts hold; False when either fails; None when a part could not be judged."""
        if self.plain_degrades is False or self.resnets_not_worse is False:
            return False
        if self.plain_degrades and self.resnets_not_worse:
            return True
        return None

    @property
    def summary(self) -> str:
        parts = [_part("plain nets get worse with depth", self.plain_degrades, self.plain_margin)]
        parts.append(_part("ResNets do not", self.resnets_not_worse, self.resnet_margin))
        outcome = {True: "degradation reproduced", False: "degradation not reproduced"}.get(
            self.reproduced, "degradation not judged"
        )
        return f"{self.name}: {outcome} ({'; '.join(parts)})."


def _part(claim: str, holds: bool | None, margin: float) -> str:
    shown = "" if math.isnan(margin) else f", {margin:+.1f} points deepest vs shallowest"
    if holds is None:
        return f"{claim}: not judged (fewer than two finished depths)"
    return f"{claim}: {'yes' if holds else 'no'}{shown}"


@dataclass
class Verdict:
    """Run status counts and one ``GroupVerdict`` per dataset and recipe with finished runs."""

    status: list[str]
    groups: list[GroupVerdict]
    rule: NoiseRule = RULE

    @property
    def reproduced(self) -> bool | None:
        """True if every group reproduces the whole claim, False if one contradicts it, None if none was judged."""
        judged = [g.reproduced for g in self.groups if g.reproduced is not None]
        if not judged:
            return None
        return all(judged) and len(judged) == len(self.groups)

    @property
    def headline(self) -> str:
        """'degradation reproduced on synthetic', or per group where they differ."""
        if not self.groups:
            return "degradation not judged: no finished runs"
        outcomes: dict[str, list[str]] = {}
        for g in self.groups:
            word = {True: "reproduced", False: "not reproduced"}.get(g.reproduced, "not judged")
            outcomes.setdefault(word, []).append(g.name)
        return "degradation " + "; ".join(f"{word} on {', '.join(names)}" for word, names in outcomes.items())

    def text(self) -> str:
        """The verdict as Markdown: headline, run status, each group's parts and sentences, and the rule."""
        lines = [f"**Verdict: {self.headline}.**", "", *self.status]
        for g in self.groups:
            lines += ["", f"**{g.summary}**", "", *(f"- {s}" for s in g.sentences)]
        lines += ["", f"*How this was judged:* {self.rule.text()}"]
        return "\n".join(lines) + "\n"


def _pct(row: pd.Series) -> str:
    seeds = f" (mean of {row['n']} seeds)" if row["n"] > 1 else ""
    return f"{row['mean']:.1f}%{seeds}"


def _seed_note(stats: pd.DataFrame, rule: NoiseRule) -> list[str]:
    """Say when some nets have a single seed, so their differences are judged by the larger fixed margin."""
    single = stats[stats["n"] < 2]
    if single.empty:
        return []
    which = "Every net has" if len(single) == len(stats) else f"{', '.join(single['label'])} have"
    return [
        f"{which} one seed, which gives no measure of noise: a difference involving them must exceed "
        f"{rule.single_seed_margin:g} points. Train seeds 1 and 2 as well (--seed) to judge by the seed spread."
    ]


def _status_lines(runs: pd.DataFrame) -> list[str]:
    counts = {s: int((runs["status"] == s).sum()) for s in (STATUS_FINISHED, STATUS_RUNNING, STATUS_FAILED)}
    lines = [
        f"{len(runs)} runs: {counts[STATUS_FINISHED]} finished, {counts[STATUS_RUNNING]} running, "
        f"{counts[STATUS_FAILED]} failed."
    ]
    if counts[STATUS_RUNNING] or counts[STATUS_FAILED]:
        lines.append("Unfinished runs (running or failed) are excluded from the verdict.")
    failed = runs[runs["status"] == STATUS_FAILED]
    for row in failed.head(MAX_LISTED_FAILURES).itertuples():
        lines.append(f"- failed: {row.run} ({row.reason or 'no reason recorded'})")
    return lines


def _late_share(curves: pd.DataFrame, shallow: str, deep: str, rule: NoiseRule) -> tuple[float, int]:
    """Share of the common logged steps in the last part of training where ``deep``'s training error is higher."""
    means = curves[curves["label"].isin([shallow, deep])].pivot_table(
        index="step", columns="label", values="train_error", aggfunc="mean"
    )
    if shallow not in means or deep not in means:
        return float("nan"), 0
    means = means[[shallow, deep]].dropna()
    if means.empty:
        return float("nan"), 0
    late = means[means.index >= (1 - rule.late_fraction) * means.index.max()]
    return float((late[deep] > late[shallow]).mean()), len(late)


def _plain(stats: pd.DataFrame, curves: pd.DataFrame, rule: NoiseRule) -> tuple[bool | None, float, list[str]]:
    nets = [row for _, row in stats[stats["arch"] == "plain"].iterrows()]
    if len(nets) < 2:
        return None, float("nan"), ["Fewer than two plain depths finished: part 1 cannot be judged."]
    ends = Comparison(nets[0], nets[-1], rule)
    share, points = _late_share(curves, ends.shallow["label"], ends.deep["label"], rule)
    throughout = points > 0 and share >= rule.late_agreement
    sentences = [f"{ends.text()}."]
    late = f"the last {rule.late_fraction:.0%} of training ({points} logged points)"
    if points == 0:
        sentences.append(f"No common logged training error in {late}: whether it stays above cannot be checked.")
    else:
        stays = "stays above" if throughout else "does not stay above"
        sentences.append(
            f"{ends.deep['label']} {stays} {ends.shallow['label']} in training error over {late}: above at "
            f"{share:.0%} of the points (needed: {rule.late_agreement:.0%})."
        )
    adjacent = [Comparison(a, b, rule) for a, b in zip(nets, nets[1:], strict=False)]
    reversed_ = [c for c in adjacent if c.falls]
    if len(nets) > 2:
        for c in adjacent:
            if c.falls:
                sentences.append(f"Not monotone: {c.text()}; {c.shallow['label']} breaks the order.")
            elif not c.rises:
                sentences.append(f"Undecided step: {c.text()}.")
        if not reversed_:
            sentences.append("No deeper plain net ends really below its shallower neighbour.")
    holds = ends.rises and throughout and not reversed_
    if holds:
        sentences.append("Part 1 holds: the deeper plain nets train worse.")
    else:
        why = []
        if not ends.rises:
            why.append(f"{ends.deep['label']} does not end really above {ends.shallow['label']}")
        if ends.rises and not throughout:
            why.append("the gap does not last through the end of training")
        if reversed_:
            why.append("training error does not rise at every depth")
        sentences.append(f"Part 1 does not hold: {'; '.join(why)}.")
    return holds, ends.margin, sentences


def _resnet(stats: pd.DataFrame, plain_degrades: bool | None, rule: NoiseRule) -> tuple[bool | None, float, list[str]]:
    nets = [row for _, row in stats[stats["arch"] == "resnet"].iterrows()]
    if len(nets) < 2:
        return None, float("nan"), []
    ends = Comparison(nets[0], nets[-1], rule)
    adjacent = [Comparison(a, b, rule) for a, b in zip(nets, nets[1:], strict=False)]
    worse = [c for c in adjacent + ([ends] if len(nets) > 2 else []) if c.rises]
    sentences = [f"{ends.text()}."]
    if not worse:
        sentences.append("Part 2 holds: no deeper ResNet ends really above a shallower one.")
        return True, ends.margin, sentences
    sentences += [f"Worse with depth: {c.text()}." for c in worse if c is not ends]
    cause = (
        " Plain nets and ResNets both getting worse with depth is the typical sign of too few iterations for the "
        "deeper nets (under-training), not of degradation: train longer (max_steps) before reading it as such."
        if plain_degrades
        else ""
    )
    sentences.append(f"Part 2 does not hold: the deeper ResNets train worse too.{cause}")
    return False, ends.margin, sentences


def _pairs(stats: pd.DataFrame) -> list[str]:
    """Plain vs ResNet at the deepest depth both reached: the paper's headline comparison."""
    plain, resnet = stats[stats["arch"] == "plain"], stats[stats["arch"] == "resnet"]
    common = sorted(set(plain["depth"]) & set(resnet["depth"]))
    if not common:
        return []
    p = plain[plain["depth"] == common[-1]].iloc[0]
    r = resnet[resnet["depth"] == common[-1]].iloc[0]
    diff = r["mean"] - p["mean"]
    side = "below" if diff < 0 else "above"
    return [
        f"At {common[-1]} layers, {r['label']} ends {abs(diff):.1f} points {side} {p['label']} in training error "
        f"({r['mean']:.1f}% vs {p['mean']:.1f}%)."
    ]


def _test_below_train(data: pd.DataFrame) -> list[str]:
    """Explain final test (or validation) error below training error, which surprises readers of synthetic runs.
    Judged per net on its means over seeds, the numbers the verdict quotes."""
    nets = per_net(data, "train").merge(per_net(data, "top1")[["label", "mean"]], on="label", suffixes=("", "_top1"))
    below = nets[nets["mean_top1"] < nets["mean"]]
    if below.empty:
        return []
    example = below.iloc[0]
    name = " or ".join(sorted(set(data.loc[data["label"].isin(below["label"]), "top1_source"])))
    seeds = f", means of {example['n']} seeds" if example["n"] > 1 else ""
    return [
        f"{len(below)} net(s) end with a lower {name} than training error (e.g. {example['label']}: "
        f"{example['mean_top1']:.1f}% vs {example['mean']:.1f}%{seeds}). Training error is measured "
        "on augmented mini-batches, averaged over each logging window while the weights still change; the "
        "evaluation uses un-augmented images at one point. On easy data the first can be the higher one. The verdict "
        "compares training errors only."
    ]


def _response_stats(responses: pd.DataFrame) -> pd.DataFrame:
    """Each net's layer response: per run the mean over layers of the std at its last evaluation, then mean, std
    and count over seeds (``per_net``)."""
    per_run = last_responses(responses).groupby(["run", *NET_KEYS], dropna=False, as_index=False)["std"].mean()
    return per_net(per_run, "std")


def _response_change(reference: pd.Series, other: pd.Series, rule: NoiseRule) -> tuple[float, float, str]:
    """``other``'s response over ``reference``'s, the relative margin that counts, and "less", "more" or
    "undecided"."""
    ratio = float(other["mean"] / reference["mean"])
    threshold = rule.response_threshold(reference, other)
    change = "less" if ratio < 1 - threshold else "more" if ratio > 1 + threshold else "undecided"
    return ratio, threshold, change


def _responses(responses: pd.DataFrame, rule: NoiseRule) -> list[str]:
    """Figure 7's claims, judged by ``rule``: ResNets respond less than plain nets, and deeper ResNets less than
    shallower ones."""
    if responses.empty:
        return []
    stats = _response_stats(responses)
    plain, resnet = stats[stats["arch"] == "plain"], stats[stats["arch"] == "resnet"]
    depths = sorted(set(plain["depth"]) & set(resnet["depth"]))
    sentences = []
    if depths:
        changes = {
            d: _response_change(plain[plain["depth"] == d].iloc[0], resnet[resnet["depth"] == d].iloc[0], rule)
            for d in depths
        }
        thresholds = {t for _, t, _ in changes.values()}
        each = len(thresholds) > 1
        listed = ", ".join(
            f"{r:.2f} at {d} layers" + (f" (±{t:.0%})" if each else "") for d, (r, t, _) in changes.items()
        )
        real = "real beyond the ± after each" if each else f"real beyond ±{thresholds.pop():.0%}"
        by_change = {c: [str(d) for d, (_, _, ch) in changes.items() if ch == c] for c in ("less", "more", "undecided")}
        everywhere = len(depths) > 1 and any(len(ds) == len(depths) for ds in by_change.values())
        where = {c: "every depth" if everywhere else f"{', '.join(ds)} layers" for c, ds in by_change.items() if ds}
        judged = "; ".join(f"{RESPONSE_WORDS[c][0]} at {w}{RESPONSE_WORDS[c][1]}" for c, w in where.items())
        sentences.append(
            f"Layer responses (Figure 7; mean std over layers at the last evaluation): ResNet / plain ratio {listed} "
            f"({real}): {judged}."
        )
    if len(resnet) >= 2:
        first, last = resnet.iloc[0], resnet.iloc[-1]
        ratio, threshold, change = _response_change(first, last, rule)
        side = "below" if ratio < 1 else "above"
        detail = (
            f"{last['label']}'s response ({_response(last)}) is {abs(1 - ratio):.0%} {side} {first['label']}'s "
            f"({_response(first)}), {'within' if change == 'undecided' else 'more than'} the {threshold:.0%} that "
            "counts as real"
        )
        opening = {
            "less": "Deeper ResNets respond less, as the paper reports",
            "more": "Deeper ResNets respond more, unlike the paper",
            "undecided": "Whether deeper ResNets respond less is undecided",
        }[change]
        sentences.append(f"{opening}: {detail}.")
    return sentences


def _response(row: pd.Series) -> str:
    seeds = f" (mean of {row['n']} seeds)" if row["n"] > 1 else ""
    return f"{row['mean']:.2f}{seeds}"


def _preact(group: pd.DataFrame, rule: NoiseRule) -> list[str]:
    """He et al. 2016b (Table 4): at each depth and shortcut where both finished, does the pre-activation ResNet end
    with a lower test error than the original one? Judged by the same noise rule, on test error (2016b's measure);
    the paper's numbers are cited for its own shortcut (A at 110, B at 164 and 1001)."""
    stats = per_net(group, "top1")
    key = ["depth", "shortcut"]
    original = stats[stats["arch"] == "resnet"].drop_duplicates(key).set_index(key)
    pre = stats[stats["arch"] == "preact"].drop_duplicates(key).set_index(key)
    sentences = []
    for depth, shortcut in sorted(original.index.intersection(pre.index)):
        a, b = original.loc[(depth, shortcut)], pre.loc[(depth, shortcut)]
        margin, threshold = float(b["mean"] - a["mean"]), rule.threshold(a, b)
        side = "below" if margin < 0 else "above"
        judged = f"{'more than' if abs(margin) > threshold else 'within'} the {threshold:.1f} points that count as real"
        paper = [preact_error(str(a["dataset"]), arch, int(depth)) for arch in ("preact", "resnet")]
        own = shortcut == paper_shortcut(str(a["family"]), int(depth))
        cited = f" (2016b: {paper[0].top1:.2f}% vs {paper[1].top1:.2f}%)" if own and all(paper) else ""
        sentences.append(
            f"Pre-activation (He et al. 2016b): {b['label']} ends at {b['mean']:.2f}% test error, "
            f"{abs(margin):.2f} points {side} {a['label']}'s {a['mean']:.2f}%: {judged}{cited}."
        )
    return sentences


def _of_group(frame: pd.DataFrame, group: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (curves, responses or signals) that belong to the runs of ``group``."""
    return frame[frame["run"].isin(set(group["run"])) & frame["dataset"].isin(set(group["dataset"]))]


def verdict(frames: RunFrames, rule: NoiseRule = RULE) -> Verdict:
    """Judge each dataset's and recipe's finished runs; see ``NoiseRule`` for what counts as a real difference."""
    runs = frames.runs
    data = paper_shortcuts(with_final_errors(finished(runs)))
    curves = frames.curves[frames.curves["status"] == STATUS_FINISHED]
    responses = frames.responses[frames.responses["status"] == STATUS_FINISHED]
    signals = frames.signals[frames.signals["status"] == STATUS_FINISHED]
    present = set(data["dataset"].dropna())
    groups = []
    for dataset in [d for d in DATASET_ORDER if d in present] + sorted(present - set(DATASET_ORDER)):
        for name, of_dataset in data[data["dataset"] == dataset].groupby(DATA_NAME, sort=True):
            groups += _groups(str(name), of_dataset, curves, responses, signals, rule)
    return Verdict(_status_lines(runs), groups, rule)


def _groups(
    name: str, of_dataset: pd.DataFrame, curves: pd.DataFrame, responses: pd.DataFrame, signals: pd.DataFrame,
    rule: NoiseRule,
) -> list[GroupVerdict]:  # fmt: skip
    """One verdict per recipe group of one dataset (``name``: as the user knows it, ``analysis.load.data_name``).

    The paper's claim is judged on the paper's nets; each intervention (issue 22) on its own, by the same rule.
    """
    from analysis.intervention_verdict import intervention_sentences  # it builds on this module's noise rule

    groups = []
    for recipe in sorted(of_dataset[RECIPE_COLUMN].fillna("").unique()):
        everything = of_dataset[of_dataset[RECIPE_COLUMN].fillna("") == recipe]
        group = everything[reference_mask(everything)]
        stats = per_net(group, "train")
        plain_ok, plain_margin, plain_lines = _plain(stats, _of_group(curves, group), rule)
        resnet_ok, resnet_margin, resnet_lines = _resnet(stats, plain_ok, rule)
        sentences = _seed_note(stats, rule) + plain_lines + resnet_lines + _pairs(stats)
        sentences += _responses(_of_group(responses, group), rule) + gradient_sentences(_of_group(signals, group))
        sentences += _test_below_train(group) + _preact(group, rule)
        sentences += intervention_sentences(everything, _of_group(curves, everything), rule)
        groups.append(GroupVerdict(name, recipe, plain_ok, resnet_ok, sentences, plain_margin, resnet_margin))
    return groups
