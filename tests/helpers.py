"""Test helpers: tiny datasets written in the real on-disk formats, and a CLI runner."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_cifar10(root: Path, per_batch: int = 20, test: int = 20, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 in its own python pickle layout (data_batch_1..5, test_batch, batches.meta)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name: str, n: int, label: str) -> None:
        labels = [int(x) for x in rng.integers(0, 10, n)]
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with (folder / name).open("wb") as f:
            pickle.dump(
                {"batch_label": label, "labels": labels, "data": data, "filenames": [f"img_{i}.png" for i in range(n)]},
                f,
                protocol=2,
            )

    for i in range(1, 6):
        batch(f"data_batch_{i}", per_batch, f"training batch {i} of 5")
    batch("test_batch", test, "testing batch 1 of 1")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f, protocol=2)
    return root


def write_cifar100(root: Path, train: int = 60, test: int = 20, seed: int = 0) -> Path:
    """Write a tiny CIFAR-100 in its own python pickle layout (train, test, meta: fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)

    def split(name: str, n: int) -> None:
        fine = [int(x) for x in rng.integers(0, 100, n)]
        entry = {"filenames": [f"img_{i}.png" for i in range(n)], "batch_label": f"{name}ing batch 1 of 1",
                 "fine_labels": fine, "coarse_labels": [f // 5 for f in fine],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}  # fmt: skip
        with (folder / name).open("wb") as f:
            pickle.dump(entry, f, protocol=2)

    split("train", train)
    split("test", test)
    meta = {"fine_label_names": [f"fine_{i}" for i in range(100)], "coarse_label_names": [f"c{i}" for i in range(20)]}
    with (folder / "meta").open("wb") as f:
        pickle.dump(meta, f, protocol=2)
    return root


def run_cli(args: list[str], cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command with the test's W&B folders and no progress bar; returns the completed process."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "CI": "1", **(env or {})}
    full_env.setdefault("WANDB_DIR", str(cwd))
    full_env.setdefault("WANDB_CACHE_DIR", str(cwd / ".wandb-cache"))
    full_env.setdefault("WANDB_CONFIG_DIR", str(cwd / ".wandb-config"))
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


TINY_RUN = {"preset": "demo", "arch": "resnet", "depth": 8, "width": 4, "image_size": 8, "train_size": 512,
            "test_size": 128, "batch_size": 32, "response_images": 32, "wandb": "disabled"}  # fmt: skip


def tiny(**overrides) -> dict:
    """A seconds-long run on generated 8x8 images: TINY_RUN with ``overrides``."""
    return {**TINY_RUN, **overrides}


def cli_args(values: dict) -> list[str]:
    """A config dict as train-CLI flags, the way a W&B agent passes them."""
    return [f"--{k}={v}" for k, v in values.items()]


def wait_until_the_claim_holder_is_gone(run_dir: Path, timeout: float = 300) -> None:
    """Wait for the process that holds the run's claim to die. The runner's death does not end its run at the same
    instant: a SIGKILL takes effect only once the run leaves uninterruptible I/O (on a loaded machine, the write of
    its checkpoint can last seconds), and its claim is stale only then, when the kernel drops the claim's lock."""
    from experiments.store.claims import holder

    deadline = time.monotonic() + timeout
    while holder(run_dir) is not None:
        assert time.monotonic() < deadline, f"{holder(run_dir).describe()} still alive {timeout:.0f} s after SIGKILL"
        time.sleep(0.1)
