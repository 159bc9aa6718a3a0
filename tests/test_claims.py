"""Many runners, one store: a run's claim lets one process train it at a time, and a dead holder's claim is recovered.

The claim (``experiments.store.claims``) is taken by the run itself, so every launcher is covered: local runners,
SLURM tasks, W&B agents that receive a point twice.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from experiments import train
from experiments.config import config_from_dict, run_dirs
from experiments.errors import EXIT_CLAIMED, RunClaimed
from experiments.store import RunDir, read_csv_rows
from experiments.store.claims import BOOT_ID, CLAIM_FILE, HOST, TTL_ENV, claim_runs, holder
from experiments.sweep.runner import CLAIMED, Slot, execute
from experiments.sweep.spec import resolve_runs
from tests.helpers import REPO, cli_args, tiny, wait_until_the_claim_holder_is_gone

HOLD = """
import sys, time
from experiments.store.claims import claim_runs
with claim_runs(sys.argv[1:]):
    print("held", flush=True)
    time.sleep(600)
"""


def _env(**extra) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "CI": "1", **extra}


@pytest.fixture
def hold():
    """Hold the claims of some run folders in another process: ``hold(*dirs)``; the process is killed at the end."""
    procs = []

    def start(*dirs):
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, *map(str, dirs)], env=_env(), stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _try_claim(dirs, **env) -> subprocess.CompletedProcess:
    code = "import sys\nfrom experiments.store.claims import claim_runs\nwith claim_runs(sys.argv[1:]): print('took')"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, dirs)], env=_env(**env), capture_output=True, text=True, timeout=120
    )


def _write_claim(run_dir: Path, mtime: float | None = None, **info) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM_FILE
    path.write_text(json.dumps({"host": HOST, "boot_id": BOOT_ID, "pid": 1, "started_at": "then", "locked": True,
                                **info}))  # fmt: skip
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_a_claim_is_held_for_the_block_and_leaves_nothing_behind(tmp_path):
    run = tmp_path / "sweep" / "run-a"
    with claim_runs([run]):
        info = json.loads((run / CLAIM_FILE).read_text())
        assert (info["host"], info["pid"]) == (HOST, os.getpid()) and holder(run).pid == os.getpid()
        with claim_runs([run]):
            pass  # re-entrant: experiments.train.main holds it, then train() takes it again
        assert (run / CLAIM_FILE).exists(), "still held by the outer block"
    assert not (tmp_path / "sweep").exists(), "the folders the claim created, left empty, are gone"
    assert holder(run) is None


@pytest.mark.integration
def test_another_process_finds_a_held_run_claimed_and_writes_nothing(tmp_path, hold):
    run = tmp_path / "run-a"
    holder_proc = hold(run)
    before = sorted(p.name for p in run.iterdir())
    result = _try_claim([run])
    assert result.returncode != 0 and "took" not in result.stdout
    assert f"run-a is being trained by pid {holder_proc.pid} on {HOST}" in result.stderr
    assert sorted(p.name for p in run.iterdir()) == before == [CLAIM_FILE]
    assert holder(run).pid == holder_proc.pid


@pytest.mark.integration
def test_the_claim_of_a_killed_holder_is_recovered(tmp_path, hold):
    run = tmp_path / "run-a"
    proc = hold(run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / CLAIM_FILE).exists() and holder(run) is None, "left behind, and seen as stale"
    result = _try_claim([run])
    assert result.returncode == 0 and result.stdout.strip() == "took", result.stderr
    assert f"recovered the stale claim on {run}" in result.stderr
    assert not (run / CLAIM_FILE).exists()


def test_a_claim_on_this_machine_whose_lock_is_free_is_stale_even_if_its_pid_was_reused(tmp_path):
    run = tmp_path / "run-a"
    _write_claim(run, pid=os.getppid())  # a live process that holds no lock on it: the pid was reused
    with claim_runs([run]):
        assert json.loads((run / CLAIM_FILE).read_text())["pid"] == os.getpid()


def test_a_claim_from_another_host_is_live_until_its_heartbeat_is_older_than_the_ttl(tmp_path, monkeypatch):
    monkeypatch.setenv(TTL_ENV, "60")
    run = tmp_path / "run-a"
    _write_claim(run, host="node-17", boot_id="another", pid=4242, mtime=time.time() - 30)
    with pytest.raises(RunClaimed, match=r"run-a is being trained by pid 4242 on node-17 .*heartbeat 30s ago"):
        with claim_runs([run]):
            pass
    assert holder(run).host == "node-17"
    os.utime(run / CLAIM_FILE, (time.time() - 61, time.time() - 61))
    assert holder(run) is None
    with claim_runs([run]):
        assert json.loads((run / CLAIM_FILE).read_text())["host"] == HOST


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path, monkeypatch):
    monkeypatch.setenv(TTL_ENV, "1")  # heartbeat every 0.2 s
    run = tmp_path / "run-a"
    with claim_runs([run]):
        os.utime(run / CLAIM_FILE, (0, 0))
        deadline = time.time() + 10
        while (run / CLAIM_FILE).stat().st_mtime < time.time() - 5:
            assert time.time() < deadline, "the heartbeat never touched the claim"
            time.sleep(0.05)


@pytest.mark.integration
def test_a_pair_is_claimed_whole_or_not_at_all(tmp_path, hold):
    plain, resnet = tmp_path / "plain-8", tmp_path / "resnet-8-A"
    hold(resnet)  # its ResNet is trained alone (a split pair) by another process
    with pytest.raises(RunClaimed, match="resnet-8-A is being trained"):
        with claim_runs([plain, resnet]):
            pass
    assert not plain.exists(), "the plain member's claim was given back, and its new folder removed"


@pytest.mark.integration
def test_ranks_other_than_zero_belong_to_their_rank_zero_and_claim_nothing(tmp_path, hold):
    run = tmp_path / "run-a"
    hold(run)
    result = _try_claim([run], LOCAL_RANK="1")
    assert result.returncode == 0 and result.stdout.strip() == "took"


def _race(run: str, barrier, results) -> None:
    barrier.wait()
    try:
        with claim_runs([run]):
            results.put(os.getpid())
            time.sleep(1.0)
    except RunClaimed:
        results.put(None)


@pytest.mark.integration
@pytest.mark.parametrize("stale", [False, True], ids=["free", "stale"])
def test_processes_racing_for_one_run_let_exactly_one_through(tmp_path, stale):
    ctx = mp.get_context("fork")
    for attempt in range(3):
        run = tmp_path / f"run-{attempt}"
        if stale:
            _write_claim(run, pid=999_999_999)  # dead, and its lock free
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(run), barrier, results)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        winners = [pid for pid in (results.get(timeout=5) for _ in procs) if pid is not None]
        assert len(winners) == 1, winners
        assert not (run / CLAIM_FILE).exists() and not list(run.glob(f"{CLAIM_FILE}.*")), "no claim files left"


# -- experiments.train ----------------------------------------------------------------------------------------------

RUN = tiny(max_steps=100, eval_every=50, log_every=10, checkpoint_every=20)


@pytest.mark.integration
def test_a_claimed_run_exits_75_or_0_in_a_wandb_trial_with_one_line_and_writes_nothing(tmp_path, hold, capsys):
    args = [*cli_args(RUN), f"--out={tmp_path / 'run'}"]
    holder_proc = hold(tmp_path / "run")
    for extra in ([], ["--restart"]):
        assert train.main([*args, *extra]) == EXIT_CLAIMED
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"claimed: run is being trained by pid {holder_proc.pid}") and "\n" not in err
        assert [p.name for p in (tmp_path / "run").iterdir()] == [CLAIM_FILE], "nothing written, nothing moved"
    assert not (tmp_path / ".restarted").exists()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_SWEEP_ID", "abc123")  # a trial of `wandb agent`, which counts exit 75 as a failed trial
        assert train.main(args) == 0
        err = capsys.readouterr().err.strip()
        assert err.endswith("this W&B trial leaves it to that process") and "\n" not in err
        assert [p.name for p in (tmp_path / "run").iterdir()] == [CLAIM_FILE]


def test_restart_keeps_the_claim_where_the_run_starts_again(tmp_path, monkeypatch):
    out = tmp_path / "run"
    RunDir(out).write_summary({"status": "failed"})
    seen = []

    def fake_train(cfg):
        seen.append((json.loads((out / CLAIM_FILE).read_text())["pid"], sorted(p.name for p in out.iterdir())))
        return {}

    monkeypatch.setattr(train, "train", fake_train)
    assert train.main([*cli_args(RUN), f"--out={out}", "--restart"]) == 0
    (moved,) = (tmp_path / ".restarted").iterdir()
    assert seen == [(os.getpid(), [CLAIM_FILE])], "the old folder moved aside, the claim held where the run restarts"
    assert not (moved / CLAIM_FILE).exists() and not (out / CLAIM_FILE).exists()


@pytest.mark.integration
def test_the_runner_counts_a_claimed_run_as_moved_on_not_failed(tmp_path):
    spec = {"name": "c", "method": "grid", "parameters": {k: {"value": v} for k, v in RUN.items()}}
    runs = resolve_runs(spec, runs_dir=str(tmp_path))
    exits_75 = [sys.executable, "-c", "import sys; sys.exit(75)"]
    lines = []
    states = execute(runs, [Slot(None, 1)], tmp_path / "_logs", echo=lines.append, command=exits_75, interval=0.05)
    assert set(states.values()) == {CLAIMED} and RunDir(runs[0].dirs[0]).read_summary() is None
    assert any(line.startswith(f"claimed  {runs[0].name}") for line in lines)


# -- real runners on one store ----------------------------------------------------------------------------------------

DRIVER = f"""
import functools, sys
import experiments.sweep.runner as runner
runner.execute = functools.partial(runner.execute, command=(sys.executable, {str(REPO / "tests" / "trace_train.py")!r}))
import run_sweep
sys.exit(run_sweep.main(sys.argv[1:]))
"""


def _sweep(tmp_path: Path, depths: list[int]) -> tuple[list[str], Path]:
    params = {k: {"value": v} for k, v in RUN.items()}
    params["depth"] = {"values": depths}
    sweep = tmp_path / "many.yaml"
    sweep.write_text(yaml.safe_dump({"name": "many", "method": "grid", "parameters": params}))
    runs = tmp_path / "runs"
    return [sys.executable, "-c", DRIVER, str(sweep), "--runs-dir", str(runs), "--no-report", "--jobs", "1"], runs


def _each_run_finished_with_every_step_once(folder: Path, names: list[str]) -> None:
    for name in names:
        run = RunDir(folder / name)
        assert run.status() == "finished", name
        raw = [r["step"] for r in read_csv_rows(run.metrics_path)]
        assert raw == list(range(10, 101, 10)), (name, raw)
        assert not (run.path / CLAIM_FILE).exists(), "claims are given back"


@pytest.mark.integration
def test_two_runners_started_at_once_train_each_run_once(tmp_path):
    cmd, runs = _sweep(tmp_path, [8, 14])
    env = _env(DEGRADATION_TRACE=str(tmp_path / "trained.txt"))
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    trained = Counter(line.split()[0] for line in (tmp_path / "trained.txt").read_text().splitlines())
    names = [r.name for r in resolve_runs(yaml.safe_load((tmp_path / "many.yaml").read_text()))]
    assert trained == dict.fromkeys(names, 1), "each run trained by exactly one process"
    _each_run_finished_with_every_step_once(runs / "many", names)
    logs = "".join(p.read_text() for p in (runs / "many" / "_logs").glob("*.log"))
    assert "claimed: " in logs, "the runners met on a run: one of them found it claimed and moved on"


@pytest.mark.integration
def test_a_runner_killed_with_sigkill_leaves_a_claim_the_next_runner_recovers(tmp_path):
    cmd, runs = _sweep(tmp_path, [8, 14])
    env = _env(DEGRADATION_TRACE=str(tmp_path / "trained.txt"))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 600
    while not (found := list((runs / "many").glob("resnet-*/checkpoints/step=20.ckpt"))):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = found[0].parents[1]
    wait_until_the_claim_holder_is_gone(killed)
    assert (killed / CLAIM_FILE).exists(), "a claim left behind by a dead holder"
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    names = sorted(p.name for p in (runs / "many").iterdir() if not p.name.startswith("_"))
    _each_run_finished_with_every_step_once(runs / "many", names)
    assert f"recovered the stale claim on {killed}" in (runs / "many" / "_logs" / f"{killed.name}.log").read_text()
    assert RunDir(killed).read_summary()["resumed_from"], "it resumed from its checkpoint"


def test_claims_follow_the_run_folders_a_config_names(tmp_path):
    cfg = config_from_dict(tiny(arch="pair", runs_dir=str(tmp_path)))
    with claim_runs(run_dirs(cfg)):
        assert sorted(p.parent.name for p in tmp_path.glob(f"*/*/{CLAIM_FILE}")) == sorted(
            d.name for d in run_dirs(cfg)
        )
