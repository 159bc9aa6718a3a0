"""The everyday loop, unit by unit: errors before work, the runner's output and ETA, retries of runs that failed on
missing data, the CPU default. (Real signals, pipes and training runs are in test_faults.py.)"""

import io
import os
import signal
from pathlib import Path

import pytest
import yaml

import run_sweep
from experiments.sweep import runner
from experiments.sweep.plan import plan_sweep
from experiments.sweep.preflight import first_problem
from experiments.sweep.runner import FAILED, PARTIAL, PENDING, Active, Console, Slot, StopRequest, _eta, _settle
from experiments.sweep.spec import resolve_runs
from tests.helpers import REPO, write_cifar10

FIG6 = str(REPO / "sweeps" / "fig6.yaml")


def _no_execute(*args, **kwargs):
    raise AssertionError("no run may start")


def test_a_fig6_sweep_without_cifar10_exits_2_before_starting_anything_and_writes_no_run_folder(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # fig6's data_dir is ./data
    monkeypatch.setattr(runner, "execute", _no_execute)
    assert run_sweep.main([FIG6, "--runs-dir", "runs"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: CIFAR-10 not found: expected")
    assert "`download: {value: true}` in the sweep file" in err and "--download" not in err, "a fix run_sweep allows"
    assert not (tmp_path / "runs").exists(), "no run folder, no log folder"
    assert run_sweep.main([FIG6, "--runs-dir", "runs", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    assert "would start 5 process(es)" in out and err.startswith("error: CIFAR-10 not found"), "the dry run says so too"
    assert not (tmp_path / "runs").exists()


def test_cifar_files_are_checked_without_loading_them(tmp_path):
    (run,) = resolve_runs(
        {"name": "s", "method": "grid", "parameters": {"depth": {"value": 20}, "data_dir": {"value": str(tmp_path)}}},
        runs_dir=str(tmp_path / "runs"),
    )
    assert first_problem([run]).startswith("CIFAR-10 not found")
    write_cifar10(tmp_path)
    problem = first_problem([run])
    assert "fails its MD5 check" in problem and "`data_verify: {value: false}`" in problem, (
        "a tiny copy is not official"
    )
    (unverified,) = resolve_runs(
        {
            "name": "s",
            "method": "grid",
            "parameters": {"data_dir": {"value": str(tmp_path)}, "data_verify": {"value": False}},
        },
        runs_dir=str(tmp_path / "runs"),
    )
    assert first_problem([unverified]) is None
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert "data_batch_3 is missing" in first_problem([unverified])


def test_generated_data_needs_no_check_and_a_missing_gpu_is_named(tmp_path):
    def runs(**params):
        values = {"preset": "demo", **params}
        spec = {"name": "s", "method": "grid", "parameters": {k: {"value": v} for k, v in values.items()}}
        return resolve_runs(spec, runs_dir=str(tmp_path))

    assert first_problem(runs()) is None
    if not __import__("torch").cuda.is_available():
        assert "needs a CUDA GPU and this machine has none" in first_problem(runs(accelerator="gpu"))


def _store(tmp_path: Path, depths=(8, 14)):
    spec = {
        "name": "s",
        "method": "grid",
        "parameters": {"preset": {"value": "demo"}, "depth": {"values": list(depths)}},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, resolve_runs(spec, runs_dir=str(tmp_path / "runs"))


def test_a_run_that_failed_on_missing_input_is_retried_without_retry_failed(tmp_path):
    from experiments.store import RunDir

    path, (on_input, crashed) = _store(tmp_path)
    log = tmp_path / "x.log"
    log.write_text("error: CIFAR-10 not found: expected ...\n")
    assert _settle(Active(on_input, Slot(None, 1), None, log), 2) == FAILED  # exit code 2: bad input, before training
    log.write_text("run failed: RuntimeError: boom\n")
    assert _settle(Active(crashed, Slot(None, 1), None, log), 1) == FAILED
    assert RunDir(on_input.dirs[0]).read_summary()["failed_on_input"] is True
    plan = plan_sweep(str(path), str(tmp_path / "runs"))
    assert [p.name for p in plan.processes] == [on_input.name], "the input failure is retried, the crash is not"
    assert (plan.skipped_failed, plan.retried_on_input) == (1, 1)
    assert len(plan_sweep(str(path), str(tmp_path / "runs"), retry_failed=True).processes) == 2


def test_a_run_stopped_by_a_signal_is_never_marked_failed(tmp_path):
    from experiments.store import RunDir

    _, (started, not_started) = _store(tmp_path)
    RunDir(started.dirs[0]).write_summary({"status": "running", "step": 40})
    log = tmp_path / "x.log"
    log.write_text("")
    assert _settle(Active(started, Slot(None, 1), None, log), 3) == PARTIAL
    assert _settle(Active(not_started, Slot(None, 1), None, log), 3) == PENDING, "stopped before it wrote anything"
    assert not RunDir(not_started.dirs[0]).exists()
    assert runner.stopped_state(started, PARTIAL) == "resumable from step 40", "the runner's line names the step"
    assert runner.stopped_state(not_started, PENDING) == "not started"


def test_in_a_log_the_runner_prints_events_and_at_most_one_status_line_a_minute():
    out = io.StringIO()
    console = Console(out, live=False, every=60.0)
    console.status("done 0 | running 1")
    console.event("started  plain-8")
    for i in range(100):
        console.status(f"done 0 | running 1  plain-8: step {i}/1000")
    console.event("finished plain-8 (12s)")
    console.status("done 1 | running 0", final=True)
    assert out.getvalue().splitlines() == [
        "done 0 | running 1",
        "started  plain-8",
        "finished plain-8 (12s)",
        "done 1 | running 0",
    ]


def test_on_a_terminal_the_status_is_one_line_rewritten_in_place():
    out = io.StringIO()
    console = Console(out, live=True)
    console.status("step 1")
    console.status("step 1")
    console.status("step 2")
    console.event("finished a")
    console.status("done", final=True)
    text = out.getvalue()
    assert text.count("\n") == 2, "only the event and the final status end a line"
    assert text == "\r\033[Kstep 1\r\033[Kstep 2\r\033[Kfinished a\nstep 2\r\033[Kdone\n"


def test_a_closed_pipe_asks_the_runner_to_stop_without_raising():
    read, write = os.pipe()
    stream = os.fdopen(write, "w")
    stop = StopRequest()
    console = Console(stream, live=False, every=0.0, on_closed=lambda: stop.request("output closed"))
    console.event("one")
    assert os.read(read, 100) == b"one\n"
    os.close(read)
    console.status("a status line a minute is the only write, so the runner checks the pipe each poll")
    assert stop.reason == "output closed" and console.closed
    console.event("discarded")
    stream.close()


def test_stop_requests_come_from_signals_and_a_second_ctrl_c_means_at_once():
    saved = {s: signal.getsignal(s) for s in StopRequest.SIGNALS}
    try:
        with StopRequest():
            pass
        assert {s: signal.getsignal(s) for s in saved} == saved, "no stop: the handlers are restored"
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert (stop.reason, stop.at_once) == ("SIGTERM", False)
            os.kill(os.getpid(), signal.SIGINT)
            assert (stop.reason, stop.at_once) == ("SIGTERM", True)
        assert {s: signal.getsignal(s) for s in saved} == saved, "and after a stop (run_local then ignores Ctrl-C)"
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_the_eta_counts_this_session_only_and_never_rises_while_the_step_stands(monkeypatch):
    steps = iter([400, 400, 425, 450, 450, 450])
    monkeypatch.setattr(runner, "_progress_of", lambda run: (next(steps), 1000))
    a = Active(None, Slot(None, 1), None, Path("x"))
    assert _eta(a, 0.0)[2] is None, "resumed at step 400: no rate yet"
    assert _eta(a, 5.0)[2] is None
    assert _eta(a, 10.0)[2] is None, "one move: the start-up is not a rate"
    assert _eta(a, 20.0) == (450, 1000, pytest.approx(550 / 2.5)), "25 steps in 10 s, not 450 steps in 20 s"
    assert _eta(a, 25.0)[2] == pytest.approx(550 / 2.5 - 5)
    assert _eta(a, 1000.0)[2] == 0.0


def test_the_cpu_default_is_one_run_per_core_each_on_one_thread():
    cores = os.cpu_count() or 1
    assert runner.cpu_jobs(1) == 1 and runner.cpu_jobs(100) <= cores
    slots = runner.make_slots(None, 1, runner.cpu_jobs(100))
    assert all(s.threads == cores // len(slots) for s in slots)


def test_the_demo_is_six_runs_of_one_recipe_that_cores_train_side_by_side():
    spec = yaml.safe_load((REPO / "sweeps" / "demo.yaml").read_text())
    runs = resolve_runs(spec, runs_dir="runs")
    assert sorted((r.config.arch, r.config.depth) for r in runs) == sorted(
        (a, d) for a in ("plain", "resnet") for d in (8, 20, 44)
    )
    assert {r.config.seed for r in runs} == {0} and len({r.name for r in runs}) == 6
    example = (REPO / "docs" / "getting-started.md").read_text()
    assert all(f"\n{r.name} " in example for r in runs), "the docs' example ends with these runs' names"


@pytest.mark.integration
def test_the_progress_bar_counts_steps_of_max_steps_also_after_a_resume(tmp_path, capsys):
    from experiments.config import config_from_dict
    from experiments.store import RunDir
    from experiments.train import train
    from tests.helpers import tiny

    values = tiny(max_steps=40, eval_every=20, log_every=10, checkpoint_every=20, progress="on")
    cfg = config_from_dict({**values, "out": str(tmp_path / "run")})
    train(cfg, echo=lambda *a, **k: None)
    run = RunDir(tmp_path / "run")
    run.update_summary(status="running")  # as if it had stopped after step 20's checkpoint
    (run.checkpoint_dir / "step=40.ckpt").unlink()
    capsys.readouterr()
    train(cfg, echo=lambda *a, **k: None)
    bar = capsys.readouterr().out.replace("\r", "\n")
    assert " 20/40 " in bar and " 40/40 " in bar and "/?" not in bar, bar[-2000:]
    assert "Validation" not in bar and "v_num" not in bar, "one line: no evaluation bar, no logger version"


def _checkpoint(run_dir: Path, step: int, members: tuple[str, ...], partner: str | None) -> Path:
    """A resumable checkpoint saved by ``members`` (what Lightning and the module write, in the keys a resume reads)
    and the summary such a stopped run leaves."""
    import torch

    from experiments.store import RunDir
    from experiments.training.resume import RESUME_KEYS

    run = RunDir(run_dir)
    run.write_summary({"status": "running", "step": step, "paired_with": partner, "arch": members[0]})
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = {key: {} for key in RESUME_KEYS} | {"global_step": step, "lr_policies": {m: {} for m in members}}
    torch.save(state, run.checkpoint_dir / f"step={step}.ckpt")
    return run.checkpoint_dir / f"step={step}.ckpt"


def test_a_checkpoint_saved_by_other_networks_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """A pair and its networks alone share folders: a plain net alone must not resume from the pair's checkpoint
    (it used to fail a few seconds in with "KeyError: 'resnet'"), nor a pair from a lone net's."""
    from experiments.config import ConfigError
    from experiments.store import RunDir
    from experiments.training.resume import find_resume_checkpoint

    spec = {"name": "s", "method": "grid", "parameters": {"preset": {"value": "demo"}, "arch": {"values": ["plain"]}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    (alone,) = resolve_runs(spec, runs_dir=str(tmp_path / "runs"))
    (pair,) = resolve_runs({**spec, "parameters": {**spec["parameters"], "arch": {"value": "pair"}}}, str(tmp_path))
    assert pair.dirs[0].name == alone.dirs[0].name, "the pair's plain member is the plain run"
    saved = _checkpoint(alone.dirs[0], 40, ("plain", "resnet"), partner=pair.dirs[1].name)

    pair_saved = r"saved by a pair \(plain and resnet trained together\), not by this network alone"
    with pytest.raises(ConfigError, match=pair_saved):
        find_resume_checkpoint(RunDir(alone.dirs[0]), ["plain"])  # read from the checkpoint itself
    with pytest.raises(ConfigError, match=pair_saved):
        find_resume_checkpoint(RunDir(alone.dirs[0]), ["plain"], member_dirs=alone.dirs)  # from the summaries
    assert find_resume_checkpoint(RunDir(alone.dirs[0]), ["plain", "resnet"], member_dirs=pair.dirs) == saved

    monkeypatch.setattr(runner, "execute", _no_execute)
    assert run_sweep.main([str(path), "--runs-dir", str(tmp_path / "runs"), "--no-wandb"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds checkpoints saved by a pair" in err, err
    assert "`python -m experiments.train --arch=plain --preset=demo" in err and " --restart`" in err, "the fix"
    assert RunDir(alone.dirs[0]).read_summary()["status"] == "running" and saved.exists(), "nothing touched"

    lone = tmp_path / "lone"
    _checkpoint(lone, 40, ("plain",), partner=None)
    with pytest.raises(ConfigError, match=r"saved by a network trained alone, not by this pair"):
        find_resume_checkpoint(RunDir(lone), ["plain", "resnet"])


def test_a_resnet_alone_is_refused_where_its_pair_left_checkpoints_in_the_plain_folder(tmp_path):
    """A pair keeps its checkpoints in its plain member's folder: the ResNet's own folder holds none, yet training it
    alone would overwrite the pair's ResNet half (its logs cut back to step 0, its summary replaced)."""
    from experiments.config import ConfigError
    from experiments.store import RunDir
    from experiments.training.resume import find_resume_checkpoint

    params = {"preset": {"value": "demo"}, "arch": {"value": "pair"}}
    (pair,) = resolve_runs({"name": "s", "method": "grid", "parameters": params}, runs_dir=str(tmp_path))
    plain_dir, resnet_dir = pair.dirs
    _checkpoint(plain_dir, 40, ("plain", "resnet"), partner=resnet_dir.name)
    RunDir(resnet_dir).write_summary({"status": "running", "step": 40, "paired_with": plain_dir.name, "arch": "resnet"})
    (alone,) = resolve_runs(
        {"name": "s", "method": "grid", "parameters": {**params, "arch": {"value": "resnet"}}}, runs_dir=str(tmp_path)
    )
    assert alone.dirs == [resnet_dir]
    problem = first_problem([alone])
    assert problem.startswith(f"{plain_dir} holds checkpoints saved by a pair"), problem
    with pytest.raises(ConfigError, match=f"{plain_dir} holds checkpoints saved by a pair"):
        find_resume_checkpoint(RunDir(resnet_dir), ["resnet"], member_dirs=alone.dirs)
    assert first_problem([pair]) is None, "the pair itself resumes"


def test_the_runners_drop_a_wandb_agents_trial_marker_from_their_runs_environment(tmp_path, monkeypatch):
    """Under WANDB_SWEEP_ID a claimed run exits 0 (for W&B's agent); a local runner or SLURM task started from a shell
    that still has it set must not pass it on, or a run another process trains would read as finished here."""
    from experiments.errors import AGENT_TRIAL_ENV
    from experiments.sweep.slurm import child_env

    monkeypatch.setenv(AGENT_TRIAL_ENV, "abc123")
    _, (run, _) = _store(tmp_path)
    launched = {}

    class Recorded:
        def __init__(self, *args, env, **kwargs):
            launched.update(env)

    monkeypatch.setattr(runner.subprocess, "Popen", Recorded)
    runner._launch(run, Slot(None, 1), tmp_path, ["python"])
    assert AGENT_TRIAL_ENV not in launched and launched["OMP_NUM_THREADS"] == "1"
    assert AGENT_TRIAL_ENV not in child_env()


def test_the_status_line_counts_stopped_and_claimed_runs_so_that_the_counts_add_up():
    from experiments.sweep.runner import CLAIMED, DONE, _status_line

    assert _status_line({}, [], 4) == "done 0 | running 0 | failed 0 | to go 4", "nothing ended: nothing extra"
    ended = {"a": DONE, "b": PARTIAL, "c": PENDING, "d": FAILED, "e": CLAIMED}
    assert _status_line(ended, [], 1) == "done 1 | running 0 | failed 1 | stopped 2 | claimed 1 | to go 1"


STOPPABLE = """
import signal, sys, time
from experiments.config import config_from_dict, parse_cli, run_dirs
from experiments.store import RunDir
cfg = config_from_dict(parse_cli(sys.argv[1:]))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))  # as a run does: checkpoint, then exit 3
for d in run_dirs(cfg):
    RunDir(d).write_summary({"status": "running", "step": 20})
if cfg.depth == 26:
    sys.exit(3)  # stopped on its own (by SLURM's SIGTERM, say) while the sweep goes on
time.sleep(120)
"""


@pytest.mark.integration
def test_after_a_stop_the_live_and_the_final_status_line_count_the_stopped_runs(tmp_path):
    import sys

    _, runs = _store(tmp_path, depths=(8, 14, 20, 26))  # started longest first: 26 and 20, then 14 in 26's slot
    stop, lines = StopRequest(), []

    def status(line: str, final: bool) -> None:
        lines.append((line, final))
        training = [r for r in runs if r.config.depth in (14, 20) and (r.dirs[0] / "summary.json").exists()]
        if len(training) == 2 and "stopped 1" in line:
            stop.request("SIGINT")  # Ctrl-C while two runs train, after the third stopped on its own

    command = (sys.executable, "-c", STOPPABLE)
    states = runner.execute(runs, [Slot(None, 1)] * 2, tmp_path / "_logs", echo=lambda _: None, interval=0.05,
                            command=command, status=status, stop=stop)  # fmt: skip
    assert list(states.values()) == [PARTIAL] * 3, "three started, each stopped resumable; one never started"
    live = [line for line, final in lines if not final]
    assert any(line.startswith("done 0 | running 2 | failed 0 | stopped 1 | to go 1") for line in live), live[-3:]
    assert lines[-1] == ("done 0 | running 0 | failed 0 | stopped 3 | to go 1", True)
