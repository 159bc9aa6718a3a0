"""What the signal probe costs: training throughput with and without it, and the probe alone.

    python -m benchmarks.signals                                  # CPU: the demo's deepest pair, CIFAR ResNet-20
    python -m benchmarks.signals --models demo44,cifar56 --repeats 3
    python -m benchmarks.signals --steps 200 --eval-every 50

Each model trains ``--steps`` steps through the project's Lightning step (``DegradationModule`` on device-resident
generated data of the real shapes) with an evaluation and a layer-response probe every ``--eval-every`` steps,
once with the signal probe (step 0 and every evaluation) and once without, alternating ``--repeats`` times; the
wall time from the start of training to its end is compared (medians). ``ratio`` is the throughput with the
probe over the throughput without it (1.0: free); on a shared machine whose load changes between fits it is
noisy, so each probe is also timed inside the fits with it: ``ratio_in_fit`` is one minus the probes' share of
those fits' wall time, and ``probe_s`` (median time of one probe of every member) over the time of a step
projects the ratio at the preset's own evaluation interval, where the probe runs 10 to 100 times less often than
here (``projected_ratio_at_preset``). Saves JSON (``--out``; default ``runs/benchmarks/signals_<cpu|gpu>.json``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from benchmarks.common import OUT_HELP, device_name, save_report, sync
from experiments.config import config_from_dict
from experiments.data.datamodules import InMemoryDataModule
from experiments.data.sources import ImageArrays

MODELS = {
    # name: (config fields, the preset whose evaluation interval the projection uses)
    "demo44": ({"preset": "demo", "arch": "pair", "depth": 44}, "demo"),
    "demo20": ({"preset": "demo", "arch": "pair", "depth": 20}, "demo"),
    "demo8": ({"preset": "demo", "arch": "pair", "depth": 8}, "demo"),
    "cifar20": (
        {"preset": "demo", "arch": "resnet", "depth": 20, "width": 16, "image_size": 32, "response_images": 500},
        "cifar10-paper",
    ),  # fmt: skip
    "cifar56": (
        {"preset": "demo", "arch": "resnet", "depth": 56, "width": 16, "image_size": 32, "response_images": 500},
        "cifar10-paper",
    ),  # fmt: skip
}


def preset_eval_every(preset: str) -> int:
    """How often the preset's runs evaluate (and probe), from the preset itself."""
    return config_from_dict({"preset": preset}).eval_every


def _arrays(size: int, n: int, seed: int) -> ImageArrays:
    g = torch.Generator().manual_seed(seed)
    return ImageArrays(
        torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (n,), generator=g),
    )


def _config(name: str, steps: int, eval_every: int, device: torch.device):
    fields, _ = MODELS[name]
    return config_from_dict(
        {
            **fields,
            "max_steps": steps,
            "eval_every": eval_every,
            "log_every": eval_every,
            "checkpoint_every": 10**9,
            "warmup": "off",
            "val_size": 0,
            "wandb": "disabled",
            "progress": "off",
            "accelerator": "gpu" if device.type == "cuda" else "cpu",
        }
    )


def _parts(name: str, steps: int, eval_every: int, device: torch.device, signals: bool):
    """A module and its data for ``name``: test split of one probe batch, probe images and labels from it."""
    from experiments.train import build_networks
    from experiments.training.module import DegradationModule

    cfg = _config(name, steps, eval_every, device)
    size = cfg.input_shape[1]
    train = _arrays(size, max(cfg.batch_size * 8, 1024), seed=0)
    data = InMemoryDataModule(cfg, arrays=(train, None, _arrays(size, cfg.response_images, seed=1)))
    images, labels = data.probe_images(cfg.response_images), data.probe_labels(cfg.response_images)
    module = DegradationModule(
        cfg,
        build_networks(cfg),
        len(train),
        data.eval_names,
        probe_images=images,
        probe_labels=labels,
        signals=signals,
    )
    return cfg, data, module


def fit_seconds(
    name: str, steps: int, eval_every: int, device: torch.device, signals: bool
) -> tuple[float, list[float]]:
    """Wall time from the start of training to its end (evaluations and probes included), and each probe's time."""
    import pytorch_lightning as pl

    from experiments.train import build_trainer, quiet_lightning
    from experiments.training.callbacks import TrainingWindow

    quiet_lightning()
    cfg, data, module = _parts(name, steps, eval_every, device, signals)
    marks: list[float] = []
    probes: list[float] = []
    probe = module._probe_signals

    def timed_probe(step: int) -> None:
        sync(module.device)
        start = time.perf_counter()
        probe(step)
        sync(module.device)
        probes.append(time.perf_counter() - start)

    module._probe_signals = timed_probe

    class Clock(pl.Callback):
        def on_train_start(self, trainer, pl_module):  # runs before the module's (and its step-0 probe)
            sync(pl_module.device)
            marks.append(time.perf_counter())

        def on_train_end(self, trainer, pl_module):
            sync(pl_module.device)
            marks.append(time.perf_counter())

    trainer = build_trainer(cfg, [], [TrainingWindow(), Clock()], progress_bar=False)
    trainer.fit(module, datamodule=data)
    return marks[1] - marks[0], probes if signals else []


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    """With and without the probe, alternating: the ratio of the median wall times, the probe's share of the wall
    time inside each fit with it (robust to a machine whose load changes between fits), and the projection at the
    preset's own evaluation interval."""
    with_probe, without, shares, per_probe, step = [], [], [], [], []
    for _ in range(args.repeats):
        without.append(fit_seconds(name, args.steps, args.eval_every, device, signals=False)[0])
        total, probes = fit_seconds(name, args.steps, args.eval_every, device, signals=True)
        with_probe.append(total)
        shares.append(sum(probes) / total)
        per_probe.append(statistics.median(probes))
        step.append((total - sum(probes)) / args.steps)  # evaluations included: the projection errs low on cost
    probe, step_s = statistics.median(per_probe), statistics.median(step)
    preset = MODELS[name][1]
    every = preset_eval_every(preset)
    return {
        "model": name,
        "steps": args.steps,
        "eval_every": args.eval_every,
        "probes": 1 + args.steps // args.eval_every,
        "fit_s_with": with_probe,
        "fit_s_without": without,
        "ratio": statistics.median(without) / statistics.median(with_probe),
        "probe_share": shares,
        "ratio_in_fit": 1 - statistics.median(shares),
        "probe_s": probe,
        "step_s": step_s,
        "preset": preset,
        "preset_eval_every": every,
        "projected_ratio_at_preset": (every * step_s) / (every * step_s + probe),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--models", default=None, help=f"comma-separated from {', '.join(MODELS)} (CPU: demo44,cifar20)")
    p.add_argument("--steps", type=int, default=100, help="training steps per fit")
    p.add_argument("--eval-every", type=int, default=25, help="steps between evaluations (and probes)")
    p.add_argument("--repeats", type=int, default=2, help="fits with and without the probe, alternating")
    p.add_argument("--out", default=None, help=OUT_HELP.replace("<name>", "signals_<cpu|gpu>"))
    args = p.parse_args(argv)
    names = args.models.split(",") if args.models else ["demo44", "cifar20"]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"--models: unknown {unknown[0]!r}; choose from {', '.join(MODELS)}")
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if args.device == "auto"
        else args.device
    )
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    results = []
    print(f"{'model':<9} {'probes':>6} {'fit s (with)':>12} {'fit s (without)':>15} {'ratio':>6} {'in fit':>6} "
          f"{'probe s':>8} {'projected at preset':>20}")  # fmt: skip
    for name in names:
        r = measure(name, args, device)
        results.append(r)
        print(
            f"{name:<9} {r['probes']:>6} {statistics.median(r['fit_s_with']):>12.1f} "
            f"{statistics.median(r['fit_s_without']):>15.1f} {r['ratio']:>6.3f} {r['ratio_in_fit']:>6.3f} "
            f"{r['probe_s']:>8.2f} "
            f"{r['projected_ratio_at_preset']:>12.4f} ({r['preset']}, every {r['preset_eval_every']})",
            flush=True,
        )
    report = {"device": device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    report["results"] = results
    save_report(report, args.out, f"signals_{'gpu' if device.type == 'cuda' else 'cpu'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
