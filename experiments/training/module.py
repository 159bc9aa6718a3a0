"""The LightningModule: trains one network, or a plain/residual pair on identical mini-batches.

Networks are injected. Each member has its own parameter group in one SGD optimizer, so the pair shares data
but not learning rates: each group follows its own ``LRPolicy`` (and its own ResNet-110 warm-up). With
``fuse`` the pair is computed by one ``FusedNetwork`` in one group instead (only where both lrs are equal at
every step); checkpoints keep the members' layout either way. Training errors are accumulated on the device
and read once per logging window, so there is no host sync per step. At evaluations (and, for the signal
statistics, at step 0) each member is probed on fixed images: layer responses and forward/backward signals.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from experiments.config import RunConfig, fuses, uses_channels_last
from experiments.errors import DivergenceError
from experiments.store.logger import RunStoreLogger, member_key
from experiments.training import fusion
from experiments.training.schedule import LRPolicy
from models import layer_responses
from models.fused import FusedNetwork
from models.signals import signal_statistics, signal_summary


class DegradationModule(pl.LightningModule):
    """Plain and/or residual networks trained with the paper's SGD recipe; one shared step for all splits."""

    def __init__(
        self,
        cfg: RunConfig,
        nets: dict[str, nn.Module],
        train_size: int,
        eval_names: list[str],
        probe_images: torch.Tensor | None = None,
        probe_labels: torch.Tensor | None = None,
        signals: bool = True,
    ):
        super().__init__()
        self.cfg = cfg
        self.nets = nn.ModuleDict(nets)
        self.paired = len(nets) > 1
        self.train_size = train_size
        self.eval_names = eval_names
        self.policies = {m.arch: LRPolicy.from_config(m) for m in cfg.members()}
        self.register_buffer("probe_images", probe_images, persistent=False)
        self.register_buffer("probe_labels", probe_labels, persistent=False)
        self.signals = signals
        self.topk = 5 if cfg.resolved_num_classes > 10 else 1
        self.last: dict[str, dict[str, float]] = {name: {} for name in nets}
        self.fused = FusedNetwork(list(nets.values())) if fuses(cfg) else None
        if self.fused is not None:
            self.nets.requires_grad_(False)
            self.register_state_dict_post_hook(_state_in_member_layout)
            self.register_load_state_dict_pre_hook(_state_in_fused_layout)
        self._forward = {fusion.FUSED: self.fused} if self.fused is not None else dict(self.nets.items())
        self._window: dict[str, torch.Tensor] = {}
        self._bad_step: dict[str, torch.Tensor] = {}
        self._window_seconds = 0.0
        self._eval: dict[tuple[str, str], torch.Tensor] = {}
        self._images_per_s: list[float] = []

    # -- setup ---------------------------------------------------------------------------------------------------

    @property
    def channels_last(self) -> bool:
        return uses_channels_last(self.cfg, self.device.type == "cuda")

    def setup(self, stage: str) -> None:
        if self.cfg.compile != "off":
            self._forward = {name: torch.compile(net, mode=self.cfg.compile) for name, net in self._forward.items()}

    def on_fit_start(self) -> None:
        if self.channels_last:
            self.nets.to(memory_format=torch.channels_last)
            if self.fused is not None:
                self.fused.to(memory_format=torch.channels_last)

    def _policy(self, group: str) -> LRPolicy:
        """The lr policy of a parameter group: its member's, or the first member's for the fused group."""
        return self.policies[next(iter(self.nets)) if group == fusion.FUSED else group]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.fused is not None:
            lr = self._policy(fusion.FUSED).lr(0)
            groups = [{"params": list(self.fused.parameters()), "lr": lr, "name": fusion.FUSED}]
        else:
            groups = [
                {"params": list(net.parameters()), "lr": self.policies[name].lr(0), "name": name}
                for name, net in self.nets.items()
            ]
        fused = {"fused": True} if torch.cuda.is_available() and self.device.type == "cuda" else {}
        return torch.optim.SGD(
            groups, lr=self.cfg.lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay, **fused
        )

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        """``grad_clip``: each member's gradient scaled to at most that L2 norm, on its own (a pair's two nets are
        clipped apart, as if each trained alone); nothing without it (the paper's SGD)."""
        if self.cfg.grad_clip is None:
            return
        for net in self.nets.values():
            nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)

    # -- training ------------------------------------------------------------------------------------------------

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _zero_window(self) -> None:
        self._window = {name: torch.zeros(3, device=self.device, dtype=torch.float64) for name in self.nets}
        self._window_seconds = 0.0

    def on_train_start(self) -> None:
        if self._window:
            self._window = {name: w.to(self.device) for name, w in self._window.items()}
        else:
            self._zero_window()
        if self.global_step == 0:
            self._probe_signals(0)
        self._tick = time.perf_counter()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        step = self.global_step
        for group in self.trainer.optimizers[0].param_groups:
            group["lr"] = self._policy(group["name"]).lr(step)

    def _member_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each member's logits for one batch: one fused forward, or one forward per network."""
        if self.fused is not None:
            return dict(zip(self.nets, self._forward[fusion.FUSED](x).unbind(0), strict=True))
        return {name: self._forward[name](x) for name in self.nets}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        x = self._prepare(x)
        total = 0.0
        seen = torch.full((), float(len(y)), device=self.device, dtype=torch.float64)
        for name, logits in self._member_logits(x).items():
            loss = F.cross_entropy(logits, y)
            wrong = (logits.argmax(1) != y).sum()
            self._window[name] += torch.stack([wrong.double(), seen, loss.detach().double() * len(y)])
            self._check_finite(name, loss)
            total = total + loss
        return total

    def _check_finite(self, name: str, loss: torch.Tensor) -> None:
        """Stop at the first NaN/inf loss: at once on CPU, at the window's end on GPU (where it would cost a sync)."""
        step = self.global_step + 1
        if self.device.type == "cpu":
            if not torch.isfinite(loss):
                raise DivergenceError(
                    f"{name} training loss became {loss.item()} at step {step}; lower lr or check the data"
                )
            return
        bad = torch.where(torch.isfinite(loss.detach()), torch.inf, float(step)).double()
        self._bad_step[name] = torch.minimum(self._bad_step.get(name, bad), bad)

    def end_of_step(self, step: int) -> None:
        """Close the logging window when ``step`` ends one (called by ``TrainingWindow``, before checkpointing)."""
        if step % self.cfg.log_every == 0 or step >= self.trainer.max_steps:
            self._flush_window(step)

    def _flush_window(self, step: int) -> None:
        now = time.perf_counter()
        self._window_seconds += now - self._tick
        self._tick = now
        totals = {name: self.trainer.strategy.reduce(w.clone(), reduce_op="sum") for name, w in self._window.items()}
        values = {name: t.tolist() for name, t in totals.items()}
        seen = max(v[1] for v in values.values())
        images_per_s = seen / self._window_seconds if self._window_seconds > 0 else float("nan")
        self._images_per_s.append(images_per_s)
        for name, bad in self._bad_step.items():
            if math.isfinite(first := bad.item()):
                raise DivergenceError(
                    f"{name} training loss became NaN/inf at step {int(first)}; lower lr or check the data"
                )
        metrics = {}
        for name, (wrong, n, loss_sum) in values.items():
            if n == 0:
                continue
            loss = loss_sum / n
            error = 100.0 * wrong / n
            self.policies[name].observe_train_error(step, error)
            row = {
                "epoch": step * self.cfg.batch_size / self.train_size,
                "train_error": error,
                "train_loss": loss,
                "lr": self._group_lr(name),
                "images_per_s": images_per_s,
            }
            self.last[name].update(row)
            metrics.update({member_key(name, k, self.paired): v for k, v in row.items()})
            self.log(member_key(name, "train_err", self.paired), error, prog_bar=True, logger=False)
        self.log("img/s", images_per_s, prog_bar=True, logger=False)
        self._publish(step, metrics)
        self._zero_window()

    def _group_lr(self, name: str) -> float:
        """The lr the member's last step used (its own group's, or the fused group's)."""
        groups = self.trainer.optimizers[0].param_groups
        return next(g["lr"] for g in groups if g["name"] in (name, fusion.FUSED))

    def _publish(self, step: int, metrics: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step=step)

    # -- evaluation ----------------------------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._eval_started = time.perf_counter()
        self._eval = {}

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._evaluate(self.eval_names[dataloader_idx], batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_start(self) -> None:
        self._eval = {}

    def _evaluate(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        crops = x.shape[1] if x.ndim == 5 else 1
        if crops > 1:
            x = x.flatten(0, 1)
        x = self._prepare(x)
        seen = torch.full((), float(len(y)), device=self.device, dtype=torch.float64)
        for name, logits in self._member_logits(x).items():
            logits = logits.float()
            if crops > 1:
                probs = logits.softmax(1).view(len(y), crops, -1).mean(1)
                loss = F.nll_loss(probs.clamp_min(1e-12).log(), y, reduction="sum")
            else:
                probs, loss = logits, F.cross_entropy(logits, y, reduction="sum")
            top = probs.topk(self.topk, dim=1).indices
            wrong1 = (top[:, 0] != y).sum()
            wrongk = (~(top == y[:, None]).any(1)).sum()
            stats = torch.stack([wrong1.double(), wrongk.double(), seen, loss.double()])
            key = (split, name)
            self._eval[key] = self._eval.get(key, torch.zeros_like(stats)) + stats

    def _eval_metrics(self) -> dict[str, dict[str, float]]:
        per_member: dict[str, dict[str, float]] = {name: {} for name in self.nets}
        for (split, name), stats in sorted(self._eval.items()):
            wrong1, wrongk, n, loss_sum = self.trainer.strategy.reduce(stats, reduce_op="sum").tolist()
            per_member[name][f"{split}_error"] = 100.0 * wrong1 / n
            per_member[name][f"{split}_loss"] = loss_sum / n
            if self.topk == 5:
                per_member[name][f"{split}_top5_error"] = 100.0 * wrongk / n
        return per_member

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        step = self.global_step
        per_member = self._eval_metrics()
        metrics = {}
        for name, values in per_member.items():
            policy_error = values.get("val_error", values.get("test_error", math.nan))
            self.policies[name].observe_val_error(policy_error)
            self.last[name].update(values)
            metrics.update({member_key(name, k, self.paired): v for k, v in values.items()})
            for k, v in values.items():
                if k.endswith("_error") and "top5" not in k:
                    self.log(member_key(name, k.replace("_error", "_err"), self.paired), v, prog_bar=True, logger=False)
        self._publish(step, metrics)
        self._probe_responses(step)
        self._probe_signals(step)
        if self.trainer.training:
            self._window_seconds -= time.perf_counter() - self._eval_started

    def on_test_epoch_end(self) -> None:
        per_member = self._eval_metrics()
        for name, values in per_member.items():
            self.last[name].update({k.replace("test_", "test10crop_"): v for k, v in values.items()})

    def _probe_responses(self, step: int) -> None:
        if self.probe_images is None or len(self.probe_images) == 0:
            return
        images = self._prepare(self.probe_images)
        for name, net in self.member_networks().items():
            responses = layer_responses(
                net,
                images,
                per_channel=self.cfg.response_stat == "channel",
                batch_stats=self.cfg.response_bn == "batch",
            )
            rows = [(r.index, r.name, r.std) for r in responses]
            for logger in self.loggers:
                if isinstance(logger, RunStoreLogger):
                    logger.log_responses(name if self.paired else "", step, rows)

    def _probe_signals(self, step: int) -> None:
        """Forward and backward signal statistics of each member on the probe batch (``models.signals``), into each
        member's signals.csv, with a few scalars of each (``signal_summary``) for the other loggers (W&B).

        Runs at step 0 (a fresh run's start) and at every evaluation, on rank zero only; never in a training step.
        BN uses its running statistics (``--response_bn eval``, the default) or the probe batch's (``batch``), as
        the layer-response probe does; at step 0 always the probe batch's, since running statistics that have seen
        no batch (mean 0, variance 1) would make BN the identity and show a net that training never sees. The probe
        batch goes through in chunks of the per-device training batch (at step 0 the batches BN normalises over),
        so it needs no more memory than a training step. The values come to the host once per member and probe.
        """
        if not self.signals or self.probe_images is None or self.probe_labels is None or len(self.probe_images) == 0:
            return
        if not self.trainer.is_global_zero:
            return
        chunk = max(1, self.cfg.batch_size // self.trainer.world_size)
        batch_stats = self.cfg.response_bn == "batch" or step == 0
        with torch.inference_mode(False):
            images = self._prepare(self.probe_images)
            measured = {
                name: signal_statistics(net, images, self.probe_labels, chunk_size=chunk, batch_stats=batch_stats)
                for name, net in self.member_networks().items()
            }
        summary = {
            member_key(name, f"signal_{key}", self.paired): value
            for name, signals in measured.items()
            for key, value in signal_summary(signals).items()
        }
        for logger in self.loggers:
            if isinstance(logger, RunStoreLogger):
                for name, signals in measured.items():
                    logger.log_signals(name if self.paired else "", step, [tuple(s) for s in signals])
            else:
                logger.log_metrics(summary, step=step)

    # -- state ---------------------------------------------------------------------------------------------------

    def member_networks(self) -> dict[str, nn.Module]:
        """The members as standalone networks, with the fused run's current weights copied into them."""
        if self.fused is not None:
            self.fused.split_into(list(self.nets.values()))
        return dict(self.nets.items())

    @property
    def mean_images_per_s(self) -> float:
        finite = [v for v in self._images_per_s if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else math.nan

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["lr_policies"] = {name: p.state_dict() for name, p in self.policies.items()}
        checkpoint["train_window"] = {name: w.tolist() for name, w in self._window.items()}
        checkpoint["last_metrics"] = self.last
        if self.fused is not None:
            states = checkpoint.get("optimizer_states", [])
            checkpoint["optimizer_states"] = [fusion.optimizer_to_members(state, list(self.nets)) for state in states]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.fused is not None:
            states = checkpoint.get("optimizer_states", [])
            checkpoint["optimizer_states"] = [fusion.optimizer_to_fused(state, list(self.nets)) for state in states]
        for name, state in checkpoint["lr_policies"].items():
            self.policies[name].load_state_dict(state)
        self._window = {name: torch.tensor(w, dtype=torch.float64) for name, w in checkpoint["train_window"].items()}
        self.last = {name: dict(v) for name, v in checkpoint["last_metrics"].items()}


def _state_in_member_layout(module: DegradationModule, state: dict, prefix: str, local_metadata: dict) -> None:
    fusion.to_member_layout(state, prefix, list(module.nets))


def _state_in_fused_layout(module: DegradationModule, state: dict, prefix: str, *args: Any) -> None:
    fusion.to_fused_layout(state, prefix, list(module.nets))
