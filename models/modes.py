"""Run a model in a chosen train/eval mode and give every submodule its own mode back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def temporary_mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Put `model` in train or eval mode for the block, restoring each submodule's flag even if it was mixed."""
    saved = [(module, module.training) for module in model.modules()]
    try:
        model.train(training)
        yield model
    finally:
        for module, flag in saved:
            module.training = flag
