"""Where the landscape tools write: ``<run>/landscape/`` for one run, ``<store>/landscape/`` for the comparison."""

from __future__ import annotations

from pathlib import Path

FOLDER = "landscape"

# one run: <run>/landscape/
LINE_CSV = "line.csv"  # alpha, loss, error: initial (alpha 0) to final (alpha 1) weights
SURFACE_CSV = "surface.csv"  # i, j, alpha, beta, loss, error: the 2-D slice around the final weights
CURVATURE_JSON = "curvature.json"  # Ritz values, top eigenvalues, trace (Hutchinson samples)
AUTOCORRELATION_CSV = "autocorrelation.csv"  # lag, distance, autocorrelation, std
GRADIENTS_CSV = "gradients.csv"  # line, t, directional, pixel: the input gradient along each line
SHATTERED_JSON = "shattered.json"  # autocorrelation length and its settings
SUMMARY_JSON = "landscape.json"  # every number above in one place, with settings and timings
RUN_FIGURES = ("line", "surface", "curvature", "gradients")

# a store: <store>/landscape/
TABLE = "table"  # table.csv (one row per run) and table.md
STORE_FIGURES = ("surfaces", "surfaces_3d", "lines", "gradients", "autocorrelation", "depth")


def run_folder(run_path: str | Path) -> Path:
    return Path(run_path) / FOLDER


def store_folder(store_path: str | Path) -> Path:
    return Path(store_path) / FOLDER
