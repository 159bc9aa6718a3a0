"""Final numbers per net: which error column a dataset reports, and mean +- std over seeds of finished runs."""

from __future__ import annotations

import pandas as pd

from analysis.load import ARCH_ORDER
from experiments.store import STATUS_FINISHED, error_name
from models.options import paper_shortcut

TOP1_COLUMNS = ("test_error", "val_error", "test10crop_error")
"""The error columns a net's final top-1 number can come from (its top-5 from the matching top-5 column)."""
NET_KEYS = ["dataset", "family", "arch", "depth", "shortcut", "label"]


def with_final_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` plus ``train``, ``top1``, ``top5`` and ``top1_source``: the errors the paper reports for its dataset.

    CIFAR-family: top-1 is the test error (the validation error where no test error was logged). ImageNet: the
    10-crop test error where the final 10-crop test ran (Tables 2-3 are 10-crop), else the centre-crop validation;
    ImageNet-family nets on generated data (no val/ folder) report their test error, as the CIFAR family does.
    ``top1_source`` is the number's one name (``experiments.store.error_name``): "10-crop test error", ...
    """
    out = runs.copy()
    imagenet = (out["family"] == "imagenet") & out["final_val_error"].notna()
    tencrop = imagenet & out["final_test10crop_error"].notna()
    column = pd.Series("test_error", index=out.index).where(out["final_test_error"].notna(), "val_error")
    column = column.where(~imagenet, "val_error").where(~tencrop, "test10crop_error")
    out["train"] = out["final_train_error"]
    for target, final in (("top1", "final_{}"), ("top5", "final_{}")):
        values = pd.Series(float("nan"), index=out.index)
        for name in TOP1_COLUMNS:
            source = final.format(name if target == "top1" else name.replace("_error", "_top5_error"))
            values = values.where(column != name, pd.to_numeric(out[source], errors="coerce"))
        out[target] = values
    out["top1_source"] = [error_name(c, f) for c, f in zip(column, out["family"], strict=True)]
    return out


def paper_shortcuts(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop ResNets with a non-default shortcut at depths where the paper's default one was trained too.

    Figures 4 and 6, the depth plot and the verdict compare depths, so at each depth they show the paper's option
    (A on CIFAR and ImageNet 18/34, B for 50+); a depth trained only with another option still shows.
    """
    resnet = frame["arch"] == "resnet"
    triples = zip(frame["shortcut"], frame["depth"], frame["family"], strict=True)
    default = pd.Series([s == paper_shortcut(f, int(d)) for s, d, f in triples], index=frame.index, dtype=bool)
    has_default = (resnet & default).groupby(frame["depth"]).transform("any")
    return frame[~resnet | default | ~has_default]


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Only the finished runs: the ones whose final numbers are final."""
    return runs[runs["status"] == STATUS_FINISHED]


def per_net(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, sample std (NaN for one seed) and count of ``column`` over the seeds of each net, in the paper's order."""
    data = runs.dropna(subset=[column])
    if data.empty:
        return pd.DataFrame(columns=[*NET_KEYS, "mean", "std", "n", "values"])
    grouped = data.groupby(NET_KEYS, dropna=False, sort=False)[column]
    stats = grouped.agg(mean="mean", std="std", n="size").reset_index()
    stats["values"] = grouped.agg(list).to_numpy()
    order = stats["arch"].map(ARCH_ORDER)
    stats = stats.assign(_order=order).sort_values(["dataset", "_order", "depth", "shortcut"], na_position="first")
    return stats.drop(columns="_order").reset_index(drop=True)


def mean_std_text(mean: float, std: float, n: int, digits: int = 2) -> str:
    """Our number as text: "7.51" for one seed, "7.51 ± 0.16" for several, "" when there is none."""
    if pd.isna(mean):
        return ""
    if n > 1 and pd.notna(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"
