"""What a config implies on a given machine: precision, memory layout, and whether a pair trains fused."""

from __future__ import annotations

import os

from experiments.config.checks import ConfigError
from experiments.config.schema import PAIR_MEMBERS, RunConfig

GPU_ACCELERATORS = ("auto", "gpu", "cuda")
"""``accelerator`` values under which a run takes a CUDA GPU when the machine has one."""


def wants_gpu(cfg: RunConfig) -> bool:
    """Whether the config lets the run use a GPU (its ``accelerator`` is auto, gpu or cuda)."""
    return cfg.accelerator in GPU_ACCELERATORS


def run_threads() -> int:
    """The CPU threads this run may use: ``OMP_NUM_THREADS`` where the sweep runner or SLURM set it (one run per core
    by default), else the cores this process may run on."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def data_workers(cfg: RunConfig) -> int:
    """DataLoader workers of an image-folder run: as set, else one per CPU thread of the run, and none on one thread
    (the training process decodes: a worker would only share its core)."""
    if cfg.num_workers is not None:
        return cfg.num_workers
    threads = run_threads()
    return 0 if threads == 1 else threads


def trains_on_gpu(cfg: RunConfig) -> bool:
    """Whether the run trains on a CUDA GPU on this machine (imports torch, unlike the rest of the config)."""
    import torch

    return wants_gpu(cfg) and torch.cuda.is_available()


def training_precision(cfg: RunConfig, on_gpu: bool) -> str:
    """The Lightning precision a run trains in: as set, and for ``auto`` bf16-mixed on GPU, 32-true on CPU.

    The paper presets set 32-true: the paper trained in fp32, and on an H100 the fp32 reference pipeline also
    outran the bf16 + channels_last default at CIFAR ResNet-20 and -110 (benchmarks/results/h100.json).
    ``auto`` is the demo preset's.
    """
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16-mixed" if on_gpu else "32-true"


def uses_channels_last(cfg: RunConfig, on_gpu: bool) -> bool:
    """Whether a run's tensors use the channels_last memory format: as set, and for ``auto`` only on GPU in 16 bits.

    channels_last serves 16-bit tensor-core convolutions; fp32 runs (the paper presets) keep the default layout,
    since small CIFAR nets are bound by kernel launches, not layout (README, Speed). ``on`` still forces it.
    """
    if cfg.channels_last != "auto":
        return cfg.channels_last == "on"
    return on_gpu and training_precision(cfg, on_gpu) != "32-true"


def fusion_blocker(cfg: RunConfig) -> str | None:
    """Why this run's networks cannot be trained as one fused network (one clause), or None when they can.

    Fused members share every optimizer step, so they must follow the same learning rate at every step:
    the lr may not depend on a member's own errors (plateau, warm-up), and the plain member must have no
    counterpart for projection-shortcut weights.
    """
    if cfg.arch != "pair":
        return "fusion computes a pair's two networks as one, so it needs arch 'pair'"
    if cfg.lr_schedule == "plateau":
        return "each member divides its lr on its own validation plateaus, which one fused lr cannot follow"
    members = cfg.members()
    if any(m.warmup_enabled for m in members):
        return "the ResNet's warm-up ends on its own training error, so the members' lr would differ"
    if cfg.grad_clip is not None:
        return "grad_clip clips each member's gradient by its own norm, which the fused parameters do not separate"
    resnet = members[PAIR_MEMBERS.index("resnet")]
    if resnet.shortcut != "A":
        return f"option {resnet.shortcut} has projection weights the plain member lacks (option A fuses)"
    changed = cfg.network_spec("plain", resolved=False).interventions()
    if changed:
        return f"fusion computes the paper's nets only, and this pair sets {', '.join(sorted(changed))}"
    return None


def fuses(cfg: RunConfig) -> bool:
    """Whether the run trains its members as one fused network; ``fuse`` on where it cannot is a ConfigError.

    Checked when a run starts rather than on construction, because a pair's member configs inherit ``fuse``.
    """
    if cfg.fuse == "off":
        return False
    blocker = fusion_blocker(cfg)
    if blocker and cfg.fuse == "on":
        raise ConfigError(f"fuse 'on' is not possible for this run: {blocker}; use --fuse auto or off")
    return blocker is None
