"""ImageNet input throughput: PIL decoding in DataLoader workers against batched nvjpeg decoding on the GPU.

    python -m benchmarks.decode                          # CPU: the PIL path only; with CUDA: both paths
    python -m benchmarks.decode --images 8192 --workers 4,8,16 --rounds 8

Writes ``--images`` generated JPEGs of ImageNet-like sizes (500x375, 375x500, 500x333, 333x500, 500x500; quality 90,
smooth content plus grain, about 100 KB each like ImageNet's files) into a temporary ImageFolder and times how
fast ``ImageNetDataModule`` delivers augmented training batches (shorter side 256..480, random 224 crop, flip,
PCA colour noise, mean subtracted) that are ready on the training device:

- cpu: ``decode=cpu``: PIL decodes and torchvision transforms run in W workers; the pinned batch is copied over;
- gpu: ``decode=gpu``: W workers only read bytes; one batched nvjpeg call decodes the batch and the augmentation
  runs on the GPU (``experiments/data/decode.py``). Needs CUDA; without it only the cpu path is measured.

Each of W workers makes whole batches, so the clock starts after W warm-up batches (one per worker) and runs for
whole rounds of W batches. Files sit in the page cache, so neither path waits on the disk. Prints a table and
saves JSON (``--out``).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from benchmarks.common import OUT_HELP, device_name, save_report, sync
from experiments.config import config_from_dict
from experiments.data.datamodules import ImageNetDataModule

SIZES = ((500, 375), (375, 500), (500, 333), (333, 500), (500, 500))  # (width, height)
SIZE_WEIGHTS = (0.5, 0.2, 0.15, 0.05, 0.1)
CLASSES = 8


def write_jpegs(root: Path, n: int, seed: int = 0) -> list[int]:
    """``n`` JPEGs in ``root/train/<class>/``: a smooth random picture with film-like grain; returns file sizes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    grain = rng.normal(0, 20, (540, 540, 3)).astype(np.float32)
    sizes = []
    for i in range(n):
        w, h = SIZES[rng.choice(len(SIZES), p=SIZE_WEIGHTS)]
        coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        y, x = rng.integers(0, 40, 2)
        pixels = np.clip(np.asarray(coarse, dtype=np.float32) + grain[y : y + h, x : x + w], 0, 255)
        buf = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buf, "JPEG", quality=90)
        folder = root / "train" / f"n{i % CLASSES:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.JPEG").write_bytes(buf.getvalue())
        sizes.append(buf.tell())
    for c in range(CLASSES):
        (root / "val" / f"n{c:08d}").mkdir(parents=True, exist_ok=True)
    return sizes


def measure(root: Path, decode: str, workers: int, batch: int, rounds: int, device: torch.device) -> float:
    """Images/s of augmented training batches of ``batch`` images ready on ``device``, over ``rounds`` rounds."""
    cfg = config_from_dict(
        {"dataset": "imagenet", "data_dir": str(root), "depth": 18, "num_classes": CLASSES, "batch_size": batch,
         "num_workers": workers, "decode": decode}
    )  # fmt: skip
    dm = ImageNetDataModule(cfg)
    loader = dm.train_dataloader()
    warmup, timed = max(workers, 1), rounds * max(workers, 1)
    done, t0 = 0, 0.0
    while done < warmup + timed:
        for raw in loader:
            x, _ = dm.on_after_batch_transfer(dm.transfer_batch_to_device(raw, device, 0), 0)
            if x.shape != (batch, 3, 224, 224):
                raise RuntimeError(f"{decode} path gave a batch of shape {tuple(x.shape)}")
            done += 1
            if done == warmup:
                sync(device)
                t0 = time.perf_counter()
            if done == warmup + timed:
                break
    sync(device)
    return timed * batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=None, help="JPEGs to write (default: one pass on CPU, 4096 on GPU)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--workers", default=str(min(8, os.cpu_count() or 1)), help="comma-separated worker counts")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds of W batches (default 2 on CPU, 4 on GPU)")
    p.add_argument("--out", default=None, help=OUT_HELP.replace("<name>", "decode_<cpu|gpu>"))
    args = p.parse_args(argv)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    worker_counts = [int(w) for w in args.workers.split(",")]
    rounds = args.rounds or (4 if gpu else 2)
    n = args.images or (4096 if gpu else (rounds + 1) * max(max(worker_counts), 1) * args.batch)
    if n < args.batch:
        p.error(f"--images ({n}) must be at least --batch ({args.batch})")
    paths = ["cpu", "gpu"] if gpu else ["cpu"]
    if not gpu:
        print("gpu path: needs CUDA (nvjpeg); measuring the cpu path only")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        sizes = write_jpegs(Path(tmp), n)
        print(f"wrote {n} JPEGs, mean {np.mean(sizes) / 1024:.0f} KB, in {time.perf_counter() - t:.0f} s")
        print(f"{'path':<5} {'workers':>7} {'batch':>5} {'images/s':>10}")
        for workers in worker_counts:
            for path in paths:
                ips = measure(Path(tmp), path, workers, args.batch, rounds, device)
                results.append({"path": path, "workers": workers, "images_per_s": ips})
                print(f"{path:<5} {workers:>7} {args.batch:>5} {ips:>10.0f}", flush=True)
    by = {(r["path"], r["workers"]): r["images_per_s"] for r in results}
    ratios = {f"gpu/cpu {w} workers": by[("gpu", w)] / by[("cpu", w)] for w in worker_counts if ("gpu", w) in by}
    for k, v in ratios.items():
        print(f"{k:<24} {v:.2f}")
    report = {
        "device": device_name(device),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "images": n,
        "mean_file_kb": float(np.mean(sizes) / 1024),
        "batch": args.batch,
        "rounds": rounds,
        "results": results,
        "ratios": ratios,
    }
    save_report(report, args.out, f"decode_{'gpu' if gpu else 'cpu'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
