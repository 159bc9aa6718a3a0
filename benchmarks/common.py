"""What every benchmark shares: the device it ran on, waiting for it before a clock read, saving the JSON report."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch


def device_name(device: torch.device) -> str:
    """The GPU's model name, or the CPU's processor name."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock read after it times the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


RESULTS = Path("benchmarks/results")
"""The tracked results the README quotes: written only when ``--out`` names a file there."""
LATEST = Path("runs/benchmarks")
"""Where a benchmark writes by default (ignored by git), so a run changes the tracked results only on purpose."""
OUT_HELP = f"JSON file (default {LATEST}/<name>.json; pass {RESULTS}/<name>.json to update the tracked figures)"


def save_report(report: dict[str, Any], out: str | Path | None, name: str) -> Path:
    """Write ``report`` as indented JSON to ``out`` (default ``LATEST/<name>.json``; folders created); say where."""
    out = Path(out) if out is not None else LATEST / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out}")
    return out
