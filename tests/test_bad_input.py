"""Bad input at every entry point: exit code 2, one line naming the problem, no traceback, nothing written."""

import pytest

import run_sweep
from experiments import train
from tests.helpers import run_cli, write_cifar10

TRAIN_CASES = [
    (["--depth", "abc"], "depth must be an integer, got 'abc'"),
    (["--depth", "21"], "depth must be 6n+2 for cifar10"),
    (["--dataset", "imagenet", "--depth", "20"], "depth must be one of 18, 34, 50, 101, 152 for imagenet"),
    (["--arch", "dense"], "arch must be one of 'plain', 'resnet', 'pair'"),
    (["--shortcut", "D"], "shortcut must be one of 'A', 'B', 'C'"),
    (["--stride_in", "2x2"], "stride_in must be one of '1x1', '3x3'"),
    (["--preset", "fast"], "preset must be one of 'cifar10-paper', 'imagenet-paper', 'demo'"),
    (["--lr", "-0.1"], "lr must be a positive number, got -0.1"),
    (["--lr", "fast"], "lr must be a number, got 'fast'"),
    (["--batch_size", "0"], "batch_size must be a positive integer, got 0"),
    (["--lr_milestones", "0.9,0.5"], "lr_milestones must be increasing fractions"),
    (["--bogus", "1"], "unknown config field 'bogus'"),
    (["--depth"], "--depth needs a value"),
    (["plain"], "unexpected argument 'plain'"),
    (["--wandb", "maybe"], "wandb must be one of 'offline', 'online', 'disabled'"),
    (["--download", "maybe"], "download must be true or false"),
    (["--preset", "demo", "--image_size", "4"], "image_size must be at least 8"),
    (["--test_crops", "5"], "test_crops must be one of 1, 10"),
    (["--dataset", "cifar10", "--data_dir", "{tmp}/nowhere"], "CIFAR-10 not found: expected the python-format"),
    (["--dataset", "cifar10", "--data_dir", "{tmp}/cifar", "--data_verify", "false"], "data_batch_2 is corrupt"),
    (["--dataset", "cifar10", "--data_dir", "{tmp}/cifar"], "data_batch_1 fails its MD5 check"),
    (["--dataset", "imagenet", "--data_dir", "{tmp}/nowhere"], "ImageNet folder"),
    (["--preset", "demo", "--out", "{tmp}/afile/run"], "is not a writable folder"),
    (["--preset", "demo", "--fuse", "on"], "fuse 'on' is not possible for this run: fusion computes a pair's"),
    (["--preset", "demo", "--arch", "pair", "--depth", "110", "--fuse", "on"], "the ResNet's warm-up ends on its own"),
    (["--preset", "demo", "--arch", "pair", "--shortcut", "B", "--fuse", "on"], "option B has projection weights"),
    (["--fuse", "maybe"], "fuse must be one of 'auto', 'on', 'off'"),
    (["--decode", "nvjpeg"], "decode must be one of 'cpu', 'gpu'"),
    (["--preset", "demo", "--decode", "gpu"], "decode applies only to dataset 'imagenet'"),
]


@pytest.fixture
def workspace(tmp_path):
    write_cifar10(tmp_path / "cifar")
    (tmp_path / "cifar" / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"\x80\x04garbage")
    (tmp_path / "afile").write_text("a file, not a folder")
    return tmp_path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _train_args(workspace, args):
    args = [a.replace("{tmp}", str(workspace)) for a in args]
    if "--out" not in args:
        args += ["--out", str(workspace / "out" / "run")]
    return args if "--wandb" in args else [*args, "--no-wandb"]


@pytest.mark.parametrize(("args", "message"), TRAIN_CASES, ids=[" ".join(a)[:40] for a, _ in TRAIN_CASES])
def test_train_cli(workspace, capsys, args, message):
    code = train.main(_train_args(workspace, args))
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("error: ") and message in line
    assert not (workspace / "out").exists() and not (workspace / "runs").exists()


def test_train_cli_refuses_a_stride_in_that_basic_blocks_would_ignore(workspace, capsys):
    code = train.main(_train_args(workspace, ["--preset", "demo", "--depth", "20", "--stride_in", "3x3"]))
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "stride_in '3x3' applies only to bottleneck nets" in line
    assert not (workspace / "out").exists() and not (workspace / "runs").exists()


@pytest.mark.integration
def test_train_module_exits_2_with_one_line_in_a_real_process(workspace):
    """The cases above run in-process; this one runs `python -m experiments.train` itself, so import-time warnings
    or a traceback on the way out would show. A corrupt data file is found last, after config and set-up."""
    args = _train_args(workspace, ["--dataset", "cifar10", "--data_dir", "{tmp}/cifar", "--data_verify", "false"])
    result = run_cli(["-m", "experiments.train", *args], cwd=workspace)
    assert result.returncode == 2, result.stderr[-2000:]
    assert _one_line(result.stderr).startswith("error: ") and "data_batch_2 is corrupt" in result.stderr
    assert result.stdout == "" and not (workspace / "out").exists() and not (workspace / "runs").exists()


SWEEP_CASES = [
    (["{tmp}/missing.yaml"], "sweep file {tmp}/missing.yaml not found"),
    (["{tmp}/bad.yaml"], "is not valid YAML at line 3, column 1"),
    (["{tmp}/method.yaml"], "method must be one of grid, random, bayes, got 'annealing'"),
    (["{tmp}/param.yaml"], "parameter 'layers' is not a run-config field"),
    (["{tmp}/dist.yaml"], "unknown distribution 'zipf'"),
    (["{tmp}/empty.yaml"], "parameters must be a non-empty mapping"),
    (["{tmp}/bayes.yaml"], "method 'bayes' is run by W&B's server"),
    (["{tmp}/depth.yaml"], "is not a valid run: depth must be 6n+2"),
    (["{tmp}/ok.yaml", "--jobs", "0"], "--jobs and --runs-per-gpu must be at least 1"),
    (["{tmp}/ok.yaml", "--jobs", "two"], "argument --jobs: invalid int value: 'two'"),
    ([], "a sweep file is required"),
]
SWEEP_FILES = {
    "bad.yaml": "method: grid\nparameters: [depth: {values: [20]}\n",
    "method.yaml": "method: annealing\nparameters: {depth: {value: 20}}\n",
    "param.yaml": "method: grid\nparameters: {layers: {value: 20}}\n",
    "dist.yaml": "method: random\nrun_cap: 1\nparameters: {lr: {distribution: zipf, min: 0.1, max: 1}}\n",
    "empty.yaml": "method: grid\nparameters: {}\n",
    "bayes.yaml": "method: bayes\nmetric: {name: train_error}\nparameters: {lr: {min: 0.01, max: 0.1}}\n",
    "depth.yaml": "method: grid\nparameters: {depth: {values: [20, 21]}}\n",
    "ok.yaml": "method: grid\nparameters: {depth: {value: 20}}\n",
}


@pytest.mark.parametrize(("args", "message"), SWEEP_CASES, ids=[" ".join(a)[:40] or "none" for a, _ in SWEEP_CASES])
def test_run_sweep_cli(tmp_path, capsys, args, message):
    for name, text in SWEEP_FILES.items():
        (tmp_path / name).write_text(text)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(run_sweep.main([*args, "--runs-dir", str(tmp_path / "runs")]))
    line = _one_line(capsys.readouterr().err)
    assert exit_.value.code == 2 and line.startswith("error: ") and message.replace("{tmp}", str(tmp_path)) in line
    assert not (tmp_path / "runs").exists()


REPORT_CASES = [
    (["{tmp}/missing"], "runs folder"),
    (["{tmp}/empty"], "no runs"),
    (["{tmp}/empty", "--format", "gif"], "--format must be a comma-separated list of"),
    ([], "the following arguments are required: runs_dir"),
]


@pytest.mark.parametrize(("args", "message"), REPORT_CASES, ids=[" ".join(a)[:40] or "none" for a, _ in REPORT_CASES])
def test_analysis_report_cli(tmp_path, capsys, args, message):
    from analysis import report

    (tmp_path / "empty").mkdir()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code = report.main(args)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("error: ") and message in line
    assert not (tmp_path / "empty" / "report").exists() and not (tmp_path / "missing").exists()
