"""Which devices a local sweep uses: the GPUs asked for (checked to exist), or by default every visible GPU.

The default on a GPU machine is the fastest measured arrangement (``MEASURED_RUNS_PER_GPU``, pairs split); on a CPU
machine a sweep runs ``--jobs`` runs at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.sweep.spec import SweepError

MEASURED_RUNS_PER_GPU = 4
"""Runs per GPU that gave the fig6 sweep its shortest projected wall time on an H100, each network its own run:
``benchmarks/results/h100.json``, ``fig6_projection.default.best_runs_per_gpu`` (docs/speed.md shows the projection;
``tests/test_benchmarks.py`` checks that the two agree)."""


def visible_gpus() -> list[str]:
    """The ids of the CUDA GPUs this process sees (``CUDA_VISIBLE_DEVICES`` applied), as strings."""
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


@dataclass(frozen=True)
class Devices:
    """Where a local sweep runs: GPU ids (None: CPU), runs sharing each GPU, and whether pairs run split."""

    gpus: list[str] | None
    runs_per_gpu: int
    split_pairs: bool

    def describe(self) -> str:
        if not self.gpus:
            return "CPU"
        split = ", each pair's networks as separate runs" if self.split_pairs else ""
        return f"GPU {','.join(self.gpus)}, {self.runs_per_gpu} run(s) per GPU{split}"


def choose_devices(
    gpus: list[str] | None, runs_per_gpu: int | None, split_pairs: bool | None, visible: list[str]
) -> Devices:
    """The user's choice where given (GPU ids checked against ``visible``), else the measured GPU default.

    Raises SweepError (one line) for a GPU id that does not exist, or GPUs asked for on a machine without one.
    """
    if gpus:
        if not visible:
            raise SweepError(f"--gpus {','.join(gpus)} asks for GPUs, but this machine has no CUDA GPU visible")
        unknown = [g for g in gpus if g not in visible]
        if unknown:
            raise SweepError(f"--gpus names GPU {unknown[0]}, which does not exist here (visible: {','.join(visible)})")
    chosen = gpus or visible or None
    if chosen is None:
        return Devices(None, runs_per_gpu or 1, bool(split_pairs))
    automatic = not gpus and runs_per_gpu is None
    per_gpu = runs_per_gpu or (MEASURED_RUNS_PER_GPU if automatic else 1)
    split = split_pairs if split_pairs is not None else automatic
    return Devices(chosen, per_gpu, split)
