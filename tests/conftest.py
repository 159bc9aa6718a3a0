"""Shared pytest fixtures: every test starts from the same random state."""

import random

import pytest


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed Python's and torch's generators so each test is deterministic on its own."""
    import torch

    random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def torch_single_thread():
    """Run torch on one thread: tiny batches gain nothing from more, and on a shared CPU OpenMP ops slow tenfold."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
