"""Everything the landscape tools take from the training harness (``experiments/``), in one place.

This is the only module of ``analysis.landscape`` that imports ``experiments``: when those modules move, only the
imports below change. It opens a finished run (config, summary, final weights), rebuilds the network's initial
weights exactly as training started from them, and loads the run's training images, un-augmented.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from analysis.load import store_runs
from experiments.config import RunConfig, load_config_json
from experiments.data.augment import normalize
from experiments.data.sources import DataError
from experiments.errors import EXIT_BAD_INPUT, EXIT_FAILED
from experiments.store import (
    CONFIG_FILE,
    MODEL_FILE,
    STATUS_FINISHED,
    SUMMARY_FILE,
    RunDir,
    atomic_write_json,
    atomic_write_text,
    read_json,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "BadInput",
    "Run",
    "TrainingImages",
    "atomic_write_json",
    "atomic_write_text",
    "find_runs",
    "is_run_folder",
    "open_run",
    "read_json",
    "training_images",
]


class BadInput(ValueError):
    """A path or option the tools cannot use; the CLI prints it as one line "error: ..." and exits 2."""


@dataclass(frozen=True)
class Run:
    """One finished run: where it is, its resolved config and what its summary says."""

    path: Path
    config: RunConfig
    summary: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_path(self) -> Path:
        return RunDir(self.path).checkpoint_dir / MODEL_FILE

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def depth(self) -> int:
        return self.config.depth

    def build(self) -> torch.nn.Module:
        """The run's network with its *initial* weights: ``build_networks`` seeds and builds it as ``train`` did."""
        from experiments.train import build_networks

        return build_networks(self.config)[self.config.arch]

    def final_state(self) -> dict[str, torch.Tensor]:
        """The trained weights and BN running statistics (checkpoints/model.pt)."""
        return torch.load(self.model_path, map_location="cpu", weights_only=True)

    def fingerprint(self) -> str:
        """A digest of the final weights and the config: results computed for another fingerprint are stale."""
        digest = hashlib.sha256(self.model_path.read_bytes())
        digest.update(RunDir(self.path).config_path.read_bytes())
        return digest.hexdigest()[:16]


def _config(run: RunDir) -> RunConfig:
    if not run.config_path.is_file():
        raise BadInput(f"run {run.path} has no config.json, so its initial weights cannot be rebuilt")
    try:
        cfg = load_config_json(run.config_path)
    except ValueError as e:  # ConfigError, or JSON that does not parse
        raise BadInput(f"{run.config_path}: {e}") from None
    if cfg.arch == "pair":
        raise BadInput(f"{run.path} is a pair's folder; pass one member's run folder or the store")
    if cfg.dataset == "imagenet":
        raise BadInput(
            f"{run.path} is an ImageNet run; the landscape tools evaluate the in-memory CIFAR-10 and generated "
            "datasets only"
        )
    return cfg


def open_run(path: str | Path) -> Run:
    """A finished run with its final weights, or ``BadInput`` saying what is missing (nothing is written)."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise BadInput(f"run folder {str(run.path)!r} does not exist")
    try:
        summary = run.read_summary()
    except ValueError as e:
        raise BadInput(f"{run.summary_path} is not valid JSON ({e})") from None
    if summary is None:
        raise BadInput(f"{run.path} has no summary.json: it is not a run folder, or the run never started")
    status = summary.get("status")
    if status != STATUS_FINISHED:
        raise BadInput(f"run {run.path} is not finished (status {status!r}); finish or re-run its training first")
    model = run.checkpoint_dir / MODEL_FILE
    if not model.is_file():
        raise BadInput(f"run {run.path} has no {model.parent.name}/{model.name}: its final weights are missing")
    return Run(run.path, _config(run), summary)


def is_run_folder(path: str | Path) -> bool:
    """Whether ``path`` is one run's folder (it holds summary.json or config.json) rather than a store."""
    path = Path(path)
    return (path / SUMMARY_FILE).is_file() or (path / CONFIG_FILE).is_file()


def find_runs(root: str | Path) -> tuple[list[Run], list[str]]:
    """Every finished run under ``root`` and a note for each run left out (not finished).

    ``BadInput`` for a missing folder, a folder without finished runs, or a finished run that cannot be analysed.
    """
    dirs = store_runs(root, BadInput)
    runs, skipped = [], []
    for run in dirs:
        try:
            status = run.status()
        except ValueError:
            status = "unreadable"
        if status != STATUS_FINISHED:
            skipped.append(f"{run.name} ({status or 'not started'})")
            continue
        runs.append(open_run(run.path))
    if not runs:
        raise BadInput(f"nothing to do: none of the {len(dirs)} runs in {str(root)!r} is finished")
    return runs, skipped


@dataclass(frozen=True)
class TrainingImages:
    """A run's training images as it trained on them (its split, its pixel mean), before augmentation."""

    images: torch.Tensor  # uint8 NCHW
    labels: torch.Tensor  # int64
    mean: torch.Tensor  # per-pixel mean image in [0, 1]
    std: torch.Tensor | None = None  # per-channel std (C, 1, 1) the run divided by (input_std), else None

    def __len__(self) -> int:
        return len(self.labels)

    def normalized(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``index``, float and normalised exactly as training and evaluation feed them, with labels."""
        return normalize(self.images[index], self.mean, self.std), self.labels[index]


_DATA_CACHE: dict[tuple, TrainingImages] = {}


def training_images(cfg: RunConfig, data_dir: str | None = None) -> TrainingImages:
    """The training split of ``cfg`` (held-out validation images excluded) from the run's own data module.

    Runs that share a dataset, seed and split share one copy. ``DataError`` (CIFAR-10 missing or corrupt) becomes
    ``BadInput``.
    """
    from experiments.data.datamodules import InMemoryDataModule

    if data_dir is not None:
        cfg = cfg.replace(data_dir=data_dir)
    key = (
        cfg.dataset,
        cfg.data_dir,
        cfg.data_verify,
        cfg.seed,
        cfg.val_size,
        cfg.image_size,
        cfg.num_classes,
        cfg.train_size,
        cfg.test_size,
        cfg.input_std,
    )
    if key not in _DATA_CACHE:
        try:
            data = InMemoryDataModule(cfg)
        except DataError as e:
            raise BadInput(f"{e} (pass --data-dir to point at the data)") from None
        _DATA_CACHE[key] = TrainingImages(data.train_data.images, data.train_data.labels, data.mean, data.std)
    return _DATA_CACHE[key]
