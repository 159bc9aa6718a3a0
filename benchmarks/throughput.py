"""Training throughput: the project's default step against a bare PyTorch loop and a reference pipeline.

    python -m benchmarks.throughput                 # CPU: short; GPU: the full set, same command
    python -m benchmarks.throughput --models cifar56 --runs-per-gpu 1,2,4,8
    python -m benchmarks.throughput --models cifar20,cifar56,cifar110 --paths pair,pair-fused --compile reduce-overhead
    python -m benchmarks.throughput --models cifar56 --paths default,bare --precision 32-true --channels-last off

Paths, each on the same network and generated inputs of the real shapes:
- default: ``experiments`` as a run uses it (Lightning Trainer, DegradationModule, device-resident data and
  augmentation, bf16 + channels_last on GPU, fused SGD);
- bare: a plain PyTorch loop over the same device-resident batches with the same precision settings (the
  harness's overhead is default / bare);
- reference: the usual pipeline: torchvision's CIFAR10 dataset read from files in CIFAR-10's own format,
  a DataLoader with workers and per-image transforms, fp32, a plain PyTorch loop (CIFAR models only);
- pair, pair-fused: the default path training plain and ResNet of that depth on the same batches, as fig6 does,
  as two networks or as one fused network (``--fuse``); their images/s count each network's images.

Prints a table and saves JSON (``--out``), with peak GPU memory and, for each path measured at depths 20, 56
and 110, the projected wall time of the fig6 sweep (``benchmarks/projection.py``: its runs scheduled as
``run_sweep.py`` runs them, with the runs-per-GPU contention measured on ``--runs-path``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import get_args

import torch
import torch.nn.functional as F

from benchmarks import projection
from benchmarks.common import OUT_HELP, device_name, save_report, sync
from experiments.config import CompileMode, Toggle, config_from_dict, uses_channels_last
from experiments.data.datamodules import InMemoryDataModule, TrainStream
from experiments.data.sources import ImageArrays, pixel_mean
from models import build_model

MODELS = {
    "cifar20": ("cifar10", 20, 32, 10),
    "cifar56": ("cifar10", 56, 32, 10),
    "cifar110": ("cifar10", 110, 32, 10),
    "imagenet34": ("imagenet", 34, 224, 1000),
    "imagenet50": ("imagenet", 50, 224, 1000),
}
PATHS = ("default", "bare", "reference", "pair", "pair-fused")


def _arrays(size: int, classes: int, n: int, seed: int = 0) -> ImageArrays:
    g = torch.Generator().manual_seed(seed)
    return ImageArrays(
        torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
        torch.randint(0, classes, (n,), generator=g),
    )


def _config(batch: int, steps: int, args: argparse.Namespace, arch: str, name: str, fuse: str):
    """A demo run's config with the benchmark's settings; an ImageNet model's run uses a CIFAR depth (unused)."""
    family, depth, _, _ = MODELS[name]
    return config_from_dict(
        {
            "preset": "demo",
            "arch": arch,
            "depth": depth if family == "cifar10" else 20,
            "fuse": fuse,
            "warmup": "off",
            "precision": args.precision,
            "channels_last": args.channels_last,
            "batch_size": batch,
            "max_steps": steps,
            "eval_every": 10**9,
            "log_every": 50,
            "checkpoint_every": 10**9,
            "response_images": 0,
            "val_size": 0,
            "wandb": "disabled",
            "progress": "off",
            "compile": args.compile,
            "image_size": 32,
        }
    )


def _net(name: str, device: torch.device, arch: str = "resnet") -> torch.nn.Module:
    family, depth, _, classes = MODELS[name]
    torch.manual_seed(0)
    return build_model(arch, depth, family, num_classes=classes).to(device)


def bench_default(
    name: str, batch: int, warmup: int, steps: int, device: torch.device, args: argparse.Namespace, pair: str = ""
) -> float:
    """Images/s of the Lightning training step as a run uses it; for a pair (``pair`` = fuse off/on), x2."""
    import pytorch_lightning as pl

    from experiments.train import build_trainer, quiet_lightning
    from experiments.training.module import DegradationModule

    quiet_lightning()
    _, _, size, classes = MODELS[name]
    cfg = _config(batch, warmup + steps, args, "pair" if pair else "resnet", name, pair or "off")
    train = _arrays(size, classes, max(batch * 8, 1024 if size <= 32 else batch * 2))
    dm = InMemoryDataModule(cfg, arrays=(train, None, _arrays(size, classes, batch)))
    nets = {m.arch: _net(name, torch.device("cpu"), m.arch) for m in cfg.members()}
    module = DegradationModule(cfg, nets, len(train), dm.eval_names)
    marks: dict[int, float] = {}

    class Timer(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, b, idx):
            if trainer.global_step in (warmup, warmup + steps):
                sync(pl_module.device)
                marks[trainer.global_step] = time.perf_counter()

    from experiments.training.callbacks import TrainingWindow

    trainer = build_trainer(
        cfg.replace(accelerator="gpu" if device.type == "cuda" else "cpu"),
        [],
        [TrainingWindow(), Timer()],
        progress_bar=False,
    )
    trainer.fit(module, datamodule=dm)
    return len(nets) * steps * batch / (marks[warmup + steps] - marks[warmup])


def bench_bare(name: str, batch: int, warmup: int, steps: int, device: torch.device, args: argparse.Namespace) -> float:
    """Images/s of a plain PyTorch loop over the same device-resident batches and precision."""
    from experiments.train import resolve_precision

    _, _, size, classes = MODELS[name]
    train = _arrays(size, classes, max(batch * 8, 1024 if size <= 32 else batch * 2))
    train = ImageArrays(train.images.to(device), train.labels.to(device))
    stream = TrainStream(train, pixel_mean(train.images), batch, seed=0)
    net = _net(name, device)
    cuda = device.type == "cuda"
    cfg = _config(batch, warmup + steps, args, "resnet", name, "off").replace(accelerator="gpu" if cuda else "cpu")
    channels_last = uses_channels_last(cfg, cuda)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    fwd = torch.compile(net, mode=args.compile) if args.compile != "off" else net
    bf16 = resolve_precision(cfg) == "bf16-mixed"
    opt = torch.optim.SGD(
        net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, **({"fused": True} if cuda else {})
    )
    net.train()
    t0 = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            t0 = time.perf_counter()
        x, y = stream.batch(step)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def bench_reference(name: str, batch: int, warmup: int, steps: int, device: torch.device, workers: int) -> float:
    """Images/s of the usual pipeline: torchvision CIFAR10 files, DataLoader with per-image transforms, fp32."""
    import pickle

    import numpy as np
    from torchvision import transforms
    from torchvision.datasets import CIFAR10

    class Files(CIFAR10):
        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            self.classes = [str(i) for i in range(10)]

    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / CIFAR10.base_folder
        folder.mkdir()
        rng = np.random.default_rng(0)
        for fname, _ in CIFAR10.train_list:
            with open(folder / fname, "wb") as f:
                pickle.dump(
                    {
                        "data": rng.integers(0, 256, (2000, 3072), dtype=np.uint8),
                        "labels": rng.integers(0, 10, 2000).tolist(),
                    },
                    f,
                )
        tf = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
            ]
        )
        ds = Files(root, train=True, transform=tf)
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=batch,
            shuffle=True,
            num_workers=workers,
            drop_last=True,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
        )
        net = _net(name, device)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        step, t0 = 0, 0.0
        while step < warmup + steps:
            for x, y in loader:
                if step == warmup:
                    sync(device)
                    t0 = time.perf_counter()
                if step == warmup + steps:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
        sync(device)
        return steps * batch / (time.perf_counter() - t0)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def measure(name: str, path: str, args: argparse.Namespace, device: torch.device) -> dict:
    """One (model, path) measurement with its peak memory."""
    family = MODELS[name][0]
    gpu = device.type == "cuda"
    batch = (128 if family == "cifar10" else (256 if gpu else 8)) if args.batch is None else args.batch
    _peak_reset(device)
    if path in ("default", "pair", "pair-fused"):
        pair = {"default": "", "pair": "off", "pair-fused": "on"}[path]
        ips = bench_default(name, batch, args.warmup, args.steps, device, args, pair)
    elif path == "bare":
        ips = bench_bare(name, batch, args.warmup, args.steps, device, args)
    else:
        ips = bench_reference(name, batch, args.warmup, args.steps, device, args.workers)
    return {"model": name, "path": path, "batch": batch, "images_per_s": ips, "peak_gib": _peak(device)}


def runs_per_gpu(name: str, k: int, args: argparse.Namespace) -> float:
    """Aggregate images/s of ``k`` concurrent runs of ``name`` on one GPU (path ``--runs-path``)."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.throughput",
        "--single",
        name,
        "--path",
        args.runs_path,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--compile",
        args.compile,
        "--precision",
        args.precision,
        "--channels-last",
        args.channels_last,
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["images_per_s"] for p in procs]
    return sum(rates)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--models", default=None, help=f"comma-separated from {', '.join(MODELS)}")
    p.add_argument("--paths", default="default,bare,reference", help=f"comma-separated from {', '.join(PATHS)}")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CPU, 200 on GPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5 CPU, 30 GPU)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--runs-per-gpu", default="1,2,4,8", help="GPU only: concurrent runs to aggregate (cifar56)")
    p.add_argument("--runs-path", default="default", choices=projection.PROCESS_KINDS, help="their path")
    p.add_argument("--precision", default="auto", choices=["auto", "32-true", "bf16-mixed"], help="auto: bf16 on GPU")
    p.add_argument("--channels-last", default="auto", choices=get_args(Toggle), help="auto: on for GPU")
    p.add_argument(
        "--compile",
        default="off",
        choices=get_args(CompileMode),
        help="torch.compile mode for every path but reference",
    )
    p.add_argument("--out", default=None, help=OUT_HELP.replace("<name>", "<cpu|gpu>"))
    p.add_argument("--single", default=None, help=argparse.SUPPRESS)
    p.add_argument("--path", default="default", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for option, values, allowed in (("--models", args.models, MODELS), ("--paths", args.paths, PATHS)):
        unknown = [v for v in (values or "").split(",") if v and v not in allowed]
        if unknown:
            p.error(f"{option}: unknown {unknown[0]!r}; choose from {', '.join(allowed)}")
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    gpu = device.type == "cuda"
    args.steps = args.steps or (200 if gpu else 20)
    args.warmup = args.warmup if args.warmup is not None else (30 if gpu else 5)
    if args.single:
        print(json.dumps(measure(args.single, args.path, args, device)))
        return 0
    if not gpu:
        torch.set_flush_denormal(True)
    names = args.models.split(",") if args.models else (list(MODELS) if gpu else ["cifar20", "cifar56", "imagenet50"])
    results = []
    print(f"{'model':<11} {'path':<10} {'batch':>5} {'images/s':>10} {'peak GiB':>9}")
    for name in names:
        for path in args.paths.split(","):
            if path in ("reference", "pair", "pair-fused") and MODELS[name][0] != "cifar10":
                continue
            r = measure(name, path, args, device)
            results.append(r)
            peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
            print(f"{name:<11} {path:<10} {r['batch']:>5} {r['images_per_s']:>10.0f} {peak:>9}", flush=True)
    by = {(r["model"], r["path"]): r["images_per_s"] for r in results}
    ratios = {}
    for name in names:
        if (name, "default") in by and (name, "bare") in by:
            ratios[f"{name} default/bare"] = by[(name, "default")] / by[(name, "bare")]
        if (name, "default") in by and (name, "reference") in by:
            ratios[f"{name} default/reference"] = by[(name, "default")] / by[(name, "reference")]
        if (name, "pair") in by and (name, "pair-fused") in by:
            ratios[f"{name} pair-fused/pair"] = by[(name, "pair-fused")] / by[(name, "pair")]
    for k, v in ratios.items():
        print(f"{k:<32} {v:.3f}")
    aggregate = {}
    if gpu and args.runs_per_gpu and "cifar56" in names and args.runs_path in args.paths.split(","):
        for k in [int(x) for x in args.runs_per_gpu.split(",")]:
            aggregate[k] = runs_per_gpu("cifar56", k, args)
            print(f"cifar56 runs per GPU {k}: {aggregate[k]:.0f} images/s aggregate", flush=True)
    report = {
        "device": device_name(device),
        "torch": torch.__version__,
        "steps": args.steps,
        "warmup": args.warmup,
        "compile": args.compile,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "runs_path": args.runs_path,
        "results": results,
        "ratios": ratios,
        "runs_per_gpu_aggregate": aggregate,
    }
    report["fig6_projection"] = projection.from_report(report)
    for path, projected in report["fig6_projection"].items():
        print(projection.describe(path, projected))
    save_report(report, args.out, "gpu" if gpu else "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
