"""The phases of one run, each a short function a reader can name: prepare the run, build its parts, fit and record.

``experiments.train.train`` chains them; failure handling is in ``fit_and_record``, the one place that records why a
run stopped.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from experiments.config import ConfigError, RunConfig, fuses, run_dirs, run_name, training_precision
from experiments.config.policy import trains_on_gpu
from experiments.errors import Preempted, RunFailed
from experiments.store import MODEL_FILE, STATUS_FAILED, STATUS_FINISHED, STATUS_RUNNING, RunDir


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

    from models import Network

    nets = {}
    for member in cfg.members():
        torch.manual_seed(member.seed)
        nets[member.arch] = Network(member.network_spec())
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
        # Lightning always passes wandb.init `anonymous`, which wandb warns it ignores: nothing a user can act on
        getattr(loggers[-1], "_wandb_init", {}).pop("anonymous", None)
    return loggers


def _remember_wandb_id(loggers: list[Any], runs: dict[str, RunDir]) -> None:
    """Keep the W&B run id beside the checkpoints (a resumed run continues that W&B run). A pair's one W&B run lives
    in its first member's folder, so every member's summary names it and where its files are (wandb_run_id,
    wandb_dir relative to the member's folder)."""
    from pytorch_lightning.loggers import WandbLogger

    from experiments.store import atomic_write_text

    first = next(iter(runs.values()))
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            wandb_run = logger.experiment
            atomic_write_text(first.wandb_id_path, wandb_run.id + "\n")
            for member in runs.values():
                where = os.path.relpath(wandb_run.settings.sync_dir, member.path)
                member.update_summary(wandb_run_id=wandb_run.id, wandb_dir=where)


def _record(runs: dict[str, RunDir], rank_zero: bool, status: str, reason: str, step: int, wall: float) -> None:
    """Write why a run stopped, and the wall time it has used so far, into every member's summary (rank zero)."""
    if not rank_zero:
        return
    stamp = {"finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")} if status == STATUS_FAILED else {}
    for run in runs.values():
        run.update_summary(status=status, reason=reason, step=step, wall_time_s=wall, **stamp)


@dataclass
class Prepared:
    """A run's folders and where it starts: its member runs, the checkpoint it resumes from, its earlier wall time."""

    cfg: RunConfig
    runs: dict[str, RunDir]
    fused: bool
    rank_zero: bool
    ckpt: Path | None = None
    start_step: int = 0
    earlier_wall: float = 0.0

    @property
    def ckpt_run(self) -> RunDir:
        """The member whose folder holds the run's checkpoints (a pair's plain member)."""
        return next(iter(self.runs.values()))

    def finished(self) -> bool:
        return all(r.status() == STATUS_FINISHED for r in self.runs.values())


@dataclass
class Parts:
    """What ``fit_and_record`` drives: the data, the LightningModule, the loggers and the Trainer."""

    data: Any
    module: Any
    loggers: list[Any]
    trainer: Any


def _check_device(cfg: RunConfig) -> None:
    """A run that asks for a GPU on a machine without one fails before anything is written, never trains on CPU."""
    import torch

    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"accelerator {cfg.accelerator!r} asks for a GPU, but this machine has no CUDA GPU visible; "
            "use --accelerator auto or cpu"
        )


def device_description(cfg: RunConfig) -> str:
    """What the run trains on, for its summary: 'cuda: 1 x NVIDIA H100 80GB HBM3' or 'cpu: x86_64, 2 threads'."""
    import torch

    if trains_on_gpu(cfg):
        return f"cuda: {world_size(cfg)} x {torch.cuda.get_device_name(torch.cuda.current_device())}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def prepare(cfg: RunConfig, resume: bool, echo=print) -> Prepared:
    """Check the folders can be written and find the checkpoint to resume from (none when ``resume`` is off)."""
    from experiments.training.resume import checkpoint_step, find_resume_checkpoint

    _check_device(cfg)
    paths = run_dirs(cfg)
    for path in paths:
        _check_writable(path)
    runs = {m.arch: RunDir(p) for m, p in zip(cfg.members(), paths, strict=True)}
    prep = Prepared(cfg, runs, fuses(cfg), _is_rank_zero())
    if resume and not prep.finished():
        prep.ckpt = find_resume_checkpoint(prep.ckpt_run, list(runs), warn=echo, member_dirs=paths)
    if prep.ckpt:
        prep.start_step = checkpoint_step(prep.ckpt)
        prep.earlier_wall = (prep.ckpt_run.read_summary() or {}).get("wall_time_s") or 0.0
    return prep


def _start_summaries(prep: Prepared, counts: dict[str, dict[str, int]], echo) -> None:
    """Write each member's config.json and a 'running' summary.json, and cut the logs back to the start step."""
    cfg, ckpt = prep.cfg, prep.ckpt
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for member in cfg.members():
        run = prep.runs[member.arch]
        run.write_config({**member.resolved().to_dict(), "run_name": run.name, "family": member.family})
        run.truncate_after(prep.start_step)
        partner = [r.name for a, r in prep.runs.items() if a != member.arch]
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
                "step": prep.start_step,
                "wall_time_s": prep.earlier_wall,
                "resumed_from": str(ckpt) if ckpt else None,
                "paired_with": partner[0] if partner else None,
                "checkpoint_dir": str(prep.ckpt_run.checkpoint_dir),
                **counts[member.arch],
                "precision": resolve_precision(cfg),
                "device": device_description(cfg),
                "fused": prep.fused,
                "git_commit": _git_commit(),
                "versions": _versions(),
                "started_at": started,
                "host": platform.node(),
            }
        )
    if ckpt:
        echo(f"resuming {prep.ckpt_run.path} from {ckpt.name} (step {prep.start_step})")


def _hard_stop_recorder(prep: Prepared):
    """What a second Ctrl-C records before the process exits at once: the run stays resumable (status running)."""
    started = time.perf_counter()

    def record(reason: str, step: int) -> None:
        wall = prep.earlier_wall + time.perf_counter() - started
        _record(prep.runs, prep.rank_zero, STATUS_RUNNING, reason, step, wall)

    return record


def build(prep: Prepared, echo=print) -> Parts:
    """Seed, build the data and the networks, record the run's start, and assemble the module and the Trainer."""
    import pytorch_lightning as pl
    import torch

    from experiments.data.datamodules import build_datamodule
    from experiments.training.callbacks import LineProgress, Preemption, StepProgressBar, TrainingWindow
    from experiments.training.module import DegradationModule
    from models import count_macs, count_params

    cfg = prep.cfg
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if not trains_on_gpu(cfg):
        torch.set_flush_denormal(True)  # tiny gradients after an lr drop are denormal and 40x slower on CPU
    data = build_datamodule(cfg)
    nets = build_networks(cfg)
    counts = {n: {"params": count_params(net), "macs": count_macs(net, cfg.input_shape)} for n, net in nets.items()}
    if prep.rank_zero:
        _start_summaries(prep, counts, echo)
    probe = data.probe_images(cfg.response_images) if cfg.response_images else None
    labels = data.probe_labels(cfg.response_images) if cfg.response_images else None
    module = DegradationModule(
        cfg, nets, train_size=data.train_size, eval_names=data.eval_names, probe_images=probe, probe_labels=labels
    )
    loggers = _make_loggers(cfg, prep.runs, paired=len(nets) > 1)
    checkpointing = pl.callbacks.ModelCheckpoint(
        dirpath=prep.ckpt_run.checkpoint_dir,
        filename="{step}",
        every_n_train_steps=cfg.checkpoint_every,
        save_top_k=2,
        monitor="step",
        mode="max",
        enable_version_counter=False,
    )
    interactive = cfg.progress == "on" or (cfg.progress == "auto" and sys.stderr.isatty() and not os.environ.get("CI"))
    callbacks = [TrainingWindow(), Preemption(prep.ckpt_run.checkpoint_dir, _hard_stop_recorder(prep)), checkpointing]
    callbacks += [StepProgressBar()] if interactive else [LineProgress(echo)]
    trainer = build_trainer(cfg, loggers, callbacks, interactive, str(prep.ckpt_run.path))
    if prep.rank_zero:
        _remember_wandb_id(loggers, prep.runs)
    return Parts(data, module, loggers, trainer)


def _fit(prep: Prepared, parts: Parts) -> None:
    """Train to max_steps, evaluate at the end if the last evaluation fell earlier, and save the final checkpoint."""
    cfg, trainer, module, data = prep.cfg, parts.trainer, parts.module, parts.data
    ckpt = str(prep.ckpt) if prep.ckpt else None
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
    except SystemExit as e:  # Lightning's own exits, where Preemption's handlers were not set yet (before training)
        if type(e).__name__ == "SIGTERMException":
            raise Preempted(
                f"stopped by SIGTERM at step {trainer.global_step}; re-run the same command to resume from the newest "
                "checkpoint"
            ) from None
        if trainer.interrupted:  # a Ctrl-C Lightning caught: it exits 1
            raise KeyboardInterrupt from None
        raise
    if trainer.interrupted:
        raise KeyboardInterrupt
    if cfg.max_steps % cfg.eval_every:
        trainer.validate(module, datamodule=data, verbose=False)
    if cfg.dataset in ("imagenet", "folder") and cfg.test_crops == 10 and cfg.resolved_augment == "imagenet":
        trainer.test(module, datamodule=data, verbose=False)
    final = prep.ckpt_run.checkpoint_dir / f"step={cfg.max_steps}.ckpt"
    if not final.exists():
        trainer.save_checkpoint(final, weights_only=False)  # the full state (an explicit choice: no log line)


def fit_and_record(prep: Prepared, parts: Parts) -> dict[str, dict[str, Any]]:
    """Fit, record why the run stopped if it did (running for a pause, failed for an error), else save the final
    weights and the finished summaries; returns each member's summary keyed by run name."""
    import torch

    cfg, trainer, module = prep.cfg, parts.trainer, parts.module
    t0 = time.perf_counter()

    def elapsed() -> float:
        return prep.earlier_wall + time.perf_counter() - t0

    try:
        _fit(prep, parts)
    except (KeyboardInterrupt, Preempted) as e:
        reason = str(e) if isinstance(e, Preempted) else "interrupted; re-run the same command to resume it"
        _record(prep.runs, prep.rank_zero, STATUS_RUNNING, reason, trainer.global_step, elapsed())
        raise
    except torch.OutOfMemoryError as e:
        reason = (
            f"out of memory at batch_size {cfg.batch_size} ({cfg.batch_size // world_size(cfg)} per device) on "
            f"{trainer.strategy.root_device}; lower --batch_size or spread it over more --devices"
        )
        _record(prep.runs, prep.rank_zero, STATUS_FAILED, reason, trainer.global_step, elapsed())
        raise RunFailed(reason) from e
    except Exception as e:
        _record(prep.runs, prep.rank_zero, STATUS_FAILED, f"{type(e).__name__}: {e}", trainer.global_step, elapsed())
        raise
    summaries = {}
    if trainer.is_global_zero:
        trained = module.member_networks()
        for name, run in prep.runs.items():
            run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            torch.save(trained[name].state_dict(), run.checkpoint_dir / MODEL_FILE)
            final_metrics = {
                f"final_{k}": v for k, v in module.last[name].items() if k not in ("epoch", "lr", "images_per_s")
            }
            summaries[run.name] = run.update_summary(
                status=STATUS_FINISHED,
                reason=None,
                step=trainer.global_step,
                wall_time_s=elapsed(),
                images_per_s=module.mean_images_per_s,
                epochs=trainer.global_step * cfg.batch_size / parts.data.train_size,
                finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                **final_metrics,
            )
    for logger in parts.loggers:
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
    # Nothing a user can act on: the run's checkpoint folder holds its W&B id before the first checkpoint, and a
    # SLURM machine is a place to train on, not a reason to use srun (sweeps submit with --slurm).
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system but is not used.*")
