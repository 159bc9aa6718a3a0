"""W&B: sweeps on W&B's server (login, dry run, agents) and offline logging of local runs, with no network.

W&B's files go only to temporary folders (WANDB_DIR, WANDB_CACHE_DIR, WANDB_CONFIG_DIR), and ``WANDB_BASE_URL``
points at a closed port, so nothing here can reach a server.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import run_sweep
from experiments.store import RunDir
from experiments.sweep import devices
from experiments.sweep import wandb_agents as ws
from experiments.sweep.runner import Slot
from experiments.sweep.spec import load_sweep, resolve_runs
from tests.helpers import REPO, cli_args, run_cli, tiny

CLOSED_PORT = "http://127.0.0.1:9"


def no_server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No W&B credentials anywhere (env, settings, .netrc), W&B's folders in ``tmp_path``, no reachable server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {**env, "PYTHONPATH": str(REPO), "HOME": str(tmp_path), "NETRC": str(tmp_path / "netrc"),
            "WANDB_BASE_URL": CLOSED_PORT, "WANDB_DIR": str(tmp_path), "WANDB_CACHE_DIR": str(tmp_path / "cache"),
            "WANDB_CONFIG_DIR": str(tmp_path / "config"), **extra}  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["sweeps/demo.yaml", "--wandb"], {}, "error: W&B is not logged in: run `wandb login` (or set WANDB_API_KEY)"),
        (["--agent", "me/degradation/abc123"], {}, "error: W&B is not logged in"),
        (["sweeps/demo.yaml", "--wandb"], {"WANDB_MODE": "offline"}, "but WANDB_MODE is 'offline'; unset it"),
    ],
    ids=["sweep", "agent", "offline"],
)
def test_wandb_mode_without_a_login_is_one_line_and_exit_2(tmp_path, args, env, message):
    result = subprocess.run(
        [sys.executable, str(REPO / "run_sweep.py"), *args, "--runs-dir", str(tmp_path / "runs")],
        cwd=REPO, env=no_server_env(tmp_path, **env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert message in lines[0]
    assert not (tmp_path / "runs").exists()


BAYES = """method: bayes
metric: {name: plain/train_error, goal: minimize}
early_terminate: {type: hyperband, min_iter: 3}
program: experiments/train.py
command:
  - ${env}
  - ${interpreter}
  - -m
  - experiments.train
  - ${args}
parameters:
  sweep: {value: tune}
  preset: {value: demo}
  arch: {value: pair}
  lr: {distribution: log_uniform_values, min: 0.01, max: 0.5}
"""


@pytest.fixture
def fake_wandb(monkeypatch):
    """W&B's API replaced: ``wandb.sweep`` records what it is given, login succeeds, agents are fake processes."""
    import wandb

    calls = {"created": [], "started": []}

    class Agent:
        def wait(self):
            return 0

    monkeypatch.setattr(ws, "require_login", lambda: None)
    monkeypatch.setattr(devices, "visible_gpus", lambda: [])  # agents on --jobs CPU slots, GPUs or not
    monkeypatch.setattr(wandb, "sweep", lambda sweep, project, entity: calls["created"].append(sweep) or "abc")
    popen = SimpleNamespace(Popen=lambda cmd, env: calls["started"].append((cmd, env)) or Agent())
    monkeypatch.setattr(ws, "subprocess", popen)  # the agents module's processes only
    return calls


def test_bayes_with_hyperband_starts_with_wandb_and_its_dry_run_creates_nothing(tmp_path, capsys, fake_wandb):
    path = tmp_path / "tune.yaml"
    path.write_text(BAYES)
    assert run_sweep.main([str(path), "--wandb", "--dry-run", "--entity", "me"]) == 0
    assert "nothing created" in capsys.readouterr().out
    assert fake_wandb["created"] == [] and fake_wandb["started"] == []
    assert run_sweep.main([str(path), "--wandb", "--entity", "me", "--jobs", "2"]) == 0
    ((sweep,),) = [fake_wandb["created"]]
    assert (sweep["method"], sweep["early_terminate"]["type"], sweep["name"]) == ("bayes", "hyperband", "tune")
    assert [cmd[-1] for cmd, _ in fake_wandb["started"]] == ["me/degradation/abc"] * 2


@pytest.mark.integration
def test_agents_run_with_this_environments_python(tmp_path):
    assert ws.agent_command("me/p/abc")[:4] == [sys.executable, "-m", "wandb", "agent"]
    env = ws.agent_env(Slot(None, 1), base={"PATH": "/usr/bin:/bin"})  # as if no virtualenv were activated
    out = subprocess.run(  # what the agent makes of the sweep's `${env} ${interpreter}`
        ["/usr/bin/env", "python", "-c", "import sys; print(sys.prefix)"], env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == sys.prefix, out.stderr


@pytest.mark.integration
def test_an_interpreter_not_called_python_gets_a_python_on_the_agents_path(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "python3.11"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho this-interpreter "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    monkeypatch.setattr(ws, "_shim_dir", None)
    env = ws.agent_env(Slot(None, 1), base={"PATH": "/usr/bin:/bin"})
    out = subprocess.run(["/usr/bin/env", "python", "-m", "x"], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "this-interpreter -m x"


@pytest.mark.integration
def test_an_agent_killed_by_a_signal_counts_as_failed(monkeypatch):
    monkeypatch.setattr(ws, "require_login", lambda: None)
    scripts = iter(["exit 0", "kill -9 $$"])
    lines = []

    def popen(cmd, env):
        return subprocess.Popen(["/bin/sh", "-c", next(scripts)])

    assert ws.start_agents("me/p/abc", [Slot(None, 1), Slot(None, 1)], popen=popen, echo=lines.append) == 1
    assert "an agent of me/p/abc ended with killed by SIGKILL" in lines


def test_local_sweeps_log_to_wandb_offline_unless_told_not_to(tmp_path, capsys):
    demo = load_sweep(REPO / "sweeps" / "demo.yaml")
    assert {r.config.wandb for r in resolve_runs(demo)} == {"offline"}, "as one run does"
    assert {r.config.wandb for r in resolve_runs(demo, wandb="disabled")} == {"disabled"}
    assert run_sweep.main(["sweeps/demo.yaml", "--dry-run", "--no-wandb", "--runs-dir", str(tmp_path)]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  pending ")]
    assert listed and all("--wandb=disabled" in line for line in listed)


@pytest.mark.integration
def test_a_pairs_offline_wandb_run_is_found_from_both_members_and_a_resume_syncs_as_one(tmp_path):
    """Stopped at a checkpoint and resumed: the W&B run keeps its id, each segment is an offline-run folder in the
    plain member's wandb/, the ResNet member's summary points there, and the README's `wandb sync` glob takes both."""
    values = tiny(arch="pair", max_steps=60, eval_every=30, log_every=10, checkpoint_every=20, wandb="offline",
                  runs_dir=str(tmp_path / "runs"), sweep="demo")  # fmt: skip
    args = ["-m", "experiments.train", *cli_args(values)]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "CI": "1",
           "WANDB_DIR": str(tmp_path), "WANDB_CACHE_DIR": str(tmp_path / "cache"),
           "WANDB_CONFIG_DIR": str(tmp_path / "config"), "PYTHONPATH": str(REPO)}  # fmt: skip
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 600
    while not list((tmp_path / "runs" / "demo").glob("plain-*/checkpoints/step=20.ckpt")):
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be stopped"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 3, proc.stderr.read()[-3000:]
    resumed = run_cli(args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    plain, resnet = (RunDir(p) for p in sorted((tmp_path / "runs" / "demo").iterdir()))
    run_id = plain.wandb_id_path.read_text().strip()
    segments = sorted(glob.glob(str(tmp_path / "runs" / "demo" / "*" / "wandb" / "offline-run-*")))  # README's glob
    assert len(segments) == 2 and all(s.endswith(f"-{run_id}") for s in segments), segments
    assert all(Path(s).parent.parent == plain.path for s in segments), "a pair's W&B files: its plain member's folder"
    for member in (plain, resnet):
        summary = member.read_summary()
        assert summary["wandb_run_id"] == run_id
        assert (member.path / summary["wandb_dir"]).resolve() == Path(segments[-1]).resolve(), member.name
