"""What every benchmark shares: the name of the device it ran on and how its JSON report is saved."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch


def device_name(device: torch.device) -> str:
    """The GPU's model name, or the CPU's processor name."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"


def save_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write ``report`` as indented JSON to ``out`` (folders created) and say where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out}")
    return out
