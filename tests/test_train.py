"""Real training, briefly, on CPU: the run store a run leaves, resume, paired mode and bad input."""

import csv
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from experiments.config import config_from_dict
from experiments.store import METRIC_COLUMNS, RESPONSE_COLUMNS, RunDir
from experiments.train import train
from models import build_model
from tests.helpers import REPO, cli_args, run_cli, tiny, write_cifar10


def tiny_config(tmp_path, **overrides):
    return config_from_dict(tiny(**{"runs_dir": str(tmp_path / "runs"), **overrides}))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.integration
def test_demo_plain20_200_iterations_leaves_a_complete_run_directory(tmp_path):
    out = tmp_path / "runs" / "demo" / "plain-20"
    start = time.perf_counter()
    result = run_cli(
        [
            "-m",
            "experiments.train",
            "--preset",
            "demo",
            "--arch",
            "plain",
            "--depth",
            "20",
            "--max_steps",
            "200",
            "--eval_every",
            "100",
            "--log_every",
            "20",
            "--checkpoint_every",
            "100",
            "--out",
            str(out),
            "--no-wandb",
        ],
        cwd=tmp_path,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    print(f"demo plain-20, 200 iterations: {elapsed:.1f}s")
    config = json.loads((out / "config.json").read_text())
    assert (config["arch"], config["depth"], config["dataset"], config["max_steps"]) == ("plain", 20, "synthetic", 200)
    metrics = read_rows(out / "metrics.csv")
    assert tuple(metrics[0]) == METRIC_COLUMNS
    assert [int(r["step"]) for r in metrics] == list(range(20, 201, 20))
    assert all(r["train_error"] and r["train_loss"] and r["lr"] for r in metrics)
    assert [r["step"] for r in metrics if r["test_error"]] == ["100", "200"]
    responses = read_rows(out / "responses.csv")
    assert tuple(responses[0]) == RESPONSE_COLUMNS
    at_200 = [r for r in responses if r["step"] == "200"]
    assert len(at_200) == 19 and [int(r["layer"]) for r in at_200] == list(range(1, 20))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 200
    assert summary["params"] > 0 and summary["macs"] > 0 and summary["images_per_s"] > 0
    assert 0 <= summary["final_test_error"] <= 100 and summary["versions"]["torch"] == torch.__version__
    ckpt = torch.load(out / "checkpoints" / "step=200.ckpt", weights_only=True)
    assert ckpt["global_step"] == 200 and "lr_policies" in ckpt
    final = build_model("plain", 20, "cifar10", width=config["width"], num_classes=10)
    final.load_state_dict(torch.load(out / "checkpoints" / "model.pt", weights_only=True))
    at_200 = {k.removeprefix("nets.plain."): v for k, v in ckpt["state_dict"].items() if k.startswith("nets.plain.")}
    assert at_200.keys() == final.state_dict().keys()
    assert all(torch.equal(final.state_dict()[k], v) for k, v in at_200.items())


@pytest.mark.integration
def test_training_learns_and_logs_the_schedule(tmp_path):
    cfg = tiny_config(tmp_path, arch="resnet", depth=8, max_steps=80, eval_every=40, log_every=10, checkpoint_every=40)
    summary = next(iter(train(cfg, echo=lambda *a, **k: None).values()))
    run = RunDir(summary["checkpoint_dir"]).path.parent
    metrics = RunDir(run).read_metrics()
    assert [r["lr"] for r in metrics] == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)
    assert metrics[-1]["train_error"] < metrics[0]["train_error"]
    assert summary["final_test_error"] < 90


@pytest.mark.integration
def test_rerunning_a_finished_run_does_nothing(tmp_path):
    cfg = tiny_config(tmp_path, arch="plain", depth=8, max_steps=20, eval_every=20, log_every=10, checkpoint_every=20)
    messages = []
    first = train(cfg, echo=messages.append)
    again = train(cfg, echo=messages.append)
    assert first == again and any("already finished" in m for m in messages)


def _train_and_read(cfg):
    summaries = train(cfg, echo=lambda *a, **k: None)
    return {name: (s, RunDir(s["checkpoint_dir"]).path.parent) for name, s in summaries.items()}


@pytest.mark.integration
def test_pair_trains_each_member_exactly_like_its_single_run(tmp_path):
    base = dict(depth=8, max_steps=30, eval_every=15, log_every=5, checkpoint_every=30, sweep="pairs")
    pair = _train_and_read(tiny_config(tmp_path, arch="pair", **base, runs_dir=str(tmp_path / "pair")))
    assert len(pair) == 2 and {s["arch"] for s, _ in pair.values()} == {"plain", "resnet"}
    for arch in ("plain", "resnet"):
        single = _train_and_read(tiny_config(tmp_path, arch=arch, **base, runs_dir=str(tmp_path / "single")))
        ((name, (s_single, _)),) = single.items()
        s_pair = pair[name][0]
        assert s_pair["paired_with"] is not None
        for key in ("final_train_error", "final_train_loss", "final_test_error", "final_test_loss"):
            assert s_pair[key] == pytest.approx(s_single[key], rel=1e-5), (arch, key)
        pair_rows = RunDir(tmp_path / "pair" / "pairs" / name).read_metrics()
        single_rows = RunDir(tmp_path / "single" / "pairs" / name).read_metrics()
        assert [r["step"] for r in pair_rows] == [r["step"] for r in single_rows]


@pytest.mark.integration
def test_cifar_fixture_trains_through_the_real_loader(tmp_path):
    write_cifar10(tmp_path / "data", per_batch=40, test=40)
    cfg = config_from_dict(
        {
            "dataset": "cifar10",
            "data_dir": str(tmp_path / "data"),
            "data_verify": False,
            "val_size": 20,
            "arch": "resnet",
            "depth": 8,
            "width": 4,
            "batch_size": 30,
            "max_steps": 10,
            "eval_every": 10,
            "log_every": 5,
            "checkpoint_every": 10,
            "response_images": 16,
            "wandb": "disabled",
            "runs_dir": str(tmp_path / "runs"),
        }
    )
    (summary,) = train(cfg, echo=lambda *a, **k: None).values()
    assert summary["status"] == "finished" and summary["final_val_error"] is not None
    assert summary["final_test_error"] is not None and summary["epochs"] == pytest.approx(10 * 30 / 180)


def _uninterrupted_and_killed(tmp_path, args):
    ref = run_cli(["-m", "experiments.train", *args, "--out", str(tmp_path / "ref")], cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr[-2000:]
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "experiments.train", *args, "--out", str(out)]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO), "CI": "1"},
    )
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step=40.ckpt").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be interrupted"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((out / "summary.json").read_text())["status"] == "running"
    resumed = run_cli(["-m", "experiments.train", *args, "--out", str(out)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    return RunDir(tmp_path / "ref"), RunDir(out)


@pytest.mark.integration
def test_killed_run_resumes_to_identical_metrics(tmp_path):
    args = cli_args(tiny(max_steps=160, eval_every=50, log_every=10, checkpoint_every=20))
    ref, killed = _uninterrupted_and_killed(tmp_path, args)
    ref_rows, rows = ref.read_metrics(), killed.read_metrics()
    assert [r["step"] for r in rows] == [r["step"] for r in ref_rows] == list(range(10, 161, 10))
    for a, b in zip(ref_rows, rows, strict=True):
        for col in ("train_error", "train_loss", "lr", "test_error", "test_loss"):
            assert a[col] == b[col], (a["step"], col)
    assert ref.read_responses() == killed.read_responses()
    s_ref, s = ref.read_summary(), killed.read_summary()
    assert s["status"] == "finished" and s["resumed_from"].endswith(".ckpt")
    assert (s["final_train_error"], s["final_test_error"]) == (s_ref["final_train_error"], s_ref["final_test_error"])


@pytest.mark.integration
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    out = tmp_path / "ddp"
    ddp = tiny(train_size=256, test_size=64, max_steps=10, eval_every=5, log_every=5, checkpoint_every=10)
    args = cli_args({**ddp, "accelerator": "cpu", "devices": 2, "out": out})
    result = run_cli(["-m", "experiments.train", *args], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = RunDir(out).read_metrics()
    assert [r["step"] for r in rows] == [5, 10], "rank zero writes each row once"
    assert RunDir(out).read_summary()["status"] == "finished"


@pytest.mark.integration
def test_restart_moves_the_old_run_aside_and_trains_from_step_zero(tmp_path, capsys):
    from experiments.store import list_runs
    from experiments.train import main

    args = cli_args(tiny(max_steps=20, eval_every=10, log_every=10, checkpoint_every=10, out=tmp_path / "sweep" / "r"))
    assert main(args) == 0
    old_summary = RunDir(tmp_path / "sweep" / "r").read_summary()
    assert main([*args, "--max_steps=30", "--restart"]) == 0
    err = capsys.readouterr().err
    moved = sorted((tmp_path / "sweep" / ".restarted").iterdir())
    assert len(moved) == 1 and f"moved {tmp_path / 'sweep' / 'r'} aside to {moved[0]}" in err
    assert RunDir(moved[0]).read_summary() == old_summary
    rows = RunDir(tmp_path / "sweep" / "r").read_metrics()
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert RunDir(tmp_path / "sweep" / "r").read_summary()["resumed_from"] is None
    assert [r.path for r in list_runs(tmp_path / "sweep")] == [tmp_path / "sweep" / "r"]


def test_help_describes_every_field_and_shows_the_named_presets_values(capsys):
    from experiments.config import FIELD_NAMES
    from experiments.config.parse import field_help
    from experiments.train import main

    assert set(field_help()) == set(FIELD_NAMES) and all(field_help().values())
    assert main(["--help"]) == 0
    default = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("--max_steps"))
    assert "64000" in default and "demo 600" in default and "iterations" in default
    assert main(["--preset", "demo", "--help"]) == 0
    demo = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("--max_steps"))
    assert demo.split()[:2] == ["--max_steps", "600"]
