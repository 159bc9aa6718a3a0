"""What the everyday loop writes inside a checkout stays out of ``git status``: run stores, W&B and Lightning files,
and what ``jupyter nbconvert`` writes beside a notebook; the notebooks themselves stay tracked."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import REPO

NOTEBOOKS = sorted((REPO / "analysis" / "notebooks").glob("*.ipynb"))
WRITTEN = [
    "runs/demo/plain-8-s0-5fa10fce/summary.json",
    "wandb/offline-run-20260101_000000-abc/files/config.yaml",
    "lightning_logs/version_0/hparams.yaml",
    "analysis/notebooks/fig6.html",  # the README's `jupyter nbconvert --to html --execute ...fig6.ipynb`
    "analysis/notebooks/fig6.nbconvert.ipynb",  # --to notebook
    "analysis/notebooks/fig6.md",  # --to markdown, with its figures in fig6_files/
    "analysis/notebooks/fig6_files/fig6_1_0.png",
    "analysis/notebooks/fig6.pdf",
    "analysis/notebooks/fig6.py",  # --to script
    "analysis/notebooks/.ipynb_checkpoints/fig6-checkpoint.ipynb",
]


def _ignored(paths: list[str]) -> set[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 1), done.stderr
    return set(done.stdout.split())


def test_what_runs_and_nbconvert_write_is_ignored_and_the_notebooks_are_not():
    assert NOTEBOOKS, "the notebooks are where the README says"
    notebooks = [str(p.relative_to(REPO)) for p in NOTEBOOKS]
    assert _ignored(WRITTEN + notebooks) == set(WRITTEN)
