"""Faults injected for real: kills, pre-emption signals, corrupt checkpoints, divergence, OOM, concurrent writers."""

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from experiments.config import config_from_dict
from experiments.errors import RunFailed
from experiments.store import RunDir, atomic_write_json
from experiments.train import train
from tests.helpers import REPO, cli_args, run_cli, tiny, wait_until_the_claim_holder_is_gone

RUN = tiny(max_steps=160, eval_every=50, log_every=10, checkpoint_every=20)
ARGS = cli_args(RUN)
COMPARED = ("train_error", "train_loss", "lr", "test_error", "test_loss")
THREADS = {"OMP_NUM_THREADS": str(os.cpu_count()), "MKL_NUM_THREADS": str(os.cpu_count())}  # what a 1-job sweep uses


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "CI": "1", **THREADS}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of ARGS, to compare interrupted ones against."""
    root = tmp_path_factory.mktemp("reference")
    result = run_cli(["-m", "experiments.train", *ARGS, "--out", str(root / "run")], cwd=root, env=THREADS)
    assert result.returncode == 0, result.stderr[-2000:]
    return RunDir(root / "run")


def _wait_for(path, proc, timeout=300):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "the run ended before the fault could be injected"
        assert time.time() < deadline
        time.sleep(0.02)


def _same_as_reference(run: RunDir, reference: RunDir):
    rows, ref = run.read_metrics(), reference.read_metrics()
    assert [r["step"] for r in rows] == [r["step"] for r in ref], "every step once, in order"
    for a, b in zip(rows, ref, strict=True):
        assert {c: a[c] for c in COMPARED} == {c: b[c] for c in COMPARED}, a["step"]
    s, s_ref = run.read_summary(), reference.read_summary()
    assert s["status"] == "finished"
    assert (s["final_train_error"], s["final_test_error"]) == (s_ref["final_train_error"], s_ref["final_test_error"])


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_preemption_signal_checkpoints_then_the_same_command_finishes_identically(tmp_path, reference, signum):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.train", *ARGS, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "checkpoints" / "step=40.ckpt", proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err[-2000:]
    summary = RunDir(out).read_summary()
    stopped_at = summary["step"]
    assert summary["status"] == "running" and f"stopped by {signal.Signals(signum).name}" in summary["reason"]
    saved = torch.load(out / "checkpoints" / f"step={stopped_at}.ckpt", weights_only=True)
    assert saved["global_step"] == stopped_at, "a checkpoint at the step it stopped"
    assert summary["wall_time_s"] > 0
    assert err.strip().splitlines()[-1].startswith("pre-empted: ")
    resumed = run_cli(["-m", "experiments.train", *ARGS, "--out", str(out)], cwd=tmp_path, env=THREADS)
    assert resumed.returncode == 0 and f"(step {stopped_at})" in resumed.stdout
    assert RunDir(out).read_summary()["wall_time_s"] > summary["wall_time_s"], "wall time adds up over segments"
    _same_as_reference(RunDir(out), reference)


@pytest.mark.integration
def test_sweep_killed_with_sigkill_then_restarted_finishes_every_run(tmp_path, reference):
    import yaml

    params = {k: {"value": v} for k, v in RUN.items()}
    params["depth"] = {"values": [8, 14]}
    sweep = tmp_path / "kill.yaml"
    sweep.write_text(yaml.safe_dump({"name": "kill", "method": "grid", "parameters": params}))
    cmd = [sys.executable, str(REPO / "run_sweep.py"), str(sweep), "--runs-dir", str(tmp_path / "runs"), "--no-report"]
    cmd += ["--jobs", "1"]  # one run at a time, on the reference's threads
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    first = None
    deadline = time.time() + 300
    while first is None:
        found = list((tmp_path / "runs" / "kill").glob("resnet-8-*/checkpoints/step=60.ckpt"))
        first = found[0] if found else None
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until_the_claim_holder_is_gone(first.parents[1])  # else the restarted sweep finds the run still claimed
    run = RunDir(first.parents[1])
    assert run.status() == "running"
    again = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "1 already finished, 1 to run" in again.stdout, "resnet-14 (longest) ran first and finished"
    _same_as_reference(run, reference)
    assert all(RunDir(p).status() == "finished" for p in (tmp_path / "runs" / "kill").iterdir() if p.name[0] != "_")


@pytest.mark.integration
def test_sigterm_to_the_sweep_runner_checkpoints_its_runs_and_a_rerun_finishes_them(tmp_path, reference):
    import yaml

    sweep = tmp_path / "term.yaml"
    sweep.write_text(yaml.safe_dump({"name": "term", "method": "grid",
                                     "parameters": {k: {"value": v} for k, v in RUN.items()}}))  # fmt: skip
    cmd = [sys.executable, str(REPO / "run_sweep.py"), str(sweep), "--runs-dir", str(tmp_path / "runs"), "--no-report"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found: list = []
    deadline = time.time() + 300
    while not found:
        found = list((tmp_path / "runs" / "term").glob("resnet-8-*/checkpoints/step=40.ckpt"))
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("stopped: running runs saved a checkpoint")
    run = RunDir(found[0].parents[1])
    summary = run.read_summary()
    assert summary["status"] == "running" and "stopped by SIGTERM" in summary["reason"], "resumable, not failed"
    again = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 already finished, 1 to run" in again.stdout, again.stderr[-2000:]
    _same_as_reference(run, reference)


QUIET = ("Checkpoint directory", "srun", "weights_only", "anonymous", "Traceback")
"""What a run's output must not hold: warnings a user cannot act on, and tracebacks."""


def _ctrl_c(proc: subprocess.Popen, times: int = 1, gap: float = 0.3) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group (the runner and its runs)."""
    for i in range(times):
        if i:
            time.sleep(gap)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:  # everything had stopped before the second press
            return


def _group_is_gone(pgid: int, timeout: float = 30) -> bool:
    """Whether no process of the process group is left (an orphaned run would be), waiting up to ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.integration
def test_ctrl_c_to_a_run_checkpoints_at_its_step_and_the_same_command_finishes_identically(tmp_path, reference):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.train", *ARGS, "--out", str(out)]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    _wait_for(out / "checkpoints" / "step=40.ckpt", proc)
    _ctrl_c(proc)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err[-2000:]
    summary = RunDir(out).read_summary()
    stopped_at = summary["step"]
    assert summary["status"] == "running" and "stopped by SIGINT" in summary["reason"], "resumable, not failed"
    saved = torch.load(out / "checkpoints" / f"step={stopped_at}.ckpt", weights_only=True)
    assert saved["global_step"] == stopped_at, "a checkpoint at the step it stopped"
    assert err.strip().splitlines()[-1].startswith("interrupted: stopped by SIGINT at step"), "one line says so"
    assert not any(q in stdout + err for q in QUIET), err[-2000:]
    resumed = run_cli(["-m", "experiments.train", *ARGS, "--out", str(out)], cwd=tmp_path, env=THREADS)
    assert resumed.returncode == 0 and f"(step {stopped_at})" in resumed.stdout
    assert not any(q in resumed.stdout + resumed.stderr for q in QUIET), resumed.stderr[-2000:]
    _same_as_reference(RunDir(out), reference)


@pytest.mark.integration
def test_a_network_alone_refuses_its_pairs_checkpoint_and_the_pair_resumes_it(tmp_path):
    """A pair stopped by Ctrl-C keeps its checkpoint in its plain member's folder, which is also the plain net's own
    run folder: training the plain net alone then stops with one line and exit 2 (it used to fail a few seconds in
    with "KeyError: 'resnet'"), touching nothing, and the pair still resumes."""
    where = ["--runs_dir=runs", "--sweep=s"]
    pair = [sys.executable, "-m", "experiments.train", *cli_args({**RUN, "arch": "pair"}), *where]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    proc = subprocess.Popen(pair, cwd=tmp_path, env=_env(), text=True, start_new_session=True, **pipes)
    folder = tmp_path / "runs" / "s"
    _wait_for_checkpoints(folder, proc, count=2)
    _ctrl_c(proc)
    assert proc.wait(timeout=120) == 3
    (plain_dir,) = [p for p in folder.iterdir() if p.name.startswith("plain")]
    before = (plain_dir / "summary.json").read_text(), sorted(p.name for p in (plain_dir / "checkpoints").iterdir())
    alone = run_cli(["-m", "experiments.train", *cli_args({**RUN, "arch": "plain"}), *where], cwd=tmp_path)
    assert alone.returncode == 2, alone.stderr[-2000:]
    assert alone.stderr.strip().splitlines() == [alone.stderr.strip()] and "saved by a pair" in alone.stderr
    assert "Traceback" not in alone.stderr and "KeyError" not in alone.stderr
    after = (plain_dir / "summary.json").read_text(), sorted(p.name for p in (plain_dir / "checkpoints").iterdir())
    assert after == before, "nothing written"
    resumed = run_cli(pair[1:], cwd=tmp_path, env=THREADS)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-2000:]
    assert RunDir(plain_dir).status() == "finished"


@pytest.mark.integration
def test_a_second_ctrl_c_stops_at_once_and_records_the_run_as_resumable(tmp_path):
    """The Preemption callback's handlers, driven by real signals: the first asks for a checkpoint at the end of the
    step; a second SIGINT while stopping records the run as resumable and exits with EXIT_STOPPED at once."""
    script = f"""
import os, signal, sys, types
from experiments.training.callbacks import Preemption
recorded = []
stop = Preemption({str(tmp_path)!r}, hard_stop=lambda reason, step: open({str(tmp_path / "rec")!r}, "w").write(reason))
stop.on_train_start(types.SimpleNamespace(global_step=7, received_sigterm=False), None)
os.kill(os.getpid(), signal.SIGINT)
assert stop.received == signal.SIGINT, "the first Ctrl-C only asks"
print("asked", flush=True)
os.kill(os.getpid(), signal.SIGINT)
print("not reached", flush=True)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3 and result.stdout.split() == ["asked"], result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("interrupted: stopped at once by a second SIGINT")
    assert "re-run the same command to resume" in (tmp_path / "rec").read_text()


def _two_run_sweep(tmp_path, name):
    import yaml

    params = {k: {"value": v} for k, v in RUN.items()}
    params["depth"] = {"values": [8, 14]}
    sweep = tmp_path / f"{name}.yaml"
    sweep.write_text(yaml.safe_dump({"name": name, "method": "grid", "parameters": params}))
    return [sys.executable, str(REPO / "run_sweep.py"), str(sweep), "--runs-dir", str(tmp_path / "runs"), "--no-report"]


def _wait_for_checkpoints(pattern_dir, proc, count, timeout=300):
    deadline = time.time() + timeout
    while len(list(pattern_dir.glob("*/checkpoints/step=*.ckpt"))) < count:
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before the fault could be injected"
        time.sleep(0.02)


@pytest.mark.integration
@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_to_the_runners_process_group_leaves_every_running_run_resumable(tmp_path, reference, presses):
    cmd = [*_two_run_sweep(tmp_path, "int"), "--jobs", "2"]  # both runs at once
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    folder = tmp_path / "runs" / "int"
    _wait_for_checkpoints(folder, proc, count=2 * 2)  # both runs training, two checkpoints each
    _ctrl_c(proc, presses)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, out[-2000:] + err[-2000:]
    assert err.strip().splitlines()[-1].startswith("stopped"), err[-2000:]  # at once, if the second press came in time
    assert out.strip().splitlines()[-1] == "done 0 | running 0 | failed 0 | stopped 2 | to go 0", out[-2000:]
    assert "Traceback" not in out + err
    runs = [RunDir(p) for p in sorted(folder.iterdir()) if not p.name.startswith("_")]
    assert len(runs) == 2 and all(r.status() == "running" for r in runs), [r.read_summary() for r in runs]
    assert "FAILED" not in out and "failed" not in " ".join(str(r.read_summary().get("reason")) for r in runs)
    assert _group_is_gone(proc.pid), "no run left training"
    again = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 already finished, 2 to run" in again.stdout, again.stderr[-2000:]
    steps = [r["step"] for r in reference.read_metrics()]
    assert all([r["step"] for r in run.read_metrics()] == steps for run in runs), "every step once, in order"
    assert all(run.status() == "finished" for run in runs)


@pytest.mark.integration
def test_a_runner_whose_output_closes_stops_its_runs_and_leaves_no_orphan(tmp_path):
    """``python run_sweep.py sweep.yaml | head -3``: the reader goes, the runner stops its runs as for Ctrl-C."""
    cmd = _two_run_sweep(tmp_path, "pipe")
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    head = [proc.stdout.readline() for _ in range(3)]
    assert head[-1].startswith("started"), head
    _wait_for_checkpoints(tmp_path / "runs" / "pipe", proc, count=1)
    proc.stdout.close()  # what head does after its lines
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 3, err[-2000:]
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].endswith("(output closed)"), err[-2000:]
    assert _group_is_gone(proc.pid), "a run is left running with no runner (re-parented to PID 1)"
    statuses = {p.name: RunDir(p).status() for p in (tmp_path / "runs" / "pipe").iterdir() if p.name[0] != "_"}
    assert "running" in statuses.values() and "failed" not in statuses.values(), statuses  # resumable, or finished


@pytest.mark.integration
def test_corrupt_latest_checkpoint_falls_back_to_the_previous_good_one(tmp_path, reference):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.train", *ARGS, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(out / "checkpoints" / "step=60.ckpt", proc)
    proc.send_signal(signal.SIGKILL)  # at once: the run's last 100 steps can take under half a second
    proc.wait()
    newest = RunDir(out).checkpoints()[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])
    resumed = run_cli(["-m", "experiments.train", *ARGS, "--out", str(out)], cwd=tmp_path, env=THREADS)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"checkpoint {newest} is truncated or corrupt; falling back" in resumed.stdout
    _same_as_reference(RunDir(out), reference)


class Payload:
    """An object whose unpickling would import and run this project's code."""


def test_checkpoint_that_needs_code_to_load_is_refused(tmp_path):
    from experiments.training.resume import is_loadable

    path = tmp_path / "step=10.ckpt"
    torch.save(
        {
            "state_dict": {},
            "optimizer_states": [],
            "loops": {},
            "lr_policies": {},
            "global_step": 10,
            "extra": Payload(),
        },
        path,
    )
    assert not is_loadable(path), "weights_only loading refuses pickled objects"


@pytest.mark.integration
def test_diverging_run_stops_at_once_and_is_marked_failed_with_step_and_reason(tmp_path):
    cfg = config_from_dict(
        tiny(arch="plain", max_steps=200, lr=1e20, log_every=50, eval_every=100, runs_dir=str(tmp_path))
    )
    with pytest.raises(Exception, match=r"training loss became .* at step \d+"):
        train(cfg, echo=lambda *a, **k: None)
    (run,) = [RunDir(p) for p in (tmp_path / "adhoc").iterdir()]
    summary = run.read_summary()
    assert summary["status"] == "failed" and "DivergenceError" in summary["reason"]
    assert summary["step"] < 50, "stopped at the bad step, not at the end of the window"


@pytest.mark.integration
def test_out_of_memory_is_reported_with_the_batch_size_and_a_hint(tmp_path, monkeypatch):
    from experiments.training.module import DegradationModule

    def oom(self, batch, batch_idx):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DegradationModule, "training_step", oom)
    cfg = config_from_dict(tiny(arch="plain", batch_size=64, max_steps=10, runs_dir=str(tmp_path)))
    with pytest.raises(RunFailed, match=r"out of memory at batch_size 64 .*; lower --batch_size"):
        train(cfg, echo=lambda *a, **k: None)
    (run,) = [RunDir(p) for p in (tmp_path / "adhoc").iterdir()]
    assert run.read_summary()["status"] == "failed" and "batch_size 64" in run.read_summary()["reason"]


def _hammer(path, worker, n):
    for i in range(n):
        atomic_write_json(path, {"worker": worker, "i": i, "pad": "x" * (1000 * ((i + worker) % 50))})


@pytest.mark.integration
def test_concurrent_writers_never_expose_a_half_written_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"worker": -1})
    ctx = mp.get_context("fork")
    writers = [ctx.Process(target=_hammer, args=(path, w, 300)) for w in range(2)]
    for w in writers:
        w.start()
    reads = 0
    while any(w.is_alive() for w in writers):
        json.loads(path.read_text())
        reads += 1
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert reads > 10 and not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


@pytest.mark.integration
def test_wandb_credentials_never_reach_the_run_store(tmp_path):
    secret = "wandb_v1_SECRETSENTINEL0123456789"
    run = tiny(arch="plain", max_steps=4, eval_every=4, log_every=2, checkpoint_every=4, wandb="offline")
    result = run_cli(
        ["-m", "experiments.train", *cli_args(run), f"--out={tmp_path / 'run'}"],
        cwd=tmp_path,
        env={"WANDB_API_KEY": secret},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_id = (tmp_path / "run" / "checkpoints" / "wandb_run_id.txt").read_text().strip()
    assert len(list((tmp_path / "run" / "wandb").glob(f"offline-run-*-{run_id}"))) == 1, "the id of the W&B run"
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in result.stdout + result.stderr
    assert not any(q in result.stdout + result.stderr for q in QUIET), "offline W&B adds no warning to act on"
