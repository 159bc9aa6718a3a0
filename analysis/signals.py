"""Why plain nets degrade, part 1: figures and a verdict sentence from the signal statistics (``signals.csv``).

The paper argues (He et al., CVPR 2016, Sec. 4.1) that deep plain nets do not degrade because of vanishing
gradients: with BN the forward signals keep non-zero variance and "the backward propagated gradients exhibit
healthy norms". Each run records, at step 0 and at every evaluation, on a fixed probe batch, the norm of the loss
gradient with respect to each block's output, and the forward statistics of the signal-propagation plots of Brock,
De and Smith (ICLR 2021): the average squared channel mean and average channel variance of each block's output,
and of each residual branch (``models.signals``). The figures draw them against the block index; the sentence
judges the paper's argument on the deepest plain net at the end of training.

Each figure function is pure (the ``signals`` frame of ``analysis.load_runs`` in, a ``Figure`` out) and raises
``NothingToDraw`` when the frame holds none of what it draws.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from analysis.figures import Look, _markers, _nets, _palette
from analysis.load import ARCH_ORDER
from analysis.style import RESPONSE_STYLE, NothingToDraw, depth_colors, new_figure
from analysis.summary import paper_shortcuts

GRAD = "act_grad_norm"
MEAN_SQ = "act_mean_sq"
VAR = "act_var"
BRANCH_VAR = "branch_var"
DATASET_ORDER = ("cifar10", "imagenet", "synthetic")
VANISHING_RATIO = 0.01
"""Gradients (or forward variances) count as vanishing when a block's is below this fraction of the largest."""
MAX_STEP_LINES = 8
"""The small multiples draw at most this many probe steps per panel (evenly spaced, first and last included)."""
BLOCK_LABEL = "block index (0: stem output)"
MAX_MARKED_POINTS = 60
"""Curves of more blocks than this are drawn without a marker at each block (they would hide the line)."""


def pick_signal_dataset(signals: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """The rows of one dataset (``dataset``, else the first of CIFAR-10, ImageNet, generated data present), with the
    paper's shortcut at each depth (``summary.paper_shortcuts``)."""
    if signals.empty:
        raise NothingToDraw("no signal statistics to draw")
    present = set(signals["dataset"].dropna())
    if dataset is None:
        dataset = next((d for d in DATASET_ORDER if d in present), min(present) if present else None)
    data = signals[signals["dataset"] == dataset]
    if data.empty:
        raise NothingToDraw(f"no signal statistics of {dataset} to draw")
    return paper_shortcuts(data)


def _per_layer(data: pd.DataFrame, label: str, stat: str, step: int | str) -> pd.Series:
    """One net's ``stat`` per layer (seeds averaged) at ``step``: an int, or "last" (each run's last probe)."""
    rows = data[(data["label"] == label) & (data["stat"] == stat)]
    if step == "last":
        rows = rows[rows["step"] == rows.groupby("run")["step"].transform("max")]
    else:
        rows = rows[rows["step"] == step]
    return rows.groupby("layer")["value"].mean()


def _net_style(look: Look, net) -> dict:
    style = {"color": look.colors[(net.arch, int(net.depth))], "label": net.label}
    style.update(RESPONSE_STYLE.get(net.arch, RESPONSE_STYLE["resnet"]))
    if look.markers.get(net.recipe or ""):
        style["marker"] = look.markers[net.recipe or ""]
    return style


def _moments(data: pd.DataFrame) -> list[tuple[str, int | str]]:
    """The columns of the init-vs-end figures: step 0 where some run was probed there, and each run's last probe."""
    columns: list[tuple[str, int | str]] = []
    if (data["step"] == 0).any():
        columns.append(("at initialisation (step 0)", 0))
    last = int(data.groupby("run")["step"].max().max())
    columns.append((f"at the end (last probe; step {last:,} at most)", "last"))
    return columns


def _finish(ax: Axes, ylabel: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel(BLOCK_LABEL)
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _draw_profiles(ax: Axes, data: pd.DataFrame, look: Look, stat: str, step: int | str) -> int:
    """Each net's per-block ``stat`` at ``step`` in one axes; returns how many nets were drawn."""
    drawn = 0
    for net in _nets(data).itertuples():
        values = _per_layer(data, net.label, stat, step)
        values = values[values > 0]
        if values.empty:
            continue
        style = _net_style(look, net)
        if len(values) > MAX_MARKED_POINTS and not look.markers.get(net.recipe or ""):
            style["marker"] = None
        ax.plot(values.index, values.to_numpy(), **style)
        drawn += 1
    return drawn


def _profile_figure(data: pd.DataFrame, rows: list[tuple[str, str]], title: str) -> Figure:
    """Rows of (stat, y label) against the block index, columns at initialisation and at the end, one legend."""
    columns = _moments(data)
    look = Look(_palette(data), _markers(data))
    fig, axes = new_figure(len(rows), len(columns), sharey="row")
    for r, (stat, ylabel) in enumerate(rows):
        for c, (moment, step) in enumerate(columns):
            ax = axes[r, c]
            if not _draw_profiles(ax, data, look, stat, step):
                ax.text(0.5, 0.5, "nothing recorded", transform=ax.transAxes, ha="center", va="center")
            _finish(ax, ylabel)
            ax.set_title(moment if r == 0 else "", fontsize="medium")
    handles, labels = axes[0, -1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)
    fig.suptitle(title, fontsize="medium")
    return fig


def gradient_norms(signals: pd.DataFrame, dataset: str | None = None) -> Figure:
    """The norm of the loss gradient with respect to each block's output against the block index, plain nets
    (dashed) and ResNets (solid), at initialisation and at the end of training (log scale).

    Tests Sec. 4.1's claim that the plain nets' backward signals "exhibit healthy norms": a vanishing gradient
    shows as a curve falling by orders of magnitude towards block 0.
    """
    data = pick_signal_dataset(signals, dataset)
    data = data[data["stat"] == GRAD]
    if data.empty:
        raise NothingToDraw("no block-gradient norms to draw")
    return _profile_figure(
        data, [(GRAD, "‖∂loss/∂block output‖")], "Gradient norm at each block's output (fixed probe batch)"
    )


def signal_propagation(signals: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Signal-propagation plot (Brock et al. 2021): per block, the average squared channel mean and the average
    channel variance of the block output, and the average channel variance of each residual branch, at
    initialisation and at the end (log scale).

    Tests Sec. 4.1's claim that BN keeps the forward signals' variances non-zero in deep plain nets; the branch
    row shows how much each residual branch adds to the stream.
    """
    data = pick_signal_dataset(signals, dataset)
    rows = [
        (MEAN_SQ, "avg. squared channel mean"),
        (VAR, "avg. channel variance"),
        (BRANCH_VAR, "residual branch: avg. channel var."),
    ]
    rows = [(stat, label) for stat, label in rows if (data["stat"] == stat).any()]
    if not rows:
        raise NothingToDraw("no forward signal statistics to draw")
    data = data[data["stat"].isin([stat for stat, _ in rows])]
    return _profile_figure(data, rows, "Signal propagation: block outputs (fixed probe batch)")


def _spaced(steps: list[int], count: int) -> list[int]:
    """At most ``count`` of ``steps``, evenly spaced, the first and last kept."""
    if len(steps) <= count:
        return steps
    picks = {round(i * (len(steps) - 1) / (count - 1)) for i in range(count)}
    return [steps[i] for i in sorted(picks)]


def gradient_norms_over_training(signals: pd.DataFrame, dataset: str | None = None) -> Figure:
    """Small multiples: one panel per net (rows plain | ResNet, columns by depth), the block-gradient norm against
    the block index at each probe step, light (early) to dark (late); all panels share the log y axis.

    Shows whether a plain net's gradients vanish at some point of training rather than at its ends (Sec. 4.1's
    claim is about the whole of training).
    """
    data = pick_signal_dataset(signals, dataset)
    data = data[data["stat"] == GRAD]
    if data.empty:
        raise NothingToDraw("no block-gradient norms to draw")
    nets = _nets(data)
    archs = [a for a in ARCH_ORDER if (nets["arch"] == a).any()]
    depths = sorted({int(d) for d in nets["depth"]})
    fig, axes = new_figure(len(archs), len(depths), legend_rows=1, sharey=True)
    for r, arch in enumerate(archs):
        for c, depth in enumerate(depths):
            ax = axes[r, c]
            here = nets[(nets["arch"] == arch) & (nets["depth"] == depth)]
            if here.empty:
                ax.set_visible(False)
                continue
            for net in here.itertuples():
                rows = data[data["label"] == net.label]
                steps = _spaced(sorted(int(s) for s in rows["step"].unique()), MAX_STEP_LINES)
                colors = depth_colors(steps, arch)  # by rank: light = early, dark = late
                marker = _markers(data).get(net.recipe or "")
                for step in steps:
                    values = _per_layer(rows, net.label, GRAD, step)
                    values = values[values > 0]
                    ax.plot(values.index, values.to_numpy(), color=colors[step], marker=marker, markersize=3,
                            linewidth=1.2, label=f"step {step:,}")  # fmt: skip
            ax.set_title(", ".join(here["label"]), fontsize="medium")
            _finish(ax, "‖∂loss/∂block output‖" if c == 0 else "")
            ax.legend(fontsize="x-small", frameon=False, loc="best")
    fig.legend(
        handles=[Line2D([], [], color="0.7", label="early"), Line2D([], [], color="0.2", label="late")],
        loc="outside lower center",
        ncol=2,
        frameon=False,
        fontsize="small",
        title="probe step (light to dark)",
        title_fontsize="small",
    )
    return fig


# -- the verdict's sentence ------------------------------------------------------------------------------------------


def _ratio(values: pd.Series) -> tuple[float, int, int]:
    """Smallest over largest, and the blocks where each lies."""
    return float(values.min() / values.max()), int(values.idxmin()), int(values.idxmax())


def gradient_sentences(signals: pd.DataFrame) -> list[str]:
    """Sec. 4.1's argument, judged on the deepest plain net of one dataset and recipe (``signals`` of its finished
    runs): do its block-gradient norms, and its block outputs' variances, stay within ``VANISHING_RATIO`` of their
    largest at the end of training? Norms that fall that far toward the input vanish; toward the output, they grow
    toward the input (explode), which is not what Sec. 4.1 rules out. Seeds are averaged per block; the ResNet of
    the same depth and step 0 are quoted beside it where recorded."""
    if signals.empty:
        return []
    data = paper_shortcuts(signals)
    grads = data[data["stat"] == GRAD]
    plain = grads[grads["arch"] == "plain"]
    if plain.empty:
        return []
    depth = int(plain["depth"].max())
    label = plain.loc[plain["depth"] == depth, "label"].iloc[0]
    end = _per_layer(grads, label, GRAD, "last")
    end = end[end.notna()]
    if end.empty or not end.max() > 0:
        return []
    ratio, low, high = _ratio(end)
    beside = []
    init = _per_layer(grads, label, GRAD, 0)
    if not init.empty and init.max() > 0:
        init_ratio, init_low, init_high = _ratio(init)
        toward = ", largest at the input side" if init_high < init_low else ""
        beside.append(f"at initialisation {init_ratio:.2g}{toward}")
    resnet = grads[(grads["arch"] == "resnet") & (grads["depth"] == depth)]
    if not resnet.empty:
        other = resnet["label"].iloc[0]
        beside.append(f"{other}'s at the end: {_ratio(_per_layer(grads, other, GRAD, 'last'))[0]:.2g}")
    quoted = f" ({'; '.join(beside)})" if beside else ""
    if ratio >= VANISHING_RATIO:
        judged = f"its gradients do not vanish (vanishing: below {VANISHING_RATIO:g}), as the paper argues in Sec. 4.1"
    elif high < low:
        judged = (
            f"its gradients do not vanish but grow toward the input (below {VANISHING_RATIO:g}, largest nearer the "
            "input): not the vanishing Sec. 4.1 rules out, nor the healthy norms it reports"
        )
    else:
        judged = f"its gradients vanish (below {VANISHING_RATIO:g}), unlike the paper's argument in Sec. 4.1"
    sentences = [
        f"Backward signals (norm of the loss gradient at each block's output, probe batch): {label}'s smallest "
        f"block-gradient norm (block {low}) is {ratio:.2g} times its largest (block {high}) at the end of "
        f"training{quoted}: {judged}."
    ]
    variances = _per_layer(data[data["stat"] == VAR], label, VAR, "last")
    if not variances.empty and variances.max() > 0:
        var_ratio, low, _ = _ratio(variances)
        kept = "keep non-zero variance, as BN ensures" if var_ratio >= VANISHING_RATIO else "lose their variance"
        sentences.append(
            f"Forward signals of {label} {kept}: the smallest average channel variance of a block output "
            f"(block {low}, {variances.min():.2g}) is {var_ratio:.2g} times the largest."
        )
    return sentences
