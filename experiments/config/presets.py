"""The paper's training recipes as named presets: defined once, the defaults of ``RunConfig`` and the CLI's presets.

Each preset sets the fields its recipe fixes; every field can still be overridden. Numbers cite the paper (He et
al., CVPR 2016): CIFAR-10 in Sec. 4.2, ImageNet in Sec. 3.4; CIFAR-100 follows He et al. 2016b ("Identity Mappings in
Deep Residual Networks"), which trained it with the CIFAR-10 recipe. ``folder`` and ``demo34`` are this project's
recipes (a small stand-in for ImageNet, and a CPU demo), not the paper's.
"""

from __future__ import annotations

from typing import Any

CIFAR10_PAPER: dict[str, Any] = dict(
    dataset="cifar10",
    max_steps=64_000,  # Sec. 4.2: lr / 10 at 32k and 48k, stop at 64k (~164 epochs of 50k images)
    batch_size=128,
    lr=0.1,
    lr_schedule="multistep",
    lr_milestones=(0.5, 0.75),  # fractions of max_steps: 32k and 48k of 64k, scaled with a longer run
    val_size=0,  # the reported test errors are of nets trained on all 50k; --val_size 5000 is the 45k/5k split
    eval_every=2_000,
    log_every=100,
    checkpoint_every=2_000,
    precision="32-true",  # the paper trained in fp32; bf16 is --precision bf16-mixed
)
"""The paper's CIFAR-10 recipe: the ``cifar10-paper`` preset, and the dataclass default of each field it sets."""

PRESETS: dict[str, dict[str, Any]] = {
    "cifar10-paper": CIFAR10_PAPER,
    "imagenet-paper": dict(
        dataset="imagenet",
        max_steps=600_000,
        batch_size=256,
        lr=0.1,
        lr_schedule="plateau",
        plateau_patience=3,
        eval_every=5_000,
        log_every=100,
        checkpoint_every=5_000,
        val_size=0,
        precision="32-true",  # the paper trained in fp32
    ),
    "demo": dict(
        dataset="synthetic",
        width=8,
        image_size=16,
        train_size=10_000,
        test_size=2_000,
        # 600 steps: on seeds 0-2 plain-44 ends 43-48 points above plain-8 and ResNet-44 within 0.7 of ResNet-8
        # (1000 steps gave +33 and +0.2 on seed 0 for 1.7x the time; benchmarks/results/demo_walls.json)
        max_steps=600,
        batch_size=128,
        lr=0.1,
        lr_schedule="multistep",
        lr_milestones=(0.5, 0.75),
        val_size=0,
        eval_every=150,
        log_every=25,
        checkpoint_every=150,
        response_images=256,
        precision="auto",  # bf16 on GPU: the demo shows degradation, it reproduces no number
    ),
}
PRESETS["cifar100-paper"] = {
    **CIFAR10_PAPER,
    "dataset": "cifar100",  # 2016b (Sec. 4, appendix): CIFAR-100 trained with the CIFAR-10 recipe above
}
PRESETS["folder"] = dict(
    dataset="folder",  # image_size, net_family and augment follow the images and the depth (RunConfig)
    max_steps=12_000,  # ~31 epochs of Tiny-ImageNet's 100k images: enough for Figure 4's training-error contrast
    batch_size=256,  # Sec. 3.4
    lr=0.1,  # Sec. 3.4
    lr_schedule="multistep",  # a fixed length (the paper's plateau schedule has no known cost)
    lr_milestones=(0.5, 0.75),
    val_size=0,  # validation is the folder's val/
    eval_every=1_000,
    log_every=50,
    checkpoint_every=1_000,
    precision="auto",  # bf16 on GPU (the benchmarked precision), fp32 on CPU; a stand-in reproduces no number
)
PRESETS["demo34"] = {
    **PRESETS["demo"],  # the demo's recipe: Figure 4's 18 vs 34 in about the demo's time on a laptop CPU
    "dataset": "synthetic-imagenet",  # generated data for the ImageNet-family nets (the 3x3 stem at this size)
    "max_steps": 1_000,
    "eval_every": 250,
    "checkpoint_every": 250,
}
DEFAULT_IMAGENET_DEPTH = 34  # the paper's headline comparison; the dataclass default (20) is a CIFAR depth
DEFAULT_PRESET = {
    "cifar10": "cifar10-paper",
    "cifar100": "cifar100-paper",
    "imagenet": "imagenet-paper",
    "folder": "folder",
    "synthetic": "demo",
    "synthetic-imagenet": "demo34",
}
