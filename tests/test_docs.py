"""The docs' commands exist: every flag a page names is a flag of its entry point, and the cheap commands run."""

from __future__ import annotations

import contextlib

import pytest

from tests.doc_commands import REPO, Command, commands, doc_files, main_of, parser_of, problems

DOC_COMMANDS = [c for path in doc_files() for c in commands(path.read_text(), str(path.relative_to(REPO)))]


def _cheap(command: Command) -> bool:
    """Commands that finish in seconds without training: help, dry runs, and the count tables."""
    return bool({"--help", "-h", "--dry-run"} & set(command.args)) or command.entry == "python -m models"


def test_the_docs_name_commands_of_every_entry_point_they_document():
    entries = {c.entry for c in DOC_COMMANDS}
    assert {"run_sweep.py", "python -m experiments.train", "python -m analysis.report", "python -m models"} <= entries
    assert {"python -m analysis.landscape", "python -m benchmarks.throughput"} <= entries
    assert len(DOC_COMMANDS) >= 40, "the docs' shell blocks are being read"


@pytest.mark.parametrize("command", DOC_COMMANDS, ids=lambda c: c.where)
def test_every_flag_in_the_docs_is_a_flag_of_its_entry_point(command):
    assert problems(command) == []


def test_a_page_that_names_a_flag_that_does_not_exist_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Some prose with `--not-a-flag` outside a shell block, which is not a command.\n\n"
        "```bash\n"
        "python run_sweep.py sweeps/demo.yaml --gpus 0 \\\n"
        "    --runs-per-gpu-max 4      # a made-up flag on a continuation line\n"
        "python -m experiments.train --arch plain --epochs 3 && python -m analysis.report runs/demo --pdf\n"
        "OMP_NUM_THREADS=1 python -m benchmarks.signals --steps 60 | tee log   # fine\n"
        "python -m analysis.report runs/demo --format png   # fine\n"
        "python -m models --family cifar100   # not a family\n"
        "python -m analysis.nonexistent runs/demo\n"
        "python -m pip install -e . --whatever   # not an entry point of the project\n"
        "```\n"
    )
    found = commands(page.read_text(), "page.md")
    assert [(c.where, c.entry) for c in found] == [
        ("page.md:4", "run_sweep.py"),
        ("page.md:6", "python -m experiments.train"),
        ("page.md:6", "python -m analysis.report"),
        ("page.md:7", "python -m benchmarks.signals"),
        ("page.md:8", "python -m analysis.report"),
        ("page.md:9", "python -m models"),
        ("page.md:10", "python -m analysis.nonexistent"),
    ]
    said = [p for c in found for p in problems(c)]
    assert said[:3] == [
        "page.md:4: run_sweep.py has no flag --runs-per-gpu-max",
        "page.md:6: python -m experiments.train has no flag --epochs",
        "page.md:6: python -m analysis.report has no flag --pdf",
    ]
    assert said[3].startswith("page.md:9: python -m models --family cifar100 is refused by its parser")
    assert said[4:] == ["page.md:10: python -m analysis.nonexistent: no such module"]


def test_a_bad_value_for_a_run_is_refused_as_the_run_would_refuse_it():
    (bad,) = commands("```bash\npython -m experiments.train --arch plian --depth 20\n```\n", "p.md")
    assert problems(bad) == ["p.md:2: python -m experiments.train --arch plian --depth 20 is refused: arch must be "
                             "one of 'plain', 'resnet', 'pair', 'preact', got 'plian'"]  # fmt: skip


def test_the_parser_is_taken_before_the_entry_point_does_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = parser_of("run_sweep.py")
    assert "--dry-run" in parser._option_string_actions and not any(tmp_path.iterdir())


@pytest.mark.integration
@pytest.mark.parametrize("command", [c for c in DOC_COMMANDS if _cheap(c)], ids=lambda c: c.where)
def test_the_cheap_commands_of_the_docs_run(command, tmp_path, capsys, monkeypatch):
    """--help, --dry-run and python -m models run for real, in this process; a dry run writes into tmp_path only.

    A dry run of a sweep whose data is not on this machine (CIFAR-10, ImageNet) ends with exit code 2 and the one
    line that names the missing data: that is the documented behaviour, so it passes too.
    """
    args = list(command.args)
    if command.entry == "run_sweep.py" and "--dry-run" in args:
        if "--runs-dir" in args:
            del args[args.index("--runs-dir") : args.index("--runs-dir") + 2]
        args += ["--runs-dir", str(tmp_path / "runs")]
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(REPO)
    with contextlib.suppress(SystemExit):
        code = main_of(command.entry)(args)
        assert code == 0 or (code == 2 and "--dry-run" in args), capsys.readouterr().err
        return
    captured = capsys.readouterr()
    assert "usage:" in captured.out, f"only --help exits through SystemExit here: {captured.err}"


def _hooks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_placeholder_of_the_docs_renders_and_the_projection_comes_from_its_results_file():
    import json

    hooks = _hooks()
    pages = {p.name: hooks.render(p.read_text()) for p in (REPO / "docs").glob("*.md")}
    assert not any("{{" in text for text in pages.values())
    saved = json.loads((REPO / "benchmarks" / "results" / "h100.json").read_text())["fig6_projection"]["default"]
    assert f"| {saved['best_runs_per_gpu']} | {saved['best_runs_per_gpu_s'] / 60:.0f} (best) |" in pages["speed.md"]


@pytest.mark.parametrize(
    ("placeholder", "message"),
    [
        ("{{ result h100.json#/fig6_projection/nope }}", "no key 'nope' on the path '/fig6_projection/nope'"),
        ("{{ result nope.json#/a }}", "no results file 'nope.json'"),
        ("{{ table nope }}", "no table named 'nope'"),
        ("{{ result h100.json#/steps | hours }}", "format 'hours' is not one of"),
    ],
)
def test_a_placeholder_naming_what_does_not_exist_stops_the_build(placeholder, message):
    hooks = _hooks()
    with pytest.raises(hooks.PlaceholderError, match=message):
        hooks.render(f"text {placeholder} text")
