"""A small fake run store for the analysis tests and notebooks, written through the real RunDir writer.

CIFAR-10: plain and ResNet at 20 and 56, ResNet-110 with two seeds, a failed plain-110 and a running ResNet-1202.
ImageNet: plain and ResNet at 18 and 34, and ResNet-34 with shortcuts B and C. Errors decay smoothly towards a
chosen final value; with ``degraded=True`` plain-56 ends well above plain-20 in training error, otherwise level.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.config import config_from_dict, run_name
from experiments.store import STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING, RunDir

CIFAR_STEPS = 20_000
CIFAR_LOG_EVERY = 1_000
CIFAR_EVAL_EVERY = 4_000
IMAGENET_STEPS = 50_000
IMAGENET_LOG_EVERY = 5_000

# (arch, depth, seed): (final train error, final test error)
CIFAR_FINALS = {
    ("plain", 20, 0): (5.0, 9.0),
    ("plain", 56, 0): (11.0, 14.0),
    ("resnet", 20, 0): (5.0, 8.5),
    ("resnet", 56, 0): (3.0, 7.0),
    ("resnet", 110, 0): (2.0, 6.4),
    ("resnet", 110, 1): (2.4, 6.6),
}
LEVEL_PLAIN56 = (5.2, 9.5)
# (arch, depth, shortcut): (final top-1 val, top-5 val, top-1 10-crop, top-5 10-crop, final train)
IMAGENET_FINALS = {
    ("plain", 18, None): (29.0, 10.5, 28.0, 9.8, 27.0),
    ("plain", 34, None): (29.5, 10.9, 28.6, 10.1, 28.5),
    ("resnet", 18, "A"): (28.9, 10.0, 27.9, 9.5, 26.0),
    ("resnet", 34, "A"): (26.0, 8.5, 25.1, 7.8, 23.0),
    ("resnet", 34, "B"): (25.5, 8.2, 24.6, 7.5, 22.5),
    ("resnet", 34, "C"): (25.2, 8.1, 24.3, 7.4, 22.0),
}


def _decay(step: int, total: int, start: float, final: float) -> float:
    return final + (start - final) * math.exp(-5.0 * step / total)


def _layer_names(depth: int) -> list[str]:
    """The probe's layer names for a CIFAR net: the stem BN, then two BNs per basic block."""
    blocks = (depth - 2) // 6
    return ["bn1"] + [f"stages.{s}.{b}.bn{i}" for s in range(3) for b in range(blocks) for i in (1, 2)]


def _responses(arch: str, depth: int, scale: float) -> list[tuple[int, str, float]]:
    names = _layer_names(depth)
    base = 2.0 if arch == "plain" else 1.5 * (20 / depth) ** 0.5
    return [(i + 1, n, scale * base * (1.0 + 0.3 * math.sin(i))) for i, n in enumerate(names)]


def _config(**fields: Any) -> tuple[dict[str, Any], str]:
    cfg = config_from_dict(fields).members()[0]
    return {**cfg.to_dict(), "run_name": run_name(cfg), "family": cfg.family}, run_name(cfg)


def _write_run(root: Path, config: dict[str, Any], name: str, summary: dict[str, Any]) -> RunDir:
    run = RunDir(root / name)
    run.write_config(config)
    run.write_summary(
        {
            "arch": config["arch"],
            "depth": config["depth"],
            "shortcut": config["shortcut"],
            "dataset": config["dataset"],
            "seed": config["seed"],
            "run_name": name,
            **summary,
        }
    )
    return run


def _cifar_run(
    root: Path,
    arch: str,
    depth: int,
    seed: int,
    finals: tuple[float, float],
    dataset: str,
    status: str = STATUS_FINISHED,
    stop: int = CIFAR_STEPS,
    start_error: float = 90.0,
) -> None:
    config, name = _config(
        arch=arch,
        depth=depth,
        seed=seed,
        dataset=dataset,
        max_steps=CIFAR_STEPS,
        log_every=CIFAR_LOG_EVERY,
        eval_every=CIFAR_EVAL_EVERY,
        wandb="disabled",
    )
    train_final, test_final = finals
    summary: dict[str, Any] = {"status": status, "step": stop, "reason": None, "params": 1000 * depth, "macs": 1e6}
    run = _write_run(root, config, name, summary)
    for step in range(CIFAR_LOG_EVERY, stop + 1, CIFAR_LOG_EVERY):
        train = _decay(step, CIFAR_STEPS, start_error, train_final)
        values = {
            "epoch": step * 128 / 45_000,
            "train_error": train,
            "train_loss": train / 40,
            "lr": 0.1,
            "images_per_s": 5000.0,
        }
        if step % CIFAR_EVAL_EVERY == 0:
            values["test_error"] = _decay(step, CIFAR_STEPS, start_error, test_final)
            run.log_responses(step, _responses(arch, depth, 1.0 + (CIFAR_STEPS - step) / CIFAR_STEPS))
        run.log_metrics(step, values)
    if status == STATUS_FINISHED:
        run.update_summary(
            final_train_error=train_final, final_test_error=test_final, wall_time_s=60.0, images_per_s=5000.0
        )
    elif status == STATUS_FAILED:
        run.update_summary(reason="DivergenceError: plain training loss became nan at step 6000")


def _imagenet_run(root: Path, arch: str, depth: int, shortcut: str | None, finals: tuple[float, ...]) -> None:
    config, name = _config(
        arch=arch, depth=depth, shortcut=shortcut, dataset="imagenet", max_steps=IMAGENET_STEPS, wandb="disabled"
    )
    val1, val5, crop1, crop5, train_final = finals
    run = _write_run(root, config, name, {"status": STATUS_FINISHED, "step": IMAGENET_STEPS, "reason": None})
    for step in range(IMAGENET_LOG_EVERY, IMAGENET_STEPS + 1, IMAGENET_LOG_EVERY):
        run.log_metrics(
            step,
            {
                "train_error": _decay(step, IMAGENET_STEPS, 95.0, train_final),
                "val_error": _decay(step, IMAGENET_STEPS, 90.0, val1),
                "val_top5_error": _decay(step, IMAGENET_STEPS, 80.0, val5),
            },
        )
    run.update_summary(
        final_train_error=train_final,
        final_val_error=val1,
        final_val_top5_error=val5,
        final_test10crop_error=crop1,
        final_test10crop_top5_error=crop5,
    )


def write_store(root: Path, degraded: bool = True, dataset: str = "cifar10", imagenet: bool = True) -> Path:
    """Write the fake store under ``root/sweep`` and return that folder."""
    sweep = Path(root) / "sweep"
    for (arch, depth, seed), finals in CIFAR_FINALS.items():
        if (arch, depth) == ("plain", 56) and not degraded:
            finals = LEVEL_PLAIN56
        _cifar_run(sweep, arch, depth, seed, finals, dataset)
    _cifar_run(sweep, "plain", 110, 0, (85.0, 85.0), dataset, status=STATUS_FAILED, stop=6_000)
    _cifar_run(sweep, "resnet", 1202, 0, (3.0, 7.5), dataset, status=STATUS_RUNNING, stop=8_000)
    if imagenet:
        for (arch, depth, shortcut), finals in IMAGENET_FINALS.items():
            _imagenet_run(sweep, arch, depth, shortcut, finals)
    return sweep


class FakeWandbRun:
    """The parts of ``wandb.apis.public.Run`` the loader reads."""

    def __init__(self, name: str, config: dict, summary: dict, history: list[dict], state: str = "finished"):
        self.name, self.id, self.state = name, f"id-{name}", state
        self.config, self.summary, self._history = config, summary, history
        self.url = f"https://wandb.ai/me/degradation/runs/{self.id}"

    def history(self, samples: int = 500, pandas: bool = True) -> list[dict]:
        return list(self._history)


class FakeWandbApi:
    """``wandb.Api()`` stand-in: ``sweep(path).runs`` lists the given runs."""

    def __init__(self, runs: list[FakeWandbRun]):
        self._runs = runs
        self.asked: list[str] = []

    def sweep(self, path: str) -> Any:
        self.asked.append(path)
        return type("Sweep", (), {"runs": self._runs})()


def _decay_to(step: int, total: int, final: float, start: float = 90.0) -> float:
    """Like ``_decay``, but reaching ``final`` exactly at ``total``."""
    end = math.exp(-5.0)
    return final + (start - final) * (math.exp(-5.0 * step / total) - end) / (1 - end)


def write_nets(
    root: Path,
    finals: dict[tuple[str, int, int], float],
    dataset: str = "synthetic",
    steps: int = 2_000,
    curves: dict[tuple[str, int, int], Callable[[int], float]] | None = None,
    test_offset: float = 2.0,
    responses: dict[tuple[str, int, int], float] | None = None,
    configure: Callable[[dict[str, Any], str], tuple[dict[str, Any], str]] | None = None,
    **fields: Any,
) -> Path:
    """Finished runs of ``(arch, depth, seed): final training error``, their training error decaying from 90% to
    exactly it (or following ``curves``), a test error ``test_offset`` points above, ``fields`` as recipe overrides.
    ``responses`` gives nets a layer-response std, the same at every layer and evaluation; ``configure`` rewrites each
    run's config.json and name (keys RunConfig does not have).
    """
    log_every = steps // 20
    for (arch, depth, seed), final in finals.items():
        config, name = _config(
            arch=arch,
            depth=depth,
            seed=seed,
            dataset=dataset,
            max_steps=steps,
            log_every=log_every,
            eval_every=steps // 4,
            wandb="disabled",
            **fields,
        )
        if configure is not None:
            config, name = configure(config, name)
        run = _write_run(Path(root), config, name, {"status": STATUS_FINISHED, "step": steps, "reason": None})
        curve = (curves or {}).get((arch, depth, seed)) or (lambda step, f=final: _decay_to(step, steps, f))
        for step in range(log_every, steps + 1, log_every):
            values: dict[str, Any] = {"train_error": curve(step)}
            if step % (steps // 4) == 0:
                values["test_error"] = curve(step) + test_offset
                if (arch, depth, seed) in (responses or {}):
                    level = responses[arch, depth, seed]
                    run.log_responses(step, [(i + 1, n, level) for i, n in enumerate(_layer_names(depth))])
            run.log_metrics(step, values)
        run.update_summary(final_train_error=curve(steps), final_test_error=curve(steps) + test_offset)
    return Path(root)
