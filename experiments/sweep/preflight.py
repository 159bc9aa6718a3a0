"""What the runs of a sweep need, checked before any starts: their data present and readable, their devices present,
and checkpoints in their folders that these runs can resume from.

``run_sweep.py`` calls ``first_problem`` after planning and before it starts anything (and for ``--dry-run``): a
missing dataset or GPU then stops the sweep with one line, instead of every run failing a few seconds in. The checks
are the data modules' own where those are cheap (``check_imagenet_folder`` for image folders, ``check_decode`` for GPU
decoding) and, for CIFAR, the files and MD5 sums that ``experiments.data.sources`` checks, without loading any image.
The fixes named are ones a sweep can apply (a sweep file parameter, a ``run_sweep.py`` flag, the data itself) or, for
a folder that holds another kind of checkpoint, the one command that moves it aside.
Generated datasets need nothing, so the demo's check imports nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from experiments.config import ConfigError, RunConfig
from experiments.config.policy import wants_gpu
from experiments.store.contract import RESTARTED_DIR
from experiments.sweep.spec import SweepRun

CIFAR_DATASETS = ("cifar10", "cifar100")


def first_problem(runs: Sequence[SweepRun], gpus: Sequence[str] | None = None) -> str | None:
    """One line naming the first thing the runs lack and its fix, or None when every run has what it needs."""
    if not runs:
        return None
    try:
        check_devices([r.config for r in runs], gpus)
        check_checkpoints(runs)
        checked: set[tuple] = set()
        for run in runs:
            cfg = run.config
            key = (cfg.dataset, cfg.data_dir, cfg.download, cfg.data_verify)
            if key not in checked:
                checked.add(key)
                check_data(cfg)
    except ConfigError as e:
        return str(e)
    except Exception as e:  # DataError (experiments.data.sources): only importable with torch, so caught by name
        if type(e).__name__ != "DataError":
            raise
        return str(e)
    return None


def check_checkpoints(runs: Sequence[SweepRun]) -> None:
    """Raise ConfigError if a run would start where another kind of run left unfinished progress: a pair's
    checkpoints (plain and ResNet trained together) where this sweep trains a network alone, or the reverse
    (``other_kind_checkpoints``). The runs share folders by design (a pair's members are the same runs as the nets
    alone); the run itself would refuse a few seconds in (``experiments.training.resume``). Read from summaries.
    """
    from experiments.store import other_kind_checkpoints

    for run in runs:
        other = other_kind_checkpoints(run.dirs)
        if other is None:
            continue
        holder, saved_by_pair = other
        saver = "a pair (plain and ResNet trained together)" if saved_by_pair else "a network trained alone"
        raise ConfigError(
            f"{holder.path} holds checkpoints saved by {saver}, but this sweep trains "
            f"{'the pair' if len(run.dirs) > 1 else 'the network alone'}: resume it with the sweep that started it, or "
            f"start it afresh with `python -m experiments.train {' '.join(run.args)} --restart` (the old folder is "
            f"kept in {holder.path.parent / RESTARTED_DIR}/)"
        )


def check_data(cfg: RunConfig) -> None:
    """Raise DataError naming what ``cfg``'s dataset lacks: files missing, unreadable or corrupt, a bad folder tree."""
    from experiments.data import catalog

    if cfg.dataset in CIFAR_DATASETS:
        _check_cifar(cfg)
    elif cfg.dataset in getattr(catalog, "FOLDER_DATASETS", ("imagenet",)):
        from experiments.data.sources import check_imagenet_folder

        if cfg.dataset == "imagenet":
            check_imagenet_folder(cfg.data_dir)
        else:
            check_imagenet_folder(cfg.data_dir, what="image")
    # generated datasets need no files


def _check_cifar(cfg: RunConfig) -> None:
    """The files ``experiments.data.sources`` reads for a CIFAR, present and readable, and their MD5 sums when
    ``data_verify`` (about a second for CIFAR-10's 170 MB): what the run would check, without unpickling anything."""
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import check_integrity

    from experiments.data import sources

    reader = CIFAR100 if cfg.dataset == "cifar100" else CIFAR10
    known = getattr(sources, "CIFAR_FORMATS", {}).get(cfg.dataset)
    name, folder_name, archive = (
        (known.name, known.folder, known.archive)
        if known
        else ("CIFAR-10", sources.CIFAR_FOLDER, "cifar-10-python.tar.gz")
    )
    url = sources.CIFAR_URL
    root = Path(cfg.data_dir)
    folder = root / folder_name
    if not folder.is_dir():
        if cfg.download:
            return  # the runs download it
        raise sources.DataError(
            f"{name} not found: expected the python-format batches in {folder.absolute()}; download {archive} from "
            f"{url} and extract it into {root.absolute()}, or let the runs fetch it with `download: {{value: true}}` "
            "in the sweep file's parameters"
        )
    for file_name, md5 in [*reader.train_list, *reader.test_list, (reader.meta["filename"], reader.meta["md5"])]:
        path = folder / file_name
        if not path.is_file():
            raise sources.DataError(f"{name} file {path} is missing; extract {archive} from {url} into {root}")
        try:
            with path.open("rb") as f:
                f.read(1)
        except OSError as e:
            raise sources.DataError(
                f"{name} file {path} cannot be read ({e.strerror}); check its permissions"
            ) from None
        if cfg.data_verify and not check_integrity(str(path), md5):
            raise sources.DataError(
                f"{name} file {path} fails its MD5 check (corrupt or not the official file); download it again from "
                f"{url}, or set `data_verify: {{value: false}}` in the sweep file's parameters for a non-standard copy"
            )


def check_devices(configs: Sequence[RunConfig], gpus: Sequence[str] | None) -> None:
    """Raise ConfigError if a run needs GPUs it will not have (``--gpus`` itself is checked by ``sweep.devices``).

    ``gpus``: the GPUs the sweep runs on (each run then sees one), or None for the CPU or every visible GPU.
    """
    if not any(c.accelerator in ("gpu", "cuda") or c.decode == "gpu" or c.devices > 1 for c in configs):
        return  # CPU runs, or a GPU when present: nothing to check, and torch is not imported
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = 1 if gpus else count  # a --gpus slot is one GPU (CUDA_VISIBLE_DEVICES)
    for cfg in configs:
        if cfg.accelerator in ("gpu", "cuda") and count == 0:
            raise ConfigError(
                f"accelerator {cfg.accelerator!r} needs a CUDA GPU and this machine has none; set "
                "`accelerator: {value: auto}` (or cpu) in the sweep file's parameters"
            )
        if wants_gpu(cfg) and count and cfg.devices > visible:
            raise ConfigError(
                f"devices {cfg.devices}: each run sees {visible} GPU(s) here; lower `devices` in the sweep file's "
                "parameters" + (", or leave out --gpus (each --gpus slot is one GPU)" if gpus else "")
            )
        if cfg.decode == "gpu":
            from experiments.data.datamodules import check_decode

            check_decode(cfg)
