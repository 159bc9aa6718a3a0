"""Sweeps: W&B expansion semantics, agent-style parameter passing, the local runner, and every sweep file."""

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import run_sweep
from analysis.recipes import recipe_key
from experiments.config import RunConfig, config_from_dict, parse_cli, run_name
from experiments.data.catalog import CIFAR_TRAIN_SIZE
from experiments.data.sources import ImageArrays
from experiments.store import EVAL_COLUMNS, METRIC_COLUMNS, RunDir
from experiments.store.logger import member_key
from experiments.sweep.runner import DONE, FAILED, PARTIAL, PENDING, Slot, execute, plan_runs, run_state
from experiments.sweep.spec import expand, load_sweep, resolve_runs
from experiments.training.schedule import LRPolicy
from models.paper import TABLE2, TABLE3
from tests.helpers import REPO, run_cli

SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
FAKE = [sys.executable, str(REPO / "tests" / "fake_train.py")]
IMAGENET_STORE = "imagenet"
"""The store folder the ImageNet sweep files share, so a net in two of Tables 2 and 3 is trained once."""
COMPANIONS = {
    "interventions_demo_reference": "interventions_demo",
    "interventions_demo_vanilla": "interventions_demo",
    "interventions_demo_dial": "interventions_demo",
    "interventions_reference": "interventions",
}
"""Sweep files that train into another file's store: a grid cannot hold the paper's nets beside BN-free remedies."""


def write_sweep(tmp_path: Path, spec: dict | str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path


def test_the_sweep_files_for_every_paper_artefact_exist():
    artefacts = {"fig1", "fig1_3x", "fig4", "fig6", "fig6_1202", "fig7", "table3", "table3_bottleneck", "table6"}
    assert {p.stem for p in SWEEPS} >= {*artefacts, "demo"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_sweep_file_is_a_wandb_sweep_that_resolves_to_valid_runs(path, tmp_path):
    spec = load_sweep(path)
    assert spec["method"] in ("grid", "random", "bayes") and spec["metric"]["name"]
    assert spec["command"][-1] == "${args}" and "experiments.train" in spec["command"]
    assert spec["name"] == path.stem
    folder = spec["parameters"]["sweep"]["value"]  # set in the file: a W&B agent gets no local default
    own = IMAGENET_STORE if "imagenet" in spec["parameters"]["preset"]["value"] else path.stem
    assert folder == COMPANIONS.get(path.stem, own)
    assert path.read_text().startswith("#"), "a header comment says the question, metric and cost"
    runs = resolve_runs(spec, runs_dir=str(tmp_path))
    assert runs and all(r.config.sweep == folder for r in runs)


def trial_runs(spec: dict) -> list[str]:
    """``<store folder>/<run name>`` of every network of every W&B trial, as an agent resolves its parameters."""
    return [f"{m.sweep}/{run_name(m)}" for params in expand(spec) for m in config_from_dict(params).members()]


def repeated(names: list[str]) -> list[str]:
    return [name for name, n in Counter(names).items() if n > 1]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_wandb_trial_of_a_sweep_file_trains_runs_no_other_trial_trains(path):
    assert repeated(trial_runs(load_sweep(path))) == [], "two agents would train one folder at once"


def test_sweep_files_that_share_a_store_folder_share_no_run():
    assert repeated([name for path in SWEEPS for name in trial_runs(load_sweep(path))]) == []


def test_the_imagenet_store_holds_every_net_of_tables_2_and_3():
    specs = [load_sweep(p) for p in SWEEPS]
    shared = [s for s in specs if s["parameters"]["sweep"]["value"] == IMAGENET_STORE]
    assert {s["name"] for s in shared} == {"fig4", "table3", "table3_bottleneck"}
    nets = {(m.arch, m.depth, m.shortcut) for s in shared for r in resolve_runs(s) for m in r.config.members()}
    assert nets >= set(TABLE2) | set(TABLE3)


@pytest.mark.parametrize("store", sorted(set(COMPANIONS.values())))
def test_each_intervention_store_holds_the_papers_pair_at_every_depth_and_recipe_of_its_remedies(store):
    specs = [load_sweep(p) for p in SWEEPS if load_sweep(p)["parameters"]["sweep"]["value"] == store]
    configs = [m for s in specs for r in resolve_runs(s) for m in r.config.members()]
    paper = {(c.arch, c.depth, recipe_key(c.to_dict())) for c in configs if not c.network_spec().interventions()}
    remedies = {(c.depth, recipe_key(c.to_dict())) for c in configs if c.network_spec().interventions()}
    assert remedies and all({("plain", d, r), ("resnet", d, r)} <= paper for d, r in remedies)


def test_a_sweep_runs_into_and_reports_its_store_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("experiments.sweep.preflight.first_problem", lambda *a: None)  # ImageNet need not be here
    assert run_sweep.main([str(REPO / "sweeps" / "table3.yaml"), "--dry-run", "--runs-dir", str(tmp_path)]) == 0
    assert f"sweep table3: 2 runs in {tmp_path / IMAGENET_STORE}" in capsys.readouterr().out


def test_the_3x_sweep_scales_the_schedule_to_192k_iterations():
    for run in resolve_runs(load_sweep(REPO / "sweeps" / "fig1_3x.yaml")):
        policy = LRPolicy.from_config(run.config)
        assert run.config.max_steps == 3 * config_from_dict({}).max_steps == 192_000
        assert [policy.lr(s) for s in (95_999, 96_000, 143_999, 144_000)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def logged_keys(cfg: RunConfig, imagenet_dir: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The metric keys a run of ``cfg`` logs to W&B (and the store), derived from the code that logs them.

    The module logs the store's per-step columns and, at each evaluation, the eval columns of every split its data
    module evaluates, each under ``member_key`` (``plain/``, ``resnet/`` in a pair). The splits come from the real
    data module, with CIFAR-10 replaced by blank images and ImageNet by a one-image folder. Top-5 columns are
    counted for every split, though a 10-class run logs none.
    """
    import experiments.data.datamodules as dm

    def blank(*args, **kwargs) -> tuple[ImageArrays, ImageArrays]:
        def split(n: int) -> ImageArrays:
            return ImageArrays(torch.zeros(n, 3, 1, 1, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))

        return split(CIFAR_TRAIN_SIZE), split(10)

    monkeypatch.setattr(dm, "load_cifar10", blank)
    monkeypatch.setattr(dm, "synthetic_arrays", blank)
    if cfg.dataset in ("imagenet", "folder"):
        cfg = cfg.replace(data_dir=str(imagenet_dir))
    splits = dm.build_datamodule(cfg).eval_names
    columns = [c for c in METRIC_COLUMNS if c != "step" and (c not in EVAL_COLUMNS or c.split("_")[0] in splits)]
    return {member_key(m.arch, c, cfg.arch == "pair") for m in cfg.members() for c in columns}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_sweep_metric_is_a_key_its_runs_log(path, tmp_path, monkeypatch):
    for split in ("train", "val"):
        (tmp_path / split / "n01440764").mkdir(parents=True)
        Image.new("RGB", (64, 64)).save(tmp_path / split / "n01440764" / "a.JPEG")  # fig4_small's crop fits
    spec = load_sweep(path)
    for run in resolve_runs(spec):
        assert spec["metric"]["name"] in logged_keys(run.config, tmp_path, monkeypatch), run.name


@pytest.mark.parametrize(
    ("name", "count"),
    [("fig1", 2), ("fig1_3x", 2), ("fig6", 5), ("table6", 25), ("fig4", 2), ("table3", 2), ("table3_bottleneck", 3),
     ("demo", 6)],
)  # fmt: skip
def test_grid_expansion_counts(name, count):
    assert len(resolve_runs(load_sweep(REPO / "sweeps" / f"{name}.yaml"))) == count


def test_grid_is_the_cartesian_product_in_parameter_order():
    spec = {
        "name": "g",
        "method": "grid",
        "parameters": {"arch": {"values": ["plain", "resnet"]}, "depth": {"values": [20, 56]}, "seed": {"value": 3}},
    }
    assert expand(spec) == [{"arch": a, "depth": d, "seed": 3} for a in ("plain", "resnet") for d in (20, 56)]


RANDOM = {
    "name": "r",
    "method": "random",
    "run_cap": 40,
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 0.5},
        "weight_decay": {"distribution": "q_uniform", "min": 0.0, "max": 0.001, "q": 0.0001},
        "depth": {"values": [20, 32, 44]},
        "seed": {"distribution": "int_uniform", "min": 0, "max": 9},
        "momentum": {"min": 0.8, "max": 0.95},
        "warmup_lr": {"distribution": "log_uniform", "min": -5, "max": -2},
    },
}


def test_random_search_is_seeded_and_draws_from_wandb_distributions():
    a, b, c = expand(RANDOM, seed=0), expand(RANDOM, seed=0), expand(RANDOM, seed=1)
    assert len(a) == 40 and a == b and a != c
    assert all(0.01 <= p["lr"] <= 0.5 for p in a)
    assert all(abs(p["weight_decay"] / 0.0001 - round(p["weight_decay"] / 0.0001)) < 1e-9 for p in a)
    assert {p["depth"] for p in a} == {20, 32, 44}
    assert all(isinstance(p["seed"], int) and 0 <= p["seed"] <= 9 for p in a)
    assert all(0.8 <= p["momentum"] <= 0.95 for p in a), "min/max floats infer uniform, as W&B does"
    assert all(0.0067 <= p["warmup_lr"] <= 0.136 for p in a), "log_uniform bounds are natural-log exponents"
    assert len(expand(RANDOM, seed=0, count=5)) == 5


def test_parameters_reach_a_run_as_a_wandb_agent_passes_them():
    spec = {
        "name": "p",
        "method": "grid",
        "parameters": {
            "depth": {"value": 56},
            "lr_milestones": {"value": [0.5, 0.75]},
            "download": {"value": False},
            "width": {"value": None},
        },
    }
    (run,) = resolve_runs(spec)
    # in W&B's engine's order (by name), each value as the agent prints it
    assert run.args[:4] == ["--depth=56", "--download=False", "--lr_milestones=[0.5, 0.75]", "--width=None"]
    assert config_from_dict(parse_cli(run.args)) == run.config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("method: grid\nparameters: {depth: {values: [20, 56]}\n", "is not valid YAML at line"),
        ("method: annealing\nparameters: {depth: {value: 20}}\n", "method must be one of grid, random, bayes"),
        ("method: grid\nparameters: {depht: {value: 20}}\n", "parameter 'depht' is not a run-config field"),
        ("method: grid\nparameters: {depth: {values: [20, 21]}}\n", "is not a valid run: depth must be 6n+2"),
        (
            "method: random\nrun_cap: 2\nparameters: {lr: {distribution: zipf, min: 1, max: 2}}\n",
            "unknown distribution 'zipf'",
        ),
        (
            "method: bayes\nmetric: {name: train_error, goal: minimize}\nparameters: {lr: {min: 0.01, max: 0.1}}\n",
            "method 'bayes' is run by W&B's server; start it with --wandb",
        ),
        (
            "method: grid\nearly_terminate: {type: hyperband, min_iter: 3}\nparameters: {depth: {value: 20}}\n",
            "early_terminate (hyperband) is applied by W&B's server",
        ),
        ("method: grid\nparameters: {depth: {values: []}}\n", "needs a non-empty list under 'values'"),
        ("method: grid\nparameters: {}\n", "parameters must be a non-empty mapping"),
        ("method: random\nparameters: {lr: {min: 0.01, max: 0.1}}\n", "a random sweep needs run_cap"),
        ("method: grid\nparameters: {lr: {min: 0.01, max: 0.1}}\n", "grid search takes constant, categorical, int_"),
        ("- just\n- a list\n", "must hold a mapping"),
    ],
)
def test_malformed_sweep_exits_2_with_one_line_and_starts_nothing(tmp_path, capsys, text, message):
    path = write_sweep(tmp_path, text)
    code = run_sweep.main([str(path), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err and err.startswith("error: ")
    assert not (tmp_path / "runs").exists()


def _fake_sweep(tmp_path, depths, arch="plain"):
    spec = {
        "name": "fake",
        "method": "grid",
        "parameters": {"preset": {"value": "demo"}, "arch": {"value": arch}, "depth": {"values": depths}},
    }
    runs = resolve_runs(spec, runs_dir=str(tmp_path))
    return runs, lambda: (tmp_path / "calls.txt").read_text().splitlines()


@pytest.mark.integration
def test_runner_starts_the_longest_runs_first_so_the_sweep_does_not_end_on_one(tmp_path):
    runs, calls = _fake_sweep(tmp_path, [8, 20, 32])
    assert [r.config.depth for r in runs] == [8, 20, 32], "the file's order"
    states = execute(runs, [Slot(None, 1)], tmp_path / "_logs", echo=lambda s: None, command=FAKE, interval=0.05)
    assert set(states.values()) == {DONE}
    assert [int(parse_cli(line.split())["depth"]) for line in calls()] == [32, 20, 8]


@pytest.mark.integration
def test_split_pairs_run_each_network_alone_into_the_pairs_own_folders(tmp_path):
    pairs, calls = _fake_sweep(tmp_path, [8, 20], arch="pair")
    assert plan_runs(pairs, split_pairs=False) == pairs
    singles = plan_runs(pairs, split_pairs=True)
    assert [(r.config.arch, r.config.depth) for r in singles] == [
        ("plain", 8),
        ("resnet", 8),
        ("plain", 20),
        ("resnet", 20),
    ]
    assert [r.dirs[0] for r in singles] == [d for p in pairs for d in p.dirs]
    states = execute(singles, [Slot(None, 1)] * 2, tmp_path / "_logs", echo=lambda s: None, command=FAKE, interval=0.05)
    assert set(states.values()) == {DONE} and [run_state(p) for p in pairs] == [DONE, DONE]
    assert sorted(parse_cli(line.split())["arch"] for line in calls()) == ["plain", "plain", "resnet", "resnet"]


def test_a_pair_resumes_the_way_it_started_whatever_split_pairs_says(tmp_path):
    (as_pair, as_singles, half_split, failed_early), _ = _fake_sweep(tmp_path, [8, 20, 32, 44], arch="pair")
    plain, resnet = (RunDir(d) for d in as_pair.dirs)
    plain.write_summary({"status": "running", "paired_with": resnet.name})
    resnet.write_summary({"status": "running", "paired_with": plain.name})
    plain.checkpoint_dir.mkdir(parents=True)
    (plain.checkpoint_dir / "step=50.ckpt").write_bytes(b"")  # a pair's one checkpoint: its first member's folder
    plain, resnet = (RunDir(d) for d in as_singles.dirs)
    plain.write_summary({"status": "finished", "paired_with": None})
    resnet.write_summary({"status": "running", "paired_with": None})
    RunDir(half_split.dirs[0]).write_summary({"status": "running", "paired_with": None})  # its resnet not started
    for d in failed_early.dirs:  # failed before its first checkpoint: nothing to resume as a pair
        RunDir(d).write_summary({"status": "failed", "paired_with": "the other"})
    runs = [as_pair, as_singles, half_split, failed_early]
    kept, resumed = [as_pair.dirs, [resnet.path], half_split.dirs[:1], half_split.dirs[1:]], failed_early.dirs
    assert [r.dirs for r in plan_runs(runs, split_pairs=False)] == [*kept, resumed]
    assert [r.dirs for r in plan_runs(runs, split_pairs=True)] == [*kept, resumed[:1], resumed[1:]]


def test_dry_run_lists_the_processes_it_would_start_longest_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("experiments.sweep.preflight.first_problem", lambda *a: None)  # CIFAR-10 need not be here
    for flags, count in (([], 5), (["--split-pairs"], 10)):
        assert (
            run_sweep.main([str(REPO / "sweeps" / "fig6.yaml"), "--dry-run", "--runs-dir", str(tmp_path), *flags]) == 0
        )
        last = capsys.readouterr().out.strip().splitlines()[-1]
        names = last.removeprefix(f"would start {count} process(es), longest first: ").split(", ")
        depths = [int(part.split("-")[1]) for name in names for part in name.split("+")]
        assert len(names) == count and depths == sorted(depths, reverse=True) and names[0].startswith("plain-110-")
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"


def test_a_failed_network_of_a_split_pair_does_not_hold_back_its_partner(tmp_path, capsys):
    spec = {"name": "fake", "method": "grid", "parameters": {"preset": {"value": "demo"}, "arch": {"value": "pair"}}}
    sweep = write_sweep(tmp_path, spec)
    (pair,) = resolve_runs(load_sweep(sweep), runs_dir=str(tmp_path))
    plain, resnet = (RunDir(d) for d in pair.dirs)
    plain.write_summary({"status": "failed", "paired_with": None})
    resnet.write_summary({"status": "running", "paired_with": None})
    assert run_sweep.main([str(sweep), "--runs-dir", str(tmp_path), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"would start 1 process(es), longest first: {resnet.name}")


def test_a_fused_pair_cannot_also_be_split(tmp_path, capsys):
    spec = {"name": "fake", "method": "grid", "parameters": {"preset": {"value": "demo"}, "arch": {"value": "pair"},
                                                             "fuse": {"value": "on"}}}  # fmt: skip
    sweep = write_sweep(tmp_path, spec)
    assert run_sweep.main([str(sweep), "--runs-dir", str(tmp_path / "runs"), "--split-pairs"]) == 2
    assert "fuse 'on' trains the pair as one network, so it cannot also be split" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_split_pairs_is_refused_for_wandb_sweeps_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_sweep.main(["sweeps/fig6.yaml", "--wandb", "--split-pairs"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: --split-pairs is for the local runner; W&B agents run")


@pytest.mark.integration
def test_runner_skips_finished_resumes_partial_and_retries_failed_only_when_asked(tmp_path):
    runs, calls = _fake_sweep(tmp_path, [8, 14, 20, 26])
    states = execute(
        runs, [Slot(None, 1), Slot(None, 1)], tmp_path / "_logs", echo=lambda s: None, command=FAKE, interval=0.05
    )
    assert [states[r.name] for r in runs] == [DONE, FAILED, DONE, FAILED], "a failing run does not stop the sweep"
    assert len(calls()) == 4
    failed = RunDir(runs[1].dirs[0]).read_summary()
    assert failed["status"] == "failed" and "RuntimeError: boom" in failed["reason"]
    killed = RunDir(runs[3].dirs[0]).read_summary()
    assert killed["status"] == "failed" and "exit code" in killed["reason"]
    assert [run_state(r) for r in runs] == [DONE, FAILED, DONE, FAILED]
    RunDir(runs[2].dirs[0]).update_summary(status="running")
    assert run_state(runs[2]) == PARTIAL
    assert (
        run_state(
            resolve_runs(
                {"name": "fake", "method": "grid", "parameters": {"depth": {"value": 32}}}, runs_dir=str(tmp_path)
            )[0]
        )
        == PENDING
    )


@pytest.mark.integration
def test_run_sweep_cli_skip_resume_retry(tmp_path, monkeypatch, capsys):
    import experiments.sweep.runner as runner

    spec = {
        "name": "fake",
        "method": "grid",
        "parameters": {"preset": {"value": "demo"}, "arch": {"value": "plain"}, "depth": {"values": [8, 14]}},
    }
    path = write_sweep(tmp_path, spec)
    real = runner.execute
    monkeypatch.setattr(
        runner,
        "execute",
        lambda runs, slots, log_dir, **kw: real(runs, slots, log_dir, command=FAKE, interval=0.05, **kw),
    )
    argv = [str(path), "--runs-dir", str(tmp_path), "--no-report"]
    assert run_sweep.main(argv) == 1, "one run failed"
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 2
    assert run_sweep.main(argv) == 1
    out = capsys.readouterr().out
    assert "skipping 1 failed run(s); pass --retry-failed" in out and "1 already finished, 0 to run" in out
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 2, "nothing started again"
    run_sweep.main([*argv, "--retry-failed"])
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert len(calls) == 3 and "--depth=14" in calls[-1]
    run_sweep.main([*argv, "--dry-run"])
    out = capsys.readouterr().out
    assert "done     plain-8-" in out and "failed   plain-14-" in out


def test_wandb_mode_creates_the_sweep_and_starts_agent_processes(monkeypatch, capsys):
    from types import SimpleNamespace

    import wandb

    import experiments.sweep.devices as devices
    import experiments.sweep.wandb_agents as ws

    created, started = [], []

    class Agent:
        def wait(self):
            return 0

    def fake_popen(cmd, env):
        started.append((cmd, env))
        return Agent()

    monkeypatch.setattr(
        wandb, "sweep", lambda sweep, project, entity: created.append((sweep, project, entity)) or "abc"
    )
    monkeypatch.setattr(ws, "require_login", lambda: None)  # tests/test_wandb.py: without a login, one line
    monkeypatch.setattr(ws, "subprocess", SimpleNamespace(Popen=fake_popen))  # the agents' processes only
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["0", "1"])  # --gpus names GPUs that exist
    code = run_sweep.main(
        [str(REPO / "sweeps" / "demo.yaml"), "--wandb", "--project", "p", "--entity", "me", "--gpus", "0,1",
         "--runs-per-gpu", "1"]
    )  # fmt: skip
    assert code == 0
    ((sweep, project, entity),) = created
    assert (project, entity, sweep["name"], sweep["method"]) == ("p", "me", "demo", "grid")
    assert [cmd[-1] for cmd, _ in started] == ["me/p/abc"] * 2 and all("agent" in cmd for cmd, _ in started)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["0", "1"]
    assert "python run_sweep.py --agent me/p/abc" in capsys.readouterr().out
    started.clear()
    monkeypatch.setattr(devices, "visible_gpus", lambda: [])  # a CPU machine: --jobs agents
    assert run_sweep.main(["--agent", "me/p/abc", "--jobs", "2"]) == 0
    assert len(started) == 2 and started[0][0][-2:] == ["agent", "me/p/abc"]


@pytest.mark.integration
def test_one_real_sweep_point_runs_end_to_end(tmp_path):
    spec = {
        "name": "tiny",
        "method": "grid",
        "parameters": {
            "preset": {"value": "demo"},
            "arch": {"value": "pair"},
            "depth": {"value": 8},
            "width": {"value": 4},
            "image_size": {"value": 8},
            "train_size": {"value": 256},
            "test_size": {"value": 64},
            "batch_size": {"value": 32},
            "max_steps": {"value": 20},
            "eval_every": {"value": 10},
            "log_every": {"value": 10},
            "checkpoint_every": {"value": 10},
            "response_images": {"value": 16},
        },
    }
    path = write_sweep(tmp_path, spec)
    result = run_cli(
        [str(REPO / "run_sweep.py"), str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "done 1 | running 0 | failed 0 | to go 0" in result.stdout
    names = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir() if not p.name.startswith("_"))
    assert [n.split("-s0")[0] for n in names] == ["plain-8", "resnet-8-A"]
    again = run_cli(
        [str(REPO / "run_sweep.py"), str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report"], cwd=tmp_path
    )
    assert again.returncode == 0 and "1 already finished, 0 to run" in again.stdout
