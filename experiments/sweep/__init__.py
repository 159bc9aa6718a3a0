"""Sweeps: W&B sweep files expanded locally (spec), the local runner, W&B agents, and the dry-run plan."""
