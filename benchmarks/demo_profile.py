"""Where the demo's time goes, and what its layout costs: start-up and imports, data, forward, backward, optimizer,
evaluation, probe and store, for each of the demo's nets, on one thread and on all cores.

    python -m benchmarks.demo_profile                                   # the demo preset as it is
    python -m benchmarks.demo_profile --set max_steps=1000 --set eval_every=250 --out runs/benchmarks/old.json
    python -m benchmarks.demo_profile --out benchmarks/results/demo_profile.json   # update the tracked figures

Every part is timed with wall clocks (CPU work is synchronous) and with the process's CPU time, on the demo's data
and networks, each net alone (as the sweep's runs train them) and for the pair (as a pair run trains them); the
thread settings are measured in turns, so they share the machine's conditions. From the per-step and per-evaluation
times it projects the demo sweep's wall time for two layouts:

- ``pairs``: one pair per depth, one process at a time on every core's threads (the demo before issue 14);
- ``side by side``: each net its own process on one thread, as many at once as cores, longest first (the runner's
  CPU default since issue 14).

Timings on a shared machine are noisy and a second OpenMP thread suffers most from it: compare the projections of
one report, and read ``load_average`` (1, 5, 15 min) for the conditions.
"""

from __future__ import annotations

import argparse
import heapq
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("batch", "forward", "backward", "optimizer")


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _clock()
    return {"wall": wall - start[0], "cpu": cpu - start[1]}


def startup(threads: int) -> dict[str, float]:
    """Wall seconds of a fresh Python importing what a run imports (what each run's process pays first)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}

    def wall(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True)
        return time.perf_counter() - t0

    return {
        "python": wall("pass"),
        "import torch": wall("import torch"),
        "import experiments.train (torch, Lightning)": wall("import experiments.train, pytorch_lightning"),
        "import wandb": wall("import wandb"),
    }


def time_steps(nets: dict, stream, steps: int, threads: int, cfg) -> dict[str, dict[str, float]]:
    """Per-step wall and CPU seconds of each part of a training step of ``nets`` (one optimizer, as a run)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    groups = [{"params": list(n.parameters())} for n in nets.values()]
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    for net in nets.values():
        net.train()
    total = {p: {"wall": 0.0, "cpu": 0.0} for p in PARTS}
    warm = 2
    for step in range(warm + steps):
        marks = [_clock()]
        x, y = stream.batch(step)
        marks.append(_clock())
        loss = sum(F.cross_entropy(net(x), y) for net in nets.values())
        marks.append(_clock())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(_clock())
        opt.step()
        marks.append(_clock())
        if step >= warm:
            for part, (a, b) in zip(PARTS, zip(marks, marks[1:], strict=False), strict=True):
                total[part]["wall"] += b[0] - a[0]
                total[part]["cpu"] += b[1] - a[1]
    return {p: {k: v / steps for k, v in t.items()} for p, t in total.items()}


def time_evaluation(nets: dict, data, cfg, threads: int) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of one evaluation (the whole test split) and one layer-response probe of ``nets``."""
    import torch

    from experiments.data.datamodules import EvalStream
    from models import layer_responses

    torch.set_num_threads(threads)
    start = _clock()
    with torch.no_grad():
        for net in nets.values():
            net.eval()
            for x, y in EvalStream(data.test_data, data.mean, 1024):
                net(x).argmax(1).ne(y).sum()
    evaluation = _since(start)
    start = _clock()
    if cfg.response_images:
        probe = data.probe_images(cfg.response_images)
        for net in nets.values():
            layer_responses(net, probe)
    return {"evaluation": evaluation, "probe": _since(start)}


def time_store(cfg) -> dict[str, float]:
    """Wall and CPU seconds of a run's metrics rows (two per logging window, as a pair writes them)."""
    from experiments.store import RunDir

    row = {"epoch": 1.0, "train_error": 1.0, "train_loss": 1.0, "lr": 0.1, "images_per_s": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        store = RunDir(Path(tmp) / "run")
        start = _clock()
        for s in range(cfg.log_every, cfg.max_steps + 1, cfg.log_every):
            store.log_metrics(s, row)
            store.log_metrics(s, row)
        return _since(start)


def side_by_side(durations: list[float], slots: int) -> float:
    """Wall time of jobs run longest first, each in the first free of ``slots`` (the sweep runner's schedule)."""
    free = [0.0] * slots
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(free, free[0] + d)
    return max(free)


def profile(depths: list[int], steps: int, overrides: dict) -> dict:
    import torch

    from experiments.config import config_from_dict
    from experiments.data.datamodules import InMemoryDataModule, TrainStream
    from experiments.training.phases import build_networks
    from models import count_macs

    cores = os.cpu_count() or 1
    torch.set_flush_denormal(True)  # as a CPU run does
    cfg = config_from_dict({"preset": "demo", "arch": "pair", "depth": depths[0], "wandb": "disabled", **overrides})
    start = _clock()
    data = InMemoryDataModule(cfg)
    once = {"data (generate, per run)": _since(start), "store (metrics rows, per run)": time_store(cfg)}
    stream = TrainStream(data.train_data, data.mean, cfg.batch_size, cfg.seed)
    per_net: dict[str, dict] = {}
    pairs: dict[int, dict] = {}
    for depth in depths:
        cfg_d = cfg.replace(depth=depth)
        start = _clock()
        nets = build_networks(cfg_d)
        for net in nets.values():
            count_macs(net, cfg_d.input_shape)
        build = _since(start)
        rounds = {1: [], cores: []}
        for _ in range(2):  # in turns: one thread, all cores, one thread, all cores
            for threads in rounds:
                rounds[threads].append(
                    {n: time_steps({n: net}, stream, steps, threads, cfg) for n, net in nets.items()}
                )
        pair_steps = {t: time_steps(nets, stream, steps, t, cfg) for t in (1, cores)}
        evaluation = time_evaluation(nets, data, cfg, 1)
        for name, net in nets.items():
            step = {
                t: {p: {k: sum(r[name][p][k] for r in rs) / len(rs) for k in ("wall", "cpu")} for p in PARTS}
                for t, rs in rounds.items()
            }
            ev = time_evaluation({name: net}, data, cfg, 1)
            per_net[f"{name}-{depth}"] = {
                "per_step_s": {f"{t} thread(s)": s for t, s in step.items()},
                "per_evaluation_s": ev,
            }
        pairs[depth] = {
            "build_s": build,
            "per_step_s": {f"{t} thread(s)": s for t, s in pair_steps.items()},
            "per_evaluation_s": evaluation,
        }
    start_s = startup(1)
    # what a run's process imports before it trains (torch comes with experiments.train), W&B for its offline files
    run_start = start_s["import experiments.train (torch, Lightning)"] + start_s["import wandb"] - start_s["python"]

    def run_s(timing: dict, threads: int, max_steps: int, eval_every: int) -> float:
        step = sum(part["wall"] for part in timing["per_step_s"][f"{threads} thread(s)"].values())
        evaluation = sum(e["wall"] for e in timing["per_evaluation_s"].values())
        return run_start + step * max_steps + evaluation * -(-max_steps // eval_every)

    recipes = {"before (1000 steps)": (1000, 250), f"now ({cfg.max_steps} steps)": (cfg.max_steps, cfg.eval_every)}
    layouts = {
        recipe: {
            f"pairs, one at a time, {cores} threads": sum(run_s(p, cores, *r) for p in pairs.values()),
            f"side by side, 1 thread each, {cores} at once": side_by_side(
                [run_s(n, 1, *r) for n in per_net.values()], cores
            ),
        }
        for recipe, r in recipes.items()
    }
    return {
        "config": {k: getattr(cfg, k) for k in ("width", "image_size", "max_steps", "batch_size", "eval_every")},
        "cores": cores,
        "timed_steps": steps,
        "startup_s": start_s,
        "once_s": once,
        "nets": per_net,
        "pairs": pairs,
        "projected_demo_training_s": layouts,  # runs' start-up, steps and evaluations; not the report
    }


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import OUT_HELP, save_report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", default="8,20,44", help="the demo's depths (default 8,20,44)")
    p.add_argument("--steps", type=int, default=8, help="timed training steps per net and setting (default 8)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a demo preset field")
    p.add_argument("--out", default=None, help=OUT_HELP)
    args = p.parse_args(argv)
    overrides = {k: _parse_value(v) for k, _, v in (s.partition("=") for s in args.set)}
    load_before = os.getloadavg()
    report = profile([int(d) for d in args.depths.split(",")], args.steps, overrides)
    report["command"] = "python -m benchmarks.demo_profile " + " ".join(argv if argv is not None else sys.argv[1:])
    report["load_average"] = {"start": load_before, "end": os.getloadavg()}
    cores = report["cores"]
    for name, net in report["nets"].items():
        one, all_ = net["per_step_s"]["1 thread(s)"], net["per_step_s"][f"{cores} thread(s)"]
        parts = "  ".join(f"{p} {1000 * one[p]['wall']:.0f}" for p in PARTS)
        print(
            f"{name:<10} per step, ms on 1 thread: {parts}  (cpu {1000 * sum(v['cpu'] for v in one.values()):.0f}); "
            f"on {cores}: {1000 * sum(v['wall'] for v in all_.values()):.0f}"
        )
    for key, value in report["startup_s"].items():
        print(f"start-up  {key:<46} {value:6.2f}s")
    for recipe, layouts in report["projected_demo_training_s"].items():
        for key, value in layouts.items():
            print(f"projected demo training, {recipe}, {key:<36} {value:7.0f}s")
    save_report(report, args.out, "demo_profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
