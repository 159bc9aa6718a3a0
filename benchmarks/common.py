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


def save_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write ``report`` as indented JSON to ``out`` (folders created) and say where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out}")
    return out
