"""Where one demo pair's time goes: start-up and imports, data, forward, backward, optimizer, evaluation, probe, store.

    python -m benchmarks.demo_profile                       # the demo preset's deepest pair, 40 timed steps
    python -m benchmarks.demo_profile --depth 20 --set max_steps=600 --threads 1
    python -m benchmarks.demo_profile --out benchmarks/results/demo_profile_after.json

Each part is timed on its own with wall clocks (CPU work is synchronous) on the demo's data and networks, then a
whole ``python -m experiments.train`` run of the same pair is timed as a sweep starts it (``CI=1``, the thread
count of a one-job sweep), so ``run - parts`` is what Lightning, logging and checkpointing add. The projected
parts are per-step costs times ``max_steps`` plus per-evaluation costs times the number of evaluations.

Timings on a shared machine are noisy: compare the parts of one report, not numbers across reports.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _subprocess_wall(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def profile(depth: int, steps: int, threads: int, overrides: dict, run: bool = True) -> dict:
    """The report: each part's measured seconds and its projection over the preset's whole run."""
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    report: dict = {"depth": depth, "threads": threads, "overrides": overrides, "timed_steps": steps}
    report["startup_s"] = {
        "python": _subprocess_wall(["-c", "pass"], env),
        "import torch": _subprocess_wall(["-c", "import torch"], env),
        "import experiments.train + lightning": _subprocess_wall(
            ["-c", "import experiments.train, pytorch_lightning"], env
        ),
        "import wandb": _subprocess_wall(["-c", "import wandb"], env),
    }

    import torch
    import torch.nn.functional as F

    from experiments.config import config_from_dict
    from experiments.data.datamodules import EvalStream, InMemoryDataModule, TrainStream
    from experiments.store import RunDir
    from experiments.training.phases import build_networks
    from models import count_macs, layer_responses

    torch.set_num_threads(threads)
    cfg = config_from_dict({"preset": "demo", "arch": "pair", "depth": depth, "wandb": "disabled", **overrides})
    t: dict[str, float] = {}

    t0 = time.perf_counter()
    data = InMemoryDataModule(cfg)
    t["data (generate)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nets = build_networks(cfg)
    for net in nets.values():
        count_macs(net, cfg.input_shape)
    t["networks (build, count)"] = time.perf_counter() - t0

    stream = TrainStream(data.train_data, data.mean, cfg.batch_size, cfg.seed)
    params = [{"params": list(n.parameters()), "lr": cfg.lr} for n in nets.values()]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    parts = dict.fromkeys(("batch", "forward", "backward", "optimizer"), 0.0)
    for net in nets.values():
        net.train()
    warm = 3
    for step in range(steps + warm):
        c0 = time.perf_counter()
        x, y = stream.batch(step)
        c1 = time.perf_counter()
        loss = sum(F.cross_entropy(net(x), y) for net in nets.values())
        c2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        c3 = time.perf_counter()
        opt.step()
        c4 = time.perf_counter()
        if step >= warm:
            for key, dt in zip(parts, (c1 - c0, c2 - c1, c3 - c2, c4 - c3), strict=True):
                parts[key] += dt
    per_step = {k: v / steps for k, v in parts.items()}

    evals = -(-cfg.max_steps // cfg.eval_every)
    t0 = time.perf_counter()
    with torch.no_grad():
        for net in nets.values():
            net.eval()
            for x, y in EvalStream(data.test_data, data.mean, 1024):
                net(x).argmax(1).ne(y).sum()
    per_eval = {"evaluation": time.perf_counter() - t0}
    probe = data.probe_images(cfg.response_images) if cfg.response_images else None
    t0 = time.perf_counter()
    if probe is not None:
        for net in nets.values():
            layer_responses(net, probe)
    per_eval["probe"] = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        store = RunDir(Path(tmp) / "run")
        row = {"epoch": 1.0, "train_error": 1.0, "train_loss": 1.0, "lr": 0.1, "images_per_s": 1.0}
        t0 = time.perf_counter()
        for s in range(cfg.log_every, cfg.max_steps + 1, cfg.log_every):
            store.log_metrics(s, row)
            store.log_metrics(s, row)
        t["store (metrics rows)"] = time.perf_counter() - t0

    projected = {
        **t,
        **{f"{k} ({cfg.max_steps} steps)": v * cfg.max_steps for k, v in per_step.items()},
        **{f"{k} ({evals} evaluations)": v * evals for k, v in per_eval.items()},
    }
    report.update(
        config={k: getattr(cfg, k) for k in ("width", "image_size", "max_steps", "batch_size", "eval_every")},
        per_step_s=per_step,
        per_evaluation_s=per_eval,
        projected_s=projected,
        projected_total_s=sum(projected.values()),
    )
    if run:
        with tempfile.TemporaryDirectory() as tmp:
            args = [f"--{k}={v}" for k, v in {"preset": "demo", "arch": "pair", "depth": depth, **overrides}.items()]
            wandb_env = {**env, "WANDB_DIR": tmp, "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "experiments.train", *args, f"--out={tmp}/run"],
                cwd=REPO,
                env=wandb_env,
                check=True,
                capture_output=True,
            )
            report["experiments_train_run_s"] = time.perf_counter() - t0
    return report


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import OUT_HELP, save_report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=None, help="pair depth (default: the demo sweep's deepest)")
    p.add_argument("--steps", type=int, default=40, help="timed training steps (default 40)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a demo field")
    p.add_argument("--no-run", action="store_true", help="time the parts only, not a whole experiments.train run")
    p.add_argument("--out", default=None, help=OUT_HELP)
    args = p.parse_args(argv)
    overrides = {k: _parse_value(v) for k, _, v in (s.partition("=") for s in args.set)}
    depth = args.depth
    if depth is None:
        import yaml

        params = yaml.safe_load((REPO / "sweeps" / "demo.yaml").read_text())["parameters"]
        depth = max(params["depth"].get("values", [params["depth"].get("value")]))
    report = profile(depth, args.steps, args.threads, overrides, run=not args.no_run)
    report["command"] = "python -m benchmarks.demo_profile " + " ".join(argv if argv is not None else sys.argv[1:])
    report["load_average"] = os.getloadavg()
    for key, value in report["startup_s"].items():
        print(f"  start-up  {key:<44} {value:7.2f}s")
    for key, value in report["projected_s"].items():
        print(f"  projected {key:<44} {value:7.2f}s")
    print(f"  projected total {report['projected_total_s']:.1f}s")
    if "experiments_train_run_s" in report:
        print(f"  python -m experiments.train, whole run: {report['experiments_train_run_s']:.1f}s")
    save_report(report, args.out, f"demo_profile_d{depth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
