"""Device honesty: GPUs asked for must exist, a sweep on a GPU machine uses them all by default, runs say where."""

from __future__ import annotations

import pytest

from experiments.sweep.devices import MEASURED_RUNS_PER_GPU, Devices, choose_devices
from experiments.sweep.spec import SweepError


def test_the_gpu_default_is_every_visible_gpu_at_the_measured_runs_per_gpu_with_split_pairs():
    best = MEASURED_RUNS_PER_GPU
    assert choose_devices(None, None, None, visible=["0", "1"]) == Devices(["0", "1"], best, True)
    assert choose_devices(None, None, None, visible=[]) == Devices(None, 1, False)


def test_flags_override_the_default():
    assert choose_devices(["1"], None, None, visible=["0", "1"]) == Devices(["1"], 1, False)
    assert choose_devices(None, 2, None, visible=["0"]) == Devices(["0"], 2, False)
    assert choose_devices(None, None, False, visible=["0"]) == Devices(["0"], 4, False)


@pytest.mark.parametrize(
    ("gpus", "visible", "message"),
    [
        (["0"], [], "--gpus 0 asks for GPUs, but this machine has no CUDA GPU visible"),
        (["0", "3"], ["0", "1"], "--gpus names GPU 3, which does not exist here (visible: 0,1)"),
    ],
)
def test_gpus_that_do_not_exist_are_refused_in_one_line(gpus, visible, message):
    with pytest.raises(SweepError) as info:
        choose_devices(gpus, None, None, visible)
    assert str(info.value) == message


def test_run_sweep_refuses_a_gpu_on_a_machine_without_one(tmp_path, capsys, monkeypatch):
    import run_sweep

    monkeypatch.setattr("experiments.sweep.devices.visible_gpus", lambda: [])
    assert run_sweep.main(["sweeps/demo.yaml", "--gpus", "0", "--runs-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --gpus 0 asks for GPUs, but this machine has no CUDA GPU visible"
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks what a machine without a GPU says")
def test_a_run_asking_for_a_gpu_on_a_cpu_machine_exits_2_before_writing(tmp_path, capsys):
    from experiments.train import main

    assert main(["--preset", "demo", "--accelerator", "gpu", "--out", str(tmp_path / "run")]) == 2
    assert "asks for a GPU, but this machine has no CUDA GPU visible" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.integration
def test_every_run_records_the_device_it_trained_on(tmp_path):
    from experiments.config import config_from_dict
    from experiments.store import RunDir
    from experiments.train import train
    from tests.helpers import tiny

    cfg = config_from_dict(tiny(max_steps=4, eval_every=4, log_every=2, checkpoint_every=4, out=str(tmp_path / "r")))
    train(cfg, echo=lambda *a, **k: None)
    device = RunDir(tmp_path / "r").read_summary()["device"]
    assert device.startswith("cpu: ") and device.endswith(" threads")
