"""The verdict in words: does training error grow with depth for plain nets, and not for ResNets?

Judged on finished runs only, per dataset, from the final training error averaged over seeds (the paper's claim is
about optimisation, so training error, not test error). Plain nets: the deepest must end above the shallowest by
more than ``MARGIN`` points and by more than the seed spread (the sum of the two nets' seed stds). ResNets do not
degrade when their deepest net does not end above their shallowest by such a clear margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.summary import finished, paper_shortcuts, per_net, with_final_errors
from experiments.store import STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING

MARGIN = 1.0
"""Points of training error by which the deepest plain net must exceed the shallowest to call it degradation."""
DATASET_ORDER = ("cifar10", "imagenet", "synthetic")
MAX_LISTED_FAILURES = 5


@dataclass
class DatasetVerdict:
    """The sentences for one dataset, and whether plain degradation and the ResNet fix were seen (None: unjudged)."""

    dataset: str
    degradation: bool | None
    resnet_not_worse: bool | None
    sentences: list[str] = field(default_factory=list)
    plain_margin: float = float("nan")
    resnet_margin: float = float("nan")

    @property
    def summary(self) -> str:
        if self.degradation is None:
            return f"{self.dataset}: not enough finished plain depths to judge degradation."
        if not self.degradation:
            return f"{self.dataset}: degradation not reproduced."
        head = f"{self.dataset}: degradation reproduced (deepest plain net {self.plain_margin:+.1f} points)"
        if self.resnet_not_worse is None:
            return f"{head}; no ResNet depths to compare."
        if self.resnet_not_worse:
            return f"{head}, and the ResNets do not degrade ({self.resnet_margin:+.1f} points)."
        return f"{head}; the deepest ResNet also ends higher, by {self.resnet_margin:+.1f} points."


@dataclass
class Verdict:
    """Run status counts and one ``DatasetVerdict`` per dataset with finished runs."""

    status: list[str]
    datasets: list[DatasetVerdict]

    @property
    def reproduced(self) -> bool | None:
        """True if every judged dataset shows plain degradation, False if one does not, None if none was judged."""
        judged = [d.degradation for d in self.datasets if d.degradation is not None]
        return all(judged) if judged else None

    @property
    def headline(self) -> str:
        return {True: "degradation reproduced", False: "degradation not reproduced"}.get(
            self.reproduced, "degradation not judged: too few finished runs"
        )

    def text(self) -> str:
        """The verdict as Markdown: headline, run status, then each dataset's sentences."""
        lines = [f"**Verdict: {self.headline}.**", "", *self.status]
        for d in self.datasets:
            lines += ["", f"**{d.summary}**", "", *(f"- {s}" for s in d.sentences)]
        return "\n".join(lines) + "\n"


def _pct(row: pd.Series) -> str:
    seeds = f" (mean of {row['n']} seeds)" if row["n"] > 1 else ""
    return f"{row['mean']:.1f}%{seeds}"


def _spread(a: pd.Series, b: pd.Series) -> float:
    return float(pd.Series([a["std"], b["std"]]).fillna(0.0).sum())


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


def _ends(stats: pd.DataFrame, arch: str) -> tuple[pd.Series, pd.Series, float, bool] | None:
    """Shallowest and deepest net of ``arch``, the margin between their training errors, and whether it is clear."""
    nets = stats[stats["arch"] == arch]
    if len(nets) < 2:
        return None
    shallow, deep = nets.iloc[0], nets.iloc[-1]
    margin = float(deep["mean"] - shallow["mean"])
    return shallow, deep, margin, margin > MARGIN and margin > _spread(deep, shallow)


def _margin(stats: pd.DataFrame, arch: str) -> float:
    ends = _ends(stats, arch)
    return ends[2] if ends else float("nan")


def _comparison(shallow: pd.Series, deep: pd.Series, margin: float, clear: bool) -> str:
    head = f"{deep['label']} ends at {_pct(deep)} training error"
    if clear:
        return f"{head}, above {shallow['label']}'s {shallow['mean']:.1f}%"
    if margin <= 0:
        return f"{head}, at or below {shallow['label']}'s {shallow['mean']:.1f}%"
    spread = _spread(deep, shallow)
    return (
        f"{head}, only {margin:.1f} points above {shallow['label']}'s {shallow['mean']:.1f}% (a clear margin is more "
        f"than {MARGIN:.0f} point and more than the seed spread, {spread:.1f})"
    )


def _plain(stats: pd.DataFrame) -> tuple[bool | None, list[str]]:
    ends = _ends(stats, "plain")
    if ends is None:
        return None, ["Fewer than two plain depths finished: degradation cannot be judged."]
    outcome = "degradation reproduced" if ends[3] else "degradation not reproduced"
    return ends[3], [f"{_comparison(*ends)}: {outcome}."]


def _resnet(stats: pd.DataFrame) -> tuple[bool | None, list[str]]:
    ends = _ends(stats, "resnet")
    if ends is None:
        return None, []
    if ends[3]:
        return False, [f"{_comparison(*ends)}: here the deeper ResNet trains worse (in the paper it does not)."]
    return True, [f"{_comparison(*ends)}: the ResNets do not degrade."]


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


def verdict(runs: pd.DataFrame) -> Verdict:
    """Judge each dataset's finished runs; see the module docstring for the thresholds."""
    data = paper_shortcuts(with_final_errors(finished(runs)))
    present = set(data["dataset"].dropna())
    datasets = []
    for dataset in [d for d in DATASET_ORDER if d in present] + sorted(present - set(DATASET_ORDER)):
        stats = per_net(data[data["dataset"] == dataset], "train")
        degradation, plain_lines = _plain(stats)
        resnet_ok, resnet_lines = _resnet(stats)
        sentences = plain_lines + resnet_lines + _pairs(stats)
        margins = _margin(stats, "plain"), _margin(stats, "resnet")
        datasets.append(DatasetVerdict(dataset, degradation, resnet_ok, sentences, *margins))
    return Verdict(_status_lines(runs), datasets)
