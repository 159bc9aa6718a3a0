"""One run: a config in, a finished run directory out.

    python -m experiments.train --arch plain --depth 56 --preset cifar10-paper --out runs/demo/plain-56

Re-running the same command resumes from the newest good checkpoint; a finished run is left as it is.
Bad input exits with code 2 and one line, before any directory is created.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.config import (
    ConfigError,
    RunConfig,
    config_from_dict,
    describe_fields,
    fuses,
    parse_cli,
    run_dirs,
    run_name,
    training_precision,
)
from experiments.config.policy import trains_on_gpu
from experiments.data.sources import DataError
from experiments.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_STOPPED, Preempted, RunFailed
from experiments.store import MODEL_FILE, STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING, RunDir

USAGE = "usage: python -m experiments.train --name=value ... [--no-wandb] [--resume]\n\nfields (see README):\n"


def world_size(cfg: RunConfig) -> int:
    return cfg.devices * cfg.num_nodes


def _is_rank_zero() -> bool:
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    import pytorch_lightning
    import torch
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pytorch_lightning": pytorch_lightning.__version__,
    }


def _check_writable(path: Path) -> None:
    """Fail before training if the run directory cannot be created or written."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"out: cannot write {path} ({probe} is not a writable folder); choose another --out or --runs_dir"
        )


def resolve_precision(cfg: RunConfig) -> str:
    """The run's precision on this machine (config.training_precision): fp32 for the paper presets everywhere."""
    return training_precision(cfg, trains_on_gpu(cfg))


def build_trainer(
    cfg: RunConfig, loggers: list[Any], callbacks: list[Any], progress_bar: bool, root: str | None = None
):
    """The Lightning Trainer of a run: iteration-counted, evaluated every ``eval_every`` steps, DDP when asked."""
    import pytorch_lightning as pl

    on_cpu = not trains_on_gpu(cfg)
    world = world_size(cfg)
    return pl.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy="ddp" if world > 1 else "auto",
        precision=resolve_precision(cfg),
        max_steps=cfg.max_steps,
        max_epochs=-1,
        val_check_interval=cfg.eval_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=callbacks,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
        deterministic=on_cpu,
        log_every_n_steps=cfg.log_every,
        default_root_dir=root,
        benchmark=not on_cpu,
    )


def build_networks(cfg: RunConfig) -> dict[str, Any]:
    """One network per member, each seeded as a standalone run, so a pair's members equal their single runs."""
    import torch

    from models import build_model

    nets = {}
    for member in cfg.members():
        torch.manual_seed(member.seed)
        nets[member.arch] = build_model(
            member.arch,
            member.depth,
            member.family,
            shortcut=member.shortcut,
            stride_in=member.stride_in,
            width=member.width,
            num_classes=member.resolved_num_classes,
            zero_init_residual=member.zero_init_residual,
        )
    return nets


def _make_loggers(cfg: RunConfig, runs: dict[str, RunDir], paired: bool) -> list[Any]:
    from experiments.store.logger import RunStoreLogger

    routes = runs if paired else {"": next(iter(runs.values()))}
    loggers: list[Any] = [RunStoreLogger(routes)]
    if cfg.wandb != "disabled":
        from pytorch_lightning.loggers import WandbLogger

        first = next(iter(runs.values()))
        run_id = first.wandb_id_path.read_text().strip() if first.wandb_id_path.exists() else None
        name = run_name(cfg) if paired else first.name
        loggers.append(
            WandbLogger(
                project=cfg.wandb_project,
                entity=cfg.wandb_entity,
                name=name,
                group=cfg.sweep,
                save_dir=str(first.path),
                mode=cfg.wandb,
                id=run_id,
                resume="allow",
                config=cfg.to_dict(),
            )
        )
    return loggers


def _remember_wandb_id(loggers: list[Any], run: RunDir) -> None:
    from pytorch_lightning.loggers import WandbLogger

    from experiments.store import atomic_write_text

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            atomic_write_text(run.wandb_id_path, logger.experiment.id + "\n")


def _record(runs: dict[str, RunDir], rank_zero: bool, status: str, reason: str, step: int, wall: float) -> None:
    """Write why a run stopped, and the wall time it has used so far, into every member's summary (rank zero)."""
    if not rank_zero:
        return
    stamp = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")} if status == STATUS_FAILED else {}
    for run in runs.values():
        run.update_summary(status=status, reason=reason, step=step, wall_time_s=wall, **stamp)


def train(cfg: RunConfig, resume: bool = True, echo=print) -> dict[str, dict[str, Any]]:
    """Train ``cfg`` to completion and return each member's summary, keyed by run directory name."""
    import pytorch_lightning as pl
    import torch

    from experiments.data.datamodules import build_datamodule
    from experiments.training.callbacks import LineProgress, Preemption, TrainingWindow
    from experiments.training.module import DegradationModule
    from experiments.training.resume import checkpoint_step, find_resume_checkpoint
    from models import count_macs, count_params

    members = cfg.members()
    fused = fuses(cfg)
    paths = run_dirs(cfg)
    for path in paths:
        _check_writable(path)
    runs = {m.arch: RunDir(p) for m, p in zip(members, paths, strict=True)}
    rank_zero = _is_rank_zero()

    if resume and all(r.status() == STATUS_FINISHED for r in runs.values()):
        echo(f"already finished: {', '.join(str(r.path) for r in runs.values())}")
        return {r.name: r.read_summary() for r in runs.values()}

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if not trains_on_gpu(cfg):
        torch.set_flush_denormal(True)  # tiny gradients after an lr drop are denormal and 40x slower on CPU
    data = build_datamodule(cfg)
    nets = build_networks(cfg)
    paired = len(nets) > 1
    shape = cfg.input_shape
    counts = {name: {"params": count_params(net), "macs": count_macs(net, shape)} for name, net in nets.items()}

    ckpt_run = runs[members[0].arch]
    ckpt = find_resume_checkpoint(ckpt_run, warn=echo) if resume else None
    start_step = checkpoint_step(ckpt) if ckpt else 0
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    earlier_wall = ((ckpt_run.read_summary() or {}).get("wall_time_s") or 0.0) if ckpt else 0.0
    if rank_zero:
        for member in members:
            run = runs[member.arch]
            run.write_config({**member.to_dict(), "run_name": run.name, "family": member.family})
            run.truncate_after(start_step)
            partner = [r.name for a, r in runs.items() if a != member.arch]
            run.write_summary(
                {
                    "status": STATUS_RUNNING,
                    "reason": None,
                    "run_name": run.name,
                    "arch": member.arch,
                    "depth": member.depth,
                    "shortcut": member.shortcut,
                    "dataset": member.dataset,
                    "seed": member.seed,
                    "max_steps": member.max_steps,
                    "step": start_step,
                    "wall_time_s": earlier_wall,
                    "resumed_from": str(ckpt) if ckpt else None,
                    "paired_with": partner[0] if partner else None,
                    "checkpoint_dir": str(ckpt_run.checkpoint_dir),
                    **counts[member.arch],
                    "precision": resolve_precision(cfg),
                    "fused": fused,
                    "git_commit": _git_commit(),
                    "versions": _versions(),
                    "started_at": started,
                    "host": platform.node(),
                }
            )
        if ckpt:
            echo(f"resuming {ckpt_run.path} from {ckpt.name} (step {start_step})")

    probe = data.probe_images(cfg.response_images) if cfg.response_images else None
    module = DegradationModule(cfg, nets, train_size=data.train_size, eval_names=data.eval_names, probe_images=probe)
    loggers = _make_loggers(cfg, runs, paired)
    checkpointing = pl.callbacks.ModelCheckpoint(
        dirpath=ckpt_run.checkpoint_dir,
        filename="{step}",
        every_n_train_steps=cfg.checkpoint_every,
        save_top_k=2,
        monitor="step",
        mode="max",
        enable_version_counter=False,
    )
    interactive = cfg.progress == "on" or (cfg.progress == "auto" and sys.stderr.isatty() and not os.environ.get("CI"))
    callbacks = [TrainingWindow(), Preemption(ckpt_run.checkpoint_dir), checkpointing]
    callbacks += [] if interactive else [LineProgress(echo)]
    trainer = build_trainer(cfg, loggers, callbacks, interactive, str(ckpt_run.path))
    if rank_zero:
        _remember_wandb_id(loggers, ckpt_run)
    t0 = time.perf_counter()

    def elapsed() -> float:
        return earlier_wall + time.perf_counter() - t0

    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
        if trainer.interrupted:
            raise KeyboardInterrupt
        if cfg.max_steps % cfg.eval_every:
            trainer.validate(module, datamodule=data, verbose=False)
        if cfg.dataset == "imagenet" and cfg.test_crops == 10:
            trainer.test(module, datamodule=data, verbose=False)
        final = ckpt_run.checkpoint_dir / f"step={cfg.max_steps}.ckpt"
        if not final.exists():
            trainer.save_checkpoint(final)
    except (KeyboardInterrupt, Preempted) as e:
        reason = str(e) if isinstance(e, Preempted) else "interrupted; re-run the same command to resume"
        _record(runs, rank_zero, STATUS_RUNNING, reason, trainer.global_step, elapsed())
        raise
    except torch.OutOfMemoryError as e:
        reason = (
            f"out of memory at batch_size {cfg.batch_size} ({cfg.batch_size // world_size(cfg)} per device) on "
            f"{trainer.strategy.root_device}; lower --batch_size or spread it over more --devices"
        )
        _record(runs, rank_zero, STATUS_FAILED, reason, trainer.global_step, elapsed())
        raise RunFailed(reason) from e
    except Exception as e:
        _record(runs, rank_zero, STATUS_FAILED, f"{type(e).__name__}: {e}", trainer.global_step, elapsed())
        raise
    wall = time.perf_counter() - t0
    summaries = {}
    if trainer.is_global_zero:
        trained = module.member_networks()
        for name, run in runs.items():
            run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            torch.save(trained[name].state_dict(), run.checkpoint_dir / MODEL_FILE)
            final_metrics = {
                f"final_{k}": v for k, v in module.last[name].items() if k not in ("epoch", "lr", "images_per_s")
            }
            summaries[run.name] = run.update_summary(
                status=STATUS_FINISHED,
                reason=None,
                step=trainer.global_step,
                wall_time_s=earlier_wall + wall,
                images_per_s=module.mean_images_per_s,
                epochs=trainer.global_step * cfg.batch_size / data.train_size,
                finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                **final_metrics,
            )
    for logger in loggers:
        logger.finalize("success")
    return summaries


def quiet_lightning() -> None:
    """Keep Lightning's start-up banners and known deprecation chatter out of run logs."""
    import logging
    import warnings

    for name in ("pytorch_lightning.utilities.rank_zero", "pytorch_lightning.accelerators.cuda", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: parse, validate, train; bad input exits 2 with one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_lightning()
    if "-h" in argv or "--help" in argv:
        print(USAGE + describe_fields())
        return 0
    resume = True
    if "--resume" in argv:
        argv.remove("--resume")
    if "--no-wandb" in argv:
        argv.remove("--no-wandb")
        argv.append("--wandb=disabled")
    try:
        cfg = config_from_dict(parse_cli(argv))
        summaries = train(cfg, resume=resume)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except Preempted as e:
        print(f"pre-empted: {e}", file=sys.stderr)
        return EXIT_STOPPED
    except Exception as e:  # noqa: BLE001 - recorded in summary.json; the CLI reports it in one line
        print(f"run failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    for name, summary in summaries.items():
        errs = ", ".join(
            f"{k[6:]} {v:.2f}%"
            for k, v in summary.items()
            if k.startswith("final_") and k.endswith("_error") and v is not None
        )
        print(f"{name}: {summary['status']} at step {summary['step']} ({errs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
