"""Why plain nets degrade: loss landscape, Hessian curvature and shattered gradients of finished runs.

    python -m analysis.landscape runs/demo/plain-44-s0-aac0b655    # one run  -> <run>/landscape/
    python -m analysis.landscape runs/demo                         # a store  -> every run, and runs/demo/landscape/

Modules, one job each: ``harness`` (the only one that imports ``experiments``: runs, initial weights, training
images), ``objective`` (the loss as a function of the weights, torch.func), ``directions`` (filter-normalised
directions, interpolation), ``scan`` (resumable point-by-point evaluation), ``curvature`` (Lanczos, Hutchinson),
``shattered`` (input-gradient autocorrelation), ``figures``, ``runner`` (one run), ``compare`` (a store's pairs and
table), ``section`` (the report's Markdown; imports no torch) and ``cli``. Importing this package loads nothing
heavy: the names below are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Options": "analysis.landscape.runner",
    "PAPER": "analysis.landscape.runner",
    "STAGES": "analysis.landscape.runner",
    "analyse_run": "analysis.landscape.runner",
    "write_comparison": "analysis.landscape.compare",
    "landscape_section": "analysis.landscape.section",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'analysis.landscape' has no attribute {name!r}")
