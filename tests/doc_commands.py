"""The shell commands of the docs, and each one checked against the real parser of the entry point it names.

A command is a line of a fenced ``bash``/``sh``/``shell``/``console`` block of README.md, CONTRIBUTING.md or docs/
(continuation lines joined, ``&&``/``;``/``|`` split, comments dropped). It names a project entry point when it is
``python run_sweep.py ...`` or ``python -m MODULE ...`` for ``experiments.train``, ``models``, ``analysis.*`` or
``benchmarks.*``. The parser is the one the entry point's ``main`` builds: ``main`` is called and stopped at its
first ``parse_known_args``, before it does anything, so no entry point needs a function of its own for this.
``experiments.train`` takes its flags from the config fields (``experiments.config.parse``), not argparse.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(?:bash|sh|shell|console)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SEPARATORS = {"&&", "||", ";", "|"}
PROJECT_MODULES = re.compile(r"^(experiments\.train|models|analysis(\.[\w.]+)?|benchmarks\.[\w.]+)$")
TRAIN_EXTRA_FLAGS = {"--restart", "--no-wandb", "--help", "-h"}
PLACEHOLDER = "..."


def doc_files() -> list[Path]:
    """The pages whose commands are checked."""
    return [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]


@dataclass(frozen=True)
class Command:
    """One command of a page: where it is, the entry point it names and its arguments."""

    where: str
    entry: str
    args: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"{self.entry} {shlex.join(self.args)}"


def _lines(block: str) -> Iterator[tuple[int, str]]:
    """Logical lines of a shell block (backslash continuations joined), with their offset in the block."""
    first, pending = 0, ""
    for i, line in enumerate(block.splitlines()):
        if not pending:
            first = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield first, pending + line
        pending = ""
    if pending:
        yield first, pending


def _entry(tokens: list[str]) -> tuple[str, list[str]] | None:
    """The project entry point a command runs and its arguments, or None for any other program."""
    while tokens and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]):  # VAR=value before the program
        tokens = tokens[1:]
    if len(tokens) < 2 or not re.fullmatch(r"python3?", tokens[0]):
        return None
    if tokens[1] == "run_sweep.py":
        return "run_sweep.py", tokens[2:]
    if tokens[1] == "-m" and len(tokens) > 2 and PROJECT_MODULES.match(tokens[2]):
        return f"python -m {tokens[2]}", tokens[3:]
    return None


def commands(markdown: str, source: str = "<text>") -> list[Command]:
    """Every command in ``markdown``'s shell blocks that names a project entry point."""
    found = []
    for fence in FENCE.finditer(markdown):
        start = markdown.count("\n", 0, fence.start(1)) + 1
        for offset, line in _lines(fence.group(1)):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            part: list[str] = []
            for token in [*lexer, ";"]:
                if token not in SEPARATORS:
                    part.append(token)
                    continue
                if (named := _entry(part)) is not None:
                    found.append(Command(f"{source}:{start + offset}", named[0], tuple(named[1])))
                part = []
    return found


class _Parsed(BaseException):
    """Stops an entry point's ``main`` at its first parse, carrying the parser (BaseException: no handler takes it)."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def main_of(entry: str) -> Callable:
    """The ``main`` function that ``python run_sweep.py`` or ``python -m MODULE`` calls."""
    module = "run_sweep" if entry == "run_sweep.py" else entry.removeprefix("python -m ")
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise LookupError(f"{entry}: no such module")
    if spec.submodule_search_locations:  # a package: its __main__ names where main lives
        source = Path(spec.submodule_search_locations[0], "__main__.py").read_text()
        imported = [n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module]
        owners = [m for m in imported if "main" in _imported_names(source, m)]
        module = owners[0] if owners else f"{module}.__main__"
    return importlib.import_module(module).main


def _imported_names(source: str, module: str) -> set[str]:
    return {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


def parser_of(entry: str) -> argparse.ArgumentParser:
    """The argparse parser an entry point's ``main`` builds, taken before it parses anything."""
    main = main_of(entry)

    def stop(parser, *args, **kwargs):
        raise _Parsed(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", stop):
        try:
            main([])
        except _Parsed as parsed:
            return parsed.parser
    raise LookupError(f"{entry}: main() returned without parsing its arguments")


def _flags(args: tuple[str, ...]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("-") and not re.fullmatch(r"-\d[\d.e-]*", a)]


def problems(command: Command) -> list[str]:
    """What is wrong with a command: a flag its entry point does not have, or arguments its parser refuses."""
    if command.entry == "python -m experiments.train":
        return _train_problems(command)
    try:
        parser = parser_of(command.entry)
    except (LookupError, ImportError) as e:
        return [f"{command.where}: {e}"]
    known = set(parser._option_string_actions)
    wrong = [f"{command.where}: {command.entry} has no flag {f}" for f in _flags(command.args) if f not in known]
    if wrong or PLACEHOLDER in command.args or {"-h", "--help"} & set(command.args):
        return wrong
    try:
        parser.parse_args(list(command.args))
    except (SystemExit, Exception) as e:
        return [f"{command.where}: {command.text} is refused by its parser: {e}"]
    return []


def _train_problems(command: Command) -> list[str]:
    from experiments.config import ConfigError, config_from_dict, parse_cli
    from experiments.config.parse import FIELD_NAMES

    def known(flag: str) -> bool:  # parse_cli reads --max-steps as --max_steps
        return flag in TRAIN_EXTRA_FLAGS or (flag.startswith("--") and flag[2:].replace("-", "_") in FIELD_NAMES)

    wrong = [f"{command.where}: {command.entry} has no flag {f}" for f in _flags(command.args) if not known(f)]
    if wrong or PLACEHOLDER in command.args or {"-h", "--help"} & set(command.args):
        return wrong
    try:
        config_from_dict(parse_cli([a for a in command.args if a not in TRAIN_EXTRA_FLAGS]))
    except ConfigError as e:
        return [f"{command.where}: {command.text} is refused: {e}"]
    return []
